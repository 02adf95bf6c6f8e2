"""The summaries of an index that publishes no summary.jsonl, kept between runs.

Format 1 does not require an index to publish ``summary.jsonl``; searching such an index
means reading every component file. The first search does that once and keeps one line
per component in the cache (``index-summary/<key>.jsonl``, ``<key>`` the cache key of the
index's URL), each with the key of the file it was read from: ``size:mtime_ns:inode``
for a folder, the blob id for a git index. The next search reads a file again only when
its key changed, and drops the lines of files that are gone, so an edit to the index is
seen at once and an unchanged index is never read again.

Most lines are tab-separated, ``name, key, kind, tags (comma-separated), description,
version, version, ...``: a warm search reads 10,000 of them, and a split per line costs a
third of a JSON parse, and the version strings are not made until a summary's versions are
read (:meth:`ComponentSummary.lazy`). A line that cannot be written so (a field holding a tab
or a line break, a tag holding a comma, a file with problems or no usable line) is a JSON
array, ``[name, key, kind, tags, description, versions, problems]``; a line starting with
``[`` is one of those (no component name starts so).

An index that does publish ``summary.jsonl`` has its parsed lines kept the same way, in
``index-summary/<key>.published.jsonl``: the lines in the file's order, each with the number
of lines as its key (so that a lost line makes the whole cache a miss), under a header that
names the file's own key. A search parses and checks 10,000 summary lines only when the file
changed (0.1 s); a file with bad lines is not kept (its warnings are said on every read).

The cache is ckpm's own (its lines were checked as the reader checks summary lines when
the scan wrote them), but it is read as data all the same: a line that does not parse or
has the wrong shape is a miss (that file is read again), and a cache over
:data:`MAX_CACHE_BYTES` is ignored. Writes are atomic; two processes
that scan at once write the same lines, and the last rename wins.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from ckpm.fsutil import atomic_write
from ckpm.index.cache import cache_key
from ckpm.model.entry import MAX_SUMMARY_BYTES, ComponentSummary

FORMAT = 3
#: a cache larger than this is not read (a summary.jsonl has the same cap, twice over for keys and messages)
MAX_CACHE_BYTES = 2 * MAX_SUMMARY_BYTES
#: messages kept per component (the reader reports the same ones on a cached run)
MAX_PROBLEMS = 21
_STR = frozenset((str,))


def _plain(text: str) -> bool:
    """Whether ``text`` can stand in a tab-separated line."""
    return "\t" not in text and "\n" not in text


class Scanned(NamedTuple):
    """What a scan found in one component file."""

    key: str  # identifies the file's content (size:mtime_ns:inode, or a blob id)
    summary: ComponentSummary | None  # None: the file has no usable line
    problems: tuple[str, ...] = ()

    def to_line(self, name: str) -> str:
        """The cache line of this file: tab-separated when every field allows it, else a JSON
        array ``[name, key, kind, tags, description, versions, problems]`` (kind … versions
        null when the file has no usable line)."""
        s = self.summary
        if s is not None and not self.problems:
            tags, versions = sorted(s.tags), list(s.versions)
            # read back as written: no field breaks the line or the split, no tag or version is
            # empty (it would vanish), no tag holds the comma that joins them
            if (all(map(_plain, (name, self.key, s.kind, s.description, *tags, *versions)))
                    and all(tags) and versions and all(versions) and not any("," in t for t in tags)
                    and not name.startswith("[")):
                return "\t".join([name, self.key, s.kind, ",".join(tags), s.description, *versions])
        row = [name, self.key, None, None, None, None, list(self.problems[:MAX_PROBLEMS])]
        if s is not None:
            row[2:6] = [s.kind, sorted(s.tags), s.description, list(s.versions)]
        return json.dumps(row, separators=(",", ":"), ensure_ascii=False)


def cache_path(cache_root: Path, url: str) -> Path:
    """Where the scanned summaries of the index at ``url`` are kept."""
    return cache_root / "index-summary" / f"{cache_key(url)}.jsonl"


def published_path(scan_path: Path) -> Path:
    """Where the parsed ``summary.jsonl`` of the index whose scan is kept at ``scan_path`` is kept."""
    return scan_path.with_name(scan_path.stem + ".published.jsonl")


def load(path: Path, url: str) -> dict[str, Scanned]:
    """The cached scan of the index at ``url`` ({} when there is none or it is unusable)."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_CACHE_BYTES:
                return {}
            data = f.read(MAX_CACHE_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    lines = text.split("\n")
    try:
        head = json.loads(lines[0])
    except ValueError:
        return {}
    if head != {"format": FORMAT, "index": url}:
        return {}
    out: dict[str, Scanned] = {}
    lazy, make = ComponentSummary.lazy, tuple.__new__
    tag_sets: dict[str, frozenset[str]] = {"": frozenset()}  # one set per distinct tag list, shared
    rare: list[str] = []
    # the lines were checked as the reader checks summary lines when the scan wrote them;
    # here only their shape is (a warm search reads 10,000 of them)
    for line in lines[1:]:
        if not line:
            continue
        if line[0] == "[":
            rare.append(line)
            continue
        parts = line.split("\t", 5)
        if len(parts) != 6:
            continue  # a miss: that file is read again
        name, key, kind, tags, description, versions = parts
        tag_set = tag_sets.get(tags)
        if tag_set is None:
            tag_set = tag_sets[tags] = frozenset(tags.split(","))
        out[name] = make(Scanned, (key, lazy(name, kind, tag_set, description, versions), ()))
    for row in _json_rows(rare):
        if type(row) is not list or len(row) != 7:
            continue
        name, key, kind, tags, description, versions, problems = row
        if type(name) is not str or type(key) is not str or type(problems) is not list:
            continue
        if kind is None and tags is None and description is None and versions is None:
            summary = None
        elif (type(kind) is str and type(description) is str and type(tags) is list
              and set(map(type, tags)) <= _STR and type(versions) is list and set(map(type, versions)) <= _STR):
            summary = ComponentSummary.of(name, kind, frozenset(tags), description, tuple(versions))
        else:
            continue
        out[name] = Scanned(key, summary, tuple(map(str, problems[:MAX_PROBLEMS])) if problems else ())
    return out


def _json_rows(lines: list[str]) -> list[object]:
    """The JSON lines parsed: in one parse, or line by line (skipping bad ones) if that fails."""
    if not lines:
        return []
    try:
        return list(json.loads("[" + ",".join(lines) + "]"))
    except (ValueError, RecursionError):
        pass
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except (ValueError, RecursionError):
            continue
    return rows


def save(path: Path, url: str, items: dict[str, Scanned], *, in_order: bool = False) -> None:
    """Write the scan (atomically); a cache that cannot be written is only a slower next run.
    Lines are sorted by name, or with ``in_order`` kept in the order of ``items``."""
    head = json.dumps({"format": FORMAT, "index": url}, separators=(",", ":"), ensure_ascii=False)
    names = list(items) if in_order else sorted(items)
    text = "\n".join([head, *(items[n].to_line(n) for n in names)]) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    except OSError:
        pass
