"""The readable source of ckpm's embedded default index (``index/`` at the repo root).

Each module returns ``{component name: [index line dicts]}``; ``tools/build_embedded_index.py``
writes them out in index format 1. Edit the tables here, never the files under
``index/``, then run the build script.
"""
from __future__ import annotations

from typing import Any

from . import data, demo, libs, ml, toolchains, tools
from ._helpers import sort_by_version

INDEX_NAME = "default"


def all_components() -> dict[str, list[dict[str, Any]]]:
    """Every component of the embedded index, each file's lines in ascending version order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for mod in (ml, toolchains, tools, libs, data, demo):
        for name, entries in mod.components().items():
            if name in out:
                raise ValueError(f"component {name} defined twice")
            out[name] = sort_by_version(entries)
    return dict(sorted(out.items()))
