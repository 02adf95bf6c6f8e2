"""The host profile: memoised probe results, keyed by fingerprints, in one JSON file.

Layout (``<cache dir>/host-profile-<node>.json``)::

    {"format": 1, "node": "...", "entries": {KEY: {"fp": ..., "value": ..., "warnings": [...],
                                                   "path": ... or null}}}

``KEY`` is the JSON text of a list naming what was probed (detector kind, component,
rule, path). An entry is reused only while its ``fp`` equals the fingerprint computed
now. An unreadable file is ignored. Saving takes an inter-process lock
(``<profile>.lock``), reads the file again, merges this run's new entries into it and
writes it atomically (``ckpm.fsutil.atomic_write``, which keeps the file's mode), so two
ckpm processes never lose each other's entries.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from ckpm.settings import default_cache_dir  # noqa: F401  (re-exported: one definition)

FORMAT = 1


def profile_path(cache_dir: str | os.PathLike[str]) -> Path:
    """Where this machine's profile lives in ``cache_dir`` (one file per host name)."""
    node = re.sub(r"[^A-Za-z0-9._-]+", "_", os.uname().nodename if hasattr(os, "uname") else "host") or "host"
    return Path(cache_dir) / f"host-profile-{node}.json"


class HostProfile:
    """Memo entries loaded from, and saved to, one profile file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self.load_error: str | None = None
        self._changed: set[str] = set()

    @classmethod
    def load(cls, path: Path | None) -> "HostProfile":
        """Read ``path``; a missing, corrupt or foreign-format file gives an empty profile."""
        prof = cls(path)
        if path is None:
            return prof
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return prof
        except (OSError, ValueError) as e:
            prof.load_error = f"host profile {path} is unreadable ({type(e).__name__}); starting afresh"
            return prof
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
            prof.load_error = f"host profile {path} has an unknown layout; starting afresh"
            return prof
        prof.entries = {k: v for k, v in data["entries"].items() if isinstance(v, dict) and "fp" in v}
        return prof

    def get(self, key: str, fp: str) -> dict[str, Any] | None:
        """The entry for ``key`` if its fingerprint is still ``fp``."""
        e = self.entries.get(key)
        if e is not None and e.get("fp") == fp:
            return e
        return None

    def put(self, key: str, fp: str, value: Any, warnings: list[str], path: str | None) -> None:
        self.entries[key] = {"fp": fp, "value": value, "warnings": warnings, "path": path}
        self._changed.add(key)
        self.dirty = True

    def save(self) -> None:
        """Merge this run's new entries into the file, under a lock, and write it atomically.

        Entries whose path has vanished are dropped. Nothing is written if nothing changed.
        """
        if not self.dirty or self.path is None:
            return
        from ckpm.fsutil import atomic_write, file_lock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(str(self.path) + ".lock", what=f"writing the host profile {self.path}"):
            on_disk = HostProfile.load(self.path)  # what other processes wrote meanwhile
            merged = dict(on_disk.entries)
            merged.update({k: self.entries[k] for k in self._changed if k in self.entries})
            keep = {k: e for k, e in merged.items() if not e.get("path") or os.path.lexists(e["path"])}
            data = {"format": FORMAT, "entries": keep}
            atomic_write(self.path, json.dumps(data, separators=(",", ":"), sort_keys=True))
        self.entries = keep
        self._changed.clear()
        self.dirty = False
