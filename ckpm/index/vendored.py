"""Index lines in a vendored folder: written as the index served them, read back as an index's own.

``ckpm vendor`` writes the lines of every locked package that comes from an index
(:func:`write_lines`): the index's ``config.json`` and each component's file, byte for byte as
the index client read them (the cached clone of a git index, the cached responses of an HTTP
index), at their layout paths, so that the folder is an index folder of format 1 holding only
those components. It is written beside its final place and renamed into it.

A lock check that cannot read a line from the index itself (offline and not cached, or the
index unreachable) reads it from there (:func:`read_line`), through :class:`FolderIndex`: the
same size caps, the same line checks (:mod:`ckpm.model.entry`), a file that is not a regular
file refused. A damaged line is an error here, never skipped in silence: the caller then has
no line, and the package is not verified.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from ckpm.errors import IndexReadError
from ckpm.index.base import FileIndex, Index
from ckpm.index.folder import FolderIndex
from ckpm.index.layout import CONFIG, entry_path
from ckpm.model.entry import IndexDataError, IndexEntry


def write_lines(dest: Path, idx: Index, names: Iterable[str]) -> dict[str, dict[str, object]]:
    """Write ``idx``'s config.json and the files of components ``names`` into the folder ``dest``
    (replaced atomically); returns ``{name: {"file", "sha256", "size"}}``. IndexReadError when the
    index cannot give a file (unreachable, refused, or no such component)."""
    if not isinstance(idx, FileIndex):
        raise IndexReadError(f"index {idx.name} ({idx.url}) is not read file by file; its lines cannot be vendored")
    texts: dict[str, str] = {}
    config = idx._read_file(CONFIG)
    if config is None:
        raise IndexReadError(f"index {idx.name} ({idx.url}) has no {CONFIG}")
    texts[CONFIG] = config
    out: dict[str, dict[str, object]] = {}
    for name in sorted(set(n.lower() for n in names)):
        rel = entry_path(name)
        text = idx._read_file(rel)
        if not text:
            raise IndexReadError(f"index {idx.name} ({idx.url}) has no file for {name}")
        texts[rel] = text
        data = text.encode("utf-8")
        out[name] = {"file": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    def build(tmp: Path) -> None:
        for rel, text in texts.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # built beside its place (a dot name: no index's folder starts with one), then swapped in
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        build(work / "new")
        if dest.exists():
            os.rename(dest, work / "old")
        os.rename(work / "new", dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def read_line(folder: Path, index: str, name: str, version: str) -> IndexEntry | None:
    """The line of ``name`` ``version`` in the vendored lines of index ``index`` at ``folder``
    (read as an index folder: caps and checks of :class:`FolderIndex`); None when the folder
    has no file for ``name`` or no line of that version. IndexDataError when the file is
    refused (over a cap, not a regular file, not UTF-8) or the line of ``version`` is damaged,
    naming the file and the line."""
    try:
        vendored = FolderIndex(folder, name=index, url=str(folder))
    except IndexReadError as e:
        raise IndexDataError(f"{folder}: the vendored lines of index {index} cannot be read: {e.message}") from None
    entries = vendored.entries(name)  # the whole file checked: a bad line is reported in warnings
    found = next((e for e in entries if e.version_text == version), None)
    if found is None and vendored.reporter.warnings:
        raise IndexDataError(f"the vendored line of {name} {version} is damaged: {vendored.reporter.warnings[0]}")
    return found
