"""The context a detector works in: settings, the probe runner, the memo, file search.

Detectors never call ``subprocess`` themselves: :meth:`DetectContext.run` applies the
timeout, counts the probe and turns a crash or a hang into a warning. What a probe
costs is memoised with :meth:`DetectContext.memo_records` under a fingerprint, so a warm
run only stats files.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
import threading
from typing import Any, Callable, Iterable, Mapping, Sequence

from ckpm.detect.cache import HostProfile
from ckpm.detect.fingerprint import fingerprint_of
from ckpm.detect.probe import ProbeOutput, run_probe, truncate
from ckpm.detect.record import Detected
from ckpm.detect.trust import MAX_GLOB_MATCHES, Roots, canonical, denied
from ckpm.model.targets import ARCH_ALIASES, host_arch, host_os, normalize_arch  # noqa: F401  (one spelling of platforms)
from ckpm.report import Reporter

GLOB_CHARS = re.compile(r"[*?\[]")
_VAR = re.compile(r"\$(\w+)|\$\{([^}]+)\}")

def _is_path(pattern: str) -> bool:
    return not pattern or "/" in pattern or "\\" in pattern or os.sep in pattern or pattern.startswith(("~", "-"))


def rule_key(rule: Mapping[str, Any]) -> str:
    """Canonical text of a rule (part of a memo key)."""
    return canonical(rule)


class DetectContext:
    """Settings and services shared by every detector during one detection run."""

    def __init__(
        self,
        *,
        timeout: float = 3.0,
        env: Mapping[str, str] | None = None,
        search_paths: Sequence[str] = (),
        python: str | None = None,
        profile: HostProfile | None = None,
        refresh: bool = False,
        jobs: int = 8,
        path_roots: Sequence[str | os.PathLike[str]] = (),
        reporter: Reporter | None = None,
    ) -> None:
        self.reporter = reporter if reporter is not None else Reporter()  # receives every warning, once
        self.timeout = float(timeout)
        self.jobs = max(1, int(jobs))
        self.env: dict[str, str] = dict(os.environ if env is None else env)
        self.search_paths = [self.expand(p) for p in search_paths]
        self.python = os.path.abspath(python) if python else sys.executable
        self.profile = profile if profile is not None else HostProfile(None)
        self.refresh = refresh
        self.path_roots = [os.fspath(p) for p in path_roots]
        self._roots: Roots | None = None
        self.probes_run = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self._listdir: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- warnings and probes -------------------------------------------------------------

    def warn(self, message: str) -> None:
        """A non-fatal problem (shown to the user, never raised): to the reporter, or, while a
        memoised value is computed, kept with it (and said when the value is used)."""
        buf = getattr(self._local, "warnings", None)
        if buf is not None:
            buf.append(message)
        else:
            self.reporter.warning(message)

    def run(
        self,
        argv: Sequence[str],
        *,
        label: str,
        timeout: float | None = None,
        ok_codes: Iterable[int] = (0,),
        env: Mapping[str, str] | None = None,
    ) -> ProbeOutput | None:
        """Run one probe; None (and a warning) if it cannot start, times out or fails."""
        t = self.timeout if timeout is None else timeout
        cmd = " ".join(argv)
        with self._lock:
            self.probes_run += 1
        try:
            out = run_probe(argv, timeout=t, env=self.env if env is None else env)
        except OSError as e:
            self.warn(f"{label}: could not run `{cmd}`: {e.strerror or e}")
            return None
        if out.timed_out:
            self.warn(f"{label}: `{cmd}` timed out after {t:g}s; skipped")
            return None
        if out.returncode not in tuple(ok_codes):
            if out.returncode == 127 and "command not found" in (out.stderr or out.stdout or ""):
                # a wrapper with nothing behind it (pyenv's shim of a version that is not
                # active says so): no program here, not a broken one worth a warning
                return None
            said = truncate(out.stderr or out.stdout) or "(no output)"
            self.warn(f"{label}: `{cmd}` exited with {out.returncode}: {said}")
            return None
        return out

    # -- memo ------------------------------------------------------------------------------

    @staticmethod
    def _key(key: Sequence[Any]) -> str:
        return json.dumps(list(key), separators=(",", ":"), default=str)

    def _lookup(self, k: str, fp: str) -> dict[str, Any] | None:
        return None if self.refresh else self.profile.get(k, fp)

    def _isolated(self, compute: Callable[[], Any]) -> tuple[Any, list[str]]:
        """Run ``compute`` collecting its warnings apart (it may run in a worker thread)."""
        outer = getattr(self._local, "warnings", None)
        buf: list[str] = []
        self._local.warnings = buf
        try:
            return compute(), buf
        finally:
            self._local.warnings = outer

    def memo_value(self, key: Sequence[Any], fp: str, compute: Callable[[], Any], *, path: str | None = None) -> Any:
        """``compute()`` (JSON-able) memoised under ``key`` while the fingerprint stays ``fp``.

        Warnings raised while computing are stored with the value and replayed on a hit.
        """
        return self.memo_many([(key, fp, compute, path)])[0]

    def memo_many(self, items: Sequence[tuple[Sequence[Any], str, Callable[[], Any], str | None]]) -> list[Any]:
        """Several :meth:`memo_value` at once: the misses are computed in parallel threads
        (probes wait on subprocesses), the results and warnings kept in ``items`` order."""
        keys = [self._key(k) for k, _, _, _ in items]
        hits = [self._lookup(k, fp) for k, (_, fp, _, _) in zip(keys, items)]
        misses = [i for i, h in enumerate(hits) if h is None]
        computed: dict[int, tuple[Any, list[str]]] = {}
        if len(misses) > 1 and self.jobs > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(self.jobs, len(misses))) as pool:
                futures = {i: pool.submit(self._isolated, items[i][2]) for i in misses}
            computed = {i: f.result() for i, f in futures.items()}
        else:
            computed = {i: self._isolated(items[i][2]) for i in misses}
        out: list[Any] = []
        for i, (k, (_, fp, _, path)) in enumerate(zip(keys, items)):
            hit = hits[i]
            if hit is not None:
                self.cache_hits += 1
                self.warn_all(hit.get("warnings") or ())
                out.append(hit.get("value"))
            else:
                self.cache_misses += 1
                value, warns = computed[i]
                self.warn_all(warns)
                self.profile.put(k, fp, value, warns, path)
                out.append(value)
        return out

    def warn_all(self, messages: Iterable[str]) -> None:
        for m in messages:
            self.warn(m)

    def memo_records(
        self, key: Sequence[Any], fp: str, compute: Callable[[], Iterable[Detected]], *, path: str | None = None
    ) -> list[Detected]:
        """Like :meth:`memo_value` for a list of records."""
        return self.memo_records_many([(key, fp, compute, path)])[0]

    def memo_records_many(
        self, items: Sequence[tuple[Sequence[Any], str, Callable[[], Iterable[Detected]], str | None]]
    ) -> list[list[Detected]]:
        """Like :meth:`memo_many` for lists of records."""
        wrapped = [(k, fp, (lambda c=c: [d.to_json() for d in c()]), p) for k, fp, c, p in items]
        return [[Detected.from_json(d) for d in raw or ()] for raw in self.memo_many(wrapped)]

    # -- files -----------------------------------------------------------------------------

    def expand(self, path: str) -> str:
        """Expand ``~`` and ``$VAR``/``${VAR}`` (from this context's env) in a path."""
        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            return self.env.get(name, m.group(0))

        p = _VAR.sub(sub, str(path))
        if p.startswith("~"):
            home = self.env.get("HOME") or os.path.expanduser("~")
            if p == "~" or p.startswith("~/"):
                p = home + p[1:]
            else:
                p = os.path.expanduser(p)
        return p

    def listdir(self, d: str) -> list[str]:
        """Sorted names in folder ``d`` ([] if unreadable), listed once per run."""
        hit = self._listdir.get(d)
        if hit is None:
            try:
                hit = sorted(os.listdir(d))
            except OSError:
                hit = []
            self._listdir[d] = hit
        return hit

    @property
    def roots(self) -> Roots:
        """The folders a rule's ``search_paths``, ``include_paths`` and ``path`` globs may name
        (system prefixes, ckpm's data folder, the run's ``search_paths``, the user's ``path_roots``)."""
        if self._roots is None:
            self._roots = Roots.build(self.path_roots, self.search_paths, self.env)
        return self._roots

    def glob(self, pattern: str, *, recursive: bool = False, limit: int = MAX_GLOB_MATCHES) -> list[str]:
        """Sorted matches of an expanded glob (at most ``limit`` looked at, with a warning)."""
        import glob
        import itertools

        if not GLOB_CHARS.search(pattern):
            return [pattern]
        hits = list(itertools.islice(glob.iglob(pattern, recursive=recursive), limit + 1))
        if len(hits) > limit:
            self.warn(f"glob {pattern} matches more than {limit} paths; only {limit} looked at")
            hits = hits[:limit]
        return sorted(hits)

    def glob_dirs(self, patterns: Iterable[str], *, confined: bool = False) -> list[str]:
        """Folders named by paths or glob patterns (``~``/env expanded), in order, deduped.

        ``confined``: the patterns come from a rule, so only folders whose real path lies
        inside :attr:`roots` are kept.
        """
        out: list[str] = []
        for pat in patterns:
            p = self.expand(pat)
            for f in self.glob(p):
                if f not in out and os.path.isdir(f) and (not confined or self.roots.contains(f)):
                    out.append(f)
        return out

    def rule_dirs(self, patterns: Iterable[str], subdirs: Sequence[str] = ("",)) -> list[str]:
        """A rule's folders (``search_paths``), each with ``subdirs``, kept inside :attr:`roots`."""
        cands = [os.path.join(p, s) if s else p for p in patterns for s in subdirs]
        return self.glob_dirs(cands, confined=True)

    def path_dirs(self, extra: Iterable[str] = (), *, trusted: Iterable[str] = ()) -> list[str]:
        """Executable search folders: a rule's extras (confined to the roots), then ``trusted``
        folders (ckpm's own, e.g. ``/sbin``) and the run's search paths (and their bin/), then PATH."""
        cands: list[str] = []
        for p in [*trusted, *self.search_paths]:
            cands += [p, os.path.join(p, "bin")]
        out = self.rule_dirs(extra, ("", "bin"))
        out += [d for d in self.glob_dirs(cands) if d not in out]
        for d in self.env.get("PATH", "").split(os.pathsep):
            if d and d not in out and os.path.isdir(d):
                out.append(d)
        return out

    def find_executables(
        self, patterns: Iterable[str], extra_dirs: Iterable[str] = (), exclude: Iterable[str] = (),
        *, trusted_dirs: Iterable[str] = (),
    ) -> list[str]:
        """Every executable matching ``patterns`` (bare names or globs over names), search order.

        A pattern that is a path (a separator, a leading ``~``) is ignored: executables are
        only searched in folders, never named by a rule. Folders come first in order (PATH
        precedence), then patterns in order, then names sorted. Names matching an
        ``exclude`` glob are skipped; duplicates by realpath are dropped, keeping the first.
        """
        pats = [str(p) for p in patterns if not _is_path(str(p))]
        hits: list[str] = []
        for d in self.path_dirs(extra_dirs, trusted=trusted_dirs):
            for pat in pats:
                if GLOB_CHARS.search(pat):
                    hits += [os.path.join(d, n) for n in fnmatch.filter(self.listdir(d), pat)]
                else:
                    hits.append(os.path.join(d, pat))
        out: list[str] = []
        seen: set[str] = set()
        excl = [str(e) for e in exclude]
        for h in hits:
            if excl and any(fnmatch.fnmatchcase(os.path.basename(h), e) for e in excl):
                continue
            if not (os.path.isfile(h) and os.access(h, os.X_OK)):
                continue
            if denied(os.path.basename(h)):  # e.g. a glob that happens to match reboot
                continue
            real = os.path.realpath(h)
            if real in seen:
                continue
            seen.add(real)
            out.append(h)
        return out

    def fingerprint(self, path: str) -> str:
        return fingerprint_of(path)
