"""``ckpm store`` and ``ckpm cache``: the store's prefixes (list, find, gc from each registered
project's current lock) and the cache's areas (usage, clean)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ckpm.errors import CkpmError
from ckpm.model.lockfile import read_lock
from ckpm.provision.session import SyncOptions, SyncSession, open_store
from ckpm.settings import Settings
from ckpm.workspace import Workspace

if TYPE_CHECKING:
    from ckpm.fetch.cache import AreaUsage, CleanResult
    from ckpm.store.store import StoreEntry


def store_entries(settings: Settings) -> list["StoreEntry"]:
    """The complete prefixes of the store."""
    return list(open_store(settings).entries())


def store_path(settings: Settings, name: str, target: str | None = None) -> list["StoreEntry"]:
    """The complete prefixes of ``name`` (for ``target`` when given)."""
    return [e for e in open_store(settings).entries()
            if e.name == name.lower() and (target is None or e.target == target)]


def store_gc(settings: Settings, *, dry_run: bool = False) -> list[str]:
    """Remove the prefixes no registered project's current ``ckpm.lock`` uses (see Store.gc),
    and the staging folders of builds whose process is gone."""
    return list(open_store(settings).gc(dry_run=dry_run, keys_of_lock=lambda p: lock_keys_of(settings, p)))


def cache_usage(settings: Settings) -> list["AreaUsage"]:
    """The areas of the cache folder with their entries and sizes (``ckpm cache ls``)."""
    from ckpm.fetch.cache import usage

    return usage(Path(settings.cache_root))


def cache_clean(settings: Settings, *, downloads_only: bool = False, older_than_days: float | None = None,
                dry_run: bool = False) -> "CleanResult":
    """Remove cached downloads and exported git trees (``ckpm cache clean``), never one a
    running command uses (:func:`ckpm.fetch.cache.clean`)."""
    from ckpm.fetch.cache import clean

    if older_than_days is not None and older_than_days < 0:
        raise CkpmError(f"--older-than must be a number of days >= 0, not {older_than_days}")
    return clean(Path(settings.cache_root), downloads_only=downloads_only, dry_run=dry_run,
                 older_than=None if older_than_days is None else older_than_days * 86400)


def lock_keys_of(settings: Settings, project: str) -> set[str] | None:
    """The store keys that ``project``'s ``ckpm.lock`` uses now (None when it cannot be read)."""
    try:
        ws = Workspace(project, settings, search_up=False)
        lock = read_lock(ws.lock_path)
        if lock is None:
            return None
        return SyncSession(ws, lock, SyncOptions()).lock_keys()
    except (CkpmError, OSError, ValueError):
        return None
