"""Fingerprints: cheap identities of files, used to key the host profile.

A fingerprint changes when the file at a path is replaced, rewritten or retargeted
(``realpath``, size and mtime in nanoseconds), and costs one ``stat`` to compute.
"""
from __future__ import annotations

import hashlib
import os
from typing import Iterable

MISSING = ""


def _digest(parts: Iterable[str]) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def fingerprint_of(path: str | os.PathLike[str]) -> str:
    """Fingerprint of the file or folder at ``path`` ("" when it does not exist)."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError:
        return MISSING
    return _digest((os.path.realpath(p), str(st.st_size), str(st.st_mtime_ns)))


def combine(*parts: str) -> str:
    """One fingerprint standing for several (order matters)."""
    return _digest(parts)


def dirs_fingerprint(paths: Iterable[str]) -> str:
    """Fingerprint of a list of folders by their mtimes (a package added or removed shows)."""
    parts = []
    for p in paths:
        try:
            st = os.stat(p)
            parts.append(f"{p}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{p}:-")
    return _digest(parts)


def text_fingerprint(text: str) -> str:
    """Fingerprint of some text (e.g. the stable lines of /proc/cpuinfo)."""
    return _digest((text,))
