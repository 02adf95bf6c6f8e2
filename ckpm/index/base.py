"""The Index protocol that every client implements, and the factory that picks one."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

from ckpm.errors import IndexError_
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.model.entry import ComponentSummary, IndexEntry, valid_name

SUPPORTED_FORMAT = 1


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


def layout_names(rel_paths: Iterable[str]) -> list[str]:
    """The component names whose files stand at their layout path among ``rel_paths``, sorted."""
    names = []
    for rel in rel_paths:
        leaf = rel.rsplit("/", 1)[-1]
        if valid_name(leaf) and leaf not in (CONFIG, SUMMARY) and entry_path(leaf) == rel:
            names.append(leaf)
    return sorted(names)


class FileIndex(ABC):
    """An index read file by file: name, config, entries and summaries, memoised per instance.

    Subclasses say how a file is read (:meth:`_read`), how it is named in messages
    (:meth:`_where`), and what to do without ``summary.jsonl`` (:meth:`_scan_summaries`).
    Nothing is read until the first use of :attr:`config`, :meth:`entries` or :meth:`summaries`.
    """

    url: str

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._config: dict[str, Any] | None = None
        self._entries: dict[str, list[IndexEntry]] = {}
        self._summaries: list[ComponentSummary] | None = None

    # -- what a subclass provides ---------------------------------------------------------

    @abstractmethod
    def _read(self, rel: str) -> str | None:
        """The text of the file at layout path ``rel``; None when the index has no such file."""

    @abstractmethod
    def _where(self, rel: str) -> str:
        """How messages name the file ``rel`` of this index (a path or URL)."""

    @abstractmethod
    def _default_name(self) -> str:
        """The name when neither the constructor nor config.json gives one."""

    @abstractmethod
    def _not_an_index(self) -> IndexError_:
        """The error for an index without config.json."""

    @abstractmethod
    def _scan_summaries(self) -> list[ComponentSummary]:
        """The summaries of an index that publishes no summary.jsonl."""

    # -- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name given to the constructor, else config.json's ``name`` (reads the index)."""
        if self._name is None:
            self._name = str(self.config.get("name") or self._default_name())
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def config(self) -> dict[str, Any]:
        """The parsed config.json of the index (read once; a missing one means this is no index)."""
        if self._config is None:
            text = self._read(CONFIG)
            if text is None:
                raise self._not_an_index()
            try:
                cfg = json.loads(text)
            except ValueError as e:
                raise IndexError_(f"{self._where(CONFIG)}: malformed {CONFIG} ({e})") from None
            if not isinstance(cfg, dict):
                raise IndexError_(f"{self._where(CONFIG)}: malformed {CONFIG} (not an object)")
            fmt = cfg.get("format", SUPPORTED_FORMAT)
            if not isinstance(fmt, int) or fmt > SUPPORTED_FORMAT:
                raise IndexError_(f"{self.url}: index format {fmt!r} is newer than this ckpm reads ({SUPPORTED_FORMAT})",
                                  hint="upgrade ckpm")
            self._config = cfg
        return self._config

    def revision(self) -> str | None:
        """None: this kind of index has no revision that names its whole state."""
        return None

    # -- reads ----------------------------------------------------------------------------

    def entries(self, name: str) -> list[IndexEntry]:
        """Every version of ``name``, oldest first; [] when the index has no such file."""
        n = name.lower()
        hit = self._entries.get(n)
        if hit is not None:
            return hit
        out: list[IndexEntry] = []
        if valid_name(n):
            self._check_config()  # a location that is no index fails here, not as "unknown component"
            rel = entry_path(n)
            text = self._read(rel)
            if text:
                out = parse_lines(text, self._where(rel))
        self._entries[n] = out
        return out

    def summaries(self) -> list[ComponentSummary]:
        """summary.jsonl when the index has one, else :meth:`_scan_summaries`."""
        if self._summaries is None:
            self._check_config()
            text = self._read(SUMMARY)
            if text is None:
                self._summaries = self._scan_summaries()
            else:
                try:
                    self._summaries = parse_summary(text)
                except (ValueError, KeyError, TypeError) as e:
                    raise IndexError_(f"{self._where(SUMMARY)}: malformed summary ({e})") from None
        return self._summaries

    # -- helpers for subclasses -----------------------------------------------------------

    def _check_config(self) -> None:
        self.config

    def _forget(self) -> None:
        """Drop what was read, so that the next reads see the index as it is now."""
        self._config = None
        self._entries.clear()
        self._summaries = None

    def _decode(self, data: bytes, rel: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise IndexError_(f"{self._where(rel)}: not UTF-8 text ({e.reason})") from None


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
