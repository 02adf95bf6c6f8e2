"""The CLI as a user runs it: real `ckpm` processes, real files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckpm.index.writer import init_index, reindex, write_component


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ckpm.cli.main", *args], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def index(tmp_path: Path) -> Path:
    root = tmp_path / "index"
    init_index(root, "lab")

    def e(name: str, v: str, deps: list[dict[str, str]] = [], tags: list[str] = ["lib"]) -> dict[str, object]:
        return {"name": name, "version": v, "kind": "lib", "tags": tags, "targets": ["*"], "deps": deps,
                "source": {"urls": [f"https://example.org/{name}.tgz"]}, "cksum": f"sha256:{name}{v}"}

    write_component(root, [e("lib-tensorflow", "1.13.1", [{"name": "lib-numpy", "req": ">=1.13.3,<2"}]),
                           e("lib-tensorflow", "1.15.5", [{"name": "lib-numpy", "req": ">=1.16,<1.19"}])])
    write_component(root, [e("lib-numpy", v) for v in ("1.16.6", "1.18.5", "1.26.4")])
    write_component(root, [e("gcc", "12.2.0", tags=["compiler", "lang-c"])])
    reindex(root)
    return root


def test_version_and_help_do_not_import_heavy_modules(tmp_path: Path) -> None:
    code = ("import sys; from ckpm.cli.main import cli\n"
            "try:\n    cli(['--version'])\nexcept SystemExit: pass\n"
            "try:\n    cli(['--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('resolvelib', 'pygit2', 'requests', 'rich', 'ckpm.resolve', 'ckpm.api') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "ckpm, version" in out.stdout
    assert "HEAVY []" in out.stdout


def test_user_tour(tmp_path: Path, index: Path) -> None:
    env = {"CKPM_INDEX": str(index)}
    assert run("init", "demo", cwd=tmp_path).returncode == 0
    demo = tmp_path / "demo"
    r = run("add", "lib-tensorflow@>=1.13", cwd=demo, env=env)
    assert r.returncode == 0, r.stderr
    assert "+ lib-tensorflow 1.15.5" in r.stderr and "+ lib-numpy 1.18.5" in r.stderr
    r = run("add", "compiler", "--tags", "compiler,lang-c", cwd=demo, env=env)
    assert r.returncode == 0, r.stderr
    r = run("lock", "--check", cwd=demo, env=env)
    assert r.returncode == 0 and "up to date" in r.stdout
    r = run("tree", "--json", cwd=demo, env=env)
    (target, nodes), = json.loads(r.stdout)["data"].items()
    assert [n["name"] for n in nodes] == ["gcc", "lib-tensorflow"]
    assert nodes[1]["dependencies"][0]["name"] == "lib-numpy"
    r = run("tree", cwd=demo, env=env)
    assert "└── lib-tensorflow 1.15.5" in r.stdout and "lib-numpy 1.18.5" in r.stdout
    r = run("why", "lib-numpy", cwd=demo, env=env)
    assert "lib-tensorflow 1.15.5 requires lib-numpy" in r.stdout
    r = run("search", "--tags", "compiler,lang-c", "--json", cwd=demo, env=env)
    assert [h["name"] for h in json.loads(r.stdout)["data"]] == ["gcc"]
    r = run("show", "lib-tensorflow", "--json", cwd=demo, env=env)
    assert [v["version"] for v in json.loads(r.stdout)["data"]["versions"]] == ["1.13.1", "1.15.5"]
    r = run("why-not", "lib-numpy@1.26.4", cwd=demo, env=env)
    assert "lib-numpy 1.26.4 would resolve; the lock has lib-numpy 1.18.5" in r.stdout
    assert "taking it would also change: lib-tensorflow 1.15.5 -> 1.13.1" in r.stdout
    r = run("why-not", "lib-numpy@9.0", cwd=demo, env=env)
    assert "lib-numpy 9.0 does not exist in lab (known versions: 1.16.6, 1.18.5, 1.26.4)" in r.stdout
    assert r.returncode == 1
    r = run("why-not", "@1", cwd=demo, env=env)
    assert r.returncode == 1 and "give NAME@VERSION" in r.stderr and "no component named ''" not in r.stderr
    r = run("remove", "compiler", cwd=demo, env=env)
    assert r.returncode == 0 and "- gcc 12.2.0" in r.stderr
    # stale lock: edit the manifest by hand
    m = demo / "ckpm.toml"
    m.write_text(m.read_text().replace(">=1.13", ">=1.14"))
    r = run("lock", "--check", cwd=demo, env=env)
    assert r.returncode == 3 and "stale" in r.stderr
    r = run("lock", "--check", "--json", cwd=demo, env=env)
    assert json.loads(r.stdout)["ok"] is False


@pytest.mark.parametrize(
    "args,code,words",
    [
        (["add", "lib-tensorflw"], 1, "error: no component named 'lib-tensorflw'"),
        (["add", "lib-numpy@>=1.x"], 1, "not a version range"),
        (["add", "lib-numpy@>=2"], 2, "no set of versions satisfies"),
        (["why", "nothing"], 1, "does not exist"),
        (["lock", "--target", "plan9-mips"], 1, "unknown target 'plan9-mips'"),
    ],
)
def test_user_mistakes_give_one_clear_error(tmp_path: Path, index: Path, args: list[str], code: int, words: str) -> None:
    run("init", "p", cwd=tmp_path)
    r = run(*args, cwd=tmp_path / "p", env={"CKPM_INDEX": str(index)})
    assert r.returncode == code, r.stderr
    assert words in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_manifest_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "ckpm.toml").write_text('[project]\nname = "x"\n[dependencies]\nlib-a = { verion = ">=1" }\n')
    r = run("lock", cwd=tmp_path)
    assert r.returncode == 1
    assert f"{tmp_path / 'ckpm.toml'}:4: unknown key 'verion' in dependency 'lib-a'; did you mean 'version'?" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("-v", "lock", cwd=tmp_path)
    assert "Traceback" in r.stderr  # -v shows where it came from


def test_no_project_here(tmp_path: Path) -> None:
    r = run("lock", cwd=tmp_path)
    assert r.returncode == 1 and "no ckpm.toml here or in any parent folder" in r.stderr
    assert "hint: run `ckpm init" in r.stderr
