"""Helpers of the store and archive attacks (tests/security/test_archives.py, test_staging.py, …):
a loopback file server, a folder index holding the attacker's lines, a project, and `ckpm`
run as a real process with its own cache, store and config."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pytest

from ckpm.index.writer import init_index, reindex, write_component


class FileServer:
    """Serves the files of ``root`` on 127.0.0.1 (port 0), counting requests per path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                rel = self.path.lstrip("/")
                server.hits[rel] = server.hits.get(rel, 0) + 1
                p = server.root / rel
                if not p.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = p.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()



@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    """A loopback file server over ``tmp_path/served`` (import it into a test module to use it)."""
    root = tmp_path / "served"
    root.mkdir()
    s = FileServer(root)
    try:
        yield s
    finally:
        s.close()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_of(server: FileServer, path: Path, **extra: Any) -> dict[str, Any]:
    """An index line's ``source`` for a file the server serves (its sha256 pinned)."""
    return {"urls": [server.url + path.relative_to(server.root).as_posix()], "sha256": sha256_of(path), **extra}


def line(name: str, version: str, source: Mapping[str, Any], steps: list[dict[str, Any]],
         **extra: Any) -> dict[str, Any]:
    """An index line with one install recipe for every target."""
    return {"name": name, "version": version, "kind": extra.pop("kind", "dataset"), "tags": [], "targets": ["*"],
            "deps": [], "source": dict(source), "install": [{"steps": steps}], **extra}


COPY = [{"kind": "copy", "from": ".", "to": "share"}]


def make_index(root: Path, lines: Iterable[Mapping[str, Any]]) -> Path:
    init_index(root, "attacker")
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for ln in lines:
        by_name.setdefault(str(ln["name"]), []).append(ln)
    for entries in by_name.values():
        write_component(root, entries)
    reindex(root)
    return root


def make_project(folder: Path, index: Path, deps: Mapping[str, str], *, name: str = "victim") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = f'[project]\nname = "{name}"\n\n[dependencies]\n'
    text += "".join(f'{k} = "{v}"\n' for k, v in deps.items())
    text += f'\n[[index]]\nname = "attacker"\nurl = "{index}"\n'
    (folder / "ckpm.toml").write_text(text)
    return folder


def ckpm_env(base: Path) -> dict[str, str]:
    """The environment of a ckpm process with a cache, a store and a config of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CKPM_")}
    env.update(CKPM_CACHE_DIR=str(base / "cache"), CKPM_STORE=str(base / "store"),
               CKPM_CONFIG=str(base / "no-config.toml"))
    return env


def run_ckpm(*args: str, cwd: Path, env: Mapping[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, env=dict(env), capture_output=True,
                          text=True, timeout=timeout)


def staging_left(store: Path) -> list[str]:
    """What is left in the store's tmp folder (staging folders of builds)."""
    tmp = store / "tmp"
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


def tar_bytes(members: Iterable[tuple[str, bytes | None]], mode: str = "w:gz") -> bytes:
    """A tar archive of ``(name, data)`` members (``None``: a folder)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()
