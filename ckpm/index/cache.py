"""Where ckpm keeps what it downloads: index copies, git mirrors and parsed manifests.

Layout under the cache root (``CKPM_CACHE_DIR``, else the platform's user cache dir)::

    index-git/<key>/     bare clones of git indexes          (ckpm.index.git)
    index-http/<key>/    files of static HTTP indexes + ETag (ckpm.index.http)
    git/<key>/           bare mirrors of git-native components (ckpm.index.gitsource)
    git-meta/            parsed component manifests, one JSON file per commit

``<key>`` is :func:`cache_key` of the URL. Everything here can be deleted at any time;
it is downloaded again when needed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ckpm.settings import default_cache_dir



def cache_root(cache_dir: Path | str | None) -> Path:
    """``cache_dir`` if given, else :func:`default_cache_dir`."""
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def cache_key(url: str) -> str:
    """A short, file-name-safe key for a URL: the first 16 hex digits of its sha256."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
