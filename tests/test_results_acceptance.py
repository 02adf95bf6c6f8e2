"""Issue 26's acceptance: two users, each with a home of their own, run the repository's demo (a real C
program, compiled and run offline) and push their records with the `ckpm` command; the registry's
API and its scoreboard page in headless chromium show both; a third home pulls them and
`results compare` works on them; a push with a wrong token is refused. On SQLite and on PostgreSQL.

The two demo runs happen once per module (each compiles and runs the program, a few seconds).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from pg_support import postgres_server, results_database  # noqa: F401 - fixtures
from registry_support import CHROMIUM, RunningRegistry, chromium_dom, make_users

ROOT = Path(__file__).resolve().parent.parent
DOCS_SHOT = ROOT / "docs" / "results-scoreboard.png"


def home_env(home: Path) -> dict[str, str]:
    """The environment of a user whose everything lives in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CKPM_")}
    env.update({"HOME": str(home), "CKPM_CONFIG": str(home / ".config" / "ckpm" / "config.toml"),
                "CKPM_CACHE_DIR": str(home / ".cache" / "ckpm"), "CKPM_STORE": str(home / ".local" / "ckpm-store"),
                "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")})
    return env


def checkout(home: Path) -> Path:
    demo = home / "demo"
    demo.mkdir(parents=True)
    shutil.copy(ROOT / "ckpm.toml", demo / "ckpm.toml")
    shutil.copytree(ROOT / "programs", demo / "programs")
    shutil.copytree(ROOT / "vendor", demo / "vendor")
    return demo


def ckpm(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=home / "demo", capture_output=True, text=True,
                          timeout=300, env=home_env(home), input=stdin)


@pytest.fixture(scope="module")
def demo_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """alice's and bob's homes, each with the demo run once (`ckpm run --record demo`)."""
    homes = {}
    for user in ("alice", "bob"):
        home = tmp_path_factory.mktemp(f"home-{user}")
        checkout(home)
        r = ckpm(home, "--offline", "run", "--repeat", "3", "--record", "demo")
        assert r.returncode == 0, r.stderr
        homes[user] = home
    return homes


@pytest.fixture
def registry(tmp_path: Path, git_index_factory: Any, results_database: str | None) -> Iterator[RunningRegistry]:
    gi = git_index_factory({}, name="community")
    tokens = tmp_path / "tokens.toml"
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=make_users(tokens, "alice", "bob"),
                          refresh=0.0, database=results_database).start()
    try:
        yield reg
    finally:
        reg.stop()


def test_two_users_push_the_demo_and_a_third_pulls_and_compares(registry: RunningRegistry,
                                                               demo_homes: dict[str, Path], tmp_path: Path) -> None:
    alice, bob = demo_homes["alice"], demo_homes["bob"]
    url = registry.url
    # a wrong token is refused, with one clear line and nothing stored
    r = ckpm(alice, "results", "push", "demo", "--registry", url, "--token", "ckpm_wrong")
    assert r.returncode != 0 and "error:" in r.stderr and "Traceback" not in r.stderr
    assert "not valid" in r.stderr
    assert requests.get(f"{url}/api/v1/results", params={"program": "ckpm-demo"}, timeout=30).json()["total"] == 0
    # the dry run shows what would be sent: nothing from the home folder
    r = ckpm(alice, "results", "push", "demo", "--registry", url, "--dry-run")
    assert r.returncode == 0, r.stderr
    sent = json.loads(r.stdout)["records"]
    assert len(sent) == 1 and str(alice) not in r.stdout and "/root" not in r.stdout
    rec = sent[0]
    assert rec["program"] == {"name": "ckpm-demo", "version": "0.3.0", "command": "corners"}
    assert rec["host"]["cpu_count"] == os.cpu_count() and rec["host"]["software"]["compiler-gcc"]
    assert rec["metrics"]["corners"]["values"] == [205.0] * 3 and rec["validation"]["ok"] is True
    assert rec["lock"]["hash"].startswith("sha256:") and {"name": "dataset-hello-images", "version": "1.1.0",
                                                          "source": "index"} in rec["lock"]["packages"]
    # alice logs in once (the token kept in her config), bob passes his token
    assert ckpm(alice, "logout").returncode == 0  # (the home is shared by this test's runs on each database)
    r = ckpm(alice, "login", "--registry", url, stdin=registry.tokens_of["alice"] + "\n")
    assert r.returncode == 0, r.stderr
    r = ckpm(alice, "results", "push", "demo")
    assert r.returncode == 0 and "1 added" in r.stderr, r.stderr
    r = ckpm(bob, "results", "push", "demo", "--registry", url, "--token", registry.tokens_of["bob"], "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"]["user"] == "bob"
    r = ckpm(alice, "results", "push", "demo", "--json")  # again: nothing added
    assert json.loads(r.stdout)["data"]["added"] == [] and len(json.loads(r.stdout)["data"]["existing"]) == 1

    page = requests.get(f"{url}/api/v1/results", params={"program": "ckpm-demo"}, timeout=30).json()
    assert page["total"] == 2 and sorted(x["user"] for x in page["results"]) == ["alice", "bob"]
    assert len({x["lock"] for x in page["results"]}) == 1  # the same lock on both machines

    if CHROMIUM.exists():
        dom = chromium_dom(f"{url}/results/ckpm-demo", tmp_path)
        rows = re.findall(r'<tr class="machine" data-user="([^"]+)"', dom)
        assert sorted(rows) == ["alice", "bob"]
        assert "reproduced on 2 machines by 2 users" in dom
        assert '<svg id="frontier"' in dom and 'class="front"' in dom
        shot = tmp_path / "scoreboard.png"
        home = tmp_path / "chromium-home"
        proc = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--screenshot={shot}", "--window-size=1100,1300",
                               f"--user-data-dir={home / 'profile'}", f"{url}/results/ckpm-demo"],
                              capture_output=True, text=True, timeout=120, env=home_env(home), cwd=tmp_path)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", proc.stderr[-2000:]
        if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):  # refresh the picture in docs/ (docs/registry.md)
            shutil.copy(shot, DOCS_SHOT)

    # a third home pulls both and compares them
    carol = tmp_path / "home-carol"
    checkout(carol)
    r = ckpm(carol, "results", "pull", "ckpm-demo", "--registry", url)
    assert r.returncode == 0 and "pulled 2 record(s)" in r.stderr, r.stderr
    r = ckpm(carol, "results", "show", "ckpm-demo-pulled", "--json")
    ids = [x["id"] for x in json.loads(r.stdout)["data"]["records"]]
    assert len(ids) == 2
    r = ckpm(carol, "results", "compare", f"ckpm-demo-pulled@{ids[0]}", f"ckpm-demo-pulled@{ids[1]}", "--json")
    assert r.returncode == 0, r.stderr
    cmp = json.loads(r.stdout)["data"]
    assert {m["metric"] for m in cmp["metrics"]} >= {"time", "size", "corners", "images"}
    corners = next(m for m in cmp["metrics"] if m["metric"] == "corners")
    assert corners["verdict"] == "same (within noise)" and corners["ratio"] == 1.0
    r = ckpm(carol, "results", "ls")
    assert r.returncode == 0 and "ckpm-demo-pulled" in r.stdout
    r = ckpm(carol, "results", "pull", "ckpm-demo", "--registry", url, "--user", "bob", "--into", "bobs", "--json")
    assert json.loads(r.stdout)["data"]["users"] == ["bob"]
