"""A hint kept beside a project's lock: which targets the last lock needed the complete search for.

When resolvelib is stuck on a graph (``STUCK_AFTER`` backtracks), the complete search answers;
the first pass was spent for nothing, and it would be spent again at the next lock of the same
project (``lock --upgrade``, a lock after the index moved). So a lock that needed the complete
search for a target notes it, keyed by the lock file's path, with the manifest's content hash;
the next lock of that project with the same manifest starts there for that target. A manifest
that changed drops the hint (the graph may be easy now, and only the first pass can tell).

The hint is a cache file (``resolve-hints/<key>.json`` under the cache root, ``<key>`` the
cache key of the lock's path): a file that is missing, damaged, of another shape or over
:data:`MAX_HINT_BYTES` is no hint, and the lock is made as without one; the lock made either
way is valid (each is checked against the graph by resolvelib's confirming pass).
"""
from __future__ import annotations

import json
from pathlib import Path

from ckpm.fsutil import atomic_write
from ckpm.index.cache import cache_key

FORMAT = 1
MAX_HINT_BYTES = 64 * 1024
MAX_TARGETS = 256


def hint_path(cache_root: Path, lock_path: Path) -> Path:
    """Where the hint of the lock at ``lock_path`` is kept."""
    return cache_root / "resolve-hints" / f"{cache_key(str(Path(lock_path).absolute()))}.json"


def read(path: Path, manifest_hash: str) -> frozenset[str]:
    """The targets that the last lock with this manifest resolved by the complete search (none: {})."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_HINT_BYTES + 1)
        if len(data) > MAX_HINT_BYTES:
            return frozenset()
        d = json.loads(data)
    except (OSError, ValueError):
        return frozenset()
    if type(d) is not dict or d.get("format") != FORMAT or d.get("manifest") != manifest_hash:
        return frozenset()
    targets = d.get("complete")
    if type(targets) is not list or len(targets) > MAX_TARGETS or not all(type(t) is str for t in targets):
        return frozenset()
    return frozenset(targets)


def write(path: Path, manifest_hash: str, complete: set[str] | frozenset[str], before: frozenset[str]) -> None:
    """Note the targets resolved by the complete search (``complete``): nothing is written when
    that is what the hint already said (``before``), and none removes the hint (one kept for
    another manifest too). A hint that cannot be written is no error."""
    try:
        if not complete:
            path.unlink(missing_ok=True)
            return
        if frozenset(complete) == before:
            return
        text = json.dumps({"format": FORMAT, "manifest": manifest_hash, "complete": sorted(complete)[:MAX_TARGETS]})
        atomic_write(path, text, durable=False)
    except OSError:
        pass
