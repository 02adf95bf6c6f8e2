"""The Index protocol that every client implements, and the factory that picks one."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Protocol, runtime_checkable

from ckpm.model.entry import ComponentSummary, IndexEntry


@runtime_checkable
class Index(Protocol):
    """A registry of components. Reads are lazy and memoised per instance."""

    name: str
    url: str

    def entries(self, name: str) -> list[IndexEntry]:
        """Every published version of ``name``, oldest first; [] when unknown."""
        ...

    def summaries(self) -> list[ComponentSummary]:
        """One summary per component (for search, tag queries and suggestions)."""
        ...

    def revision(self) -> str | None:
        """A commit or content revision that identifies this state of the index, if any."""
        ...


def parse_lines(text: str, origin: str) -> list[IndexEntry]:
    """Parse an index file's JSON lines; a bad line raises IndexError_ naming file and line."""
    from ckpm.errors import IndexError_

    out: list[IndexEntry] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(IndexEntry.from_line(line))
        except (ValueError, KeyError, TypeError) as e:
            raise IndexError_(f"{origin}:{no}: malformed index line ({e})") from None
    return out


def parse_summary(text: str) -> list[ComponentSummary]:
    return [ComponentSummary.from_json(json.loads(line)) for line in text.splitlines() if line.strip()]


def embedded_index_path() -> Path:
    """The default index shipped with ckpm (``index/`` beside the package)."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "index", here / "_index"):
        if (cand / "config.json").is_file():
            return cand
    return here.parent / "index"


EMBEDDED = "embedded"


def open_index(url: str | None, *, name: str | None = None, cache_dir: Path | None = None, offline: bool = False) -> Index:
    """Open the index at ``url`` (None or ``embedded``: the default index that ships with ckpm)."""
    from ckpm.index.folder import FolderIndex

    if url is None or url == EMBEDDED:
        return FolderIndex(embedded_index_path(), name=name or "default", url=EMBEDDED)
    if url.startswith("git+"):
        from ckpm.index.git import GitIndex

        return GitIndex(url, name=name, cache_dir=cache_dir, offline=offline)
    if url.startswith(("http://", "https://")):
        from ckpm.index.http import HttpIndex

        return HttpIndex(url, name=name, cache_dir=cache_dir, offline=offline)
    path = Path(url[len("file://"):]) if url.startswith("file://") else Path(url)
    return FolderIndex(path, name=name, url=url)


def summaries_from_entries(groups: Iterable[list[IndexEntry]]) -> list[ComponentSummary]:
    return [ComponentSummary.from_entries(g) for g in groups if g]
