"""ckpm: a git-native package manager for research artifacts.

Kept tiny so that ``ckpm --version`` starts fast: the library is imported lazily.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def access(request: dict[str, Any]) -> dict[str, Any]:
    """The Collective Knowledge style entry point: ``{"action": ...}`` in, ``{"return": 0, ...}`` out."""
    from ckpm.access_api import access as _access

    return _access(request)
