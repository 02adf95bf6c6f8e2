"""The CLI and ``ckpm.access()`` are adapters over one facade (``ckpm.api``, ``ckpm.queries``,
``ckpm.ops``): for the same question they give the same answer, the CLI in its ``--json``
envelope's ``data``, ``access()`` beside ``return``. Real processes for the CLI, a real sync
of archives served from a loopback server, real record files.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

import ckpm
from ckpm.experiment.record import save_record

sys.path.insert(0, str(Path(__file__).parent / "security"))
from sec_store_support import (COPY, FileServer, line, make_index, make_project, source_of,  # noqa: E402
                               tar_bytes)
from sec_store_support import server  # noqa: E402,F401 (a fixture this module uses)
from test_results import record  # noqa: E402


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A cache, a store and a config of this test's own, for access() here and ckpm processes alike."""
    for k in [k for k in os.environ if k.startswith("CKPM_")]:
        monkeypatch.delenv(k)
    env = {"CKPM_CACHE_DIR": str(tmp_path / "cache"), "CKPM_STORE": str(tmp_path / "store"),
           "CKPM_CONFIG": str(tmp_path / "no-config.toml")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str]) -> Any:
    """``ckpm ARGS --json`` in a process of its own: the envelope's data (the command must succeed)."""
    r = subprocess.run([sys.executable, "-m", "ckpm", *args, "--json"], cwd=cwd, capture_output=True, text=True,
                       timeout=300, env={**{k: v for k, v in os.environ.items() if not k.startswith("CKPM_")}, **env})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is True
    return out["data"]


def access(**request: Any) -> dict[str, Any]:
    out = ckpm.access(request)
    assert out["return"] == 0, out
    return out


def data(out: dict[str, Any]) -> dict[str, Any]:
    """An answer of access() without what every answer carries."""
    return {k: v for k, v in out.items() if k not in ("return", "warnings")}


def test_store_cache_and_env_answer_alike(tmp_path: Path, server: FileServer, home: dict[str, str]) -> None:
    archive = server.root / "data-a-1.0.tar.gz"
    archive.write_bytes(tar_bytes([("data-a-1.0/data.bin", b"a" * 40_000)]))
    index = make_index(tmp_path / "index", [line("data-a", "1.0", source_of(server, archive), COPY)])
    proj = make_project(tmp_path / "proj", index, {"data-a": ">=1"})

    synced = access(action="sync", project=str(proj))
    assert [(p["name"], p["action"]) for p in synced["packages"]] == [("data-a", "built")]

    entries = access(action="store", project=str(proj))["entries"]
    assert [e["name"] for e in entries] == ["data-a"] and Path(entries[0]["path"], "share", "data.bin").is_file()
    assert cli("store", "ls", cwd=proj, env=home) == entries
    assert access(action="store", op="path", name="data-a")["paths"] == [entries[0]["path"]]

    cache = access(action="cache")
    assert cache["cache_dir"] == home["CKPM_CACHE_DIR"] and cache["total"] > 0
    assert cli("cache", "ls", cwd=proj, env=home) == data(cache)

    dry = access(action="cache", op="clean", dry_run=True)
    assert dry["dry_run"] is True and dry["removed"] and dry["freed"] > 0
    assert cli("cache", "clean", "--dry-run", cwd=proj, env=home) == data(dry)
    assert access(action="cache")["total"] == cache["total"]  # a dry run removes nothing
    bad = ckpm.access({"action": "cache", "op": "clean", "older_than_days": "a week"})
    assert bad["return"] == 1 and bad["code"] == "request" and "older_than_days" in bad["error"]

    env = access(action="env", project=str(proj))["env"]
    assert any(entries[0]["path"] in v for v in env.values())  # the prefix, on some path of the environment
    assert cli("env", cwd=proj, env=home) == env


def test_index_reindex_and_update_answer_alike(tmp_path: Path, server: FileServer, home: dict[str, str]) -> None:
    archive = server.root / "data-a-1.0.tar.gz"
    archive.write_bytes(tar_bytes([("data-a-1.0/data.bin", b"a")]))
    index = make_index(tmp_path / "index", [line("data-a", "1.0", source_of(server, archive), COPY),
                                            line("data-b", "1.0", source_of(server, archive), COPY)])
    (index / "summary.jsonl").unlink()
    out = access(action="index", op="reindex", path=str(index))
    assert out["components"] == 2 and out["path"] == str(index / "summary.jsonl")
    assert (index / "summary.jsonl").is_file()
    r = subprocess.run([sys.executable, "-m", "ckpm", "index", "reindex", str(index)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"{index}/summary.jsonl: 2 components", r.stderr

    proj = make_project(tmp_path / "proj", index, {"data-a": ">=1"})
    updated = access(action="index", project=str(proj))["indexes"]
    assert [(i["name"], i["url"]) for i in updated] == [("attacker", str(index))]
    assert cli("index", "update", cwd=proj, env=home) == updated
    missing = ckpm.access({"action": "index", "op": "reindex"})
    assert missing["return"] == 1 and "needs 'path'" in missing["error"]


def test_results_export_import_and_compare_answer_alike(tmp_path: Path, home: dict[str, str]) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text('[project]\nname = "demo"\n')
    save_record(proj, "baseline", record(times=[0.30, 0.31, 0.29], at=0))
    save_record(proj, "tuned", record(times=[0.10, 0.11, 0.10], cflags=("-O3", "-march=native"), at=5))
    (proj / ".ckpm" / "experiments" / "tuned" / "20261203T000000000000Z-bad.json").write_text("{")

    cmp = ckpm.access({"action": "results", "op": "compare", "project": str(proj), "a": "baseline", "b": "tuned"})
    assert cmp["return"] == 0
    assert any("tuned: left out" in w for w in cmp["warnings"])  # the damaged file, a warning as in the CLI
    assert cli("results", "compare", "baseline", "tuned", cwd=proj, env=home) == data(cmp)

    exported = access(action="results", op="export", project=str(proj), name="baseline", out=str(tmp_path / "b.json"))
    assert exported["records"] == 1
    imported = access(action="results", op="import", project=str(proj), path=str(tmp_path / "b.json"), name="again")
    assert imported["added"] == 1 and imported["experiment"] == "again"
    again = cli("results", "import", str(tmp_path / "b.json"), "--as", "again", cwd=proj, env=home)
    assert again["added"] == 0 and again["known"] == 1  # the same record, already there
    assert [r["name"] for r in access(action="results", project=str(proj))["experiments"]] == [
        "again", "baseline", "tuned"]


def test_access_tune_pushes_each_point_as_the_cli_does(tmp_path: Path, git_index_factory: Any) -> None:
    """``access({"action": "tune", "push": …})`` goes through the same ``ckpm.ops.tune.tune`` as
    ``ckpm tune --push`` (tests/test_results_registry.py): each point reaches the registry."""
    import requests
    from test_results_registry import start
    from test_tune import REAL_SPACE, _summer

    reg = start(tmp_path, git_index_factory, None)
    try:
        proj = _summer(tmp_path)
        (proj / "space.toml").write_text(REAL_SPACE)
        out = access(action="tune", project=str(proj), space=str(proj / "space.toml"), objectives="time,size",
                     budget=2, record="t", push="crowd", registry=reg.url, token=reg.tokens_of["alice"])
        assert out["experiment"] == "t" and len(out["records"]) == 2
        assert len(out["pushed"]["added"]) == 2 and out["pushed"]["registry"] == reg.url.rstrip("/")
        page = requests.get(f"{reg.url}/api/v1/results", params={"user": "alice", "full": "true"}, timeout=30).json()
        assert page["total"] == 2 and {x["record"]["experiment"] for x in page["results"]} == {"crowd"}
        lone = ckpm.access({"action": "tune", "project": str(proj), "space": str(proj / "space.toml"),
                            "registry": reg.url})
        assert lone["return"] == 64 and "--registry is for --push" in lone["error"]
    finally:
        reg.stop()
