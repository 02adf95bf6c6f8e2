"""ckpm-registry: a registry service over a git index (FastAPI + uvicorn).

Reads are the index's own files (format 1: ``config.json``, ``summary.jsonl``, one file per
component), kept as plain files in an exported folder that any static server can serve too.
Writes (publish, yank, unyank) go through :mod:`ckpm.index.gitwriter`, one at a time under a
file lock. See docs/registry.md.
"""
from __future__ import annotations

__all__ = ["create_app", "RegistryConfig"]


def __getattr__(name: str) -> object:  # lazy: `ckpm-registry token add` needs no web framework
    if name in ("create_app", "RegistryConfig"):
        from ckpm_registry import app

        return getattr(app, name)
    raise AttributeError(name)
