"""Issue 24, finding 6: source downloads are bounded in time.

A server that sent 1 byte per second held a download for more than 75 s: the read timeout
covered one read only. Source downloads now have the index transfers' low-speed limit
(``HTTP_LIMITS``: fewer than 1 KiB in a 10 s window fails the transfer), so a trickling or silent
mirror falls through to the next one; ``ckpm sync --timeout`` and ``ckpm fetch --timeout`` bound
the whole command.

The servers are real loopback sockets. Tests shorten the low-speed window (it is an option of
``fetch_file`` and of ``SyncOptions``) and wait on events (the server seeing the client leave,
a process exiting), never assert on elapsed time.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from ckpm.fetch import Mirrors, fetch_file
from ckpm.index.transfer import HTTP_LIMITS
from ckpm.index.writer import init_index, reindex, write_component

DATA = hashlib.sha256(b"slow").digest() * 2048  # 64 KiB
SHA = hashlib.sha256(DATA).hexdigest()
UPSTREAM = "https://upstream.invalid/data/"


@dataclass
class SlowServer:
    """A loopback server whose every connection misbehaves as ``mode`` says:

    - ``trickle``: headers, then 1 byte per second;
    - ``drip``: headers, then 200 bytes per second (below 1 KiB in any window);
    - ``silent-body``: headers, then nothing;
    - ``silent``: accepts, reads the request, answers nothing.

    ``left`` is set when the server sees the client go (a write fails or the peer closes).
    """

    mode: str
    stop: threading.Event = field(default_factory=threading.Event)
    left: threading.Event = field(default_factory=threading.Event)
    served: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def start(self) -> "SlowServer":
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/data/"
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                self.served.set()
                if self.mode == "silent":
                    conn.settimeout(None)
                    while not self.stop.is_set():  # until the client closes: recv returns b""
                        conn.settimeout(0.2)
                        try:
                            if conn.recv(1) == b"":
                                break
                        except socket.timeout:
                            continue
                    self.left.set()
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(DATA))
                step = {"trickle": 1, "drip": 200, "silent-body": 0}[self.mode]
                sent = 0
                while not self.stop.is_set():
                    if step:
                        conn.sendall(DATA[sent:sent + step])
                        sent += step
                        if self.stop.wait(1.0):  # the server's own pace: one write a second
                            return
                    else:
                        conn.settimeout(0.2)
                        try:
                            if conn.recv(1) == b"":
                                raise ConnectionResetError
                        except socket.timeout:
                            continue
            except OSError:
                self.left.set()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


class GoodServer:
    """Serves DATA at every path."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(len(DATA)))
                self.end_headers()
                self.wfile.write(DATA)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def good() -> Iterator[GoodServer]:
    g = GoodServer()
    yield g
    g.close()


MODES = ["trickle", "drip", "silent-body", "silent"]


def test_the_defaults_are_the_index_transfers() -> None:
    from ckpm.provision import SyncOptions, SyncSession

    params = inspect.signature(fetch_file).parameters
    assert (params["low_speed_bytes"].default, params["low_speed_seconds"].default) == (
        HTTP_LIMITS.low_speed_bytes, HTTP_LIMITS.low_speed_seconds)
    run = SyncSession.__new__(SyncSession)
    run.options = SyncOptions()
    assert run.low_speed == (HTTP_LIMITS.low_speed_bytes, HTTP_LIMITS.low_speed_seconds)


@pytest.mark.parametrize("mode", MODES)
def test_a_slow_mirror_falls_through_to_the_next(mode: str, good: GoodServer, tmp_path: Path) -> None:
    slow = SlowServer(mode).start()
    try:
        rules = Mirrors.from_table({UPSTREAM: [slow.url, good.url]}, where="test")
        got = fetch_file([UPSTREAM + "blob.bin"], sha256=SHA, cache_dir=tmp_path / "cache", mirrors=rules,
                         low_speed_bytes=1024, low_speed_seconds=1.0, retries=0)
        assert got.url == good.url + "blob.bin" and got.path.read_bytes() == DATA
        assert slow.served.is_set()  # the slow mirror was tried first
        assert slow.left.wait(60), f"the client never left the {mode} server"
    finally:
        slow.close()


def _project(tmp_path: Path, mirrors: list[str]) -> Path:
    idx = tmp_path / "index"
    init_index(idx, "lab")
    write_component(idx, [{"name": "data-slow", "version": "1.0", "kind": "dataset", "targets": ["*"], "deps": [],
                           "source": {"urls": [UPSTREAM + "blob.bin"], "sha256": SHA},
                           "install": [{"targets": ["*"], "steps": [{"kind": "copy", "to": "share"}]}]}])
    reindex(idx)
    proj = tmp_path / "proj"
    proj.mkdir()
    reps = ", ".join(f'"{m}"' for m in mirrors)
    (proj / "ckpm.toml").write_text(f'[project]\nname = "proj"\n\n[dependencies]\ndata-slow = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{idx}"\n\n[mirrors]\n"{UPSTREAM}" = [{reps}]\n')
    return proj


def test_sync_falls_through_a_trickling_mirror(good: GoodServer, tmp_path: Path) -> None:
    from ckpm import api
    from ckpm.provision import SyncOptions
    from ckpm.settings import Settings
    from ckpm.workspace import Workspace

    slow = SlowServer("trickle").start()
    try:
        proj = _project(tmp_path, [slow.url, good.url])
        ws = Workspace(proj, Settings(cache_dir=tmp_path / "cache", store_dir=tmp_path / "store",
                                      config_path=tmp_path / "no-config.toml"))
        _, res = api.sync(ws, SyncOptions(low_speed=(1024, 1.0)))
        (pkg,) = [p for p in res.packages if p.name == "data-slow"]
        assert pkg.action == "built" and (Path(pkg.path) / "share" / SHA).read_bytes() == DATA
        assert slow.left.wait(60)
    finally:
        slow.close()


@pytest.mark.parametrize("command", ["fetch", "sync"])
def test_timeout_bounds_the_whole_command(command: str, tmp_path: Path) -> None:
    """Only slow mirrors, the default 10 s window: ``--timeout 2`` ends the command first."""
    slow = SlowServer("trickle").start()
    try:
        proj = _project(tmp_path, [slow.url])
        env = {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache"), "CKPM_STORE": str(tmp_path / "store"),
               "CKPM_CONFIG": str(tmp_path / "no-config.toml")}
        r = subprocess.run([sys.executable, "-m", "ckpm", command, "--timeout", "2"], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "time limit (--timeout) ran out" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert slow.left.wait(60)
        assert not list((tmp_path / "cache").rglob(SHA))  # nothing half-written was kept as verified
    finally:
        slow.close()
