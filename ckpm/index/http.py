"""An index served as static files over HTTP(S), like Cargo's sparse protocol.

Only the files a resolution needs are requested: ``config.json`` on first use, then one
file per component looked up (and ``summary.jsonl`` for search and tag queries). Each
file is requested at most once per instance. Files are kept on disk under
``<cache>/index-http/<key>/<layout path>`` with their ETag; a later process revalidates
a cached file with ``If-None-Match`` and a ``304 Not Modified`` costs no body.

A cached file holds one JSON header line (``{"status": 200, "etag": ...}``) and then the
body, written atomically, so a header never describes another body. A 404 is cached as
``{"status": 404}`` so that offline runs can tell "absent" from "never fetched".

When the server cannot be reached (or is too slow), a cached copy is used and a warning goes
to the ``reporter``; without a cached copy, the error names the URL and
the reason.

Bounds (:mod:`ckpm.index.transfer`): each response is streamed and refused past its cap,
counting the bytes on the wire and the decoded bytes (a gzip or deflate bomb stops at the
cap). The caps are the index's own (:func:`ckpm.index.base.limit_of`, constants in
:mod:`ckpm.model.entry`): ``MAX_CONFIG_BYTES`` (64 KiB) for ``config.json``,
``MAX_FILE_BYTES`` (8 MiB) per component file, ``MAX_SUMMARY_BYTES`` (64 MiB) for
``summary.jsonl``. Over the cap the connection is closed, nothing is cached, and the error
(:func:`ckpm.index.base.size_error`) names the URL and the cap. Each request
has a timeout (``timeout``, 10 s) and a low-speed limit (``limits``: fewer than 1 KiB in 10 s
fails), and the client may carry a whole-command ``deadline`` (a ``time.monotonic()`` value): a
request gets ``min(timeout, time left)``. A cache file is written, atomically (renamed into
place), only after a complete body within its cap. There is no lock per cache file: each file
is one rename, so processes that fetch the same file at once each write a whole copy and
readers never see half of one; the lock cost more than the request on a loopback registry.
"""
from __future__ import annotations

import contextlib
import json
import re
import zlib
from pathlib import Path
from typing import Any

import requests
import urllib3.exceptions

from ckpm.errors import IndexReadError
from ckpm.fsutil import atomic_write
from ckpm.index.base import FileIndex, limit_of, size_error
from ckpm.index.cache import cache_key, cache_root
from ckpm.index.layout import CONFIG
from ckpm.index.parsed_cache import cache_dir as parsed_cache_dir
from ckpm.index.transfer import HTTP_LIMITS, Limits, Meter, TooLarge, TooSlow, TransferError, expired_reason
from ckpm.model.entry import ComponentSummary
from ckpm.report import Reporter

DEFAULT_TIMEOUT = HTTP_LIMITS.timeout
#: the most read from the socket at once
CHUNK = 64 * 1024
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")


def _reason(e: requests.RequestException, meter: Meter) -> str:
    """A short reason for a failed request (requests' own messages are long)."""
    if isinstance(e, requests.Timeout):
        try:
            meter.check()
        except TransferError as t:
            return t.reason
        if isinstance(e, requests.ConnectTimeout):
            return "timed out connecting"
        return f"too slow (no answer for {meter.limits.low_speed_seconds:g} s)"
    m = _ERRNO.search(str(e))
    if m:
        return m.group(0).strip()
    return str(e) or type(e).__name__


class _Decoder:
    """Decodes a body (identity, gzip, deflate) and refuses more than ``cap`` decoded bytes."""

    def __init__(self, encoding: str, cap: int) -> None:
        self.encoding = encoding
        self.cap = cap
        self.parts: list[bytes] = []
        self.size = 0
        self._raw_deflate_tried = False
        self._seen_input = False
        if encoding in ("", "identity"):
            self._d: Any = None
        elif encoding in ("gzip", "x-gzip"):
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._d = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise TransferError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes) -> None:
        if self._d is None:
            self._add(data)
            return
        try:
            self._inflate(data)
        except zlib.error as e:
            if self.encoding == "deflate" and not self._seen_input and not self._raw_deflate_tried:
                # some servers send raw deflate without the zlib wrapper
                self._raw_deflate_tried = True
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                self._inflate(data)
            else:
                raise TransferError(f"cannot decode the {self.encoding} body ({e})") from None
        self._seen_input = True

    def _inflate(self, data: bytes) -> None:
        while data:
            if self._d.eof:  # a gzip body of several members, or junk after the end
                rest = self._d.unused_data + data
                if self.encoding not in ("gzip", "x-gzip"):
                    return
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data = rest
            self._add(self._d.decompress(data, self.cap - self.size + 1))
            data = self._d.unconsumed_tail

    def finish(self) -> bytes:
        if self._d is not None:
            try:
                self._add(self._d.flush())
            except zlib.error as e:
                raise TransferError(f"cannot decode the {self.encoding} body ({e})") from None
            if not self._d.eof and self._seen_input:
                raise TransferError(f"the {self.encoding} body ends early")
        return b"".join(self.parts)

    def _add(self, piece: bytes) -> None:
        if not piece:
            return
        self.size += len(piece)
        if self.size > self.cap:
            raise TooLarge(f"more than {self.cap:,} bytes decoded ({self.encoding})")
        self.parts.append(piece)


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
                 session: requests.Session | None = None, reporter: Reporter | None = None,
                 deadline: float | None = None, limits: Limits = HTTP_LIMITS) -> None:
        super().__init__(name, reporter=reporter)
        self.url = url
        self.base = url.rstrip("/") + "/"
        self.offline = offline
        self.timeout = timeout
        #: a ``time.monotonic()`` value that bounds every request of the command (None: no bound)
        self.deadline = deadline
        self.limits = limits
        self.path = cache_root(cache_dir) / "index-http" / cache_key(url.rstrip("/"))
        self._session = session
        self._memo: dict[str, str | None] = {}
        #: rel → the strong ETag of the body that was read (the parsed-index cache's key)
        self._etags: dict[str, str] = {}
        self.parsed_cache = parsed_cache_dir(cache_root(cache_dir), url.rstrip("/"))

    def revision(self) -> str | None:
        """None: static HTTP has no commit that names the whole index."""
        return None

    def update(self) -> None:
        """Forget what this instance read, so that the next reads revalidate with the server.

        There is nothing to fetch ahead: files are read on demand. Checks config.json now,
        so that an unreachable or moved index is reported by ``ckpm index update``.
        """
        if self.offline:
            raise IndexReadError(f"{self.url}: cannot update the index while offline", hint="run again without --offline")
        self._memo.clear()
        self._etags.clear()
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

    def _not_an_index(self) -> IndexReadError:
        return IndexReadError(f"{self.base}{CONFIG}: not found, so {self.url} is not an index",
                           hint="an index root serves config.json; check the URL")

    def _scan_summaries(self) -> list[ComponentSummary]:
        """An index without summary.jsonl cannot be searched over HTTP: an error."""
        raise IndexReadError(
            f"{self.url}: this index publishes no summary.jsonl; tag queries and search need it",
            hint="the index maintainer can run `ckpm index reindex` and publish summary.jsonl",
        )

    # -- internals ------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            s = requests.Session()
            s.headers["User-Agent"] = "ckpm (+https://github.com/ckpm)"
            # Every file of an index is on one host: read the environment's proxy, CA bundle
            # and .netrc settings for it once, instead of on each of a few hundred requests
            # (requests does that per request, scanning the environment each time).
            env = s.merge_environment_settings(self.base, {}, None, None, None)
            auth = requests.utils.get_netrc_auth(self.base)
            s.trust_env = False
            s.proxies.update(env.get("proxies") or {})
            if env.get("verify") not in (None, True):
                s.verify = env["verify"]
            if auth:
                s.auth = auth
            self._session = s
        return self._session

    def _read(self, rel: str) -> str | None:
        """The text of ``rel`` (None for 404): memo, then cache + revalidation, then network."""
        if rel in self._memo:
            return self._memo[rel]
        if self.offline:
            cached = self._read_cache(rel)
            if cached is None:
                raise IndexReadError(f"{self.base}{rel}: not in the cache, and ckpm is offline",
                                  hint="run once with network access (e.g. `ckpm index update`) to fill the cache")
            result = self._body(rel, cached)
        else:
            result = self._fetch(rel, self._read_cache(rel))
        self._memo[rel] = result
        return result

    def _key_after_read(self, rel: str) -> str | None:
        """The strong ETag of the body of ``rel`` that was read (fetched, revalidated or cached), if any."""
        return self._etags.get(rel)

    def _body(self, rel: str, c: _Cached) -> str | None:
        """``c.body``, its strong ETag noted as the key of what was read (a weak one names no bytes)."""
        if c.etag and not c.etag.startswith("W/"):
            self._etags[rel] = c.etag
        return c.body

    def _limits(self) -> Limits:
        return self.limits.with_timeout(self.timeout)

    def _fetch(self, rel: str, cached: _Cached | None) -> str | None:
        url = self.base + rel
        cap, what = limit_of(rel)
        meter = Meter(self._limits(), self.deadline, max_bytes=cap)
        if meter.remaining() <= 0:
            return self._fallback(url, cached, expired_reason(self.timeout, self.deadline))
        headers = {"Accept-Encoding": "gzip, deflate"}
        if cached is not None and cached.status == 200 and cached.etag:
            headers["If-None-Match"] = cached.etag
        with self._progress(f"fetching {url}"):
            try:
                resp = self.session.get(url, headers=headers, stream=True,
                                        timeout=(max(0.001, meter.remaining()), meter.silence_slice()))
            except requests.RequestException as e:
                return self._fallback(url, cached, _reason(e, meter))
            with resp:
                if resp.status_code == 304 and cached is not None and cached.status == 200:
                    return self._body(rel, cached)
                if resp.status_code == 200:
                    try:
                        data = self._read_body(resp, meter, cap)
                    except TooLarge as e:
                        err = size_error(url, e.reason, cap, what)
                        err.hint = "nothing was cached; check the URL, or tell the index maintainer"
                        raise err from None
                    except TransferError as e:
                        return self._fallback(url, cached, e.reason)
                    body = self._decode(data, rel)
                    fresh = _Cached(200, resp.headers.get("ETag"), body)
                    self._write_cache(rel, fresh)
                    return self._body(rel, fresh)
                if resp.status_code in (404, 410):
                    self._write_cache(rel, _Cached(404, None, None))
                    return None
                return self._fallback(url, cached, f"HTTP {resp.status_code} {resp.reason or ''}".strip())

    def _read_body(self, resp: requests.Response, meter: Meter, cap: int) -> bytes:
        """The body of ``resp``, streamed within the cap, the deadline and the low-speed limit."""
        length = resp.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > cap:
            raise TooLarge(f"{int(length):,} bytes (Content-Length)")
        decoder = _Decoder(resp.headers.get("Content-Encoding", "").strip().lower(), cap)
        raw = resp.raw
        while True:
            meter.check()
            sock = getattr(getattr(raw, "_connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(meter.silence_slice())
            try:
                chunk = raw.read1(CHUNK, decode_content=False)
            except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                meter.check()
                raise TooSlow(f"too slow (no data for {meter.limits.low_speed_seconds:g} s)") from None
            except (urllib3.exceptions.HTTPError, OSError) as e:
                raise TransferError(f"the connection broke ({type(e).__name__})") from None
            if not chunk:
                break
            try:
                meter.add(len(chunk))
            except TooLarge:
                raise TooLarge(f"more than {cap:,} bytes") from None
            decoder.feed(chunk)
        return decoder.finish()

    def _fallback(self, url: str, cached: _Cached | None, reason: str) -> str | None:
        if cached is not None:
            self._warn(f"{url}: {reason}; using the cached copy")
            return cached.body
        raise IndexReadError(f"cannot read index file {url}: {reason}",
                          hint="check the URL and your network (or allow more time with --timeout); "
                               "--offline uses only what is cached")

    def _note(self, message: str) -> None:
        self.reporter.note(message)

    def _progress(self, label: str) -> "contextlib.AbstractContextManager[None]":
        return self.reporter.progress(label)

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
            # no fsync: a cache file that a power cut tore fails its header and is fetched again
            atomic_write(self._cache_file(rel), head + "\n" + (c.body or ""), durable=False)
        except OSError as e:  # a read-only cache must not break reading the index
            self._warn(f"cannot write the index cache {self._cache_file(rel)}: {e}")
