"""Package exports that load their module on first use.

``ckpm.fetch`` and ``ckpm.store`` re-export a few names; importing the package must not import
everything (a warm ``ckpm sync`` or ``ckpm run`` fetches and builds nothing). This module is a
leaf: it imports nothing of ckpm.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds ``name`` in ``exports[name]`` (a module path) when first asked."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
