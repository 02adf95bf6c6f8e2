"""Fetching one file: mirrors in order, verified by sha256, resumed, bounded, cached.

:func:`fetch_file` is the one place that owns how ckpm downloads a source archive (as
``DetectContext.run`` owns how a probe runs): the candidates come from :class:`Mirrors`,
each is tried in turn, and every failure becomes one short reason in the
:class:`~ckpm.errors.FetchError` that lists them all.

For one candidate:

- ``http(s)://``: one ``requests`` session, ``Accept-Encoding: identity`` and the raw bytes
  (an archive served with ``Content-Encoding: gzip`` is stored as sent, as curl does), a
  connect and a read timeout (the read timeout also bounds every wait while streaming, so
  a stalled server is abandoned), at most :data:`MAX_REDIRECTS` redirects, never to
  another scheme (requests has no adapter for one). Transient failures (a timeout, a
  connection reset or cut, HTTP 5xx or 429) are retried ``retries`` times with exponential
  backoff; a refused connection, an unknown host and other 4xx answers are not. The body
  streams into ``downloads/partial/<sha256 of the URL>.part``, hashed as it is written; a
  retry, or a later run, asks for the rest with ``Range`` and keeps the bytes only on a
  ``206`` whose ``Content-Range`` starts where the part ends (a server that ignores
  ``Range`` sends everything again, and the part starts over).
- ``file://``: the file is opened (a regular file only: a FIFO would block forever),
  streamed and hashed the same way into a temporary file.

Time is bounded as for index transfers (``ckpm.index.transfer.HTTP_LIMITS``): a download
that receives fewer than ``low_speed_bytes`` in any window of ``low_speed_seconds`` (1 KiB in
10 s by default) is abandoned and the next candidate tried, so a trickling mirror cannot
hold a download; a silent one is caught by the same window. ``deadline`` (a
``time.monotonic()`` value: ``--timeout`` of ``ckpm sync`` and ``ckpm fetch``) bounds the
whole call: past it no candidate is tried and FetchError says why.

Everything the server says is data: ``Content-Length`` only sizes the progress bar and
refuses early a body larger than the bound; the bound itself (``size`` when the caller
knows it, else ``max_bytes``) is checked on the bytes as they arrive.

A verified file is renamed into ``downloads/sha256/<hex>`` (see :mod:`ckpm.fetch.cache`:
presence there means verified, so a warm lookup is one ``stat`` and imports no HTTP
library). A lock per hash (per candidate list when trusting on first use) makes a second
process wait for the first and then reuse its file.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Sequence
from urllib.parse import unquote, urlsplit

from ckpm.netutil import causes as _causes, connection_reason as _connection_reason, short_error as _short
from ckpm.errors import FetchError
from ckpm.fetch.cache import DownloadCache, url_key
from ckpm.fetch.mirrors import Mirrors
from ckpm.fetch.sink import HashingSink, SinkError
from ckpm.fsutil import file_lock
from ckpm.report import Reporter

if TYPE_CHECKING:
    import requests

#: bytes per read and write: large, so that the per-chunk Python overhead is negligible
CHUNK = 1 << 20
#: redirects followed per request
MAX_REDIRECTS = 10
#: the longest pause between two tries of one URL (seconds)
MAX_BACKOFF = 8.0
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d{1,20})-(\d{1,20})/(\d{1,20}|\*)$")


@dataclass
class Fetched:
    """A verified file in the download cache."""

    #: the verified file (in the download cache: read it, do not modify it)
    path: Path
    #: its sha256, lowercase hex
    sha256: str
    size: int
    #: the candidate URL that served it (the cache file's own URL on a cache hit); never
    #: written to a lock, which keeps the source's URLs
    url: str
    #: True when the caller gave no sha256 (trust on first use): the caller records it
    pinned: bool
    #: True when the file was already in the cache (no transfer)
    cached: bool = False


def check_sha256(sha256: str | None) -> str | None:
    """``sha256`` lowercased; ValueError unless it is 64 hex digits (or None)."""
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not _HEX64.match(sha256):
        shown = repr(sha256)[:80]
        raise ValueError(f"a sha256 must be 64 hexadecimal digits, not {shown}")
    return sha256.lower()


def file_name(url: str) -> str:
    """The last path segment of ``url`` (decoded, for messages), or the URL itself."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return url
    name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    return name or url


def human_count(n: int) -> str:
    return f"{n:,} byte" + ("" if n == 1 else "s")


class _Fail(Exception):
    """This candidate failed: ``reason`` is a short phrase; ``transient`` failures are retried."""

    def __init__(self, reason: str, *, transient: bool = False, restart: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        #: the partial file was dropped: try again from the start once, without counting a try
        self.restart = restart


class _OutOfTime(Exception):
    """The caller's deadline passed: no candidate can help."""


class _Window:
    """The low-speed limit of one transfer: fewer than ``min_bytes`` in any window of
    ``seconds`` fails it (:meth:`check` after every read, and when a read waited that long);
    also the caller's deadline."""

    def __init__(self, min_bytes: int, seconds: float, deadline: float | None) -> None:
        self.min_bytes, self.seconds, self.deadline = min_bytes, seconds, deadline
        self.start = time.monotonic()
        self.bytes = 0

    def wait(self) -> float:
        """How long one blocking read may wait: until the window or the deadline ends."""
        now = time.monotonic()
        end = self.start + self.seconds
        if self.deadline is not None:
            end = min(end, self.deadline)
        return max(0.001, end - now)

    def add(self, n: int) -> None:
        self.bytes += n
        self.check()

    def check(self) -> None:
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            raise _OutOfTime()
        if now - self.start >= self.seconds:
            if self.bytes < self.min_bytes:
                raise _Fail(f"too slow (fewer than {human_count(self.min_bytes)} in {self.seconds:g} s)")
            self.start, self.bytes = now, 0


class _LocalError(Exception):
    """Writing the local file failed (disk full, permissions): no mirror can help."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot write {path}: {error.strerror or error}")


@dataclass
class _Job:
    """One call of :func:`fetch_file`: its arguments and what the candidates share."""

    sha256: str | None
    size: int | None
    limit: int
    cache: DownloadCache
    reporter: Reporter
    label: str
    connect_timeout: float
    read_timeout: float
    retries: int
    backoff: float
    low_speed_bytes: int = 1024
    low_speed_seconds: float = 10.0
    deadline: float | None = None
    session: "requests.Session | None" = None
    own_session: bool = False

    def http(self) -> "requests.Session":
        """The session (made on first use: a warm fetch never imports requests)."""
        if self.session is None:
            import requests

            self.session = requests.Session()
            self.session.max_redirects = MAX_REDIRECTS
            self.own_session = True
        return self.session

    def close(self) -> None:
        if self.own_session and self.session is not None:
            self.session.close()

    def too_large(self, n: int | None = None) -> str:
        return f"more than {human_count(self.limit)}" + (f" (the server says {n:,})" if n is not None else "")

    # ---- one candidate

    def try_url(self, url: str) -> tuple[Path, str, int]:
        """Fetch ``url`` into the cache: ``(path, sha256, size)`` of the verified file; _Fail otherwise."""
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "file":
            return self._file(url)
        if scheme in ("http", "https"):
            return self._http(url)
        raise _Fail(f"unsupported URL scheme {scheme!r} (only http, https and file)" if scheme
                    else "not a URL (no scheme)")

    def _verify(self, temp: Path, digest: str, size: int, *, resumed: bool = False) -> None:
        """Check the size and the hash of a complete temporary file; drop it when wrong."""
        if self.size is not None and size != self.size:
            _unlink(temp)
            raise _Fail(f"size mismatch: got {human_count(size)}, expected {self.size:,}")
        if self.sha256 is not None and digest != self.sha256:
            _unlink(temp)
            raise _Fail(f"sha256 mismatch: got {digest[:12]}…, expected {self.sha256[:12]}…"
                        + (" (resumed download)" if resumed else ""), restart=resumed)

    def _file(self, url: str) -> tuple[Path, str, int]:
        try:
            parts = urlsplit(url)
        except ValueError as e:
            raise _Fail(f"invalid URL: {e}") from None
        if parts.netloc not in ("", "localhost"):
            raise _Fail(f"a file:// URL with a host ({parts.netloc!r}) is not supported")
        from urllib.request import url2pathname  # here: it imports http.client, which a warm fetch never needs

        path = url2pathname(parts.path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            raise _Fail("no such file") from None
        except NotADirectoryError:
            raise _Fail("no such file (a parent is not a folder)") from None
        except PermissionError:
            raise _Fail("permission denied") from None
        except OSError as e:
            raise _Fail(f"cannot open: {e.strerror or e}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise _Fail("not a regular file")
        with open(fd, "rb", buffering=0, closefd=True) as src:
            if st.st_size > self.limit:
                raise _Fail(self.too_large(st.st_size))
            with suppress(AttributeError, OSError):
                os.set_blocking(fd, True)
            fdt, tname = tempfile.mkstemp(prefix="file-", suffix=".tmp", dir=self.cache.temp_dir())
            temp = Path(tname)
            try:
                hasher = hashlib.sha256()
                with open(fdt, "wb", buffering=0) as out, self.reporter.transfer(self.label, st.st_size) as advance:
                    n = _pump(lambda: src.read(CHUNK), out, temp, self.limit, hasher, advance)
            except _Fail:
                _unlink(temp)
                raise
            except OSError as e:
                _unlink(temp)
                raise _Fail(f"read error: {e.strerror or e}") from None
            except BaseException:
                _unlink(temp)
                raise
        digest = hasher.hexdigest()
        self._verify(temp, digest, n)
        return self.cache.store(temp, digest, like=st.st_mode), digest, n

    def _http(self, url: str) -> tuple[Path, str, int]:
        part = self.cache.partial(url)
        part.parent.mkdir(parents=True, exist_ok=True)
        tries = 0
        restarted = False
        part_lock = part.with_name(part.name + ".lock")
        with file_lock(part_lock, on_wait=self.reporter.note, what=f"downloading {self.label}"):
            while True:
                tries += 1
                try:
                    digest, n = self._http_once(url, part)
                    # moved into place while the part's lock is held: nobody resumes it meanwhile
                    stored = self.cache.store(part, digest)
                    # and the lock file goes too (a waiter that opened it locks the next one: fsutil)
                    _unlink(part_lock)
                    return stored, digest, n
                except _Fail as e:
                    if e.restart and not restarted:
                        restarted = True
                        tries -= 1
                        continue
                    if not e.transient or tries > self.retries:
                        reason = e.reason
                        if e.transient and tries > 1:
                            reason += f" ({tries} tries)" if " after " in reason else f" after {tries} tries"
                        raise _Fail(reason) from None
                pause = min(MAX_BACKOFF, self.backoff * (2 ** (tries - 1)))
                if self.deadline is not None and time.monotonic() + pause >= self.deadline:
                    raise _OutOfTime()
                time.sleep(pause)

    def _http_once(self, url: str, part: Path) -> tuple[str, int]:
        """One request for ``url``, continuing ``part`` if it holds bytes. Leaves the complete
        file in ``part`` and returns ``(sha256, size)``, or raises _Fail."""
        import requests

        try:
            offset = part.stat().st_size
        except FileNotFoundError:
            offset = 0
        if offset > self.limit:
            _unlink(part)
            offset = 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        window = _Window(self.low_speed_bytes, self.low_speed_seconds, self.deadline)
        window.check()
        left = window.wait() if self.deadline is not None else self.connect_timeout
        try:
            resp = self.http().get(url, headers=headers, stream=True,
                                   timeout=(min(self.connect_timeout, left),
                                            min(self.read_timeout, self.low_speed_seconds, window.wait())))
        except requests.exceptions.ConnectTimeout:
            window.check()
            raise _Fail(f"connect timed out after {self.connect_timeout:g} s", transient=True) from None
        except requests.exceptions.ReadTimeout:
            window.check()
            raise _Fail(f"read timed out after {min(self.read_timeout, self.low_speed_seconds):g} s",
                        transient=True) from None
        except requests.exceptions.TooManyRedirects:
            raise _Fail(f"more than {MAX_REDIRECTS} redirects") from None
        except requests.exceptions.SSLError as e:
            raise _Fail(f"TLS error: {_short(e)}") from None
        except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema):
            raise _Fail("redirected to a URL that is not http(s)") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, ValueError) as e:
            raise _Fail(f"invalid URL: {_short(e)}") from None
        except requests.exceptions.ConnectionError as e:
            reason, transient = _connection_reason(e)
            raise _Fail(reason, transient=transient) from None
        except requests.exceptions.RequestException as e:
            raise _Fail(_short(e)) from None
        with resp:
            return self._receive(resp, part, offset, window)

    def _receive(self, resp: Any, part: Path, offset: int, window: "_Window") -> tuple[str, int]:
        status = resp.status_code
        if status == 416 and offset:
            _unlink(part)  # the part is not a prefix of what the server has
            raise _Fail("HTTP 416 to a resumed download", restart=True)
        if status >= 500 or status == 429:
            raise _Fail(f"HTTP {status}", transient=True)
        if status not in (200, 206):
            raise _Fail(f"HTTP {status}")
        body_length = _int_header(resp.headers.get("Content-Length"))
        if status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", "").strip())
            start, end = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
            total = None if not m or m.group(3) == "*" else int(m.group(3))
            if (not offset or start != offset or end < start
                    or (total is not None and end + 1 != total)
                    or (body_length is not None and body_length != end - start + 1)):
                _unlink(part)
                raise _Fail(f"HTTP 206 with a Content-Range that does not continue the download "
                            f"({resp.headers.get('Content-Range', 'none')!r:.60})", restart=True)
            expected: int | None = end + 1
        else:
            offset = 0  # the server ignored Range (or none was asked): start over
            expected = body_length
        if expected is not None and expected > self.limit:
            _unlink(part)
            raise _Fail(self.too_large(expected))
        if expected is not None and self.size is not None and expected != self.size:
            _unlink(part)
            raise _Fail(f"size mismatch: the server says {human_count(expected)}, expected {self.size:,}")
        hasher = hashlib.sha256()
        if offset:
            try:
                _hash_file(part, hasher, offset)
            except OSError:
                _unlink(part)
                raise _Fail("the partial download could not be read", restart=True) from None
        try:
            out = open(part, "r+b" if offset else "wb", buffering=0)
        except OSError as e:
            raise _LocalError(part, e) from None
        received = offset
        with out, self.reporter.transfer(self.label, expected if expected is not None else self.size) as advance:
            out.seek(offset)
            out.truncate()
            if offset:
                advance(offset)
            try:
                received = offset + _stream(resp, out, part, self.limit - offset, hasher, advance,
                                            read_timeout=self.read_timeout, offset=offset, expected=expected,
                                            window=window)
            except _Fail as e:
                if not e.transient:
                    _unlink(part)
                raise
        if body_length is not None and received - offset != body_length:
            raise _Fail(f"connection closed after {received:,} of {expected:,} bytes", transient=True)
        self._verify(part, hasher.hexdigest(), received, resumed=offset > 0)
        return hasher.hexdigest(), received


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def _int_header(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or len(value.strip()) > 20:
        return None
    return int(value.strip())


def _hash_file(path: Path, hasher: Any, length: int) -> None:
    """Feed the first ``length`` bytes of ``path`` to ``hasher`` (a resumed download's start)."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    left = length
    with open(path, "rb", buffering=0) as f:
        while left > 0:
            n = f.readinto(view[:min(CHUNK, left)])
            if not n:
                raise OSError("the partial file is shorter than it was")
            hasher.update(view[:n])
            left -= n


def _pump(read: Callable[[], bytes], out: IO[bytes], path: Path, limit: int, hasher: Any,
          advance: Callable[[int], None]) -> int:
    """Copy chunks from ``read`` (empty at the end) to ``out``, hashing them, and make the
    file durable; the number of bytes copied. _Fail past ``limit`` bytes; _LocalError when
    the file cannot be written. Errors of ``read`` propagate (the caller words them)."""
    total = 0
    try:
        with HashingSink(out, hasher) as sink:
            while True:
                chunk = read()
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise _Fail(f"more than {human_count(limit)}")
                sink.write(chunk)
                advance(len(chunk))
            sink.finish()
    except SinkError as e:
        raise _LocalError(path, e.error) from None
    return total


def _stream(resp: Any, out: IO[bytes], path: Path, limit: int, hasher: Any, advance: Callable[[int], None], *,
            read_timeout: float, offset: int, expected: int | None, window: _Window | None = None) -> int:
    """Write the raw body of ``resp`` to ``out`` (at most ``limit`` bytes), hashing; the
    number of bytes written. A cut or stalled connection is a transient _Fail (its reason
    counts ``offset``, the bytes a resumed download already had, out of ``expected``); a
    body slower than ``window``'s low-speed limit a _Fail that moves on to the next candidate.
    Each read returns what has arrived (``read1``), so a trickle is seen as it trickles."""
    from requests.packages.urllib3.exceptions import HTTPError as Urllib3Error  # type: ignore[import-untyped]
    from requests.packages.urllib3.exceptions import ReadTimeoutError

    raw = resp.raw
    got = 0
    read1 = getattr(raw, "read1", None)

    def read() -> bytes:
        nonlocal got
        if window is not None:
            sock = getattr(getattr(raw, "_connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(min(read_timeout, window.wait()))
        try:
            chunk: bytes = (read1(CHUNK, decode_content=False) if read1 is not None
                            else raw.read(CHUNK, decode_content=False))
        except (ReadTimeoutError, TimeoutError):
            if window is not None:
                window.check()  # a window with nothing in it: too slow (or out of time)
            raise
        got += len(chunk)
        if window is not None:
            window.add(len(chunk))
        return chunk

    def where() -> str:
        return f"{offset + got:,} of {expected:,} bytes" if expected is not None else human_count(offset + got)

    try:
        return _pump(read, out, path, limit, hasher, advance)
    except (ReadTimeoutError, TimeoutError):
        raise _Fail(f"read timed out after {read_timeout:g} s, at {where()}", transient=True) from None
    except (Urllib3Error, OSError) as e:
        reset = any(isinstance(c, ConnectionResetError) for c in _causes(e))
        raise _Fail(f"connection {'reset' if reset else 'closed'} after {where()}", transient=True) from None


def fetch_file(urls: Sequence[str], *, sha256: str | None, cache_dir: Path, size: int | None = None,
               mirrors: Mirrors = Mirrors(), offline: bool = False, reporter: Reporter | None = None,
               label: str = "", connect_timeout: float = 10.0, read_timeout: float = 30.0, retries: int = 2,
               max_bytes: int = 16 << 30, backoff: float = 0.5,
               session: "requests.Session | None" = None, low_speed_bytes: int = 1024,
               low_speed_seconds: float = 10.0, deadline: float | None = None) -> Fetched:
    """Fetch the file of ``urls`` (mirrors first, see :meth:`Mirrors.candidates`), verified
    against ``sha256`` (None: trust on first use, the result is ``pinned``) and ``size``.

    A cached file of that hash is returned with no network access (one stat). Otherwise
    each candidate is tried in order until one yields the right bytes; FetchError lists
    every candidate and why it failed. ``backoff`` is the first pause between retries of
    one URL (doubled each time); ``session`` lets a caller share connections between calls.
    ``low_speed_bytes``/``low_speed_seconds``: the low-speed limit of each transfer (the
    defaults are ``ckpm.index.transfer.HTTP_LIMITS``'); ``deadline``: a ``time.monotonic()``
    value past which nothing more is tried. ValueError for a malformed ``sha256`` or bound.
    """
    digest = check_sha256(sha256)
    if isinstance(urls, str):
        raise ValueError("urls must be a sequence of URLs, not one string")
    if not urls:
        raise ValueError("a file needs at least one URL")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise ValueError(f"size must be a non-negative integer, not {size!r}")
    if max_bytes <= 0 or retries < 0 or connect_timeout <= 0 or read_timeout <= 0 or low_speed_seconds <= 0 or (
            low_speed_bytes < 0):
        raise ValueError("max_bytes, the timeouts and the low-speed window must be positive and retries not negative")
    cache = DownloadCache(Path(cache_dir))
    name = label or file_name(urls[-1])
    if digest is not None:
        hit = _cached(cache, digest, size, name)
        if hit is not None:
            return hit
    reporter = reporter if reporter is not None else Reporter()
    candidates = mirrors.candidates(urls)
    job = _Job(sha256=digest, size=size, limit=size if size is not None else max_bytes, cache=cache,
               reporter=reporter, label=name, connect_timeout=connect_timeout, read_timeout=read_timeout,
               retries=retries, backoff=backoff, low_speed_bytes=low_speed_bytes,
               low_speed_seconds=low_speed_seconds, deadline=deadline, session=session)
    lock_key = digest or "tofu-" + url_key("\n".join(candidates))
    try:
        with file_lock(cache.lock(lock_key), on_wait=reporter.note, what=f"fetching {name}"):
            if digest is not None:
                hit = _cached(cache, digest, size, name)  # another process fetched it meanwhile
                if hit is not None:
                    return hit
            return _try_all(job, candidates, offline=offline, name=name)
    finally:
        job.close()


def _cached(cache: DownloadCache, digest: str, size: int | None, name: str) -> Fetched | None:
    path = cache.lookup(digest)
    if path is None:
        return None
    n = path.stat().st_size
    if size is not None and n != size:
        raise FetchError(f"{name}: the lock says {size:,} bytes, but the file with its sha256 has {n:,}",
                         hint="the lock's size and sha256 disagree; fix the lock (or drop the size)")
    return Fetched(path=path, sha256=digest, size=n, url=path.as_uri(), pinned=False, cached=True)


def _try_all(job: _Job, candidates: list[str], *, offline: bool, name: str) -> Fetched:
    attempts: list[tuple[str, str]] = []
    for url in candidates:
        if offline and url[:7].lower() != "file://":
            attempts.append((url, "not tried (offline)"))
            continue
        try:
            path, digest, n = job.try_url(url)
        except _Fail as e:
            attempts.append((url, e.reason))
            continue
        except _OutOfTime:
            attempts.append((url, "stopped: the command's time limit ran out"))
            raise FetchError(f"could not fetch {name}: the command's time limit (--timeout) ran out",
                             attempts=attempts, hint="raise --timeout, or add a faster mirror in [mirrors]") from None
        except _LocalError as e:
            raise FetchError(f"could not fetch {name}: {e}", attempts=attempts,
                             hint="free some space or fix the permissions of the ckpm cache folder") from None
        return Fetched(path=path, sha256=digest, size=n, url=url, pinned=job.sha256 is None)
    raise FetchError(f"could not fetch {name}: {_summary(attempts)}", attempts=attempts, hint=_hint(attempts, offline))


def _summary(attempts: list[tuple[str, str]]) -> str:
    n = len(attempts)
    return "the only source failed" if n == 1 else f"all {n} sources failed"


def _hint(attempts: list[tuple[str, str]], offline: bool) -> str:
    reasons = [why for _, why in attempts]
    if offline and all(r == "not tried (offline)" for r in reasons):
        return ("ckpm is offline and no file:// mirror has this file: run without --offline, or add a "
                "folder mirror in [mirrors] (ckpm vendor DIR makes one)")
    if any(r.startswith("sha256 mismatch") for r in reasons):
        return ("a source served bytes other than the lock records: the file may have been replaced "
                "upstream; check it, then re-lock or fix the sha256")
    return "check the network or the URLs, or add a mirror in [mirrors] of ckpm.toml or the user config"
