"""Shared by tests/test_registry_*.py: the real service on 127.0.0.1 (port 0), users, real tagged repos.

The service runs as it does in production: uvicorn serving ``create_app`` on a bound socket,
in a thread (``RunningRegistry``) or as the ``ckpm-registry serve`` subprocess.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ckpm.testing import GitRepo, GitRepoFactory, component_toml

CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class RunningRegistry:
    """``ckpm_registry`` served by uvicorn in a daemon thread; ``url`` once started."""

    index: str
    tokens: Path
    state: Path | None = None
    refresh: float = 1.0
    max_body: int = 1 << 20
    database: str | None = None  # results: postgresql://… (default: SQLite in the state folder)
    results_limits: Any = None
    url: str = ""
    app: Any = None
    _server: Any = None
    _thread: threading.Thread | None = None
    tokens_of: dict[str, str] = field(default_factory=dict)

    def start(self) -> "RunningRegistry":
        import uvicorn

        from ckpm_registry.app import RegistryConfig, create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as `ckpm-registry serve` does
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.app = create_app(RegistryConfig(index=self.index, tokens=self.tokens, state=self.state,
                                             public_url=self.url, refresh=self.refresh, max_body=self.max_body,
                                             database=self.database, results_limits=self.results_limits))
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name="ckpm-registry")
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the registry did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def store(self) -> Any:
        return self.app.state.registry.store

    def history(self) -> list[str]:
        return list(self.store.history())

    # -- requests ----------------------------------------------------------------------------

    def headers(self, user: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens_of[user]}"} if user else {}

    def publish(self, line: Any, user: str | None = "alice", *, raw: bytes | None = None) -> requests.Response:
        body = raw if raw is not None else json.dumps({"line": line}).encode()
        return requests.put(f"{self.url}/api/v1/publish", data=body, timeout=30,
                            headers={"Content-Type": "application/json", **self.headers(user)})

    def yank(self, name: str, version: str, user: str | None = "alice", *, undo: bool = False) -> requests.Response:
        if undo:
            return requests.put(f"{self.url}/api/v1/components/{name}/{version}/unyank", timeout=30,
                                headers=self.headers(user))
        return requests.delete(f"{self.url}/api/v1/components/{name}/{version}/yank", timeout=30,
                               headers=self.headers(user))


def make_users(tokens: Path, *logins: str) -> dict[str, str]:
    from ckpm_registry.tokens import add_token

    return {login: add_token(tokens, login) for login in logins}


def tagged_component(repos: GitRepoFactory, name: str, versions: list[str], *, deps: dict[str, str] | None = None,
                     tags: tuple[str, ...] = ("lib",)) -> GitRepo:
    """A real git repository with one commit and one ``vX.Y.Z`` tag per version."""
    return repos(name, {f"v{v}": {"ckpm.toml": component_toml(name, v, tags=tags, deps=deps,
                                                               description=f"{name}, a test component"),
                                  "src/main.c": f"int version(void) {{ return {len(v)}; }}\n"}
                        for v in versions})


def line_from_repo(repo: GitRepo, version: str, *, deps: dict[str, str] | None = None,
                   tags: tuple[str, ...] = ("lib",), pubtime: str = "2026-12-02T12:00:00Z") -> dict[str, Any]:
    """The index line `ckpm publish` writes for tag ``v<version>`` of ``repo``: its source is the
    repo's URL, the tag and the commit the tag points at (read from git)."""
    name = repo.path.name.removesuffix(".git")
    commit = repo.tags()[f"v{version}"]
    return {
        "name": name, "version": version, "kind": "lib", "tags": list(tags),
        "description": f"{name}, a test component", "targets": ["*"],
        "deps": [{"name": k, "req": v} for k, v in (deps or {}).items()],
        "source": {"git": repo.url, "tag": f"v{version}", "rev": commit},
        "cksum": "sha256:" + commit.ljust(64, "0")[:64],
        "yanked": False, "pubtime": pubtime,
    }


def serve_subprocess(index: str, tokens: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``ckpm-registry serve --port 0`` as a child process; its URL from the line it prints."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ckpm_registry.cli", "serve", "--index", index,
                             "--tokens", str(tokens), "--port", "0", "--log-level", "warning", "--no-access-log",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " at " not in line:
        proc.kill()
        raise RuntimeError(f"ckpm-registry did not start: {line}{proc.stderr.read() if proc.stderr else ''}")
    url = line.split(" at ", 1)[1].split()[0]
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url + "/config.json", timeout=2)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)
    return proc, url


def chromium_dom(url: str, tmp: Path) -> str:
    """The DOM of ``url`` after headless chromium rendered it (as tests/test_results.py runs chromium)."""
    home = tmp / "chromium-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    proc = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={home / 'profile'}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
