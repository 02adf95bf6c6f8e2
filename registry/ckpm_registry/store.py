"""The registry's view of its git index: an exported folder for reads, publish.py for writes.

The index is a local **bare** git repository. Its branch tip is exported, file by file, into
a plain folder (``export``) with the layout of index format 1; the service answers the sparse
file requests from that folder, and a static server or a CDN can serve the same folder. The
export is brought up to date after every write this service makes, and (at most once per
``refresh`` seconds, on a read) whenever the branch moved for another reason: a second
service process, or ``ckpm publish --index`` straight into the repository.

Writes (publish, yank, unyank, owners) are made one at a time: a thread mutex, then the file
lock ``<state>/registry.lock`` that every service process on the index shares. The index
commits themselves are made by :mod:`ckpm.index.gitwriter` (which takes its own lock on the
repository); nothing here writes git objects.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import pygit2
from pygit2.enums import DeltaStatus, FileMode, ObjectType

from ckpm.errors import IndexReadError
from ckpm.fsutil import LockTimeout, atomic_write, file_lock
from ckpm.index.base import at_layout_path, limit_of
from ckpm.index.folder import FolderIndex
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.index.gitwriter import LOCK_NAME
from ckpm.index.transfer import remove_stale_git_locks
from ckpm.model.entry import MAX_CONFIG_BYTES, ComponentSummary, IndexDataError, IndexEntry, valid_name
from ckpm.settings import Settings

from ckpm_registry.errors import IndexStoreError
from ckpm_registry.owners import Owners

log = logging.getLogger("ckpm_registry")

MARKER = ".ckpm-export.json"
#: the temporary file of an atomic_write (``.NAME.XXXXXXXX.tmp``), left behind when a process is killed
_LEFT_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # in the export folder: the commit (and api URL) it holds


@dataclass(frozen=True)
class FileBody:
    """One sparse file as served: its bytes and a strong ETag (the git blob id of the bytes)."""

    data: bytes
    etag: str


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))  # noqa: S324 - git's content id, not a security hash
    h.update(data)
    return h.hexdigest()


def wanted(rel: str) -> bool:
    """Whether ``rel`` is an index file the service serves (config, summary, a component file)."""
    return rel in (CONFIG, SUMMARY) or at_layout_path(rel.rsplit("/", 1)[-1], rel)


def open_bare(index: str | Path) -> Path:
    """The git folder of a local bare index repository (IndexStoreError otherwise)."""
    p = Path(str(index).removeprefix("git+").removeprefix("file://")).expanduser()
    try:
        repo = pygit2.Repository(str(p))
    except (pygit2.GitError, KeyError):
        raise IndexStoreError(f"no git repository at {p}",
                         hint="--index names a local bare git repository: make one with `git init --bare` "
                              "and commit config.json to it") from None
    try:
        if not repo.is_bare:
            raise IndexStoreError(f"{p} has a working tree; the registry serves a bare repository",
                             hint=f"make a bare copy with `git clone --bare {p} index.git` and serve that")
        return Path(repo.path).resolve()
    finally:
        repo.free()


class IndexStore:
    """The git index, its exported folder, the owners, and the write lock."""

    def __init__(self, index: str | Path, *, state: Path | None = None, export: Path | None = None,
                 public_url: str = "", refresh: float = 1.0, settings: Settings | None = None) -> None:
        self.gitdir = open_bare(index)
        # the service owns its repository, written only under the writer's lock: lock files that a
        # killed writer (this service, SIGKILLed while libgit2 moved a ref) left would make every
        # later publish fail ("failed to lock file refs/heads/main.lock"); under that lock none is live
        with file_lock(self.gitdir / LOCK_NAME):
            remove_stale_git_locks(self.gitdir)
        self.state = Path(state) if state is not None else self.gitdir / "ckpm-registry"
        self.export = Path(export) if export is not None else self.state / "export"
        self.public_url = public_url.rstrip("/")
        self.refresh = refresh
        self.settings = settings if settings is not None else Settings()
        self.owners = Owners(self.state / "owners.json")
        self._mutex = threading.RLock()
        self._git_mutex = threading.Lock()
        self._repo = pygit2.Repository(str(self.gitdir))
        self._branch = self._head_branch()
        self._tip: str | None = None  # the commit the export holds (as far as this process knows)
        self._checked = 0.0
        self._view: FolderIndex | None = None
        self._view_tip: str | None = None
        self._etags: dict[tuple[int, int, int, str], str] = {}
        self.state.mkdir(parents=True, exist_ok=True)
        self.owners.check()

    # -- git ---------------------------------------------------------------------------------

    def _head_branch(self) -> str:
        try:
            target = self._repo.lookup_reference("HEAD").target
        except (KeyError, pygit2.GitError):
            return "refs/heads/main"
        return target if isinstance(target, str) else "refs/heads/main"

    def tip(self) -> str:
        """The commit at the tip of the index branch (IndexStoreError when there is none)."""
        with self._git_mutex:
            try:
                return str(self._repo.lookup_reference(self._branch).resolve().target)
            except (KeyError, pygit2.GitError):
                raise IndexStoreError(f"{self.gitdir} has no commit on {self._branch}; "
                                 "an index repository needs a first commit with config.json") from None

    def history(self) -> list[str]:
        """The commit ids of the branch, newest first (tests compare it before and after)."""
        with self._git_mutex:
            tip = self._repo.lookup_reference(self._branch).resolve().target
            return [str(c.id) for c in self._repo.walk(tip)]

    # -- the write lock ----------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the registry's write lock (this process's threads, then every process)."""
        with self._mutex, file_lock(self.state / "registry.lock", on_wait=self.settings.reporter.note,
                                    what=f"the registry of {self.gitdir}"):
            yield

    # -- the export --------------------------------------------------------------------------

    def _marker(self) -> dict[str, Any]:
        try:
            d = json.loads((self.export / MARKER).read_text(encoding="utf-8"))
            return d if isinstance(d, dict) else {}
        except (OSError, ValueError):
            return {}

    def _config_bytes(self, data: bytes) -> bytes:
        """The index's config.json with ``api`` set to this service's public URL."""
        if len(data) > MAX_CONFIG_BYTES:
            raise IndexStoreError(f"{self.gitdir}: config.json is over {MAX_CONFIG_BYTES:,} bytes")
        try:
            cfg = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise IndexStoreError(f"{self.gitdir}: config.json is not JSON ({e})") from None
        if not isinstance(cfg, dict):
            raise IndexStoreError(f"{self.gitdir}: config.json is not a JSON object")
        if self.public_url:
            cfg["api"] = self.public_url
        return (json.dumps(cfg, indent=2) + "\n").encode("utf-8")

    def _write_file(self, rel: str, blob: pygit2.Object) -> None:
        data = bytes(blob.data)  # type: ignore[attr-defined]
        if len(data) > limit_of(rel)[0]:
            self._remove_file(rel)  # over the readers' cap: clients would refuse it anyway
            return
        if rel == CONFIG:
            data = self._config_bytes(data)
        atomic_write(self.export / rel, data)

    def _remove_file(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.export / rel).unlink()

    def _blobs(self, tree: pygit2.Tree) -> Iterator[tuple[str, pygit2.Object]]:
        todo: list[tuple[str, pygit2.Tree]] = [("", tree)]
        while todo:
            prefix, t = todo.pop()
            for obj in t:
                rel = prefix + str(obj.name)
                if obj.type == ObjectType.TREE:
                    if rel.count("/") < 2:  # the layout is at most three levels deep
                        sub = self._repo[obj.id]
                        assert isinstance(sub, pygit2.Tree)
                        todo.append((rel + "/", sub))
                elif obj.filemode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE) and wanted(rel):
                    yield rel, self._repo[obj.id]

    def _export_all(self, tree: pygit2.Tree) -> None:
        keep: set[str] = set()
        for rel, blob in self._blobs(tree):
            self._write_file(rel, blob)
            keep.add(rel)
        for root, dirs, files in os.walk(self.export):
            for f in files:
                rel = Path(root, f).relative_to(self.export).as_posix()
                if wanted(rel) and rel not in keep:
                    self._remove_file(rel)

    def _export_diff(self, old: pygit2.Tree, new: pygit2.Tree) -> None:
        diff = old.diff_to_tree(new)
        for delta in diff.deltas:
            if delta.status in (DeltaStatus.DELETED, DeltaStatus.RENAMED) and wanted(delta.old_file.path):
                self._remove_file(delta.old_file.path)
            rel = delta.new_file.path
            if delta.status != DeltaStatus.DELETED and wanted(rel):
                if delta.new_file.mode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE):
                    self._write_file(rel, self._repo[delta.new_file.id])
                else:
                    self._remove_file(rel)

    def sweep(self) -> int:
        """Remove the temporary files of writes a killed process left (``.NAME.XXXXXXXX.tmp`` of
        ``atomic_write``) from the export and the state folder; the caller holds the write lock,
        so no write is under way. Returns how many were removed."""
        removed = 0
        todo = [self.export, self.state]
        while todo:
            d = todo.pop()
            try:
                entries = list(os.scandir(d))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if d != self.state:  # the state folder's subfolders are the export (walked) and nothing else
                        todo.append(Path(e.path))
                elif _LEFT_TEMP.match(e.name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)
                        removed += 1
        return removed

    def sync_export(self) -> str:
        """Bring the export folder to the branch tip (the caller holds the write lock); returns the tip."""
        tip = self.tip()
        marker = self._marker()
        if marker.get("commit") == tip and marker.get("api") == self.public_url and (self.export / CONFIG).is_file():
            self._tip = tip
            return tip
        with self._git_mutex:
            new = self._repo[tip].peel(pygit2.Commit).tree
            old_tree: pygit2.Tree | None = None
            old = marker.get("commit")
            if isinstance(old, str) and marker.get("api") == self.public_url:
                with contextlib.suppress(KeyError, ValueError, pygit2.GitError):
                    old_tree = self._repo[old].peel(pygit2.Commit).tree
            try:
                if new["config.json"].type != ObjectType.BLOB:
                    raise KeyError
            except KeyError:
                raise IndexStoreError(f"{self.gitdir}: the tip of {self._branch} has no config.json; not an index") from None
            self.export.mkdir(parents=True, exist_ok=True)
            if old_tree is not None:
                self._export_diff(old_tree, new)
            else:
                self._export_all(new)
        atomic_write(self.export / MARKER, json.dumps({"commit": tip, "api": self.public_url}) + "\n")
        self._tip = tip
        return tip

    def refresh_if_moved(self, *, force: bool = False) -> None:
        """On a read: at most once per ``refresh`` seconds, export the tip if the branch moved.

        Never waits for a writer: while the write lock is held, the files as they are are
        served (the writer exports when it is done).
        """
        now = time.monotonic()
        if not force and now - self._checked < self.refresh:
            return
        self._checked = now
        try:
            tip = self.tip()
        except IndexStoreError:
            return
        if tip == self._tip:
            return
        marker = self._marker()
        if marker.get("commit") == tip and marker.get("api") == self.public_url:
            self._tip = tip  # another process exported it
            return
        if not self._mutex.acquire(blocking=False):
            return
        try:
            with file_lock(self.state / "registry.lock", timeout=0):
                self.sync_export()
        except LockTimeout:
            pass
        except IndexStoreError as e:  # a commit from outside that is no index: keep serving the last good export
            self.settings.reporter.warning(f"not exported: {e}")
            log.warning("the tip of the index is not exported: %s", e)
        finally:
            self._mutex.release()

    # -- reading -----------------------------------------------------------------------------

    def read_file(self, rel: str) -> FileBody | None:
        """The exported file at layout path ``rel`` with its ETag; None when there is none."""
        if not wanted(rel):
            return None
        self.refresh_if_moved()
        try:
            fd = os.open(self.export / rel, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            data = f.read(limit_of(rel)[0] + 1)
        key = (st.st_ino, st.st_mtime_ns, st.st_size, rel)
        etag = self._etags.get(key)
        if etag is None or len(data) != st.st_size:
            etag = blob_id(data)
            if len(data) == st.st_size:
                if len(self._etags) > 100_000:
                    self._etags.clear()
                self._etags[key] = etag
        return FileBody(data, f'"{etag}"')

    def view(self) -> FolderIndex:
        """A reader of the exported folder (memoised per exported commit)."""
        self.refresh_if_moved()
        tip = self._tip
        view = self._view
        if view is None or tip != self._view_tip:
            view = FolderIndex(self.export, name="registry")
            self._view, self._view_tip = view, tip
        return view

    def entries(self, name: str) -> list[IndexEntry]:
        if not valid_name(name):
            return []
        return self.view().entries(name)

    def summaries(self) -> list[ComponentSummary]:
        return self.view().summaries()

    def has_component(self, name: str) -> bool:
        return valid_name(name) and (self.export / entry_path(name)).is_file()

    def known_dependency(self, dep: Mapping[str, Any]) -> bool:
        """Whether a dependency of a line can be met from this index (or needs no index)."""
        name = str(dep.get("name", "")).lower()
        if name.startswith("__") or dep.get("git"):
            return True
        if self.has_component(name):
            return True
        tags = dep.get("tags")
        if isinstance(tags, str):
            tags = [t for t in tags.split(",") if t]
        if isinstance(tags, list) and tags:
            want = {str(t).lower() for t in tags}
            return any(want <= s.tags for s in self.summaries())
        return False


def checked_entry(line: Mapping[str, Any]) -> IndexEntry:
    """The line as a reader would take it (IndexDataError when a reader would skip it)."""
    name = line.get("name")
    if not isinstance(name, str) or not valid_name(name):
        raise IndexDataError(f"name {json.dumps(name)[:80]} is not a valid component name "
                             "(lower-case letters, digits and ._- ending in a letter or digit, at most 64 characters, "
                             "not a Windows device name)")
    try:
        text = json.dumps(dict(line), separators=(",", ":"))
    except (ValueError, TypeError, RecursionError) as e:
        raise IndexDataError(f"the line cannot be written as JSON ({type(e).__name__})") from None
    return IndexEntry.from_line(text, name=name)


__all__ = ["IndexStore", "IndexStoreError", "FileBody", "checked_entry", "blob_id", "wanted", "IndexReadError"]
