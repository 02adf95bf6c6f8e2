"""An index in a local folder (a path or ``file://`` URL)."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ckpm.errors import IndexReadError
from ckpm.index.base import FileIndex, layout_leaves, limit_of, size_error
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.model.entry import ComponentSummary, IndexDataError

if TYPE_CHECKING:
    from ckpm.report import Reporter


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: whether os.scandir lists an open descriptor (POSIX); each entry's stat is then relative to it
_SCANDIR_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")


def _read_upto(fd: int, size: int, most: int) -> bytes:
    """The bytes of ``fd`` up to its end, but never more than ``most``; ``size`` is what fstat
    said it holds. One read of that size (and one that sees the end), where a buffered
    ``read(most)`` would first allocate ``most`` bytes (8 MiB for a component file of 8 KiB).
    """
    parts = []
    got = 0
    want = min(size + 1, most)
    while got < most:
        chunk = os.read(fd, min(want, most - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
        want = 64 * 1024
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _file_key(st: os.stat_result) -> str:
    """The cache key of a file's content: ``size:mtime_ns:inode`` (docs/formats.md)."""
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


class FolderIndex(FileIndex):
    """Reads component files straight from a folder; memoises what it read.

    A file over its size cap is refused from its size on disk, before it is read, and
    never more than the cap (plus one byte) is read: memory stays bounded whatever the
    folder holds.
    """

    parallel_scan = True  # plain file reads: a forked child may read half of a cold scan

    def __init__(self, root: Path, *, name: str | None = None, url: str | None = None,
                 reporter: "Reporter | None" = None, cache_dir: Path | None = None) -> None:
        super().__init__(name or None, reporter=reporter)
        self.root = Path(root)
        if cache_dir is not None:
            from ckpm.index import summary_cache

            from ckpm.index import parsed_cache

            identity = str(self.root.resolve())
            self.summary_cache = (summary_cache.cache_path(cache_dir, identity), identity)
            self.parsed_cache = parsed_cache.cache_dir(cache_dir, identity)
        self._root_text = str(self.root)
        # str(self.root / rel) is this + rel for a layout path (normalised, relative): "" for "."
        self._prefix = str(self.root / "x")[:-1]
        self.url = url or str(self.root)
        self._check_config()  # a folder that is no index fails when opened

    def all_names(self) -> list[str]:
        """Every component that has a file at its layout path (walks the folder)."""
        return sorted(self._file_keys())

    def _file_keys(self) -> dict[str, str]:
        """Walks the folder (not into directories reached by symbolic links); the key is
        size:mtime_ns:inode of the file.

        Each folder is listed through an open descriptor where the platform allows it, so that
        the ``stat`` of each file looks up one name, not the whole path again (a fifth of the
        walk over 10,000 files)."""
        found: dict[str, str] = {}
        todo = [""]
        while todo:
            rel_dir = todo.pop()
            path = os.path.join(self._root_text, rel_dir)
            fd = -1
            try:
                if _SCANDIR_FD:
                    # below the root, a folder swapped for a link since it was listed is not followed
                    fd = os.open(path, _DIR_FLAGS | (_NOFOLLOW if rel_dir else 0))
                files: dict[str, os.DirEntry[str]] = {}
                with os.scandir(fd if fd >= 0 else path) as it:
                    for d in it:
                        if d.is_dir(follow_symlinks=False):
                            todo.append(f"{rel_dir}{d.name}/")
                        elif d.is_file():
                            files[d.name] = d
                for leaf in layout_leaves(rel_dir, list(files)) if files else ():
                    st = files[leaf].stat()
                    found[leaf] = _file_key(st)
            except OSError:
                continue
            finally:
                if fd >= 0:
                    os.close(fd)
        return found

    def _read(self, rel: str) -> str | None:
        limit, what = limit_of(rel)
        path = self._prefix + rel  # str(self.root / rel), without pathlib's cost
        try:
            # O_NONBLOCK: a named pipe (or device) at a layout path must not hang the read;
            # anything but a regular file is refused from its fstat, before a byte is read
            fd = os.open(path, _OPEN_FLAGS)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise IndexDataError(f"{self._where(rel)}: not a regular file; refused")
                if st.st_size > limit:
                    raise size_error(self._where(rel), f"{st.st_size:,} bytes", limit, what)
                data = _read_upto(fd, st.st_size, limit + 1)
            finally:
                os.close(fd)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as e:
            raise IndexReadError(f"{self._where(rel)}: cannot read ({e.strerror or e})") from None
        if len(data) > limit:  # it grew since fstat
            raise size_error(self._where(rel), f"more than {limit:,} bytes", limit, what)
        return self._decode(data, rel)

    def _content_key(self, rel: str) -> str | None:
        """The file's ``size:mtime_ns:inode`` (links followed, as a read follows them); None when it
        is not a regular file (the read says what is wrong)."""
        try:
            st = os.stat(self._prefix + rel)
        except (OSError, ValueError):
            return None
        return _file_key(st) if stat.S_ISREG(st.st_mode) else None

    def _summary_key(self) -> str | None:
        """summary.jsonl's ``size:mtime_ns:inode`` (as a component file's), None when it is not a regular file."""
        try:
            st = os.stat(self._prefix + SUMMARY)
        except OSError:
            return None
        return _file_key(st) if stat.S_ISREG(st.st_mode) else None

    def _has_file(self, rel: str) -> bool:
        return os.path.isfile(os.path.join(self._root_text, rel))

    def _drop_stale(self, items: list[ComponentSummary]) -> list[ComponentSummary]:
        """The summary lines whose component file is there, from one listing per layout folder
        (a summary of 10,000 components lives in far fewer folders) instead of a ``stat`` per
        line; a file counts as :meth:`_has_file` counts it (a regular file, links followed)."""
        rels = [entry_path(s.name) for s in items]
        present: set[str] = set()
        for folder in {rel.rpartition("/")[0] for rel in rels}:
            try:
                with os.scandir(os.path.join(self._root_text, folder)) as it:
                    present.update(f"{folder}/{e.name}" for e in it if e.is_file())
            except OSError:
                continue
        return self._keep_present(items, [rel in present for rel in rels])

    def _where(self, rel: str) -> str:
        return self._prefix + rel

    def _default_name(self) -> str:
        return self.root.name

    def _not_an_index(self) -> IndexReadError:
        return IndexReadError(f"{self.url}: not an index (no {CONFIG})",
                           hint="an index folder has config.json and one file per component; see docs/formats.md")

