"""The results pages rendered by headless chromium, with hostile strings in every field a record may carry;
and a service killed with SIGKILL while clients push leaves every push whole or absent."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import pytest
import requests

from ckpm.experiment.share import shared_record
from pg_support import postgres_server, results_database  # noqa: F401 - fixtures
from registry_support import CHROMIUM, RunningRegistry, chromium_dom, make_users, serve_subprocess
from test_results import record

EVIL = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">"\'&'


def hostile(i: int) -> dict[str, Any]:
    """A record with a hostile string in every free-text field (names are checked: a program name
    or a metric name cannot hold one and is refused instead)."""
    rec = shared_record({**record(times=[0.1 + i / 100, 0.2], sizes=[1000.0 - i] * 2, at=i), "experiment": "x"})
    rec["program"].update({"version": EVIL, "command": EVIL})
    rec.update({"experiment": EVIL, "local_id": EVIL, "created": EVIL, "ckpm_version": EVIL, "target": EVIL})
    rec["config"] = {EVIL: EVIL, "flags": EVIL, "env": {EVIL: EVIL}, "compiler": {"name": EVIL, "version": EVIL}}
    rec["point"] = {EVIL: EVIL}
    rec["lock"] = {"hash": EVIL[:120], "packages": [{"name": EVIL, "version": EVIL, "source": EVIL}]}
    rec["host"] = {"cpu_model": EVIL, "cpu_count": EVIL, "os": EVIL, "arch": EVIL, "libc": EVIL,
                   "facts": {EVIL: EVIL}, "software": {EVIL: EVIL}}
    rec["validation"] = {"ok": True, "checks": [{"check": EVIL, "ok": True}]}
    return rec


@pytest.fixture
def registry(tmp_path: Path, git_index_factory: Any, results_database: str | None) -> Iterator[RunningRegistry]:
    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=make_users(tokens, "alice"),
                          refresh=0.0, database=results_database).start()
    try:
        yield reg
    finally:
        reg.stop()


def test_hostile_strings_stay_text(registry: RunningRegistry, tmp_path: Path) -> None:
    r = requests.post(f"{registry.url}/api/v1/results", json={"records": [hostile(i) for i in range(4)]},
                      headers=registry.headers("alice"), timeout=30)
    assert r.status_code == 201, r.text
    rid = r.json()["ids"][0]
    bad = {**hostile(9), "metrics": {EVIL: {"values": [1]}}}
    r = requests.post(f"{registry.url}/api/v1/results", json={"records": [bad]}, headers=registry.headers("alice"),
                      timeout=30)
    assert r.status_code == 422
    pages = [f"{registry.url}/results/program-image-corners", f"{registry.url}/records/{rid}",
             f"{registry.url}/results/program-image-corners?" + urlencode({"target": EVIL, "user": EVIL[:60], "x": EVIL})]
    for url in pages:
        raw = requests.get(url, headers={"Accept": "text/html"}, timeout=30)
        assert raw.status_code == 200, (url, raw.text)
        assert "<script>document" not in raw.text and "<img" not in raw.text
        if not CHROMIUM.exists():
            continue
        dom = chromium_dom(url, tmp_path)
        title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)  # type: ignore[union-attr]
        assert "pwned" not in title and "<img" not in dom
        assert dom.count("<script") == ("/results/" in url)  # the scoreboard's own sorter, nothing pushed
        assert "&lt;script&gt;document.title" in dom
    if CHROMIUM.exists():
        dom = chromium_dom(f"{registry.url}/records/{rid}", tmp_path)
        assert re.search(r'<tr data-metric="time"><td>time</td><td>0.15</td>', dom)
        assert 'id="lock-hash">&lt;script&gt;' in dom
    r = requests.get(f"{registry.url}/results/nothing-here", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


def test_sigkill_during_pushes_leaves_each_push_whole_or_absent(tmp_path: Path, git_index_factory: Any,
                                                                results_database: str | None) -> None:
    import sqlalchemy as sa

    from ckpm_registry.resultsdb import ResultsDB, database_url

    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    users = make_users(tokens, "alice", "bob", "carol", "dave")
    state = tmp_path / "state"
    extra = ["--state", str(state)] + (["--database", results_database] if results_database else [])
    proc, url = serve_subprocess(str(gi.git.path), tokens, *extra)
    batches: dict[tuple[str, int], list[dict[str, Any]]] = {}
    done = threading.Event()
    acked: list[tuple[str, int]] = []
    lock = threading.Lock()

    def client(user: str) -> None:
        for b in range(1000):
            recs = [hostile(b * 100 + i) for i in range(40)]
            for r in recs:
                r["experiment"] = f"{user}-{b}"
            batches[(user, b)] = recs
            try:
                resp = requests.post(f"{url}/api/v1/results", json={"records": recs},
                                     headers={"Authorization": f"Bearer {users[user]}"}, timeout=30)
            except requests.RequestException:
                return  # the service is gone
            if resp.status_code == 429:
                return
            assert resp.status_code == 201, resp.text
            with lock:
                acked.append((user, b))
                if len(acked) >= 6:
                    done.set()

    threads = [threading.Thread(target=client, args=(u,)) for u in users]
    for t in threads:
        t.start()
    try:
        assert done.wait(120), "no pushes were answered"
        os.kill(proc.pid, signal.SIGKILL)  # while the clients go on pushing
        proc.wait(timeout=30)
    finally:
        for t in threads:
            t.join(timeout=60)
        if proc.poll() is None:
            proc.kill()
    # the database after the crash: every push is all of its 40 records (with all their metrics) or none
    db = ResultsDB(database_url(results_database, state))
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT doc, id FROM results")).all()
            metric_rows = conn.execute(sa.text("SELECT result_id, COUNT(*) FROM result_metrics GROUP BY result_id")
                                       ).all()
    finally:
        db.close()
    per_batch: dict[str, int] = {}
    for doc, _ in rows:
        exp = json.loads(doc)["experiment"]
        per_batch[exp] = per_batch.get(exp, 0) + 1
    assert per_batch and set(per_batch.values()) == {40}, per_batch
    assert {f"{u}-{b}" for u, b in acked} <= set(per_batch)  # every acknowledged push is there
    assert len(metric_rows) == len(rows) and {n for _, n in metric_rows} == {3}
    # and the service starts again on it
    proc2, url2 = serve_subprocess(str(gi.git.path), tokens, *extra)
    try:
        page = requests.get(f"{url2}/api/v1/results", params={"program": "program-image-corners"}, timeout=30)
        assert page.json()["total"] == len(rows)
    finally:
        proc2.terminate()
        proc2.wait(timeout=30)
