"""The file layout of index format 1 (docs/formats.md): where a component's file lives."""
from __future__ import annotations

from ckpm.model.entry import valid_name

CONFIG = "config.json"
SUMMARY = "summary.jsonl"  # optional: one line per component, for search and tag queries


def entry_path(name: str) -> str:
    """Relative path of the file holding ``name``'s versions (``li/b-/lib-x``)."""
    n = name.lower()
    if not valid_name(n):
        raise ValueError(f"not a valid component name: {name!r}")
    if len(n) == 1:
        return f"1/{n}"
    if len(n) == 2:
        return f"2/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"
