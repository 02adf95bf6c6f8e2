"""The download cache: verified files by hash, partial downloads by URL, one lock per file.

Layout under the cache folder::

    downloads/sha256/<hex>          verified files (read-only; never modified in place)
    downloads/partial/<key>.part    a download in progress or interrupted, kept for resume
    downloads/locks/<key>.lock      one inter-process lock per file being fetched
    downloads/locks/use-<key>.lock  held shared by every command using a file (a sync builds from it)
    git-export/<commit>[-<hash>]    the tree of a git source at a commit (what a sync builds from)

**Presence means verified.** A file enters ``sha256/`` only by an atomic rename of a
temporary file whose bytes were hashed while they were written and matched (or, trusting on
first use, were named by their own hash); it is fsynced before the rename, so a crash cannot
leave a name without its bytes. A warm lookup is therefore one ``stat``: no re-hash of a
large archive on every ``ckpm sync``. (Whoever edits a cached file by hand breaks that
promise; the files are made read-only to make it hard to do by accident.)

A partial file is named by the sha256 of the URL it comes from, so a resume only ever
continues the bytes of the same URL.

**Cleaning** (:func:`clean`, ``ckpm cache clean``) removes verified files, partial files and
exported git trees, never one in use: it takes the same locks a sync takes (the fetch lock
of a file, its partial file's lock) and the file's use lock exclusively, without waiting;
whatever is locked is skipped and reported. A sync refreshes the time of each file it uses,
so ``older_than`` means "not used for that long".
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

#: the mode of a verified file (less the umask): nobody should write to it
FILE_MODE = 0o444


def url_key(url: str) -> str:
    """The name of a URL's partial file: the hex sha256 of the URL."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class DownloadCache:
    """Paths of the download cache under ``root`` (the ckpm cache folder)."""

    root: Path

    @property
    def base(self) -> Path:
        return self.root / "downloads"

    def file(self, sha256: str) -> Path:
        """Where the verified file of ``sha256`` (lowercase hex) lives."""
        return self.base / "sha256" / sha256

    def lookup(self, sha256: str) -> Path | None:
        """The verified file of ``sha256`` if it is cached (one stat, no hashing)."""
        path = self.file(sha256)
        try:
            st = os.stat(path)
        except OSError:
            return None
        return path if stat.S_ISREG(st.st_mode) else None

    def partial(self, url: str) -> Path:
        """The partial file of a download from ``url``."""
        return self.base / "partial" / f"{url_key(url)}.part"

    def lock(self, key: str) -> Path:
        """The lock file that serialises fetching ``key`` (a hash, or a URL key)."""
        return self.base / "locks" / f"{key}.lock"

    def use_lock(self, key: str) -> Path:
        """The lock a command holds shared while it uses the cached file or tree ``key`` (a
        sha256, or ``git-<name>`` of an exported tree): :func:`clean` skips it meanwhile."""
        return self.base / "locks" / f"use-{key}.lock"

    def temp_dir(self) -> Path:
        """Where temporary files are made (on the same file system as the verified files)."""
        path = self.base / "partial"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def store(self, temp: Path, sha256: str, *, like: int | None = None) -> Path:
        """Move the verified temporary file ``temp`` into place as ``sha256`` (atomic rename).
        Its mode is :data:`FILE_MODE` less the umask; ``like``, the mode of a local file it
        was copied from, takes away the group and other read bits that file lacks (a private
        file never becomes readable by others)."""
        dest = self.file(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        from ckpm.fsutil import current_umask

        mode = FILE_MODE & ~current_umask()
        if like is not None:
            mode &= (like & 0o044) | 0o400
        os.chmod(temp, mode)
        os.replace(temp, dest)
        return dest


# -- what the cache holds, and cleaning it ------------------------------------------------------

#: the areas of the cache folder ``ckpm cache ls`` reports, and which ``clean`` may empty
AREAS: tuple[tuple[str, str, str], ...] = (
    # (name, folder under the cache root, what it holds)
    ("downloads", "downloads/sha256", "verified downloads (archives, data sets, models)"),
    ("partial", "downloads/partial", "interrupted downloads, kept to resume"),
    ("git-export", "git-export", "trees of git sources at a commit"),
    ("git", "git", "mirrors of git components (kept: cleaned by nothing)"),
    ("index-git", "index-git", "clones of git indexes (kept)"),
    ("index-http", "index-http", "files of HTTP indexes (kept)"),
)
#: the areas ``clean`` empties (``downloads_only``: the first two)
CLEANABLE = ("downloads", "partial", "git-export")


@dataclass(frozen=True)
class CacheItem:
    """One entry of a cleanable area: a file or a tree, its size in bytes and last use."""

    area: str
    path: Path
    size: int
    mtime: float


@dataclass(frozen=True)
class AreaUsage:
    """One area of the cache folder: how many entries and bytes it holds."""

    name: str
    path: Path
    what: str
    entries: int
    size: int


@dataclass
class CleanResult:
    """What :func:`clean` removed (or would), and what it skipped because it was in use."""

    removed: list[CacheItem]
    in_use: list[CacheItem]
    dry_run: bool = False

    @property
    def freed(self) -> int:
        return sum(i.size for i in self.removed)


def _size(path: Path) -> int:
    """Bytes of a file, or of the files under a folder (symlinks not followed), without recursion."""
    from ckpm.fsutil import walk_tree

    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    total = 0
    for folder, dirs, files in walk_tree(path):
        for n in files:
            try:
                total += os.lstat(os.path.join(folder, n)).st_size
            except OSError:
                pass
    return total


def _entries(root: Path, area: str) -> list[CacheItem]:
    """The entries of one area (files of downloads and partial, one tree per git export)."""
    rel = dict((a, r) for a, r, _ in AREAS)[area]
    folder = root / rel
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    out = []
    for n in names:
        if n.startswith(".") or n.endswith(".lock"):
            continue  # a temporary file being written, a lock
        p = folder / n
        try:
            st = os.lstat(p)
        except OSError:
            continue
        out.append(CacheItem(area, p, _size(p), st.st_mtime))
    return out


def usage(root: Path) -> list[AreaUsage]:
    """Every area of the cache folder ``root`` with its entries and bytes."""
    out = []
    for name, rel, what in AREAS:
        folder = root / rel
        if name in CLEANABLE:
            items = _entries(root, name)
            out.append(AreaUsage(name, folder, what, len(items), sum(i.size for i in items)))
        else:
            try:
                n = len([x for x in os.listdir(folder) if not x.startswith(".")])
            except OSError:
                n = 0
            out.append(AreaUsage(name, folder, what, n, _size(folder)))
    return out


def items(root: Path, *, downloads_only: bool = False) -> list[CacheItem]:
    """The entries :func:`clean` would look at."""
    areas = CLEANABLE[:2] if downloads_only else CLEANABLE
    return [i for a in areas for i in _entries(root, a)]


def clean(root: Path, *, downloads_only: bool = False, older_than: float | None = None,
          dry_run: bool = False, now: float | None = None) -> CleanResult:
    """Remove the cleanable entries of the cache folder ``root`` (``downloads_only``: verified
    and partial downloads only), those not used for ``older_than`` seconds when given.
    An entry in use (one of its locks held) is skipped and listed in ``in_use``."""
    import time

    from ckpm.fsutil import LockTimeout, file_lock, remove_tree

    cache = DownloadCache(Path(root))
    t = time.time() if now is None else now
    result = CleanResult([], [], dry_run)
    for item in items(Path(root), downloads_only=downloads_only):
        if older_than is not None and t - item.mtime < older_than:
            continue
        if item.area == "downloads":
            locks = [cache.lock(item.path.name), cache.use_lock(item.path.name)]
        elif item.area == "partial":
            locks = [item.path.with_name(item.path.name + ".lock")]
        else:
            locks = [cache.use_lock(f"git-{item.path.name}")]
        try:
            with contextlib.ExitStack() as held:
                for lock in locks:
                    held.enter_context(file_lock(lock, timeout=0))
                if not dry_run:
                    remove_tree(item.path)
            result.removed.append(item)
        except LockTimeout:
            result.in_use.append(item)
    return result
