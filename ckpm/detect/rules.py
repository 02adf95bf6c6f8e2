"""Detection rules gathered from an index: component name → the ``detect`` rules of its entries.

Duck-typed over :class:`ckpm.index.Index` (``summaries()``, ``entries(name)``), so that
this package does not import the index clients.
"""
from __future__ import annotations

import json
from typing import Any, Mapping


def rules_from_index(index: Any) -> dict[str, list[Mapping[str, Any]]]:
    """Every component that declares ``detect`` rules, with the union of its versions' rules
    (newest version's first, duplicates dropped), sorted by name."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for summary in sorted(index.summaries(), key=lambda s: s.name):
        rules = rules_of_entries(index.entries(summary.name))
        if rules:
            out[summary.name] = rules
    return out


def rules_of_entries(entries: Any) -> list[Mapping[str, Any]]:
    """The union of the ``detect`` rules of one component's entries, newest first, no duplicates."""
    rules: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for entry in reversed(list(entries)):
        for rule in getattr(entry, "detect", ()) or ():
            key = json.dumps(rule, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                rules.append(dict(rule))
    return rules
