"""`ckpm add` and `ckpm remove` edit ckpm.toml as the user keeps it: line endings, BOM, comments."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckpm.index.writer import init_index, reindex, write_component


@pytest.fixture
def index(tmp_path: Path) -> Path:
    root = tmp_path / "index"
    init_index(root, "lab")
    for name in ("lib-a", "lib-b"):
        write_component(root, [{"name": name, "version": "1.0.0", "kind": "lib", "tags": ["lib"], "targets": ["*"],
                                "deps": [], "source": {"urls": [f"https://example.org/{name}.tgz"]},
                                "cksum": f"sha256:{name}"}])
    reindex(root)
    return root


def ckpm(*args: str, cwd: Path, index: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "CKPM_INDEX": str(index), "CKPM_CACHE_DIR": str(cwd / ".c")})


def project(tmp_path: Path, raw: bytes) -> Path:
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "ckpm.toml").write_bytes(raw)
    return proj


MANIFEST = '[project]\nname = "p"  # ours\n\n[dependencies]\nlib-a = "*"  # keep this comment\n'


def test_crlf_line_endings_survive_add_and_remove(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, MANIFEST.replace("\n", "\r\n").encode())
    r = ckpm("add", "lib-b", cwd=proj, index=index)
    assert r.returncode == 0, r.stderr
    raw = (proj / "ckpm.toml").read_bytes()
    assert b"lib-b" in raw and b"# keep this comment" in raw
    assert raw.count(b"\n") == raw.count(b"\r\n")  # no line lost its CR, the new one has it too
    r = ckpm("remove", "lib-b", cwd=proj, index=index)
    assert r.returncode == 0, r.stderr
    assert (proj / "ckpm.toml").read_bytes() == MANIFEST.replace("\n", "\r\n").encode()


def test_a_utf8_bom_is_read_and_kept(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, b"\xef\xbb\xbf" + MANIFEST.encode())
    r = ckpm("lock", cwd=proj, index=index)
    assert r.returncode == 0 and "invalid TOML" not in r.stderr, r.stderr
    r = ckpm("add", "lib-b", cwd=proj, index=index)
    assert r.returncode == 0, r.stderr
    raw = (proj / "ckpm.toml").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf[project]") and b"lib-b" in raw and b"\r" not in raw
