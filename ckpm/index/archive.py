"""The ``cksum`` of a published version: sha256 of a reproducible archive of its tree.

``ckpm publish`` records, for a version published from a git tag, ``cksum =
"sha256:" + sha256(<the ckpm archive of the tree>)``. The archive (docs/formats.md,
"The cksum of a published version") is a tar file that anyone can rebuild from the
commit with git and a few lines of Python, byte for byte:

- its members are the **files and symbolic links** of the tree (at ``subdir`` when the
  component lives in a sub-folder; paths are then relative to it), **sorted by path**
  (the UTF-8 bytes of the ``/``-separated path); no directory members, no submodules
  (a git tree never holds an empty folder, and a submodule's content is not the tree's);
- every header is written by Python's ``tarfile`` in ``PAX_FORMAT`` with ``encoding="utf-8"``
  (a plain ustar header unless a path is long or not ASCII), with ``mtime = 0``,
  ``uid = gid = 0``, ``uname = gname = ""``, mode ``0o755`` for an executable file, ``0o644``
  for any other file and ``0o777`` for a link (whose target is its ``linkname``);
- the archive ends as ``tarfile`` ends one (two zero blocks, padded to 10,240 bytes);
  it is not compressed.

:func:`files_cksum` is that recipe; :func:`tree_cksum_of` feeds it a git tree without a
checkout, :func:`directory_cksum` a folder (a checkout or an export of the commit, ``.git``
left out). The hash is computed while the archive is written, so nothing of it is kept.
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import pygit2
from pygit2.enums import FileMode, ObjectType

from ckpm.errors import CkpmError
from ckpm.fsutil import walk_tree

ARCHIVE_FORMAT = 1
MAX_FILES = 200_000
MAX_BYTES = 8 << 30

# a member: (path, kind, data) with kind "file", "exec" or "link" (data: the link's target)
Member = tuple[str, str, bytes]


class ArchiveError(CkpmError):
    """A tree that cannot be archived (too large, a path or link that is not UTF-8)."""

    code = "archive"


class _HashSink(io.RawIOBase):
    """A write-only file that hashes what it is given and counts it (``tell`` for tarfile)."""

    def __init__(self) -> None:
        super().__init__()
        self.h = hashlib.sha256()
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.h.update(data)
        self.n += len(data)
        return len(data)

    def tell(self) -> int:
        return self.n


def files_cksum(members: Iterable[Member]) -> str:
    """``"sha256:" + hex``: the sha256 of the ckpm archive of ``members`` (sorted here)."""
    sink = _HashSink()
    ordered = sorted(members, key=lambda m: m[0].encode("utf-8"))
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:  # type: ignore[call-overload]
        for path, kind, data in ordered:
            ti = tarfile.TarInfo(path)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
            if kind == "link":
                ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, data.decode("utf-8")
                tf.addfile(ti)
            else:
                ti.mode, ti.size = (0o755 if kind == "exec" else 0o644), len(data)
                tf.addfile(ti, io.BytesIO(data))
    return "sha256:" + sink.h.hexdigest()


def _tree_members(repo: pygit2.Repository, top: pygit2.Tree, top_prefix: str, budget: list[int]) -> Iterator[Member]:
    """Every file and link of ``top`` (an explicit stack of folders: no recursion, whatever the depth)."""
    stack: list[tuple[pygit2.Tree, str]] = [(top, top_prefix)]
    while stack:
        tree, prefix = stack.pop()
        yield from _folder_members(repo, tree, prefix, budget, stack)


def _folder_members(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, budget: list[int],
                    stack: list[tuple[pygit2.Tree, str]]) -> Iterator[Member]:
    for entry in tree:
        name = entry.name
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise ArchiveError(f"a tree entry named {name!r} cannot be archived")
        path = f"{prefix}{name}"
        mode = entry.filemode
        if mode == FileMode.TREE:
            sub = repo[entry.id]
            assert isinstance(sub, pygit2.Tree)
            stack.append((sub, path + "/"))
            continue
        if mode == FileMode.COMMIT:  # a submodule: its content is not part of this tree
            continue
        budget[0] -= 1
        if budget[0] < 0:
            raise ArchiveError(f"the tree has more than {MAX_FILES:,} files")
        blob = repo[entry.id]
        assert isinstance(blob, pygit2.Blob)
        budget[1] -= blob.size
        if budget[1] < 0:
            raise ArchiveError(f"the tree is larger than {MAX_BYTES:,} bytes")
        data = bytes(blob.data)
        if mode == FileMode.LINK:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise ArchiveError(f"link {path} has a target that is not UTF-8") from None
            yield path, "link", data
        else:
            yield path, "exec" if mode == FileMode.BLOB_EXECUTABLE else "file", data


def tree_cksum_of(repo: pygit2.Repository, commit: str, subdir: str | None = None) -> str:
    """The cksum of ``commit``'s tree (at ``subdir``), read from the object store (no checkout)."""
    obj = repo.get(commit)
    if not isinstance(obj, pygit2.Commit):
        raise ArchiveError(f"{commit} is not a commit of {repo.path}")
    tree: Any = obj.tree
    if subdir:
        try:
            tree = obj.tree[subdir]
        except KeyError:
            raise ArchiveError(f"commit {commit[:12]} has no folder {subdir}") from None
        if tree.type != ObjectType.TREE:
            raise ArchiveError(f"{subdir} at commit {commit[:12]} is not a folder")
        tree = repo[tree.id]
    return files_cksum(_tree_members(repo, tree, "", [MAX_FILES, MAX_BYTES]))


def directory_cksum(root: Path | str) -> str:
    """The cksum of a folder holding the tree (a checkout or an export; ``.git`` is left out).

    An executable file is one with any execute bit; a folder with no file is not seen
    (as git does not keep one).
    """
    root = Path(root)
    members: list[Member] = []
    for dirpath, dirnames, filenames in walk_tree(root):  # iterative: a tree may be deep
        dirnames[:] = [d for d in dirnames if not (d == ".git" and Path(dirpath) == root)]
        for name in list(dirnames) + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                members.append((rel, "link", os.readlink(p).encode("utf-8")))
                if name in dirnames:
                    dirnames.remove(name)
            elif stat.S_ISREG(st.st_mode):
                members.append((rel, "exec" if st.st_mode & 0o111 else "file", p.read_bytes()))
    return files_cksum(members)
