"""Who may publish each name: ``owners.json`` in the registry's state folder.

Owners are kept beside the index, not in it: they are the service's access control (logins
of this registry's users), not index data that clients or mirrors read, and the index
repository is written only by :mod:`ckpm.index.gitwriter` (one commit per version line). The
state folder defaults to ``<index.git>/ckpm-registry/``, inside the bare repository's folder,
so a copy of that folder (tar, rsync, a file-system snapshot) carries the owners with the
index; git itself ignores the folder. Every index commit the service makes is authored by
the publishing login, so the first publisher of each name can also be read back from
``git log`` (``ckpm-registry owners rebuild``).

The file is written atomically, only while the registry's write lock is held.
```json
{"format": 1, "owners": {"lib-x": ["alice", "bob"]}}
```
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ckpm.fsutil import atomic_write, read_bounded
from ckpm_registry.errors import OwnersFileError
from ckpm_registry.tokens import file_key

MAX_OWNERS_BYTES = 64 << 20
MAX_OWNERS_PER_NAME = 64


class Owners:
    """name → owners, re-read when the file changes (other processes write it too)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._data: dict[str, list[str]] = {}

    def _load(self) -> dict[str, list[str]]:
        key = file_key(self.path)
        with self._lock:
            if key == self._key and key is not None:
                return self._data
            data: dict[str, list[str]] = {}
            if key is not None:
                raw = read_bounded(self.path, MAX_OWNERS_BYTES)
                if raw is None:
                    raise OwnersFileError(f"{self.path}: over {MAX_OWNERS_BYTES:,} bytes")
                data = parse_owners(raw, str(self.path))
            self._key, self._data = key, data
            return data

    def check(self) -> int:
        return len(self._load())

    def of(self, name: str) -> list[str]:
        return list(self._load().get(name, []))

    def all(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._load().items()}

    def set(self, name: str, users: list[str]) -> None:
        """Write ``name``'s owners (the caller holds the registry's write lock)."""
        data = self.all()
        if users:
            data[name] = sorted(set(users))
        else:
            data.pop(name, None)
        self.write_all(data)

    def write_all(self, data: dict[str, list[str]]) -> None:
        text = json.dumps({"format": 1, "owners": {k: data[k] for k in sorted(data)}}, indent=1) + "\n"
        atomic_write(self.path, text)


def parse_owners(raw: bytes, origin: str) -> dict[str, list[str]]:
    try:
        doc: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise OwnersFileError(f"{origin}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != 1 or not isinstance(doc.get("owners"), dict):
        raise OwnersFileError(f'{origin}: expected {{"format": 1, "owners": {{name: [login, ...]}}}}')
    out: dict[str, list[str]] = {}
    for name, users in doc["owners"].items():
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise OwnersFileError(f"{origin}: owners of {name!r} must be a list of logins")
        out[str(name)] = list(users)
    return out
