"""Write index folders: component files, config.json and the summary (atomic writes).

Used by publishing, by tests and benchmarks that build indexes, and by
``ckpm index reindex`` after files were edited by hand.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from ckpm.index.base import parse_lines
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.model.entry import ComponentSummary, IndexEntry


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def init_index(root: Path, name: str = "default", api: str | None = None) -> None:
    """Create an empty index folder with its config.json (idempotent)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / CONFIG
    if not cfg.exists():
        atomic_write(cfg, json.dumps({"format": 1, "name": name, "api": api}, indent=2) + "\n")


def write_component(root: Path, entries: Iterable[Mapping[str, Any] | IndexEntry]) -> Path:
    """(Re)write the whole file of one component from its entries, oldest first."""
    lines = []
    name = None
    for e in entries:
        d = e.to_json() if isinstance(e, IndexEntry) else dict(e)
        name = name or str(d["name"])
        lines.append(json.dumps(d, separators=(",", ":")))
    if name is None:
        raise ValueError("write_component needs at least one entry")
    p = Path(root) / entry_path(name)
    atomic_write(p, "\n".join(lines) + "\n")
    return p


def append_entry(root: Path, entry: Mapping[str, Any] | IndexEntry, *, update_summary: bool = True) -> Path:
    """Append one version line to a component's file (published lines are never rewritten)."""
    d = entry.to_json() if isinstance(entry, IndexEntry) else dict(entry)
    p = Path(root) / entry_path(str(d["name"]))
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    atomic_write(p, old + json.dumps(d, separators=(",", ":")) + "\n")
    if update_summary:
        update_summary_for(root, str(d["name"]))
    return p


def _read_summary(root: Path) -> dict[str, ComponentSummary]:
    s = Path(root) / SUMMARY
    out: dict[str, ComponentSummary] = {}
    if s.exists():
        for line in s.read_text(encoding="utf-8").splitlines():
            if line.strip():
                c = ComponentSummary.from_json(json.loads(line))
                out[c.name] = c
    return out


def _write_summary(root: Path, items: dict[str, ComponentSummary]) -> None:
    text = "".join(json.dumps(items[k].to_json(), separators=(",", ":")) + "\n" for k in sorted(items))
    atomic_write(Path(root) / SUMMARY, text)


def update_summary_for(root: Path, name: str) -> None:
    """Refresh one component's line of ``summary.jsonl``."""
    items = _read_summary(root)
    p = Path(root) / entry_path(name)
    entries = parse_lines(p.read_text(encoding="utf-8"), str(p)) if p.exists() else []
    if entries:
        items[name] = ComponentSummary.from_entries(entries)
    else:
        items.pop(name, None)
    _write_summary(root, items)


def reindex(root: Path) -> int:
    """Rebuild ``summary.jsonl`` from every component file; returns the component count."""
    from ckpm.index.folder import FolderIndex

    idx = FolderIndex(Path(root))
    items = {}
    for n in idx.all_names():
        es = idx.entries(n)
        if es:
            items[n] = ComponentSummary.from_entries(es)
    _write_summary(root, items)
    return len(items)
