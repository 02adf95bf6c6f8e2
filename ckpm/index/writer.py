"""Write index folders: component files, config.json and the summary (atomic writes).

Used by publishing, by tests and benchmarks that build indexes, and by
``ckpm index reindex`` after files were edited by hand.

The writer never writes what the reader would refuse: every line is checked as the
reader checks it (:meth:`ckpm.model.entry.IndexEntry.from_line` with the file's name), so
an invalid name, a line of another component, a version that does not parse or data
over the limits raises :class:`~ckpm.model.entry.IndexDataError` and nothing is written.
Lines of ``summary.jsonl`` that the reader would skip are dropped when it is rewritten.
"""
from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ckpm.fsutil import atomic_write
from ckpm.errors import IndexReadError
from ckpm.index.base import check_text_size, parse_component, parse_summary_text, size_error
from ckpm.index.folder import FolderIndex
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.gcpause import paused_gc
from ckpm.model.entry import (
    MAX_FILE_BYTES, MAX_SUMMARY_BYTES, MAX_SUMMARY_LINE_BYTES, MAX_VERSIONS, ComponentSummary, IndexDataError,
    IndexEntry, check_summary, load_json_line, shown, utf8_len, valid_name,
)

if TYPE_CHECKING:
    from ckpm.report import Reporter


def init_index(root: Path, name: str = "default", api: str | None = None) -> None:
    """Create an empty index folder with its config.json (idempotent)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / CONFIG
    if not cfg.exists():
        atomic_write(cfg, json.dumps({"format": 1, "name": name, "api": api}, indent=2) + "\n")


def _name_of(e: Mapping[str, Any] | IndexEntry) -> str:
    name = e.name if isinstance(e, IndexEntry) else e.get("name")
    if not isinstance(name, str) or not valid_name(name):
        raise IndexDataError(f"name {shown(name)} is not a valid component name; nothing written")
    return name


def _checked_line(e: Mapping[str, Any] | IndexEntry, name: str, what: str) -> str:
    """The JSON line of ``e``, checked as the reader checks a line of ``name``'s file."""
    d = e.to_json() if isinstance(e, IndexEntry) else dict(e)
    line = json.dumps(d, separators=(",", ":"))
    try:
        IndexEntry.from_line(line, name=name)
    except IndexDataError as err:
        raise IndexDataError(f"{what}: {err.message}; nothing written") from None
    return line


def write_component(root: Path, entries: Iterable[Mapping[str, Any] | IndexEntry]) -> Path:
    """(Re)write the whole file of one component from its entries, oldest first.

    Every entry must carry the same valid name; raises IndexDataError otherwise.
    """
    lines: list[str] = []
    name: str | None = None
    for i, e in enumerate(entries, 1):
        if name is None:
            name = _name_of(e)
        if len(lines) >= MAX_VERSIONS:
            raise IndexDataError(f"{name}: more than {MAX_VERSIONS:,} versions; nothing written")
        lines.append(_checked_line(e, name, f"{name} entry {i}"))
    if name is None:
        raise ValueError("write_component needs at least one entry")
    p = Path(root) / entry_path(name)
    text = "\n".join(lines) + "\n"
    check_text_size(text, str(p), MAX_FILE_BYTES, "a component file")
    atomic_write(p, text)
    return p


def append_entry(root: Path, entry: Mapping[str, Any] | IndexEntry, *, update_summary: bool = True,
                 reporter: "Reporter | None" = None) -> Path:
    """Append one version line to a component's file (published lines are never rewritten)."""
    name = _name_of(entry)
    p = Path(root) / entry_path(name)
    text = appended_text(_read_text(p, MAX_FILE_BYTES, "a component file"), entry, str(p))
    atomic_write(p, text)
    if update_summary:
        update_summary_for(root, name, reporter=reporter)
    return p


def appended_text(old: str | None, entry: Mapping[str, Any] | IndexEntry, origin: str) -> str:
    """The text of a component file (``old``, None when new) with ``entry``'s line appended.

    The line is checked as the reader checks it; IndexDataError when it is invalid or the
    file would pass its caps (``origin`` names the file in the message).
    """
    name = _name_of(entry)
    version = entry.version_text if isinstance(entry, IndexEntry) else entry.get("version")
    line = _checked_line(entry, name, f"{name} {shown(version)}")
    old = old or ""
    if old and not old.endswith("\n"):
        old += "\n"
    if sum(1 for x in old.split("\n") if x.strip()) >= MAX_VERSIONS:
        raise IndexDataError(f"{origin}: already {MAX_VERSIONS:,} versions, the cap per component; nothing written")
    text = old + line + "\n"
    check_text_size(text, origin, MAX_FILE_BYTES, "a component file")
    return text


def _read_text(p: Path, limit: int, what: str) -> str | None:
    """The text of ``p`` (None when missing); IndexDataError when it is over ``limit`` bytes."""
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):  # a named pipe would block the read below
        raise IndexDataError(f"{p}: not a regular file; refused")
    size = st.st_size
    if size > limit:
        raise size_error(str(p), f"{size:,} bytes", limit, what)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise IndexDataError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start}); refused") from None


def _warner(reporter: "Reporter | None") -> Callable[[str], None]:
    return reporter.warning if reporter is not None else (lambda message: None)


def _read_summary(root: Path, warn: Callable[[str], None]) -> dict[str, ComponentSummary]:
    """The valid lines of ``summary.jsonl`` by name (bad lines reported and dropped)."""
    s = Path(root) / SUMMARY
    text = _read_text(s, MAX_SUMMARY_BYTES, "summary.jsonl")
    if text is None:
        return {}
    items, problems = parse_summary_text(text, str(s))
    for msg in problems:
        warn(msg.replace("; line skipped", "; dropped"))
    return {c.name: c for c in items}


def summary_line(c: ComponentSummary) -> str:
    """The line of ``summary.jsonl`` for ``c``, checked as the reader checks it (IndexDataError)."""
    line = json.dumps(c.to_json(), separators=(",", ":"))
    try:
        if utf8_len(line) > MAX_SUMMARY_LINE_BYTES:
            raise IndexDataError(f"line is {utf8_len(line):,} bytes long (at most {MAX_SUMMARY_LINE_BYTES:,})")
        check_summary(load_json_line(line))
    except IndexDataError as e:
        raise IndexDataError(f"summary of {shown(c.name)}: {e.message}; not written") from None
    return line


def _summary_text(items: dict[str, ComponentSummary], warn: Callable[[str], None], origin: str) -> str:
    """The text of ``summary.jsonl`` for ``items`` (lines the reader would refuse reported and left out)."""
    out = []
    for k in sorted(items):
        if items[k].name != k:
            raise IndexDataError(f"summary of {shown(k)} names {shown(items[k].name)}; not written")
        try:
            out.append(summary_line(items[k]) + "\n")
        except IndexDataError as e:
            warn(e.message)
    text = "".join(out)
    check_text_size(text, origin, MAX_SUMMARY_BYTES, "summary.jsonl")
    return text


def _write_summary(root: Path, items: dict[str, ComponentSummary], warn: Callable[[str], None]) -> int:
    """Write the lines of ``items`` that the reader would accept (others reported); returns how many."""
    text = _summary_text(items, warn, str(Path(root) / SUMMARY))
    atomic_write(Path(root) / SUMMARY, text)
    return text.count("\n")


def update_summary_for(root: Path, name: str, *, reporter: "Reporter | None" = None) -> None:
    """Refresh one component's line of ``summary.jsonl`` (from the valid lines of its file)."""
    if not valid_name(name):
        raise IndexDataError(f"name {shown(name)} is not a valid component name; summary not written")
    warn = _warner(reporter)
    items = _read_summary(root, warn)
    p = Path(root) / entry_path(name)
    _set_summary_item(items, name, _read_text(p, MAX_FILE_BYTES, "a component file"), str(p), warn)
    _write_summary(root, items, warn)


def _set_summary_item(items: dict[str, ComponentSummary], name: str, text: str | None, origin: str,
                      warn: Callable[[str], None]) -> None:
    entries: list[IndexEntry] = []
    if text is not None:
        entries, problems = parse_component(text, origin, name)
        for msg in problems:
            warn(msg)
    if entries:
        items[name] = ComponentSummary.from_entries(entries)
    else:
        items.pop(name, None)


def summary_text_with(old: str | None, name: str, component_text: str | None, *, origin: str = SUMMARY,
                      reporter: "Reporter | None" = None) -> str:
    """The text of ``summary.jsonl`` (``old``, None when there is none) with ``name``'s line
    made from ``component_text`` (its file's text; None or no valid line drops it)."""
    if not valid_name(name):
        raise IndexDataError(f"name {shown(name)} is not a valid component name; summary not written")
    warn = _warner(reporter)
    items: dict[str, ComponentSummary] = {}
    if old:
        parsed, problems = parse_summary_text(old, origin)
        for msg in problems:
            warn(msg.replace("; line skipped", "; dropped"))
        items = {c.name: c for c in parsed}
    _set_summary_item(items, name, component_text, entry_path(name), warn)
    return _summary_text(items, warn, origin)


def reindex(root: Path, *, reporter: "Reporter | None" = None) -> int:
    """Rebuild ``summary.jsonl`` from every component file; returns the component count.

    Only files at their layout path count; bad lines are skipped and files over their
    caps left out, each with a warning (to ``reporter``, if given).
    """
    idx = FolderIndex(Path(root), reporter=reporter)
    items = {}
    with paused_gc():
        for n in idx.all_names():  # one file at a time: nothing is memoised
            rel = entry_path(n)
            try:
                text = idx._read_file(rel)
                es, problems = parse_component(text or "", idx._where(rel), n)
            except IndexReadError as e:
                idx._warn(e.message)
                continue
            idx._warn_lines(problems, idx._where(rel))
            if es:
                items[n] = ComponentSummary.from_entries(es)
    return _write_summary(root, items, idx._warn)
