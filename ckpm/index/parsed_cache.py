"""Parsed component files, kept between runs in a compact binary form.

A lock reads a few hundred component files and parses and checks every line of each
(``parse_component``): on a conflict graph that was about a third of a lock's time. The
first read of a file keeps its entries in the cache, one file per component,
``index-parsed/<key>/<name>`` (``<key>`` the cache key of the index's identity, as for
``index-summary``), keyed by what identifies the file's content: ``size:mtime_ns:inode`` of
a folder's file, the blob id in a git index, the strong ETag of an HTTP index's file. The next
read of an unchanged file loads the entries with :mod:`marshal` (no JSON, no checks: they
were checked when they were kept) and rebuilds each :class:`IndexEntry` as the fast reader
builds it.

A cache file is ``marshal.dumps((FORMAT, name, key, crc32, payload))``, where ``payload``
is ``marshal.dumps((pairs, rows))``: the distinct usual dependencies of the file as
``(name, req)`` pairs, and one tuple per entry of its fields (:data:`FIELDS`) and the
positions of its dependencies among the pairs (None when one has another shape; those are
rebuilt from ``deps_raw``), so that each pair's Requirement is looked up once per file.
(Interning the strings before writing, so that marshal writes each once, made a warm read
12% cheaper and the first, writing read 2.2 times as dear: not kept.) Anything else is a
miss, never a wrong answer: a file that does not load, a tuple of another shape, another
format, name or key, a payload whose CRC-32 differs (a torn or damaged file), rows of the
wrong shape, a file over :data:`MAX_CACHE_BYTES`. A miss reads and parses the component
file, as without a cache, and writes the cache file again. Only files without problems
are kept (a skipped line is reported on every read), and only when their entries can be
written so (plain JSON data always can).

Bounded: at most one cache file per component file of an index, each at most
:data:`MAX_CACHE_BYTES`; writes are atomic (a temporary file renamed), never fsynced (a
torn file fails its CRC); a cache that cannot be written is only a slower next run.
"""
from __future__ import annotations

import itertools
import marshal
import os
from binascii import crc32
from pathlib import Path
from typing import Any

from ckpm.index.cache import cache_key
from ckpm.model.entry import MAX_FILE_BYTES, IndexEntry, deps_of_raw, parse_version, plain_dep

FORMAT = 2
#: a cache file larger than this is neither written nor read (a component file's own cap, twice over)
MAX_CACHE_BYTES = 2 * MAX_FILE_BYTES
#: the fields of an entry that a row keeps, in order (``version`` and ``deps`` are rebuilt)
FIELDS = ("name", "version_text", "kind", "tags", "description", "targets", "deps_raw", "source", "cksum",
          "detect", "install", "yanked", "pubtime", "raw")
_N = len(FIELDS)
_new = object.__new__
_tmp_count = itertools.count()


def cache_dir(cache_root: Path, identity: str) -> Path:
    """Where the parsed component files of the index identified by ``identity`` are kept."""
    return cache_root / "index-parsed" / cache_key(identity)


def load(folder: Path, name: str, key: str) -> list[IndexEntry] | None:
    """The entries kept for component ``name`` read from a file whose key is ``key``; None: a miss."""
    try:
        fd = os.open(os.path.join(folder, name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size > MAX_CACHE_BYTES:
            return None
        data = os.read(fd, size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        head = marshal.loads(data)
        if type(head) is not tuple or len(head) != 5:
            return None
        fmt, got_name, got_key, crc, payload = head
        if fmt != FORMAT or got_name != name or got_key != key or type(payload) is not bytes \
                or crc32(payload) != crc:
            return None
        pairs, rows = marshal.loads(payload)
        if type(rows) is not tuple or type(pairs) is not tuple:
            return None
        reqs = [plain_dep(n, r) for n, r in pairs]
        if any(r is None for r in reqs):
            return None
        seen: dict[Any, Any] = {}
        return [_entry(row, reqs, seen) for row in rows]
    except Exception:  # whatever damaged data makes marshal or the rebuild raise: a miss
        return None


def _entry(row: Any, reqs: list[Any], seen: dict[Any, Any]) -> IndexEntry:
    """The entry of one row, built as the fast reader builds it (``IndexEntry`` without its
    ``__init__``, ``version`` and ``deps`` set); raises on a row of the wrong shape.

    ``reqs`` holds the Requirement of each distinct usual dependency of the file, and a row the
    positions of its own (None: a dependency of another shape, read from ``deps_raw``);
    ``seen`` maps the positions of a list of dependencies to its tuple (versions share them)."""
    if type(row) is not tuple or len(row) != _N + 1:
        raise ValueError("a row of the wrong shape")
    d = dict(zip(FIELDS, row))
    if type(d["raw"]) is not dict or type(d["deps_raw"]) is not tuple or type(d["version_text"]) is not str:
        raise ValueError("a row of the wrong shape")
    d["version"] = parse_version(d["version_text"])
    at = row[_N]
    if at is None:
        d["deps"] = deps_of_raw(d["deps_raw"])
    else:
        deps = seen.get(at)
        if deps is None:
            deps = seen[at] = tuple([reqs[i] for i in at])
        d["deps"] = deps
    e = _new(IndexEntry)
    e.__dict__ = d
    return e


def _positions(deps_raw: Any, pairs: dict[tuple[str, str], int]) -> tuple[int, ...] | None:
    """The positions in ``pairs`` (extended) of the dependencies of the usual shape
    ``{"name": str, "req": str}``; None when one has another shape."""
    out = []
    for x in deps_raw:
        if type(x) is not dict or len(x) != 2:
            return None
        n, r = x.get("name"), x.get("req")
        if type(n) is not str or type(r) is not str:
            return None
        at = pairs.get((n, r))
        if at is None:
            at = pairs[(n, r)] = len(pairs)
        out.append(at)
    return tuple(out)


def save(folder: Path, name: str, key: str, entries: list[IndexEntry]) -> None:
    """Keep ``entries`` (all of component ``name``'s file, whose key is ``key``); nothing when
    they cannot be kept (a value marshal cannot write, over the cap, an unwritable cache)."""
    try:
        pairs: dict[tuple[str, str], int] = {}
        lists: dict[Any, Any] = {}  # equal lists of positions made one object (marshal writes it once)
        rows = []
        for e in entries:
            at = _positions(e.deps_raw, pairs)
            d = e.__dict__
            rows.append((*[d[f] for f in FIELDS], lists.setdefault(at, at)))
        payload = marshal.dumps((tuple(pairs), tuple(rows)))
        data = marshal.dumps((FORMAT, name, key, crc32(payload), payload))
    except (ValueError, KeyError):
        return
    if len(data) > MAX_CACHE_BYTES:
        return
    path = os.path.join(folder, name)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{next(_tmp_count)}.tmp")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
