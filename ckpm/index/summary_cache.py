"""The summaries of an index that publishes no summary.jsonl, kept between runs.

Format 1 does not require an index to publish ``summary.jsonl``; searching such an index
means reading every component file. The first search does that once and keeps one line
per component in the cache (``index-summary/<key>.jsonl``, ``<key>`` the cache key of the
index's URL), each with the key of the file it was read from: ``size:mtime_ns:inode``
for a folder, the blob id for a git index. The next search reads a file again only when
its key changed, and drops the lines of files that are gone, so an edit to the index is
seen at once and an unchanged index is never read again.

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

FORMAT = 2
#: a cache larger than this is not read (a summary.jsonl has the same cap, twice over for keys and messages)
MAX_CACHE_BYTES = 2 * MAX_SUMMARY_BYTES
#: messages kept per component (the reader reports the same ones on a cached run)
MAX_PROBLEMS = 21
_STR = frozenset((str,))


class Scanned(NamedTuple):
    """What a scan found in one component file."""

    key: str  # identifies the file's content (size:mtime_ns:inode, or a blob id)
    summary: ComponentSummary | None  # None: the file has no usable line
    problems: tuple[str, ...] = ()

    def to_line(self, name: str) -> str:
        """``[name, key, kind, tags, description, versions, problems]`` (kind … versions null
        when the file has no usable line): compact, so that a warm search parses little."""
        s = self.summary
        row = [name, self.key, None, None, None, None, list(self.problems[:MAX_PROBLEMS])]
        if s is not None:
            row[2:6] = [s.kind, sorted(s.tags), s.description, list(s.versions)]
        return json.dumps(row, separators=(",", ":"), ensure_ascii=False)


def cache_path(cache_root: Path, url: str) -> Path:
    """Where the scanned summaries of the index at ``url`` are kept."""
    return cache_root / "index-summary" / f"{cache_key(url)}.jsonl"


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
    body = [line for line in lines[1:] if line]
    try:  # one parse for the whole file; line by line (skipping bad ones) only if that fails
        rows = json.loads("[" + ",".join(body) + "]")
    except (ValueError, RecursionError):
        rows = []
        for line in body:
            try:
                rows.append(json.loads(line))
            except (ValueError, RecursionError):
                continue
    out: dict[str, Scanned] = {}
    for row in rows:
        if type(row) is not list or len(row) != 7:
            continue
        name, key, kind, tags, description, versions, problems = row
        if type(name) is not str or type(key) is not str or type(problems) is not list:
            continue
        # the lines were checked as the reader checks summary lines when the scan wrote them;
        # here only their shape is (a third of the cost: a warm search reads 10,000 of them)
        if kind is None and tags is None and description is None and versions is None:
            summary = None
        elif (type(kind) is str and type(description) is str and type(tags) is list
              and set(map(type, tags)) <= _STR and type(versions) is list and set(map(type, versions)) <= _STR):
            summary = ComponentSummary.of(name, kind, frozenset(tags), description, tuple(versions))
        else:
            continue  # a miss: that file is read again
        out[name] = Scanned(key, summary, tuple(map(str, problems[:MAX_PROBLEMS])) if problems else ())
    return out


def save(path: Path, url: str, items: dict[str, Scanned]) -> None:
    """Write the scan (atomically); a cache that cannot be written is only a slower next run."""
    head = json.dumps({"format": FORMAT, "index": url}, separators=(",", ":"), ensure_ascii=False)
    text = "\n".join([head, *(items[n].to_line(n) for n in sorted(items))]) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    except OSError:
        pass
