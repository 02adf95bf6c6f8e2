"""Small things a new user met: real `ckpm` processes over a real index folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ckpm.index.writer import init_index, reindex, write_component


def ckpm(*args: str, cwd: Path, index: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CKPM_CACHE_DIR": str(cwd / ".cache")}
    if index is not None:
        env["CKPM_INDEX"] = str(index)
    return subprocess.run([sys.executable, "-m", "ckpm.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_show_lists_versions_in_version_order_not_publish_order(tmp_path: Path) -> None:
    root = tmp_path / "index"
    init_index(root, "lab")
    published = ["1.10.0", "1.2.0", "2.0.0", "1.9.1"]  # as a maintainer published them, fixes last
    write_component(root, [{"name": "lib-a", "version": v, "kind": "lib", "tags": ["lib"], "targets": ["*"],
                            "deps": [], "source": {"urls": ["https://example.org/a.tgz"]}, "cksum": f"sha256:{v}"}
                           for v in published])
    reindex(root)
    r = ckpm("show", "lib-a", "--json", cwd=tmp_path, index=root)
    assert r.returncode == 0, r.stderr
    assert [v["version"] for v in json.loads(r.stdout)["data"]["versions"]] == ["1.2.0", "1.9.1", "1.10.0", "2.0.0"]


def test_detect_shows_the_architecture_by_name(tmp_path: Path) -> None:
    r = ckpm("detect", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    arch = next(line.split() for line in r.stdout.splitlines() if line.startswith("__arch"))
    import platform

    assert arch[1] in {platform.machine(), "x86_64", "aarch64"} and arch[1] != "1"


def test_a_failed_atomic_write_names_the_file_not_its_temporary(tmp_path: Path) -> None:
    """The error of a write that cannot start (a read-only folder, a full disk, a name too long for
    the temporary file) names the file the user knows."""
    import pytest

    from ckpm.fsutil import atomic_write

    target = tmp_path / ("n" * 250)  # fits the folder; ".NAME.XXXXXXXX.tmp" does not
    with pytest.raises(OSError) as ei:
        atomic_write(target, "x")
    assert ei.value.filename == str(target) and ".tmp" not in str(ei.value)
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_speak_ckpm_and_json(tmp_path: Path) -> None:
    r = ckpm("lock", "--chek", cwd=tmp_path)
    assert r.returncode == 64 and r.stderr.startswith("error: No such option") and "Traceback" not in r.stderr
    assert "hint: `ckpm lock --help`" in r.stderr and "Usage:" not in r.stderr
    for args, words in ((["lock", "--chek", "--json"], "No such option"),
                        (["search", "--limit", "x", "--json"], "'--limit'"),
                        (["sync", "--target", "--json"], "--target needs a value, and --json is an option"),
                        (["-v", "sync", "-t", "--json"], "-t needs a value")):
        r = ckpm(*args, cwd=tmp_path)
        assert r.returncode == 64, (args, r.stderr)
        out = json.loads(r.stdout)
        assert out["ok"] is False and out["error"]["code"] == "usage" and words in out["error"]["error"], out


def test_init_takes_json(tmp_path: Path) -> None:
    r = ckpm("init", str(tmp_path / "x"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["command"] == "init" and out["data"]["manifest"] == str(tmp_path / "x" / "ckpm.toml")
    r = ckpm("init", str(tmp_path / "x"), "--json", cwd=tmp_path)
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False


def test_remove_of_a_name_not_listed_has_its_own_error_code(tmp_path: Path) -> None:
    ckpm("init", str(tmp_path / "p"), cwd=tmp_path)
    r = ckpm("remove", "nope", "--json", cwd=tmp_path / "p")
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "not-a-dependency"


def test_lock_warns_when_it_chose_a_compiler_that_sync_cannot_provide(tmp_path: Path) -> None:
    """No C compiler on the host (``--no-host``): the capability resolves to an index line with no
    recipe, and the lock says so at once instead of leaving it to `ckpm sync` to fail."""
    root = tmp_path / "index"
    init_index(root, "lab")
    write_component(root, [{"name": "compiler-clang", "version": "20.1.8", "kind": "compiler",
                            "tags": ["compiler", "lang-c"], "targets": ["*"], "deps": [],
                            "source": {"urls": ["https://example.org/clang.tgz"]}}])
    reindex(root)
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "ckpm.toml").write_text('[project]\nname = "p"\n\n[dependencies]\n'
                                    'compiler = { tags = "compiler,lang-c" }\n')
    r = ckpm("lock", "--no-host", "--json", cwd=proj, index=root)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert any("compiler-clang 20.1.8 is not on this machine and its index line has no install recipe" in w
               and "`ckpm sync` cannot provide it" in w for w in out["warnings"]), out["warnings"]


def test_the_vendor_hint_names_the_scheme_of_the_sources(tmp_path: Path) -> None:
    """An http:// source is vendored under its host, and the [mirrors] rule the hint suggests
    is for http://, not https://."""
    import hashlib

    data = b"some data\n"
    local = tmp_path / "upstream" / "data.txt"
    local.parent.mkdir()
    local.write_bytes(data)
    root = tmp_path / "index"
    init_index(root, "lab")
    write_component(root, [{"name": "dataset-x", "version": "1.0", "kind": "dataset", "tags": ["dataset"],
                            "targets": ["*"], "deps": [],
                            "source": {"urls": ["http://data.invalid/data.txt"],
                                       "sha256": hashlib.sha256(data).hexdigest()}}])
    reindex(root)
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "ckpm.toml").write_text('[project]\nname = "p"\n\n[dependencies]\ndataset-x = "*"\n\n'
                                    f'[mirrors]\n"http://data.invalid/" = ["{local.parent}/"]\n')
    r = ckpm("vendor", str(tmp_path / "out"), cwd=proj, index=root)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "data.invalid" / "data.txt").read_bytes() == data
    assert f'[mirrors] "http://" = ["{tmp_path / "out"}"]' in r.stderr and '"https://"' not in r.stderr
