"""A project folder as the library sees it: its manifest, its indexes, its lock, and the host.

``Options`` carries the settings every command shares (the CLI's global flags);
``Workspace`` opens what a command needs lazily and memoises it for that command.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ckpm.index import Index, open_index
from ckpm.model.lockfile import LOCKFILE, Lock, read_lock
from ckpm.model.manifest import MANIFEST, ProjectManifest, find_project, load_project
from ckpm.model.targets import host_target, validate_target

INDEX_ENV = "CKPM_INDEX"


@dataclass
class Options:
    """Settings shared by every command (from the CLI's global flags or the caller)."""

    index_url: str | None = None  # overrides the project's [[index]] list (also $CKPM_INDEX)
    cache_dir: Path | None = None
    offline: bool = False
    no_host: bool = False  # pretend nothing is installed
    refresh_host: bool = False  # ignore the host-profile cache

    def effective_index_url(self) -> str | None:
        return self.index_url or os.environ.get(INDEX_ENV) or None


class Workspace:
    """A project folder: its manifest, its indexes and its lock."""

    def __init__(self, root: Path | str | None = None, options: Options | None = None, *, search_up: bool = True) -> None:
        self.options = options or Options()
        start = Path(root or ".").resolve()
        if search_up:
            self.manifest_path = find_project(start)
        else:
            self.manifest_path = start / MANIFEST
        self.root = self.manifest_path.parent
        self._manifest: ProjectManifest | None = None
        self._indexes: list[Index] | None = None
        self._git_sources: dict[tuple[str, str | None], Any] = {}
        self._host: Any = None

    @property
    def lock_path(self) -> Path:
        return self.root / LOCKFILE

    @property
    def manifest(self) -> ProjectManifest:
        if self._manifest is None:
            self._manifest = load_project(self.manifest_path)
        return self._manifest

    def set_manifest(self, m: ProjectManifest) -> None:
        self._manifest = m
        self._indexes = None

    def read_lock(self) -> Lock | None:
        return read_lock(self.lock_path)

    @property
    def indexes(self) -> list[Index]:
        if self._indexes is None:
            self._indexes = make_indexes(self.manifest, self.options)
        return self._indexes

    def git_source(self, url: str, subdir: str | None) -> Any:
        key = (url, subdir)
        src = self._git_sources.get(key)
        if src is None:
            from ckpm.index.gitsource import GitComponentSource

            src = GitComponentSource(_abs_git_url(url, self.root), subdir=subdir, cache_dir=self.options.cache_dir,
                                     offline=self.options.offline)
            self._git_sources[key] = src
        return src

    def host_source(self) -> Any:
        """Software on this machine as resolution candidates (None with --no-host)."""
        if self.options.no_host:
            return None
        if self._host is None:
            from ckpm.resolve.host import DetectedHost

            self._host = DetectedHost(self.indexes, host_target=host_target(), cache_dir=self.options.cache_dir,
                                      refresh=self.options.refresh_host)
        return self._host

    def targets(self, override: Sequence[str] | None = None) -> list[str]:
        ts = list(override or self.manifest.targets or [host_target()])
        for t in ts:
            validate_target(t)
        return sorted(set(ts))


def _abs_git_url(url: str, root: Path) -> str:
    """Relative paths in a manifest's ``git =`` are relative to the project folder."""
    if "://" in url or url.startswith("git@") or os.path.isabs(url):
        return url
    return str((root / url).resolve())


def make_indexes(manifest: ProjectManifest | None, options: Options) -> list[Index]:
    """The indexes a project reads, in order: --index/$CKPM_INDEX, else [[index]], else the embedded one."""
    url = options.effective_index_url()
    if url:
        return [open_index(url, cache_dir=options.cache_dir, offline=options.offline)]
    if manifest is not None and manifest.indexes:
        out = []
        for ref in manifest.indexes:
            u = ref.url
            if "://" not in u and not os.path.isabs(u) and u != "embedded":
                u = str((manifest.root / u).resolve())
            out.append(open_index(u, name=ref.name, cache_dir=options.cache_dir, offline=options.offline))
        return out
    return [open_index(None)]
