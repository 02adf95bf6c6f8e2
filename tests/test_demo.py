"""This repository's own demo project, as the README's first command runs it: `ckpm run` on a
fresh store and cache, offline, from a copy of the checkout (its ckpm.toml, programs/, vendor/)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _checkout(tmp_path: Path) -> Path:
    demo = tmp_path / "checkout"
    demo.mkdir()
    shutil.copy(ROOT / "ckpm.toml", demo / "ckpm.toml")
    shutil.copytree(ROOT / "programs", demo / "programs")
    shutil.copytree(ROOT / "vendor", demo / "vendor")
    return demo


def ckpm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", "--offline", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())


def test_the_demo_runs_offline_and_records(tmp_path: Path) -> None:
    demo = _checkout(tmp_path)
    r = ckpm("run", "--repeat", "2", "--record", "demo", cwd=demo)
    assert r.returncode == 0, r.stderr
    assert "validation passed" in r.stderr and "corners" in r.stdout and "205" in r.stdout  # the metrics table
    assert "recorded as demo" in r.stderr
    r = ckpm("run", "--json", cwd=demo)
    rec = json.loads(r.stdout)["data"]
    assert rec["ok"] and rec["metrics"]["corners"]["median"] == 205 and rec["metrics"]["images"]["median"] == 8
    sync = {p["name"]: p for p in rec["stages"]["provision"]["packages"]}
    assert sync["dataset-hello-images"]["action"] == "store"  # provisioned like any data set, reused
    # the same program as a component: its sources from its copy recipe, compiled from the store
    r = ckpm("add", "program-hello-ckpm@>=0.3", cwd=demo)
    assert r.returncode == 0, r.stderr
    r = ckpm("run", "program-hello-ckpm", "--cmd", "fast", "--json", cwd=demo)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)["data"]
    assert rec["program"]["name"] == "program-hello-ckpm" and rec["metrics"]["corners"]["median"] == 208
    # the same configuration replays cleanly; the demo's run takes ~50 ms, and on a shared CI
    # machine its time varies by more than replay's default 10 % + 5 ms, so allow for that here
    # (the metric verdicts themselves are tested in tests/test_run.py)
    r = ckpm("replay", "demo", "--tolerance", "3", cwd=demo)
    assert r.returncode == 0, r.stderr


def test_a_failing_program_shows_why_with_its_own_exit_code(tmp_path: Path) -> None:
    """`--param threshold=abc`: the program's own explanation (its first stderr line) is shown whole,
    with the path of its full output, and `ckpm run` exits 10 (the program failed), not 5."""
    demo = _checkout(tmp_path)
    r = ckpm("run", "--param", "threshold=abc", "--record", "bad", cwd=demo)
    assert r.returncode == 10, r.stderr
    assert "ckpm-demo: the program exited with 2" in r.stderr and "Traceback" not in r.stderr
    assert "  corners: error: THRESHOLD must be a whole number from 1 to 254, not 'abc'\n" in r.stderr
    assert r.stderr.count("THRESHOLD must be") == 1  # said once, not in the message and again in the details
    full = r.stderr.split("its whole output is in ")[1].split(" and ")[0]
    assert Path(full).read_text().startswith("corners: error: THRESHOLD")
    r = ckpm("results", "show", "bad", "--json", cwd=demo)
    assert r.returncode == 0 and json.loads(r.stdout)["data"]["records"][0]["ok"] is False  # recorded as failed
