"""The download cache: verified files by hash, partial downloads by URL, one lock per file.

Layout under the cache folder::

    downloads/sha256/<hex>          verified files (read-only; never modified in place)
    downloads/partial/<key>.part    a download in progress or interrupted, kept for resume
    downloads/locks/<key>.lock      one inter-process lock per file being fetched

**Presence means verified.** A file enters ``sha256/`` only by an atomic rename of a
temporary file whose bytes were hashed while they were written and matched (or, trusting on
first use, were named by their own hash); it is fsynced before the rename, so a crash cannot
leave a name without its bytes. A warm lookup is therefore one ``stat``: no re-hash of a
large archive on every ``ckpm sync``. (Whoever edits a cached file by hand breaks that
promise; the files are made read-only to make it hard to do by accident.)

A partial file is named by the sha256 of the URL it comes from, so a resume only ever
continues the bytes of the same URL.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

#: the mode of a verified file (less the umask): nobody should write to it
FILE_MODE = 0o444


def url_key(url: str) -> str:
    """The name of a URL's partial file: the hex sha256 of the URL."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class DownloadCache:
    """Paths of the download cache under ``root`` (the ckpm cache folder)."""

    root: Path

    @property
    def base(self) -> Path:
        return self.root / "downloads"

    def file(self, sha256: str) -> Path:
        """Where the verified file of ``sha256`` (lowercase hex) lives."""
        return self.base / "sha256" / sha256

    def lookup(self, sha256: str) -> Path | None:
        """The verified file of ``sha256`` if it is cached (one stat, no hashing)."""
        path = self.file(sha256)
        try:
            st = os.stat(path)
        except OSError:
            return None
        return path if stat.S_ISREG(st.st_mode) else None

    def partial(self, url: str) -> Path:
        """The partial file of a download from ``url``."""
        return self.base / "partial" / f"{url_key(url)}.part"

    def lock(self, key: str) -> Path:
        """The lock file that serialises fetching ``key`` (a hash, or a URL key)."""
        return self.base / "locks" / f"{key}.lock"

    def temp_dir(self) -> Path:
        """Where temporary files are made (on the same file system as the verified files)."""
        path = self.base / "partial"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def store(self, temp: Path, sha256: str, *, like: int | None = None) -> Path:
        """Move the verified temporary file ``temp`` into place as ``sha256`` (atomic rename).
        Its mode is :data:`FILE_MODE` less the umask; ``like``, the mode of a local file it
        was copied from, takes away the group and other read bits that file lacks (a private
        file never becomes readable by others)."""
        dest = self.file(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        from ckpm.fsutil import current_umask

        mode = FILE_MODE & ~current_umask()
        if like is not None:
            mode &= (like & 0o044) | 0o400
        os.chmod(temp, mode)
        os.replace(temp, dest)
        return dest
