"""Transfers are bounded: size, time, speed; Ctrl-C; concurrent processes; one warnings channel.

Real servers on 127.0.0.1 (port 0) that stop by themselves, real git repositories, real
child processes. Memory is measured as the max RSS of a child process that does the read.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Iterator

import pygit2
import pytest

from ckpm.errors import GitSourceError, IndexReadError
from ckpm.index import transfer
from ckpm.index.cache import cache_key
from ckpm.index.git import GitIndex, clone_bare, entry_lock
from ckpm.index.gitsource import GitComponentSource
from ckpm.index.http import HttpIndex
from ckpm.index.transfer import Limits
from ckpm.report import Reporter
from ckpm.testing import component_toml, entry

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024

#: limits that make a slow or silent server fail within about a second
FAST = Limits(timeout=10.0, low_speed_bytes=100, low_speed_seconds=1.0)


# -- servers ---------------------------------------------------------------------------------

class RawServer:
    """A TCP server on 127.0.0.1 that runs ``handler(conn)`` per connection in a thread.

    It stops at teardown, or by itself after ``lifetime`` seconds as a last resort; each handler
    is bounded by the server's stop flag and by the client hanging up. The lifetime is a safety
    net, never what a test waits for: on a loaded machine a child process can take tens of
    seconds to start, and a server that went away first turns a test's Ctrl-C into a
    connection error.
    """

    def __init__(self, handler: Callable[["RawServer", socket.socket], None], lifetime: float = 600.0) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopped = threading.Event()
        self.connections = 0
        self.sent = 0
        self.hung_up = threading.Event()  # the client closed a connection
        self._deadline = time.monotonic() + lifetime
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self.stopped.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)
        self.stopped.set()
        self.sock.close()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handler(self, conn)
        except OSError:
            self.hung_up.set()
        finally:
            conn.close()

    def alive(self) -> bool:
        return not self.stopped.is_set() and time.monotonic() < self._deadline

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(5)
        for t in self._threads:
            t.join(5)


def read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def silent(server: RawServer, conn: socket.socket) -> None:
    """Accept and say nothing; notice when the client hangs up."""
    conn.settimeout(0.1)
    while server.alive():
        try:
            if conn.recv(4096) == b"":
                server.hung_up.set()
                return
        except socket.timeout:
            continue


def trickle(server: RawServer, conn: socket.socket) -> None:
    """Answer 200 with a 1000-byte body sent one byte per 0.2 s."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
    for _ in range(1000):
        if not server.alive():
            return
        conn.sendall(b"{")
        server.sent += 1
        time.sleep(0.2)


CONFIG = json.dumps({"format": 1, "name": "web"}).encode()


def config_then(handler: Callable[[RawServer, socket.socket], None]) -> Callable[[RawServer, socket.socket], None]:
    """Serve a good config.json, and hand every other request to ``handler``."""
    def routed(server: RawServer, conn: socket.socket) -> None:
        request = read_request(conn)
        if request.split(b" ")[1:2] == [b"/config.json"]:
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(CONFIG) + CONFIG)
            return
        handler(server, conn)
    return routed


def reading(handler: Callable[[RawServer, socket.socket], None]) -> Callable[[RawServer, socket.socket], None]:
    """Read the request, then hand the connection to ``handler``."""
    def wrapped(server: RawServer, conn: socket.socket) -> None:
        read_request(conn)
        handler(server, conn)
    return wrapped


def endless(server: RawServer, conn: socket.socket) -> None:
    """Answer 200 without a length and stream zeros until the client hangs up."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    block = b"0" * (64 * 1024)
    while server.alive() and server.sent < 4096 * MiB:
        conn.sendall(block)
        server.sent += len(block)


def serve_bytes(body: bytes, headers: str = "") -> Callable[[RawServer, socket.socket], None]:
    def handler(server: RawServer, conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nConnection: close\r\n{headers}\r\n".encode())
        view = memoryview(body)
        for i in range(0, len(body), 64 * 1024):
            if not server.alive():
                return
            conn.sendall(view[i:i + 64 * 1024])
            server.sent += len(view[i:i + 64 * 1024])
    return handler


def gzip_bomb(decoded: int) -> bytes:
    """A gzip body of several members, each 16 MiB of zeros: ~1000:1."""
    member_size = 16 * MiB
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    member = c.compress(bytes(member_size)) + c.flush()
    return member * (decoded // member_size)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    made: list[RawServer] = []

    def make(handler: Callable[[RawServer, socket.socket], None], lifetime: float = 600.0) -> RawServer:
        s = RawServer(handler, lifetime)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class Recorder(Reporter):
    """A reporter that also records notes and progress labels."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []
        self.labels: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def progress(self, label: str):  # type: ignore[no-untyped-def, override]
        self.labels.append(label)
        return super().progress(label)


def run_child(code: str, timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)  # type: ignore[call-overload, no-any-return]


def cache_files(cache: Path) -> list[str]:
    """Everything in the cache but lock files."""
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")
                  if p.is_file() and not p.name.endswith(".lock"))


# -- HTTP: size --------------------------------------------------------------------------------

READ_IN_CHILD = """
    import json, resource, sys
    from ckpm.errors import IndexReadError
    from ckpm.index.http import HttpIndex
    idx = HttpIndex(sys.argv[1], cache_dir=sys.argv[2])
    try:
        idx.entries("lib-a")
        out = {"error": None}
    except IndexReadError as e:
        out = {"error": e.message}
    # the peak of this process's own memory: ru_maxrss also counts the parent's (pytest's)
    # resident size, which Linux carries across fork and exec; VmHWM is this program's alone
    try:
        with open("/proc/self/status") as f:
            out["maxrss_kib"] = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
    except (OSError, StopIteration):
        out["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))
"""


def _read_entries_in_child(url: str, cache: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(READ_IN_CHILD), url, str(cache)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout)
    return out


@pytest.mark.skipif(sys.platform == "win32", reason="max RSS through the resource module")
def test_endless_body_stops_at_the_cap_in_bounded_memory(raw_server, tmp_path: Path) -> None:
    server = raw_server(config_then(endless))
    cache = tmp_path / "cache"
    out = _read_entries_in_child(server.url, cache)
    msg = str(out["error"])
    assert f"{server.url}/li/b-/lib-a" in msg and "over the cap of 8,388,608 bytes" in msg and "\n" not in msg
    assert int(str(out["maxrss_kib"])) < 200 * 1024  # the body is endless; 8 MiB read, then hung up
    assert server.hung_up.wait(300)
    assert server.sent < 256 * MiB
    assert cache_files(cache) == [f"index-http/{cache_key(server.url)}/config.json"]  # nothing else cached


@pytest.mark.skipif(sys.platform == "win32", reason="max RSS through the resource module")
def test_gzip_bomb_stops_at_the_decoded_cap_in_bounded_memory(raw_server, tmp_path: Path) -> None:
    bomb = gzip_bomb(2048 * MiB)  # ~2 MB on the wire, 2 GiB decoded
    assert len(bomb) < 8 * MiB
    server = raw_server(config_then(serve_bytes(bomb, f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n")))
    cache = tmp_path / "cache"
    out = _read_entries_in_child(server.url, cache)
    msg = str(out["error"])
    assert f"{server.url}/li/b-/lib-a" in msg and "more than 8,388,608 bytes decoded (gzip)" in msg
    assert "over the cap of 8,388,608 bytes" in msg
    assert int(str(out["maxrss_kib"])) < 200 * 1024
    assert cache_files(cache) == [f"index-http/{cache_key(server.url)}/config.json"]


def test_deflate_bomb_and_content_length_over_the_cap(raw_server, tmp_path: Path) -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
    bomb = c.compress(bytes(32 * MiB)) + c.flush()
    server = raw_server(config_then(serve_bytes(bomb, "Content-Encoding: deflate\r\n")))
    with pytest.raises(IndexReadError, match=r"more than 8,388,608 bytes decoded \(deflate\), over the cap") as ei:
        HttpIndex(server.url, cache_dir=tmp_path / "c1").entries("lib-a")
    assert f"{server.url}/li/b-/lib-a" in ei.value.message
    big = raw_server(reading(serve_bytes(b"x" * 1024, f"Content-Length: {9 * MiB}\r\n")))
    with pytest.raises(IndexReadError, match=r"9,437,184 bytes \(Content-Length\), over the cap of 65,536") as ei:
        HttpIndex(big.url, cache_dir=tmp_path / "c2").config  # config.json's own, smaller cap
    assert f"{big.url}/config.json" in ei.value.message and "\n" not in ei.value.message
    assert cache_files(tmp_path / "c1") == [f"index-http/{cache_key(server.url)}/config.json"]  # not lib-a
    assert cache_files(tmp_path / "c2") == []


def test_compressed_bodies_within_the_cap_are_read(raw_server, tmp_path: Path) -> None:
    cfg = json.dumps({"format": 1, "name": "zipped"}).encode()
    gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)  # deflate without the zlib wrapper
    for body, enc in ((gz.compress(cfg) + gz.flush(), "gzip"), (raw.compress(cfg) + raw.flush(), "deflate")):
        server = raw_server(reading(serve_bytes(body, f"Content-Encoding: {enc}\r\nContent-Length: {len(body)}\r\n")))
        idx = HttpIndex(server.url, cache_dir=tmp_path / enc)
        assert idx.name == "zipped"
        assert cache_files(tmp_path / enc) == [f"index-http/{cache_key(server.url)}/config.json"]


def test_chunked_bodies_are_read_and_capped(raw_server, tmp_path: Path) -> None:
    cfg = json.dumps({"format": 1, "name": "chunky"}).encode()

    def chunked(body: bytes, headers: str = "") -> Callable[[RawServer, socket.socket], None]:
        def handler(server: RawServer, conn: socket.socket) -> None:
            read_request(conn)
            conn.sendall(f"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n{headers}\r\n".encode())
            for i in range(0, len(body), 4096):
                part = body[i:i + 4096]
                conn.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        return handler

    ok = raw_server(chunked(cfg))
    assert HttpIndex(ok.url, cache_dir=tmp_path / "ok").name == "chunky"
    big = raw_server(chunked(b" " * (70 * 1024)))  # no Content-Length to refuse it early
    with pytest.raises(IndexReadError, match="more than 65,536 bytes, over the cap of 65,536 bytes") as ei:
        HttpIndex(big.url, cache_dir=tmp_path / "big").config
    assert f"{big.url}/config.json" in ei.value.message
    assert cache_files(tmp_path / "big") == []


def test_summary_has_its_own_larger_cap(raw_server, tmp_path: Path, index_factory) -> None:
    root = index_factory({"lib-a": [entry("lib-a", "1.0")]})
    summary = (root / "summary.jsonl").read_bytes()
    padding = b"\n" * (9 * MiB)  # blank lines: over the 8 MiB file cap, within the 64 MiB summary cap
    files = {"/config.json": (root / "config.json").read_bytes(), "/summary.jsonl": summary + padding}

    def handler(server: RawServer, conn: socket.socket) -> None:
        path = read_request(conn).split(b" ")[1].decode()
        body = files.get(path)
        if body is None:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        conn.sendall(body)

    server = raw_server(handler)
    idx = HttpIndex(server.url, cache_dir=tmp_path / "cache")
    assert [s.name for s in idx.summaries()] == ["lib-a"]


# -- HTTP: time and speed ----------------------------------------------------------------------

def test_trickling_server_is_too_slow(raw_server, tmp_path: Path) -> None:
    server = raw_server(trickle)
    cache = tmp_path / "cache"
    with pytest.raises(IndexReadError) as ei:
        HttpIndex(server.url, cache_dir=cache, limits=FAST).config
    msg = ei.value.message
    assert f"{server.url}/config.json" in msg and "too slow" in msg and "\n" not in msg
    assert ei.value.hint and "--timeout" in ei.value.hint
    assert server.hung_up.wait(300)
    assert server.sent < 100
    assert cache_files(cache) == []


def test_whole_command_deadline_bounds_a_trickle(raw_server, tmp_path: Path) -> None:
    server = raw_server(trickle)
    patient = Limits(timeout=60.0, low_speed_bytes=1, low_speed_seconds=60.0)  # only the deadline can stop it
    idx = HttpIndex(server.url, cache_dir=tmp_path / "cache", limits=patient, timeout=60.0)
    idx.deadline = time.monotonic() + 1.0  # set later, as Workspace.set_deadline does
    with pytest.raises(IndexReadError, match="time limit"):
        idx.config
    assert server.sent < 60
    # a deadline already past: no request at all
    late = HttpIndex(server.url, cache_dir=tmp_path / "cache", deadline=time.monotonic() - 1)
    before = server.connections
    with pytest.raises(IndexReadError, match="time limit"):
        late.config
    assert server.connections == before


def test_silent_http_server(raw_server, tmp_path: Path) -> None:
    server = raw_server(silent)
    with pytest.raises(IndexReadError, match="too slow") as ei:
        HttpIndex(server.url, cache_dir=tmp_path / "cache", limits=FAST).config
    assert f"{server.url}/config.json" in ei.value.message


def test_slow_server_with_a_cached_copy_warns_through_the_reporter(served_index, raw_server, tmp_path: Path) -> None:
    url, cache = served_index
    idx = HttpIndex(url, cache_dir=cache)
    assert idx.name == "web"
    # the same index URL now answers slowly: serve it from a trickling server on another port,
    # then point the cache of that URL at what we fetched
    server = raw_server(trickle)
    src = cache / "index-http" / cache_key(url)
    dst = cache / "index-http" / cache_key(server.url)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dst)
    rep = Recorder()
    slow = HttpIndex(server.url, cache_dir=cache, limits=FAST, reporter=rep)
    assert slow.name == "web"
    want = f"{server.url}/config.json: too slow (fewer than 100 bytes in 1 s); using the cached copy"
    assert rep.warnings == [want] and slow.reporter.warnings == [want]
    assert rep.labels == [f"fetching {server.url}/config.json"]


@pytest.fixture
def served_index(index_factory, http_index_server, tmp_path: Path) -> tuple[str, Path]:
    root = index_factory({"lib-a": [entry("lib-a", "1.0")]}, name="web")
    http_index_server.serve(root)
    return http_index_server.url, tmp_path / "cache"


def test_processes_filling_one_http_cache_at_once_leave_whole_files(served_index, http_index_server,
                                                                   tmp_path: Path) -> None:
    """No lock per cache file: each is one rename, so processes that fetch the same files at
    the same moment each write a whole copy, and every reader sees one."""
    url, cache = served_index
    code = ("import sys; from pathlib import Path; from ckpm.index.http import HttpIndex\n"
            "idx = HttpIndex(sys.argv[1], cache_dir=Path(sys.argv[2]))\n"
            "print(idx.name, [str(e.version) for e in idx.entries('lib-a')])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, url, str(cache)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}) for _ in range(6)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outs == ["web ['1.0']"] * 6
    files = sorted(x.name for x in (cache / "index-http" / cache_key(url)).rglob("*") if x.is_file())
    assert files == ["config.json", "lib-a"]  # no temporary file left behind
    # and what they wrote is read back, offline, by a seventh
    offline = HttpIndex(url, cache_dir=cache, offline=True)
    assert offline.name == "web" and [str(e.version) for e in offline.entries("lib-a")] == ["1.0"]
    # processes that started with an empty cache at the same moment may each have fetched a file
    # in full (the price of having no lock): at most once per process, and never more
    assert all(n <= 6 for n in http_index_server.refetched().values())
    http_index_server.reset_counts()


def _hold_lock(path: Path) -> subprocess.Popen[str]:
    """A child process that holds ``path``'s file lock until its stdin closes."""
    code = ("import sys; from ckpm.fsutil import file_lock\n"
            f"with file_lock({str(path)!r}):\n    print('held', flush=True); sys.stdin.read()\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


# -- git: time and speed -----------------------------------------------------------------------

def test_git_source_against_a_silent_server_fails_in_time(raw_server, tmp_path: Path) -> None:
    server = raw_server(silent)
    url = f"{server.url}/tool.git"
    cache = tmp_path / "cache"
    src = GitComponentSource(url, cache_dir=cache, limits=FAST)
    with pytest.raises(GitSourceError) as ei:
        src.versions()
    msg = ei.value.message
    assert url in msg and "too slow" in msg and "\n" not in msg
    assert ei.value.hint and "--timeout" in ei.value.hint
    assert server.hung_up.wait(300)  # the git process was stopped, its connection closed
    assert cache_files(cache) == [] and not any(p.is_dir() for p in (cache / "git").iterdir())


def test_git_index_against_a_silent_server_and_a_deadline(raw_server, tmp_path: Path) -> None:
    server = raw_server(silent)
    url = f"git+{server.url}/index.git"
    patient = Limits(timeout=60.0, low_speed_bytes=1, low_speed_seconds=60.0)
    idx = GitIndex(url, cache_dir=tmp_path / "cache", limits=patient, deadline=time.monotonic() + 1.0)
    with pytest.raises(IndexReadError, match="time limit") as ei:
        idx.entries("lib-x")
    assert f"{server.url}/index.git" in ei.value.message
    assert server.hung_up.wait(300)
    assert cache_files(tmp_path / "cache") == []


def git_trickle(server: RawServer, conn: socket.socket) -> None:
    """A smart-HTTP ref advertisement that starts a long pkt-line, then sends a byte per 0.2 s.

    libgit2's own socket timeout (``pygit2.settings.server_timeout``) never fires on it and no
    progress callback runs during the advertisement: only the child process's meter stops it.
    """
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n"
                 b"Content-Length: 100000\r\nConnection: close\r\n\r\n0fff")
    for _ in range(500):
        if not server.alive():
            return
        conn.sendall(b"a")
        server.sent += 1
        time.sleep(0.2)


def test_git_source_against_a_trickling_server_fails_in_time(raw_server, tmp_path: Path) -> None:
    server = raw_server(git_trickle)
    url = f"{server.url}/tool.git"
    with pytest.raises(GitSourceError, match="too slow") as ei:
        GitComponentSource(url, cache_dir=tmp_path / "cache", limits=FAST).versions()
    assert url in ei.value.message
    assert server.hung_up.wait(300)
    assert server.sent < 30
    assert cache_files(tmp_path / "cache") == []


def _mirror_for(url: str, origin: str, cache: Path) -> Path:
    """Put a mirror of ``origin`` in the cache under ``url`` (as if cloned from it earlier)."""
    path = cache / "git" / cache_key(url)
    clone_bare(origin, path)
    repo = pygit2.Repository(str(path))
    repo.remotes.set_url("origin", url)
    return path


def test_git_fetch_timeout_keeps_the_cached_mirror(git_repo_factory, raw_server, tmp_path: Path) -> None:
    origin = git_repo_factory("tool", {"v1.0.0": component_toml("tool"), "v1.1.0": component_toml("tool")})
    server = raw_server(silent)
    url = f"{server.url}/tool.git"
    cache = tmp_path / "cache"
    _mirror_for(url, origin.url, cache)
    rep = Recorder()
    src = GitComponentSource(url, cache_dir=cache, limits=FAST, reporter=rep)
    assert [tv.tag for tv in src.versions()] == ["v1.0.0", "v1.1.0"]  # the cached tags
    assert len(rep.warnings) == 1 and url in rep.warnings[0] and "too slow" in rep.warnings[0]
    assert src.reporter.warnings == rep.warnings
    assert rep.labels == [f"fetching {url}"]
    with pytest.raises(GitSourceError, match="too slow") as ei:  # where the tag is now is unknown
        src.commit_of("v1.0.0")
    assert url in ei.value.message
    assert src.cached_commit_of("v1.0.0") == origin.tags()["v1.0.0"]


def test_git_happy_path_through_the_child_process(git_repo_factory, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(transfer, "ALWAYS_CHILD", True)
    origin = git_repo_factory("tool", {"v1.0.0": component_toml("tool")})
    rep = Recorder()
    cache = tmp_path / "cache"
    src = GitComponentSource(origin.url, cache_dir=cache, reporter=rep)
    assert [tv.tag for tv in src.versions()] == ["v1.0.0"]
    assert rep.labels == [f"cloning {origin.url}", f"fetching {origin.url}"]
    origin.commit(component_toml("tool"))
    origin.tag("v1.1.0")
    src.refresh()
    assert [tv.tag for tv in src.versions()] == ["v1.0.0", "v1.1.0"]
    assert rep.warnings == []
    bad = GitComponentSource((tmp_path / "nope.git").as_uri(), cache_dir=cache)
    with pytest.raises(GitSourceError, match="cannot clone .*nope.git"):
        bad.versions()


# -- Ctrl-C --------------------------------------------------------------------------------------

def sigint_default() -> None:
    """In the child, before it starts: Ctrl-C as a terminal gives it. A shell that starts the suite
    in the background (``cmd &`` without job control) leaves SIGINT ignored in its children, and
    Python then keeps it ignored: no KeyboardInterrupt would ever come."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_once_connected(p: subprocess.Popen[str], server: RawServer) -> tuple[str, str]:
    """Send SIGINT to ``p`` once its clone has connected to ``server``; its (stdout, stderr).

    It waits on events (the connection, the child's exit); the deadlines are only there so that a
    broken build fails instead of hanging, and are far beyond what a loaded machine needs.
    """
    try:
        deadline = time.monotonic() + 300
        while server.connections == 0 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)  # the clone is under way once it has connected
        assert server.connections >= 1, "the child never connected"
        p.send_signal(signal.SIGINT)
        return p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
@pytest.mark.parametrize("kind", ["index", "source"])
def test_ctrl_c_during_a_first_clone_aborts_and_leaves_no_clone(kind: str, raw_server, tmp_path: Path) -> None:
    server = raw_server(silent)
    cache = tmp_path / "cache"
    code = f"""
        import sys
        from ckpm.index.git import GitIndex
        from ckpm.index.gitsource import GitComponentSource
        print("start", flush=True)
        if {kind!r} == "index":
            GitIndex("git+{server.url}/index.git", cache_dir={str(cache)!r}).entries("lib-x")
        else:
            GitComponentSource("{server.url}/tool.git", cache_dir={str(cache)!r}).versions()
        print("finished", flush=True)
    """
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                         preexec_fn=sigint_default)
    assert p.stdout is not None and p.stdout.readline().strip() == "start"
    out, err = interrupt_once_connected(p, server)
    assert p.returncode != 0
    assert "KeyboardInterrupt" in err and "finished" not in out
    assert server.hung_up.wait(300)  # the git child was killed
    assert cache_files(cache) == []
    area = cache / ("index-git" if kind == "index" else "git")
    assert [q.name for q in area.iterdir() if not q.name.endswith(".lock")] == []


# -- concurrency ----------------------------------------------------------------------------------

def test_concurrent_processes_fetch_one_mirror(git_repo_factory, tmp_path: Path) -> None:
    """Four processes fetch one mirror over and over while the origin gains tags: without the
    mirror's lock, libgit2 fails with "failed to lock file" on the refs they write together."""
    origin = git_repo_factory("tool", {f"v1.{i}.0": component_toml("tool") for i in range(3)})
    cache = tmp_path / "cache"
    go = tmp_path / "go"
    code = f"""
        import os, time
        from ckpm.index.gitsource import GitComponentSource
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        for _ in range(8):
            src = GitComponentSource({origin.url!r}, cache_dir={str(cache)!r})
            src.refresh()
            assert len(src.versions()) >= 3, src.versions()
            assert src.reporter.warnings == [], src.reporter.warnings
        print("ok")
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    try:
        time.sleep(0.5)
        go.touch()
        n = 3
        repo = origin.repo
        while any(p.poll() is None for p in procs) and n < 60:  # the origin keeps changing
            head = pygit2.Oid(hex=origin.commit(component_toml("tool")))
            repo.references.create(f"refs/tags/v1.{n}.0", head)
            for t in range(n - 3, n):  # and tags move (atomically: a reader sees the old or the new)
                repo.references.create(f"refs/tags/v1.{t}.0", head, force=True)
            n += 1
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0 and out.strip() == "ok", err[-2000:]
    mirrors = [q for q in (cache / "git").iterdir() if q.is_dir()]
    assert [q.name for q in mirrors] == [cache_key(origin.url)]
    assert not list((cache / "git").glob(".*.tmp"))


def test_waiting_for_a_mirror_is_said_once(git_repo_factory, tmp_path: Path) -> None:
    origin = git_repo_factory("tool", {"v1.0.0": component_toml("tool")})
    cache = tmp_path / "cache"
    GitComponentSource(origin.url, cache_dir=cache).versions()  # cloned
    holder = _hold_lock(entry_lock(cache / "git" / cache_key(origin.url)))
    try:
        rep = Recorder()
        src = GitComponentSource(origin.url, cache_dir=cache, reporter=rep)
        threading.Timer(0.5, holder.stdin.close).start()  # type: ignore[union-attr]
        assert [tv.tag for tv in src.versions()] == ["v1.0.0"]
    finally:
        holder.wait(10)
    assert len(rep.notes) == 1 and "waiting for another ckpm process" in rep.notes[0]
    assert origin.url in rep.notes[0]


# -- warnings and moved tags -----------------------------------------------------------------------

def test_git_source_warnings_go_to_the_reporter(git_repo_factory, tmp_path: Path) -> None:
    origin = git_repo_factory("tool", {
        "v1.0.0": component_toml("tool"),
        "v1.1.0": {"README": "no manifest here"},
        "v1.2.0": "[component]\nname = 'tool'\nkind = 'nonsense-kind'\n",
    })
    rep = Recorder()
    src = GitComponentSource(origin.url, cache_dir=tmp_path / "cache", reporter=rep)
    assert [e.version_text for e in src.entries()] == ["1.0.0"]
    assert any("tag v1.1.0 has no ckpm.toml" in w for w in rep.warnings)
    assert any("tag v1.2.0 skipped" in w for w in rep.warnings)
    assert rep.warnings == src.reporter.warnings


def test_old_commit_of_a_moved_tag_stays_readable(git_repo_factory, tmp_path: Path) -> None:
    origin = git_repo_factory("tool", {})
    old = origin.commit(component_toml("tool", description="first"), on_branch=False)  # reachable only by the tag
    origin.tag("v1.0.0", old)
    cache = tmp_path / "cache"
    src = GitComponentSource(origin.url, cache_dir=cache)
    assert src.commit_of("v1.0.0") == old
    assert [e.description for e in src.entries()] == ["first"]
    new = origin.move_tag("v1.0.0", component_toml("tool", description="second"), on_branch=False)
    fresh = GitComponentSource(origin.url, cache_dir=cache)  # fetches: the tag moves, old is unreachable
    assert fresh.commit_of("v1.0.0") == new
    assert isinstance(pygit2.Repository(str(fresh.path)).get(old), pygit2.Commit)  # not dropped
    import shutil

    assert (cache / "git-meta").is_dir()
    shutil.rmtree(cache / "git-meta")  # read the old commit from the mirror, not the parsed copy
    was = fresh.entry_at_commit("v1.0.0", old)
    assert was is not None and was.description == "first" and was.source["rev"] == old
    now = fresh.entry_at(fresh.find("1.0.0"))  # type: ignore[arg-type]
    assert now.description == "second"
    assert fresh.entry_at_commit("v1.0.0", "0" * 40) is None
    assert fresh.entry_at_commit("latest", old) is None


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_cli_ctrl_c_during_index_clone_exits_130(raw_server, tmp_path: Path) -> None:
    server = raw_server(silent)
    cache = tmp_path / "cache"
    p = subprocess.Popen([sys.executable, "-m", "ckpm", "--index", f"git+{server.url}/index.git", "--cache-dir",
                          str(cache), "index", "update"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=sigint_default)
    _, err = interrupt_once_connected(p, server)
    assert p.returncode == 130, err
    assert server.hung_up.wait(300)
    assert [q.name for q in (cache / "index-git").iterdir() if not q.name.endswith(".lock")] == []


def test_lock_timeout_bounds_the_whole_command(raw_server, tmp_path: Path) -> None:
    """`ckpm lock --timeout 2` against an index that trickles: the command ends near 2 s with one line."""
    import os
    import sys

    from ckpm import api

    server = raw_server(config_then(trickle))
    proj = tmp_path / "proj"
    api.init_project(proj, "proj")
    with open(proj / "ckpm.toml", "a") as f:
        f.write(f'lib-a = "*"\n\n[[index]]\nname = "web"\nurl = "{server.url}/"\n')
    r = subprocess.run([sys.executable, "-m", "ckpm.cli.main", "lock", "--timeout", "2"], cwd=proj,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: ") and server.url in r.stderr
    # the command's deadline ended it, not the low-speed limit (which the trickle would reach
    # much later): the error says so, whatever the machine's load made of the wall time
    assert "time limit (--timeout) ran out" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["search", "lib"], ["index", "update"]])
def test_search_and_index_update_take_the_timeout_their_hints_name(args: list[str], raw_server, tmp_path: Path) -> None:
    """The hint of a slow index says `--timeout`: `search` and `index update` have it too."""
    import os
    import sys

    server = raw_server(trickle)  # even its config.json trickles
    r = subprocess.run([sys.executable, "-m", "ckpm.cli.main", "--index", f"{server.url}/", *args, "--timeout", "2"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: ")
    assert "time limit (--timeout) ran out" in r.stderr and "--timeout" in r.stderr
