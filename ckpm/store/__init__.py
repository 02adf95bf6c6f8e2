"""The store: safe unpacking (:mod:`ckpm.store.unpack`) and content-addressed prefixes (:mod:`ckpm.store.store`)."""
from __future__ import annotations

from ckpm.store.store import STORE_ENV, Store, StoreEntry, default_store_dir, prefix_key
from ckpm.store.unpack import UnpackBudget, archive_kind, unpack

__all__ = ["STORE_ENV", "Store", "StoreEntry", "UnpackBudget", "archive_kind", "default_store_dir", "prefix_key",
           "unpack"]
