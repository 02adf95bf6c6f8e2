"""ckpm.fetch: mirrors, the vendor layout, and verified downloads from real loopback servers.

No mocks: every server is a real ``ThreadingHTTPServer`` (or a bare listening socket) on
127.0.0.1, port 0, in a thread. Timeouts are small (0.5 s) so that stalls cost little; no
assertion depends on timing.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from ckpm.errors import FetchError
from ckpm.fetch import Fetched, Mirrors, fetch_file, vendor_relpath
from ckpm.fetch.cache import DownloadCache
from ckpm.report import Reporter

DATA = hashlib.sha256(b"seed").digest() * 4096  # 128 KiB, not all one byte
SHA = hashlib.sha256(DATA).hexdigest()
FAST = dict(connect_timeout=0.5, read_timeout=0.5, retries=0, backoff=0.01)


# -- servers ----------------------------------------------------------------------------------

@dataclass
class Route:
    """What the server does for one path: ``kind`` and its parameters."""

    kind: str  # ok | status | corrupt | drop_once | ignore_range | fail_then_ok | too_much | redirect | slow
    data: bytes = b""
    status: int = 200
    times: int = 0  # fail_then_ok: how many failures first; drop_once: how many drops
    location: str = ""
    length_header: bool = True


@dataclass
class Server:
    """A loopback HTTP server whose paths behave as their :class:`Route` says; it records every request."""

    url: str
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

    def route(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url + path


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: C901 - one branch per behaviour
        srv: Server = self.server.state
        path = self.path
        with self.server.lock:
            srv.requests.append((path, dict(self.headers.items())))
            srv.hits[path] += 1
            n = srv.hits[path]
        route = srv.routes.get(path)
        if route is None:
            self.send_error(404)
            return
        if route.kind == "status":
            self.send_error(route.status)
            return
        if route.kind == "redirect":
            self.send_response(302)
            self.send_header("Location", route.location)
            self.end_headers()
            return
        if route.kind == "fail_then_ok" and n <= route.times:
            self.send_error(503)
            return
        data = route.data
        if route.kind == "corrupt":
            data = bytes([data[0] ^ 1]) + data[1:]
        if route.kind == "too_much":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the body ends when the connection closes
            self.wfile.write(data)
            return
        if route.kind == "slow":
            time.sleep(0.3)
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        honour = m is not None and route.kind not in ("ignore_range",) and int(m.group(1)) < len(data)
        if honour:
            assert m is not None
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if route.kind in ("drop_once", "ignore_range") and n <= max(route.times, 1):
            self.wfile.write(body[: len(body) // 2])  # then the connection closes: a cut download
            self.wfile.flush()
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state = Server(url=f"http://127.0.0.1:{httpd.server_address[1]}", routes={})
    httpd.state = state  # type: ignore[attr-defined]
    httpd.lock = threading.Lock()  # type: ignore[attr-defined]
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def refusing_url() -> str:
    """A URL on a port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/zlib.tar.gz"


@pytest.fixture
def stalling_url() -> Iterator[str]:
    """A server that accepts connections (the kernel's backlog does) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield f"http://127.0.0.1:{s.getsockname()[1]}/zlib.tar.gz"
    s.close()


class RecordingReporter(Reporter):
    def __init__(self) -> None:
        super().__init__()
        self.transfers: list[tuple[str, int | None, int]] = []
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    @contextlib.contextmanager
    def transfer(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        got = [0]

        def advance(n: int) -> None:
            got[0] += n

        yield advance
        self.transfers.append((label, total, got[0]))


def cached_files(cache: Path) -> list[str]:
    folder = cache / "downloads" / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- mirrors ----------------------------------------------------------------------------------

def test_mirror_table_longest_prefix_then_the_url(tmp_path: Path) -> None:
    m = Mirrors.from_table({
        "https://zlib.net/": ["https://other.example/"],
        "https://zlib.net/fossils/": ["https://mirror.example/zlib/", "file:///srv/mirror/zlib/",
                                      "vendor/zlib.net/fossils/"],
    }, where="ckpm.toml", base=tmp_path)
    vendor = (tmp_path / "vendor" / "zlib.net" / "fossils").as_uri()
    assert m.candidates(["https://zlib.net/fossils/zlib-1.3.1.tar.gz", "https://github.com/x.tar.gz"]) == [
        "https://mirror.example/zlib/zlib-1.3.1.tar.gz",
        "file:///srv/mirror/zlib/zlib-1.3.1.tar.gz",
        f"{vendor}/zlib-1.3.1.tar.gz",
        "https://zlib.net/fossils/zlib-1.3.1.tar.gz",
        "https://github.com/x.tar.gz",
    ]
    # the shorter prefix still applies where the longer one does not
    assert m.candidates(["https://zlib.net/zlib.tar.gz"]) == ["https://other.example/zlib.tar.gz",
                                                              "https://zlib.net/zlib.tar.gz"]
    # scheme and host are matched case-insensitively
    assert m.candidates(["HTTPS://ZLIB.NET/fossils/a.tgz"])[0] == "https://mirror.example/zlib/a.tgz"
    # offline: file:// candidates only
    assert m.candidates(["https://zlib.net/fossils/a.tgz"], offline=True) == [
        "file:///srv/mirror/zlib/a.tgz", f"{vendor}/a.tgz"]


def test_mirror_rule_order_breaks_ties_and_then_puts_the_project_first() -> None:
    project = Mirrors.from_table({"https://a.example/": ["https://p1/"]}, where="ckpm.toml")
    user = Mirrors.from_table({"https://a.example/": ["https://u1/"], "https://": ["https://u2/"]}, where="config")
    both = project.then(user)
    assert both.candidates(["https://a.example/f.tgz"]) == ["https://p1/f.tgz", "https://u1/f.tgz",
                                                             "https://a.example/f.tgz"]
    assert both.candidates(["https://b.example/f.tgz"]) == ["https://u2/b.example/f.tgz", "https://b.example/f.tgz"]
    # two rules with the same prefix built directly: the first wins
    tie = Mirrors((("https://a.example/", ("https://first/",)), ("https://a.example/", ("https://second/",))))
    assert tie.candidates(["https://a.example/f"]) == ["https://first/f", "https://a.example/f"]
    # duplicates are removed, the order kept
    assert Mirrors().candidates(["https://x/a", "https://x/a", "file:///a"]) == ["https://x/a", "file:///a"]


def test_mirror_rewrites_never_climb_out_of_a_mirror(tmp_path: Path) -> None:
    m = Mirrors.from_table({"https://zlib.net/": [str(tmp_path), "https://mirror.example/"]}, where="w")
    for bad in ("https://zlib.net/../../etc/passwd", "https://zlib.net/a/%2e%2e/%2E%2E/etc/passwd",
                "https://zlib.net/a%2f..%2f..%2fetc", "https://zlib.net/a\\..\\..\\etc"):
        cands = m.candidates([bad])
        assert not any(c.startswith("file:") for c in cands), (bad, cands)
        assert cands[-1] == bad  # the URL itself is still tried
    assert m.candidates(["https://zlib.net/a%20b.tgz"])[0] == tmp_path.as_uri() + "/a%20b.tgz"


@pytest.mark.parametrize("table, words", [
    ([], "must be a table"),
    ({"ftp://x/": ["https://y/"]}, "'ftp://x/'"),
    ({"https://x/": ["gopher://y/"]}, "'gopher://y/'"),
    ({"https://x/": [42]}, "a mirror of 'https://x/'"),
    ({"https://x/": 42}, "must be a list"),
    ({"https://x/": ["relative/folder"]}, "'relative/folder'"),
    ({"https://x/": ["file://host/srv/"]}, "three slashes"),
    ({"https://x/": ["https://y/\x1b[2J"]}, "control character"),
    ({"https://x/": ["https://y/" + "a" * 3000]}, "longer than 2048"),
    ({"https://x/": [f"https://y{i}/" for i in range(17)]}, "at most 16"),
    ({f"https://x{i}/": [] for i in range(257)}, "at most 256"),
])
def test_mirror_table_validation(table: Any, words: str) -> None:
    with pytest.raises(ValueError) as e:
        Mirrors.from_table(table, where="ckpm.toml [mirrors]")
    assert "ckpm.toml [mirrors]" in str(e.value) and words in str(e.value)


def test_mirror_relative_folder_and_single_string(tmp_path: Path) -> None:
    m = Mirrors.from_table({"https://x.example/dl": "mirror"}, where="w", base=tmp_path)
    assert m.rules == (("https://x.example/dl", ((tmp_path / "mirror").as_uri() + "/",)),)
    assert m.candidates(["https://x.example/dl/a.tgz"])[0] == (tmp_path / "mirror").as_uri() + "/a.tgz"


# -- vendor layout ----------------------------------------------------------------------------

@pytest.mark.parametrize("url, rel", [
    ("https://zlib.net/fossils/zlib-1.3.1.tar.gz", "zlib.net/fossils/zlib-1.3.1.tar.gz"),
    ("https://ZLIB.Net/A.tgz", "zlib.net/A.tgz"),
    ("http://zlib.net:8080/a.tgz", "zlib.net_8080/a.tgz"),
    ("https://zlib.net:443/a.tgz", "zlib.net/a.tgz"),
    ("https://user:pw@zlib.net/a%20b.tgz#frag", "zlib.net/a b.tgz"),
    ("https://zlib.net./a.tgz", "zlib.net/a.tgz"),
])
def test_vendor_relpath(url: str, rel: str) -> None:
    assert vendor_relpath(url) == rel


def test_vendor_relpath_query_gets_a_hash_suffix() -> None:
    a = vendor_relpath("https://x.example/dl?file=a.tgz")
    b = vendor_relpath("https://x.example/dl?file=b.tgz")
    assert a.startswith("x.example/dl_") and b.startswith("x.example/dl_") and a != b


@pytest.mark.parametrize("url", [
    "https://x.example/a/../../etc/passwd",
    "https://x.example/a/%2e%2e/%2E%2E/etc/passwd",
    "https://x.example/%2e%2e",
    "https://x.example/a%2fb",
    "https://x.example/a%5c..%5cb",
    "https://x.example/a\\..\\b",
    "https://x.example/./a",
    "https://x.example/a//b",
    "https://x.example/dir/",
    "https://x.example",
    "https:///a.tgz",
    "https://../a.tgz",
    "https://x.example/a%00b",
    "https://x.example/a%ffb",
    "https://x.example/C:/a",
    "file:///etc/passwd",
    "ftp://x.example/a",
    "https://x.example/" + "a" * 300,
])
def test_vendor_relpath_refuses_what_cannot_be_mapped_safely(url: str) -> None:
    with pytest.raises(ValueError):
        vendor_relpath(url)


def test_a_vendored_folder_is_a_mirror_with_one_rule(tmp_path: Path, refusing_url: str) -> None:
    url = refusing_url.replace("zlib.tar.gz", "Dir%20One/zlib.tar.gz") + "?v=1"
    target = tmp_path / "vendor" / vendor_relpath(url)
    target.parent.mkdir(parents=True)
    target.write_bytes(DATA)
    mirrors = Mirrors.from_table({"http://": ["vendor"]}, where="w", base=tmp_path)
    got = fetch_file([url], sha256=SHA, cache_dir=tmp_path / "cache", mirrors=mirrors, offline=True, **FAST)
    assert got.url.startswith((tmp_path / "vendor").as_uri()) and got.sha256 == SHA


# -- downloads --------------------------------------------------------------------------------

def test_falls_through_failing_mirrors_to_one_that_works(server: Server, refusing_url: str, stalling_url: str,
                                                         tmp_path: Path) -> None:
    missing = server.route("/missing/zlib.tar.gz", Route("status", status=404))
    corrupt = server.route("/corrupt/zlib.tar.gz", Route("corrupt", DATA))
    good = server.route("/good/zlib.tar.gz", Route("ok", DATA))
    rep = RecordingReporter()
    got = fetch_file([refusing_url, missing, corrupt, stalling_url, good], sha256=SHA, cache_dir=tmp_path,
                     reporter=rep, label="zlib 1.3.1", **FAST)
    assert isinstance(got, Fetched)
    assert got.url == good and got.sha256 == SHA and got.size == len(DATA) and not got.pinned
    assert got.path.read_bytes() == DATA and got.path.parent == tmp_path / "downloads" / "sha256"
    assert cached_files(tmp_path) == [SHA]
    assert ("zlib 1.3.1", len(DATA), len(DATA)) in rep.transfers
    # nothing left behind in the partial folder
    assert [p.name for p in (tmp_path / "downloads" / "partial").iterdir() if p.suffix == ".part"] == []


def test_all_failing_names_every_candidate_and_why(server: Server, refusing_url: str, stalling_url: str,
                                                   tmp_path: Path) -> None:
    missing = server.route("/missing/zlib.tar.gz", Route("status", status=404))
    corrupt = server.route("/corrupt/zlib.tar.gz", Route("corrupt", DATA))
    broken = server.route("/broken/zlib.tar.gz", Route("status", status=503))
    urls = [refusing_url, missing, corrupt, stalling_url, broken, "ftp://x.example/zlib.tar.gz"]
    with pytest.raises(FetchError) as e:
        fetch_file(urls, sha256=SHA, cache_dir=tmp_path, **{**FAST, "retries": 1})
    err = e.value
    assert "zlib.tar.gz" in err.message
    assert [u for u, _ in err.attempts] == urls
    reasons = dict(err.attempts)
    assert reasons[refusing_url] == "connection refused"
    assert reasons[missing] == "HTTP 404"
    assert reasons[corrupt] == f"sha256 mismatch: got {hashlib.sha256(bytes([DATA[0] ^ 1]) + DATA[1:]).hexdigest()[:12]}…, expected {SHA[:12]}…"
    assert reasons[stalling_url].startswith("read timed out after 0.5 s")
    assert reasons[broken] == "HTTP 503 after 2 tries"
    assert "unsupported URL scheme 'ftp'" in reasons[urls[-1]]
    assert all(f"{u}: {w}" in err.details for u, w in err.attempts)
    assert err.hint and "sha256" in err.hint
    assert server.hits["/missing/zlib.tar.gz"] == 1  # a 404 is not retried
    assert server.hits["/broken/zlib.tar.gz"] == 2
    assert cached_files(tmp_path) == []


def test_5xx_then_success_is_retried(server: Server, tmp_path: Path) -> None:
    url = server.route("/flaky.tgz", Route("fail_then_ok", DATA, times=2))
    got = fetch_file([url], sha256=SHA, cache_dir=tmp_path, **{**FAST, "retries": 2})
    assert got.sha256 == SHA and server.hits["/flaky.tgz"] == 3


def test_sha256_is_case_insensitive_and_checked(server: Server, tmp_path: Path) -> None:
    url = server.route("/a.tgz", Route("ok", DATA))
    assert fetch_file([url], sha256=SHA.upper(), cache_dir=tmp_path, **FAST).sha256 == SHA
    for bad in ("abc", "g" * 64, SHA + "0", "sha256:" + SHA):
        with pytest.raises(ValueError):
            fetch_file([url], sha256=bad, cache_dir=tmp_path, **FAST)


def test_warm_cache_makes_no_request(server: Server, tmp_path: Path) -> None:
    url = server.route("/a.tgz", Route("ok", DATA))
    first = fetch_file([url], sha256=SHA, cache_dir=tmp_path, **FAST)
    assert not first.cached and server.hits["/a.tgz"] == 1
    again = fetch_file([url], sha256=SHA, cache_dir=tmp_path, **FAST)
    assert again.cached and again.path == first.path and server.hits["/a.tgz"] == 1
    # even offline, and even when every URL is gone
    gone = fetch_file(["http://127.0.0.1:9/nothing"], sha256=SHA, cache_dir=tmp_path, offline=True)
    assert gone.path == first.path and server.hits["/a.tgz"] == 1
    assert not os.access(first.path, os.W_OK) or os.geteuid() == 0  # read-only (root may write anyway)


def test_trust_on_first_use_pins_the_hash(server: Server, tmp_path: Path) -> None:
    url = server.route("/a.tgz", Route("ok", DATA))
    got = fetch_file([server.url + "/missing.tgz", url], sha256=None, cache_dir=tmp_path, **FAST)
    assert got.pinned and got.sha256 == SHA and got.url == url and got.path.read_bytes() == DATA
    again = fetch_file([url], sha256=got.sha256, cache_dir=tmp_path, **FAST)
    assert again.cached and not again.pinned and server.hits["/a.tgz"] == 1


def test_offline_tries_only_file_urls(server: Server, tmp_path: Path) -> None:
    url = server.route("/a.tgz", Route("ok", DATA))
    with pytest.raises(FetchError) as e:
        fetch_file([url], sha256=SHA, cache_dir=tmp_path, offline=True, **FAST)
    assert e.value.attempts == [(url, "not tried (offline)")]
    assert e.value.hint and "offline" in e.value.hint
    assert server.hits["/a.tgz"] == 0
    local = tmp_path / "mirror" / "a.tgz"
    local.parent.mkdir()
    local.write_bytes(DATA)
    mirrors = Mirrors.from_table({server.url + "/": [str(local.parent)]}, where="w")
    got = fetch_file([url], sha256=SHA, cache_dir=tmp_path / "c", offline=True, mirrors=mirrors, **FAST)
    assert got.url == local.as_uri() and got.path.read_bytes() == DATA and server.hits["/a.tgz"] == 0


def test_file_urls(tmp_path: Path) -> None:
    src = tmp_path / "a b.tgz"
    src.write_bytes(DATA)
    url = src.as_uri()
    assert "%20" in url
    got = fetch_file([url], sha256=SHA, cache_dir=tmp_path / "c")
    assert got.url == url and got.path.read_bytes() == DATA and got.path != src
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FetchError) as e:
        fetch_file([fifo.as_uri(), (tmp_path / "nope").as_uri(), tmp_path.as_uri(), "file://host/x"],
                   sha256=SHA, cache_dir=tmp_path / "d")
    assert [w for _, w in e.value.attempts] == ["not a regular file", "no such file", "not a regular file",
                                                "a file:// URL with a host ('host') is not supported"]


def test_size_bound_while_streaming(server: Server, tmp_path: Path) -> None:
    url = server.route("/big.tgz", Route("too_much", DATA))  # no Content-Length
    with pytest.raises(FetchError) as e:
        fetch_file([url], sha256=SHA, size=1024, cache_dir=tmp_path, **FAST)
    assert e.value.attempts == [(url, "more than 1,024 bytes")]
    with pytest.raises(FetchError) as e:
        fetch_file([url], sha256=None, max_bytes=4096, cache_dir=tmp_path, **FAST)
    assert e.value.attempts == [(url, "more than 4,096 bytes")]
    # announced by Content-Length: refused before reading the body
    url2 = server.route("/big2.tgz", Route("ok", DATA))
    with pytest.raises(FetchError) as e:
        fetch_file([url2], sha256=SHA, size=1024, cache_dir=tmp_path, **FAST)
    assert e.value.attempts == [(url2, f"more than 1,024 bytes (the server says {len(DATA):,})")]
    # the right size passes; too few bytes is a size mismatch
    assert fetch_file([url], sha256=SHA, size=len(DATA), cache_dir=tmp_path, **FAST).size == len(DATA)
    with pytest.raises(FetchError) as e:
        fetch_file([url], sha256=None, size=len(DATA) + 1, cache_dir=tmp_path / "x", **FAST)
    assert e.value.attempts[0][1].startswith("size mismatch")
    assert list((tmp_path / "downloads" / "partial").glob("*.part")) == []


def test_range_resume_after_a_cut(server: Server, tmp_path: Path) -> None:
    url = server.route("/cut.tgz", Route("drop_once", DATA, times=1))
    rep = RecordingReporter()
    got = fetch_file([url], sha256=SHA, cache_dir=tmp_path, reporter=rep, **{**FAST, "retries": 1})
    assert got.path.read_bytes() == DATA
    ranges = [h.get("Range") for p, h in server.requests if p == "/cut.tgz"]
    assert ranges == [None, f"bytes={len(DATA) // 2}-"]
    assert all(h.get("Accept-Encoding") == "identity" for _, h in server.requests)
    assert rep.transfers[-1] == ("cut.tgz", len(DATA), len(DATA))


def test_resume_across_runs_and_a_server_that_ignores_range(server: Server, tmp_path: Path) -> None:
    url = server.route("/cut.tgz", Route("ignore_range", DATA, times=1))
    with pytest.raises(FetchError) as e:  # no retry: the part stays for the next run
        fetch_file([url], sha256=SHA, cache_dir=tmp_path, **FAST)
    assert e.value.attempts == [(url, f"connection closed after {len(DATA) // 2:,} of {len(DATA):,} bytes")]
    part = DownloadCache(tmp_path).partial(url)
    assert part.stat().st_size == len(DATA) // 2
    got = fetch_file([url], sha256=SHA, cache_dir=tmp_path, **FAST)  # asks for the rest, gets it all
    assert got.path.read_bytes() == DATA and not part.exists()
    assert list(part.parent.iterdir()) == []  # no .part, and no .part.lock left behind either
    assert [h.get("Range") for _, h in server.requests] == [None, f"bytes={len(DATA) // 2}-"]


def test_a_stale_partial_file_is_dropped_on_a_hash_mismatch(server: Server, tmp_path: Path) -> None:
    url = server.route("/a.tgz", Route("ok", DATA))
    part = DownloadCache(tmp_path).partial(url)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # not a prefix of DATA: the resumed file does not verify
    got = fetch_file([url], sha256=SHA, cache_dir=tmp_path, **FAST)
    assert got.path.read_bytes() == DATA
    assert [h.get("Range") for _, h in server.requests] == ["bytes=1000-", None]


def test_redirects_are_followed_but_not_to_other_schemes(server: Server, tmp_path: Path) -> None:
    good = server.route("/good.tgz", Route("ok", DATA))
    hop = server.route("/hop.tgz", Route("redirect", location=good))
    assert fetch_file([hop], sha256=SHA, cache_dir=tmp_path, **FAST).url == hop
    secret = tmp_path / "secret"
    secret.write_bytes(DATA)
    evil = server.route("/evil.tgz", Route("redirect", location=secret.as_uri()))
    loop = server.route("/loop.tgz", Route("redirect", location="/loop.tgz"))
    with pytest.raises(FetchError) as e:
        fetch_file([evil, loop], sha256=SHA, cache_dir=tmp_path / "c", **FAST)
    assert dict(e.value.attempts) == {evil: "redirected to a URL that is not http(s)",
                                      loop: "more than 10 redirects"}


def _fetch_in_thread(url: str, cache: Path, out: list[Any]) -> None:
    try:
        out.append(fetch_file([url], sha256=SHA, cache_dir=cache, **FAST))
    except BaseException as e:  # noqa: BLE001 - reported by the test
        out.append(e)


def test_two_fetchers_of_one_file_download_it_once(server: Server, tmp_path: Path) -> None:
    url = server.route("/slow.tgz", Route("slow", DATA))
    results: list[Any] = []
    threads = [threading.Thread(target=_fetch_in_thread, args=(url, tmp_path, results)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, Fetched) for r in results), results
    assert len(results) == 2 and results[0].path == results[1].path
    assert server.hits["/slow.tgz"] == 1


def test_two_processes_download_it_once(server: Server, tmp_path: Path) -> None:
    import multiprocessing

    url = server.route("/slow.tgz", Route("slow", DATA))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=fetch_file, args=([url],),
                         kwargs=dict(sha256=SHA, cache_dir=tmp_path, **FAST)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert server.hits["/slow.tgz"] == 1 and cached_files(tmp_path) == [SHA]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        fetch_file([], sha256=SHA, cache_dir=tmp_path)
    with pytest.raises(ValueError):
        fetch_file("https://x/a", sha256=SHA, cache_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fetch_file(["https://x/a"], sha256=SHA, size=-1, cache_dir=tmp_path)
