"""The store: safe unpacking (:mod:`ckpm.store.unpack`) and content-addressed prefixes (:mod:`ckpm.store.store`)."""
from __future__ import annotations

from typing import Any

_EXPORTS = {'STORE_ENV': 'ckpm.store.store', 'Store': 'ckpm.store.store', 'StoreEntry': 'ckpm.store.store', 'default_store_dir': 'ckpm.store.store', 'prefix_key': 'ckpm.store.store', 'UnpackBudget': 'ckpm.store.unpack', 'archive_kind': 'ckpm.store.unpack', 'unpack': 'ckpm.store.unpack'}


def __getattr__(name: str) -> Any:
    """Exports load their module on first use, so that a warm ``ckpm sync`` or ``ckpm run``
    that builds nothing imports only what it needs."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
