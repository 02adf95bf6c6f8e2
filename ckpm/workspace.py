"""A project folder as the library sees it: its manifest, its indexes, its lock, and the host.

``Settings`` (``ckpm.settings``) carries what every command shares; ``Workspace`` opens what
a command needs lazily and memoises it for that command; ``resolve_workspace`` runs the
resolution for every target. Commands that write the project take :meth:`Workspace.writing`
first, so concurrent ckpm processes on one project serialise and none loses another's edit.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from ckpm.errors import ProjectError
from ckpm.index import Index, open_index
from ckpm.model.manifest import MANIFEST, ProjectManifest, find_project, load_project
from ckpm.model.requirement import Requirement
from ckpm.model.targets import validate_target
from ckpm.settings import INDEX_ENV, RESOLVE_MAX_ROUNDS, RESOLVE_SECONDS, Settings, SettingsError

if TYPE_CHECKING:
    from ckpm.index.gitsource import GitComponentSource
    from ckpm.model.lockfile import Lock
    from ckpm.resolve.host import DetectedHost

__all__ = ["INDEX_ENV", "Settings", "Workspace", "check_settings", "make_indexes", "LockOptions",
           "resolve_workspace"]


def check_settings(settings: Settings) -> Settings:
    """``settings``, or a SettingsError for one that cannot be used (an invalid ``CKPM_OVERRIDE_*``)."""
    if settings.overrides():
        from ckpm.detect import invalid_overrides

        problems = invalid_overrides(settings.environ)
        if problems:
            raise SettingsError(problems[0] if len(problems) == 1 else "invalid host-fact overrides",
                                details=problems if len(problems) > 1 else [],
                                hint="unset the variable, or see `Host facts` in docs/detection.md")
    return settings


def bound_indexes(indexes: Sequence[Any], deadline: float | None) -> None:
    """Give every network index the command's deadline (a ``time.monotonic()`` value, or None)."""
    for idx in indexes:
        if hasattr(idx, "deadline"):
            idx.deadline = deadline


class Workspace:
    """A project folder: its manifest, its indexes and its lock."""

    def __init__(self, root: Path | str | None = None, options: Settings | None = None, *,
                 search_up: bool = True) -> None:
        self.settings = options if options is not None else Settings()
        self.reporter = self.settings.reporter
        start = Path(root or ".").resolve()
        self.manifest_path = find_project(start) if search_up else start / MANIFEST
        self.root = self.manifest_path.parent
        self.deadline: float | None = None  # a time.monotonic() value that bounds network reads
        # `--mirror DIR` of this command (sync, fetch, vendor, a replay): vendored folders, whose index lines
        # the lock check reads when an index cannot be (provision.vendor_roots adds those [mirrors] names)
        self.mirror_dirs: tuple[Path, ...] = ()
        self._manifest: ProjectManifest | None = None
        self._indexes: list[Index] | None = None
        self._git_sources: dict[tuple[str, str | None], GitComponentSource] = {}
        self._host: DetectedHost | None = None
        self._facts_host: DetectedHost | None = None

    @property
    def lock_path(self) -> Path:
        from ckpm.model.lockfile import LOCKFILE  # not imported for commands that never read a lock (search)

        return self.root / LOCKFILE

    @property
    def host_target(self) -> str:
        """This host's target, from its facts (``CKPM_OVERRIDE_OS``/``ARCH`` applied)."""
        return self.settings.host_target()

    @property
    def manifest(self) -> ProjectManifest:
        if self._manifest is None:
            self._manifest = load_project(self.manifest_path, self.reporter)
        return self._manifest

    def set_manifest(self, m: ProjectManifest) -> None:
        self._manifest = m
        self._indexes = None

    def reload(self) -> None:
        """Forget what was read, so the next use reads the files as they are now."""
        self._manifest = None
        self._indexes = None

    def read_lock(self) -> Lock | None:
        from ckpm.model.lockfile import read_lock

        return read_lock(self.lock_path)

    @property
    def indexes(self) -> list[Index]:
        if self._indexes is None:
            self._indexes = make_indexes(self.manifest, self.settings, deadline=self.deadline)
        return self._indexes

    def set_deadline(self, seconds: float | None) -> None:
        """Bound every network read of this command to ``seconds`` from now."""
        self.deadline = None if seconds is None else time.monotonic() + seconds
        bound_indexes(self._indexes or (), self.deadline)
        for src in self._git_sources.values():
            if hasattr(src, "deadline"):
                src.deadline = self.deadline

    def stored_versions(self) -> frozenset[tuple[str, str, str]]:
        """(name, version, target) of every complete prefix in the store: a resolution prefers
        them after the host (nothing with ``no_host``, which pretends nothing is installed)."""
        if self.settings.no_host or self.settings.store_dir is None or not Path(self.settings.store_dir).is_dir():
            return frozenset()
        from ckpm.store.store import Store

        try:
            return frozenset((e.name, e.version, e.target) for e in Store(Path(self.settings.store_dir)).entries())
        except OSError as e:
            self.reporter.warning(f"the store at {self.settings.store_dir} could not be read ({e.strerror or e})")
            return frozenset()

    def git_source(self, url: str, subdir: str | None) -> GitComponentSource:
        key = (url, subdir)
        src = self._git_sources.get(key)
        if src is None:
            from ckpm.index.gitsource import GitComponentSource

            src = GitComponentSource(_abs_git_url(url, self.root), subdir=subdir, cache_dir=self.settings.cache_dir,
                                     offline=self.settings.offline, **_client_kw(self.settings, self.deadline))
            self._git_sources[key] = src
        return src

    def host_source(self) -> DetectedHost:
        """Software on this machine as resolution candidates; with --no-host only the host
        facts (``__os``, ``__python``…: the platform, not something installed)."""
        if self.settings.no_host:
            if self._facts_host is None:
                from ckpm.resolve.host import DetectedHost

                self._facts_host = DetectedHost(self.indexes, host_target=self.host_target, settings=self.settings,
                                                project_root=self.root, facts_only=True)
            return self._facts_host
        if self._host is None:
            from ckpm.resolve.host import DetectedHost

            self._host = DetectedHost(self.indexes, host_target=self.host_target, settings=self.settings,
                                      project_root=self.root)
        return self._host

    def host_source_for_check(self) -> DetectedHost:
        """The host adapter even under --no-host: checking the lock's host pins needs it."""
        if self._host is None:
            from ckpm.resolve.host import DetectedHost

            self._host = DetectedHost(self.indexes, host_target=self.host_target, settings=self.settings,
                                      project_root=self.root)
        return self._host

    def targets(self, override: Sequence[str] | None = None, old: Lock | None = None) -> list[str]:
        """``override``, else the manifest's ``[targets] default``, else the old lock's, else the host."""
        ts = list(override or self.manifest.targets or (old.targets if old is not None else []) or [self.host_target])
        for t in ts:
            validate_target(t)
        return sorted(set(ts))

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold this project's write lock; a process that had to wait re-reads the files.

        The lock file lives in the cache (``projects/<hash of the folder>.lock``), so the
        project folder gets no extra file. Read-only commands never take it.
        """
        from ckpm.fsutil import file_lock

        waited: list[str] = []

        def on_wait(msg: str) -> None:
            waited.append(msg)
            self.reporter.note(msg)

        key = hashlib.sha256(str(self.root).encode("utf-8")).hexdigest()[:16]
        path = self.settings.cache_root / "projects" / f"{key}.lock"
        with file_lock(path, on_wait=on_wait, what=f"on the project {self.root}"):
            if waited:
                self.reload()
            yield

    def close(self) -> None:
        for idx in self._indexes or ():
            idx.close()


def _client_kw(settings: Settings, deadline: float | None) -> dict[str, Any]:
    """Keywords every index client and git source takes (reporter, deadline)."""
    return {"reporter": settings.reporter, "deadline": deadline}


def _abs_git_url(url: str, root: Path) -> str:
    """Relative paths in a manifest's ``git =`` are relative to the project folder."""
    if "://" in url or url.startswith("git@") or os.path.isabs(url):
        return url
    return str((root / url).resolve())


def make_indexes(manifest: ProjectManifest | None, options: Settings, *, deadline: float | None = None) -> list[Index]:
    """The indexes a project reads, in order: --index/$CKPM_INDEX, else [[index]], else the embedded one."""
    kw = {"cache_dir": options.cache_dir, "offline": options.offline, **_client_kw(options, deadline)}
    url = options.effective_index_url()
    if url:
        return [open_index(url, **kw)]
    if manifest is not None and manifest.indexes:
        out = []
        for ref in manifest.indexes:
            u = ref.url
            if "://" not in u and not os.path.isabs(u) and u != "embedded":
                u = str((manifest.root / u).resolve())
            out.append(open_index(u, name=ref.name, **kw))
        return out
    return [open_index(None, **kw)]


# -- resolution ------------------------------------------------------------------------------

@dataclass
class LockOptions:
    """How ``lock`` resolves."""

    upgrade: bool = False
    upgrade_packages: Sequence[str] = ()
    targets: Sequence[str] | None = None
    prerelease: bool | None = None  # None: keep what the lock says
    max_rounds: int = RESOLVE_MAX_ROUNDS
    timeout: float = RESOLVE_SECONDS  # bounds the whole command: resolution and network reads
    locked: bool = False  # never re-resolve: fail if the lock does not hold
    allow_host_drift: bool = False  # with locked: host drift is a warning


def pins_from_lock(old: Lock | None, upgrade: bool, upgrade_packages: Sequence[str]) -> dict[str, dict[str, Any]]:
    """target → {key: Pin} of an existing lock (nothing with ``upgrade``; not the named packages)."""
    from ckpm.resolve.factory import Pin

    per_target: dict[str, dict[str, Any]] = {}
    if old is None or upgrade:
        return per_target
    skip = {n.lower() for n in upgrade_packages}
    for p in old.packages:
        if p.name in skip or skip & set(p.keys):
            continue
        pin = Pin(p.name, p.version, p.source.identity(), p.source)
        for t in p.targets:
            for k in p.keys:
                per_target.setdefault(t, {})[k] = pin
    return per_target


def resolve_workspace(ws: Workspace, options: LockOptions, *, extra: Sequence[Requirement] = (),
                      old: Lock | None = None) -> tuple[list[Any], bool]:
    """Resolve for every target; returns (per-target results, prerelease flag)."""
    from difflib import get_close_matches
    from ckpm.gcpause import paused_gc
    from ckpm.index.cache import cache_root
    from ckpm.resolve import hint
    from ckpm.resolve.resolve import Budget, resolve_target

    targets = ws.targets(options.targets, old)
    prerelease = options.prerelease if options.prerelease is not None else bool(old and old.prerelease)
    per_target = pins_from_lock(old, options.upgrade, options.upgrade_packages)
    known = {p.lower() for p in options.upgrade_packages}
    if known and old is not None:
        names = {p.name for p in old.packages} | {k for p in old.packages for k in p.keys}
        for n in sorted(known - names):
            near = get_close_matches(n, sorted(names), n=1)
            raise ProjectError(f"--upgrade-package {n}: no such package in {ws.lock_path}",
                               hint=f"did you mean {near[0]!r}?" if near else "see `ckpm tree`")
    htarget = ws.host_target
    stored = ws.stored_versions()
    results = []
    # one budget for the whole command: every target, both searches (and the deadline that
    # `lock --timeout` set for network reads, when there is one)
    budget = Budget(max_rounds=options.max_rounds, seconds=options.timeout, deadline=ws.deadline)
    # the targets whose last lock (same manifest) needed the complete search start there (ckpm.resolve.hint)
    where, manifest_hash = hint.hint_path(cache_root(ws.settings.cache_dir), ws.lock_path), ws.manifest.content_hash()
    hinted = hint.read(where, manifest_hash)
    with ws.reporter.progress("resolving"), paused_gc():
        for t in targets:
            pins = dict(per_target.get(t, {}))
            if t != htarget:
                pins.update({f"{k}@{htarget}": v for k, v in per_target.get(htarget, {}).items()})
            budget.complete_first = t in hinted
            results.append(resolve_target(
                ws.manifest.dependencies, t, ws.indexes, host_target=htarget, pins=pins, prerelease=prerelease,
                git_source=ws.git_source, host=ws.host_source(),
                budget=budget, extra=extra,
                reporter=ws.reporter, stored=stored,
            ))
    hint.write(where, manifest_hash, {r.target for r in results if r.method == "sat"}, hinted)
    return results, prerelease
