"""The store: safe unpacking (:mod:`ckpm.store.unpack`) and content-addressed prefixes (:mod:`ckpm.store.store`)."""
from __future__ import annotations

from ckpm.lazy import lazy_exports

_EXPORTS = {
    "STORE_ENV": "ckpm.store.store", "Store": "ckpm.store.store", "StoreEntry": "ckpm.store.store", "default_store_dir": "ckpm.store.store", "prefix_key": "ckpm.store.store",
    "UnpackBudget": "ckpm.store.unpack", "archive_kind": "ckpm.store.unpack", "unpack": "ckpm.store.unpack",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)  # a warm sync or run imports only what it uses
__all__ = sorted(_EXPORTS)
