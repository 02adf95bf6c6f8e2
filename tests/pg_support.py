"""A real PostgreSQL server for the tests (Debian's ``postgresql`` package), and the results databases.

``postgres_server`` (session scope) runs ``initdb`` in a fresh folder and starts ``postgres`` on
127.0.0.1 at a free port, as the unprivileged user ``nobody`` when the tests run as root (the
server refuses to run as root), and waits for ``pg_isready``. ``results_database`` is
parametrized: each test that uses it runs once on SQLite (in the registry's state folder)
and once on a fresh PostgreSQL database. The PostgreSQL runs are skipped, with the reason,
only when the server binaries are absent.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest


def pg_bindir() -> Path | None:
    """The folder of initdb, postgres, pg_ctl and pg_isready (the newest Debian version), or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]) if
                    p.split("/")[-2].isdigit() else 0, reverse=True):
        if all(os.access(os.path.join(d, x), os.X_OK) for x in ("initdb", "postgres", "pg_isready")):
            return Path(d)
    found = shutil.which("initdb")
    if found and shutil.which("postgres") and shutil.which("pg_isready"):
        return Path(os.path.realpath(found)).parent
    return None


@dataclass
class PostgresServer:
    host: str
    port: int
    bindir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its postgresql:// URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own in a temporary folder, stopped and removed at the end."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries are absent")
    root = Path(tempfile.mkdtemp(prefix="ckpm-pg-"))
    os.chmod(root, 0o755)
    data, sock = root / "data", root / "sock"
    data.mkdir()
    sock.mkdir()
    (root / "log").touch()
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root: its folders belong to nobody
        user = pwd.getpwnam("nobody")
        for p in (data, sock, root / "log"):
            os.chown(p, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "nobody", "--"]
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "UTC"}
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--encoding=UTF8", "--no-sync"], check=True, capture_output=True, cwd=root, env=env)
    port = _free_port()
    log = open(root / "log", "ab")
    proc = subprocess.Popen([*run_as, str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                             "-p", str(port), "-k", str(sock), "-c", "fsync=off", "-c", "max_connections=200",
                             "-c", "synchronous_commit=off"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
                             capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("postgres did not start: " + (root / "log").read_text(errors="replace")[-2000:])
            time.sleep(0.05)
        yield PostgresServer("127.0.0.1", port, bindir)
    finally:
        # a fast shutdown (SIGINT to the postmaster, whose pid heads postmaster.pid): the pooled
        # connections of services are closed, not awaited
        try:
            os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
        except (OSError, ValueError, IndexError):
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries are absent (Debian's `postgresql` package; .ci/run installs it)")
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def results_database(request: pytest.FixtureRequest) -> str | None:
    """None (SQLite in the registry's state folder) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()
