"""Software found on this machine, offered to the resolver as candidates of origin ``host``.

The adapter between ``ckpm.detect`` (which yields records and knows nothing of the
resolver) and the candidate factory. A key that names a component uses that component's
``detect`` rules; a capability key (tags) uses the rules of every component carrying the
tags; a ``__name`` key is a host fact (``__os``, ``__arch``, ``__libc``, ``__cpu``,
``__cuda``, ``__python``). Detection runs lazily, once per component, through the cached
host profile.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ckpm.index.base import Index
from ckpm.model.entry import IndexEntry
from ckpm.model.version import try_version
from ckpm.resolve.candidates import Candidate, Origin, Req

if TYPE_CHECKING:
    from ckpm.detect.record import Detected


# The C library fact is __libc; __glibc and __musl name it with its implementation.
FACT_ALIASES = {"__glibc": ("__libc", "glibc"), "__musl": ("__libc", "musl")}
LOCAL_ENV = ".venv"  # a project's own virtual environment, searched before PATH


class DetectedHost:
    """A HostLookup over the detect rules of the project's indexes.

    Detection runs in ``settings.env`` (PATH, overrides), with ``settings.python`` for python
    packages, and the project's own ``.venv`` searched first: what it finds there is marked
    ``local`` and recorded relative to the project, so the lock does not depend on whether
    the user's PATH had the environment activated.
    """

    def __init__(self, indexes: Sequence[Index], *, host_target: str, settings: Any = None,
                 project_root: os.PathLike[str] | str | None = None, timeout: float = 3.0,
                 facts_only: bool = False) -> None:
        from ckpm.settings import Settings

        self.facts_only = facts_only  # --no-host: the platform's facts hold, no installed software does
        self.indexes = list(indexes)
        self.host_target = host_target
        self.settings = settings if settings is not None else Settings()
        self.cache_dir = self.settings.cache_dir
        self.refresh = self.settings.refresh_host
        self.timeout = timeout
        self.env = self.settings.environ
        self.root = os.path.realpath(project_root) if project_root is not None else None
        self.local = os.path.join(self.root, LOCAL_ENV) if self.root and os.path.isdir(
            os.path.join(self.root, LOCAL_ENV)) else None
        self.reporter = self.settings.reporter  # every warning of detection and of the rules, once
        self._found: dict[str, list[Detected]] = {}
        self._facts: dict[str, Detected] | None = None
        self._cands: dict[str, list[Candidate]] = {}

    @property
    def python(self) -> str | None:
        """The interpreter for python_package rules: CKPM_PYTHON, else the project's .venv, else ckpm's."""
        if self.settings.python:
            return str(self.settings.python)
        if self.local:
            for name in ("bin/python", "Scripts/python.exe"):
                p = os.path.join(self.local, name)
                if os.path.exists(p):
                    return p
        return None

    # -- detection ----------------------------------------------------------------------
    def facts(self) -> dict[str, Detected]:
        if self._facts is None:
            from ckpm.detect import host_facts

            self._facts = host_facts(self.env, cache_dir=self.cache_dir, timeout=self.timeout)
        return self._facts

    def _entries(self, name: str) -> list[IndexEntry]:
        return self._entries_from(name)[0]

    def _entries_from(self, name: str) -> tuple[list[IndexEntry], str]:
        """The versions of ``name`` from the first index that has it, and that index's name."""
        for idx in self.indexes:
            es = idx.entries(name)
            if es:
                return es, idx.name
        return [], ""

    def rules_of(self, name: str) -> list[Mapping[str, Any]]:
        """The validated detect rules of ``name`` (a rejected rule is a warning naming its index)."""
        from ckpm.detect.rules import rules_of_entries

        entries, index = self._entries_from(name)
        return rules_of_entries(entries, origin=f"index {index}", reporter=self.reporter)

    def _detect(self, rules: Mapping[str, Any], *, refresh: bool) -> Any:
        from ckpm.detect import detect

        res = detect(rules, refresh=refresh, cache_dir=self.cache_dir, timeout=self.timeout, env=self.env,
                     python=self.python, search_paths=[self.local] if self.local else (),
                     path_roots=self.settings.roots(), owned=True, reporter=self.reporter)
        return res

    def detected(self, names: Sequence[str]) -> dict[str, list[Detected]]:
        """Detection records per component name (each component probed at most once)."""
        todo = {n: self.rules_of(n) for n in names if n not in self._found}
        todo = {n: r for n, r in todo.items() if r}
        if todo:
            with self.reporter.progress(f"detecting {', '.join(sorted(todo))} on this host"):
                res = self._detect(todo, refresh=self.refresh)
            if self._facts is None:
                self._facts = res.facts
            for n in todo:
                self._found[n] = list(res.found.get(n, []))
        return {n: self._found.get(n, []) for n in names}

    # -- candidates ---------------------------------------------------------------------
    def candidates_for(self, key: str, reqs: Sequence[Req], target: str, ident: str) -> list[Candidate]:
        memo = self._cands.get(ident)
        if memo is not None:
            return memo
        out: list[Candidate] = []
        if key.startswith("__"):
            fact = self.facts().get(key)
            if fact is None and key in FACT_ALIASES:
                alias, libc = FACT_ALIASES[key]
                fact = self.facts().get(alias)
                if fact is not None and fact.extra.get("name") != libc:
                    fact = None
            if fact is not None and try_version(fact.version) is not None:
                e = IndexEntry(name=fact.name, version_text=fact.version, kind="tool", tags=("host-fact",),
                               targets=(target,), description="a fact of this host")
                out.append(_candidate(ident, key, target, e, fact))
            self._cands[ident] = out
            return out
        if self.facts_only:
            self._cands[ident] = out
            return out
        names: list[str]
        capability = False
        if self._entries(key):
            names = [key]
        else:
            tags = frozenset().union(*(r.req.tags for r in reqs))
            if not tags:
                self._cands[ident] = out
                return out
            capability = True
            names = []
            for idx in self.indexes:
                names.extend(s.name for s in idx.summaries() if tags <= s.tags)
            names = sorted(set(names))
        for name, recs in self.detected(names).items():
            entries = self._entries(name)
            if not entries:  # a stale summary can name a component whose file is gone
                continue
            latest = entries[-1]
            for d in recs:
                if try_version(d.version) is None:
                    self.reporter.warning(f"{name}: detected version {d.version!r} at {d.path} is not a version; ignored")
                    continue
                if capability and d.extra.get("cross"):
                    continue  # a cross compiler does not build for this host
                same = next((x for x in entries if x.version_text == d.version), None)
                e = IndexEntry(name=name, version_text=d.version, kind=latest.kind, tags=latest.tags,
                               description=latest.description, targets=latest.targets,
                               yanked=bool(same is not None and same.yanked))
                out.append(_candidate(ident, key, target, e, self._localise(d)))
        self._cands[ident] = out
        return out


    # -- checking a lock's host pins ------------------------------------------------------
    def rule_by_id(self, name: str, rule_id: str | None) -> Mapping[str, Any] | None:
        """The index's (validated) detect rule of ``name`` whose id is ``rule_id``, or None."""
        from ckpm.detect.rules import rule_by_id, rules_of_entries
        from ckpm.errors import CkpmError

        if not rule_id:
            return None
        try:
            return rule_by_id(self.rules_of(name), rule_id)
        except CkpmError as first:
            # an index that cannot be read here (offline and not cached): the rule's id is the hash
            # of its content, so the same rule, validated, from any index that can be read is the one
            for idx in self.indexes:
                try:
                    es = idx.entries(name)
                except CkpmError:
                    continue
                found = rule_by_id(rules_of_entries(es, origin=f"index {idx.name}", reporter=self.reporter), rule_id)
                if found is not None:
                    return found
            raise first

    def probe_again(self, name: str, rule: Mapping[str, Any] | None, path: str | None) -> list[Detected]:
        """Run one index rule (or, with None, the host facts) afresh; every match, localised,
        the one at ``path`` first. ``path`` is only compared, never executed."""
        from ckpm.detect import recheck

        found = recheck(name, rule, path=path, timeout=self.timeout, env=self.env, python=self.python,
                        search_paths=[self.local] if self.local else (), path_roots=self.settings.roots(),
                        reporter=self.reporter)
        return [self._localise(d) for d in found]

    def _localise(self, d: Detected) -> Detected:
        """A record found inside the project's .venv, with its path relative to the project."""
        if not (self.root and self.local and d.path):
            return d
        real = os.path.abspath(d.path)
        if not real.startswith(self.local + os.sep):
            return d
        return d.replace(path=os.path.relpath(real, self.root), extra={**d.extra, "local": True})


def _candidate(ident: str, key: str, target: str, e: IndexEntry, d: Detected) -> Candidate:
    return Candidate(ident=ident, key=key, name=e.name, version=e.version, target=target, origin=Origin.HOST, entry=e,
                     host=d)


#: detectors whose fingerprint is the found file's own (ckpm/detect/detectors/executable.py,
#: compiler.py): when it is unchanged, the version a rule reads from it is too
UNCHANGED_BY_FINGERPRINT = ("executable", "compiler")


def recheck_pin(host: DetectedHost, p: Any, make: Any) -> Any:
    """Drift of one host pin of a lock (``make(name, expected, found, action, severity)``), or None.

    Nothing is taken from the lock but names to compare: a fact is computed again; a
    component's rule is looked up in the index by the lock's ``rule-id`` and run as the
    index says; the locked path is only compared with what that finds. An executable or a
    compiler whose file still has the locked fingerprint is not probed again: the same rule
    on the same file gives the same version (this keeps a warm ``ckpm run`` fast).
    """
    from ckpm.detect import match_recorded

    src = p.source
    path = src.path
    if path and src.local and host.root:
        path = os.path.join(host.root, path)
    where = f" at {src.path}" if src.path else ""
    expected = f"{p.version}{where}"
    if src.fact:
        fact = src.fact if src.fact not in FACT_ALIASES else FACT_ALIASES[src.fact][0]
        facts = host.probe_again(fact, None, None)
        if not facts:
            return make(p.name, expected, "missing", f"this host has no {src.fact}; run `ckpm lock` to re-resolve")
        if facts[0].version != p.version:
            return make(p.name, expected, facts[0].version, f"run `ckpm lock` to lock for this host's {src.fact}")
        return None
    rule = host.rule_by_id(p.name, src.rule_id)
    if rule is None:
        return make(p.name, expected, "cannot check",
                    "no index has the detect rule the lock recorded (its rule-id); run `ckpm lock`")
    if src.host in UNCHANGED_BY_FINGERPRINT and path and src.fingerprint:
        from ckpm.detect.fingerprint import fingerprint_of

        if fingerprint_of(path) == src.fingerprint:
            return None  # the same rule (its id) on the same file (path, size, mtime): the same version
    found = host.probe_again(p.name, rule, path)
    if src.local and host.root:  # compare like with like: localised paths are relative
        path = src.path
    got = match_recorded(found, path, p.version)
    now = got.record
    if now is None:
        return make(p.name, expected, "missing",
                    f"install {p.name} {p.version}, or run `ckpm lock` to choose another candidate")
    if got.same_path:
        if now.version != p.version:
            return make(p.name, expected, f"{now.version}{where}",
                        f"install {p.name} {p.version}, or run `ckpm lock` to pin {now.version}")
        if src.fingerprint and now.fingerprint and now.fingerprint != src.fingerprint:
            return make(p.name, expected, f"{now.version}{where} (the file changed)",
                        "run `ckpm lock` to record the new file", "note")
        return None
    if now.version == p.version:
        return make(p.name, expected, f"{p.version} at {now.path}",
                    "the same version at another path; `ckpm lock` records it", "note")
    return make(p.name, expected, f"{now.version} at {now.path}",
                f"install {p.name} {p.version}, or run `ckpm lock` to choose another candidate")
