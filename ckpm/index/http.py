"""An index served as static files over HTTP(S), like Cargo's sparse protocol.

Only the files a resolution needs are requested: ``config.json`` on first use, then one
file per component looked up (and ``summary.jsonl`` for search and tag queries). Each
file is requested at most once per instance. Files are kept on disk under
``<cache>/index-http/<key>/<layout path>`` with their ETag; a later process revalidates
a cached file with ``If-None-Match`` and a ``304 Not Modified`` costs no body.

A cached file holds one JSON header line (``{"status": 200, "etag": ...}``) and then the
body, written atomically, so a header never describes another body. A 404 is cached as
``{"status": 404}`` so that offline runs can tell "absent" from "never fetched".

When the server cannot be reached, a cached copy is used and a warning is collected in
:attr:`HttpIndex.warnings`; without one, the error names the URL and the reason.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import requests

from ckpm.errors import IndexError_
from ckpm.index.base import FileIndex
from ckpm.index.cache import cache_key, cache_root
from ckpm.index.layout import CONFIG
from ckpm.fsutil import atomic_write
from ckpm.model.entry import ComponentSummary

DEFAULT_TIMEOUT = 10.0
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")


def _reason(e: requests.RequestException, timeout: float) -> str:
    """A short reason for a failed request (requests' own messages are long)."""
    if isinstance(e, requests.Timeout):
        return f"timed out after {timeout:g} s"
    m = _ERRNO.search(str(e))
    if m:
        return m.group(0).strip()
    return str(e) or type(e).__name__


class _Cached:
    """One file of the on-disk cache: status, ETag and body (None for a 404)."""

    __slots__ = ("status", "etag", "body")

    def __init__(self, status: int, etag: str | None, body: str | None) -> None:
        self.status = status
        self.etag = etag
        self.body = body


class HttpIndex(FileIndex):
    """Reads an index over HTTP, file by file, with an ETag-revalidated disk cache."""

    def __init__(self, url: str, *, name: str | None = None, cache_dir: Path | None = None,
                 offline: bool = False, timeout: float = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None) -> None:
        super().__init__(name)
        self.url = url
        self.base = url.rstrip("/") + "/"
        self.offline = offline
        self.timeout = timeout
        self.path = cache_root(cache_dir) / "index-http" / cache_key(url.rstrip("/"))
        self.warnings: list[str] = []
        self._session = session
        self._memo: dict[str, str | None] = {}

    def revision(self) -> str | None:
        """None: static HTTP has no commit that names the whole index."""
        return None

    def update(self) -> None:
        """Forget what this instance read, so that the next reads revalidate with the server.

        There is nothing to fetch ahead: files are read on demand. Checks config.json now,
        so that an unreachable or moved index is reported by ``ckpm index update``.
        """
        if self.offline:
            raise IndexError_(f"{self.url}: cannot update the index while offline", hint="run again without --offline")
        self._memo.clear()
        self._forget()
        self._check_config()

    def close(self) -> None:
        """Close the HTTP session (if this instance opened one)."""
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- FileIndex ------------------------------------------------------------------------

    def _where(self, rel: str) -> str:
        return self.base + rel

    def _default_name(self) -> str:
        return self.base.rstrip("/").rsplit("/", 1)[-1] or "index"

    def _not_an_index(self) -> IndexError_:
        return IndexError_(f"{self.base}{CONFIG}: not found, so {self.url} is not an index",
                           hint="an index root serves config.json; check the URL")

    def _scan_summaries(self) -> list[ComponentSummary]:
        """An index without summary.jsonl cannot be searched over HTTP: an error."""
        raise IndexError_(
            f"{self.url}: this index publishes no summary.jsonl; tag queries and search need it",
            hint="the index maintainer can run `ckpm index reindex` and publish summary.jsonl",
        )

    # -- internals ------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["User-Agent"] = "ckpm (+https://github.com/ckpm)"
        return self._session

    def _read(self, rel: str) -> str | None:
        """The text of ``rel`` (None for 404): memo, then cache + revalidation, then network."""
        if rel in self._memo:
            return self._memo[rel]
        cached = self._read_cache(rel)
        if self.offline:
            if cached is None:
                raise IndexError_(f"{self.base}{rel}: not in the cache, and ckpm is offline",
                                  hint="run once with network access (e.g. `ckpm index update`) to fill the cache")
            result = cached.body
        else:
            result = self._fetch(rel, cached)
        self._memo[rel] = result
        return result

    def _fetch(self, rel: str, cached: _Cached | None) -> str | None:
        url = self.base + rel
        headers = {}
        if cached is not None and cached.status == 200 and cached.etag:
            headers["If-None-Match"] = cached.etag
        try:
            resp = self.session.get(url, headers=headers, timeout=self.timeout)
        except requests.RequestException as e:
            return self._fallback(url, cached, _reason(e, self.timeout))
        with resp:
            if resp.status_code == 304 and cached is not None and cached.status == 200:
                return cached.body
            if resp.status_code == 200:
                body = self._decode(resp.content, rel)
                self._write_cache(rel, _Cached(200, resp.headers.get("ETag"), body))
                return body
            if resp.status_code in (404, 410):
                self._write_cache(rel, _Cached(404, None, None))
                return None
            return self._fallback(url, cached, f"HTTP {resp.status_code} {resp.reason or ''}".strip())

    def _fallback(self, url: str, cached: _Cached | None, reason: str) -> str | None:
        if cached is not None:
            self.warnings.append(f"{url}: {reason}; using the cached copy")
            return cached.body
        raise IndexError_(f"cannot read index file {url}: {reason}",
                          hint="check the URL and your network; --offline uses only what is cached")

    def _cache_file(self, rel: str) -> Path:
        return self.path / rel

    def _read_cache(self, rel: str) -> _Cached | None:
        p = self._cache_file(rel)
        try:
            raw = p.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            return None
        head, _, body = raw.partition("\n")
        try:
            meta = json.loads(head)
            status = int(meta["status"])
        except (ValueError, KeyError, TypeError):
            return None  # a damaged cache file is simply refetched
        etag = meta.get("etag")
        return _Cached(status, str(etag) if etag else None, body if status == 200 else None)

    def _write_cache(self, rel: str, c: _Cached) -> None:
        head = json.dumps({"status": c.status, "etag": c.etag, "url": self.base + rel}, separators=(",", ":"))
        try:
            atomic_write(self._cache_file(rel), head + "\n" + (c.body or ""))
        except OSError as e:  # a read-only cache must not break reading the index
            self.warnings.append(f"cannot write the index cache {self._cache_file(rel)}: {e}")
