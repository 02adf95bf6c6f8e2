"""``ckpm store ls/path/gc`` and ``ckpm cache ls/clean``: the store of prefixes and the cache
folder, over ``ckpm.provision`` (which takes the locks a sync takes). Each answer has one
plain-data shape, the CLI's ``--json`` and ``ckpm.access()`` alike."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ckpm.fetch.cache import CacheItem, CleanResult
    from ckpm.settings import Settings
    from ckpm.store.store import StoreEntry


def entry_dict(e: StoreEntry) -> dict[str, Any]:
    return {"key": e.key, "name": e.name, "version": e.version, "target": e.target, "path": str(e.path)}


def store_ls(settings: Settings) -> list[StoreEntry]:
    """The complete prefixes of the store."""
    from ckpm import provision

    return list(provision.store_entries(settings))


def store_paths(settings: Settings, name: str, target: str | None = None) -> list[Path]:
    """The store prefixes of ``name`` (built for ``target`` when given); empty when there is none."""
    from ckpm import provision

    return [Path(e.path) for e in provision.store_path(settings, name, target)]


def store_gc(settings: Settings, *, dry_run: bool = False) -> list[str]:
    """Remove (or, with ``dry_run``, name) the prefixes that no known project's lock uses."""
    from ckpm import provision

    return list(provision.store_gc(settings, dry_run=dry_run))


def cache_ls(settings: Settings) -> dict[str, Any]:
    """What the cache folder holds, area by area: ``cache_dir``, ``total`` bytes, ``areas``."""
    from ckpm import provision

    areas = provision.cache_usage(settings)
    return {"cache_dir": str(settings.cache_root), "total": sum(a.size for a in areas),
            "areas": [{"name": a.name, "path": str(a.path), "what": a.what, "entries": a.entries, "size": a.size}
                      for a in areas]}


def cache_clean(settings: Settings, *, downloads_only: bool = False, older_than_days: float | None = None,
                dry_run: bool = False) -> CleanResult:
    """Remove cached downloads and exported git trees; what a running command uses is kept."""
    from ckpm import provision

    res: CleanResult = provision.cache_clean(settings, downloads_only=downloads_only,
                                             older_than_days=older_than_days, dry_run=dry_run)
    return res


def clean_dict(res: CleanResult, *, dry_run: bool) -> dict[str, Any]:
    """The plain-data shape of :func:`cache_clean`'s answer."""
    return {"removed": [_item(i) for i in res.removed], "in_use": [_item(i) for i in res.in_use],
            "freed": res.freed, "dry_run": dry_run}


def _item(i: CacheItem) -> dict[str, Any]:
    return {"area": i.area, "path": str(i.path), "size": i.size, "mtime": i.mtime}
