"""The registry's results API, on SQLite and on a real PostgreSQL server (each test runs on both).

The service runs for real (uvicorn on 127.0.0.1, port 0); records are pushed with
``ckpm.sharing`` (the client `ckpm results push` uses) or with raw requests for the refusals.
Every refusal is checked to store nothing.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from ckpm.experiment.record import save_record
from ckpm.experiment.results import compare, pareto, show
from ckpm.experiment.share import shared_record
from ckpm.settings import Settings
from pg_support import postgres_server, results_database  # noqa: F401 - fixtures
from registry_support import RunningRegistry, make_users
from test_results import HOST, record

PROGRAM = "program-image-corners"
T4 = {"OMP_NUM_THREADS": "4"}
LOCK = """[metadata]
lock-version = 1
ckpm-version = "0.1.0"
manifest-hash = "sha256:88e71b7125c95f7ded41f1fa8579dd7a6a6c1ec98abf9131fbee7836f4368b2b"
targets = ["linux-x86_64"]

[[root]]
key = "compiler"
name = "compiler-gcc"
version = "12.2.0"

[[root]]
key = "dataset-images-small"
name = "dataset-images-small"
version = "1.0.0"

[[package]]
name = "compiler-gcc"
version = "12.2.0"
kind = "compiler"
keys = ["compiler"]
targets = ["linux-x86_64"]
source = { fingerprint = "3b52d9ddb010a4e1709e", host = "compiler", path = "/home/someone/gcc/bin/gcc", rule-id = "sha256:5b7600e09de7bb4b" }
dependencies = []

[[package]]
name = "dataset-images-small"
version = "1.0.0"
kind = "dataset"
keys = ["dataset-images-small"]
targets = ["linux-x86_64"]
source = { index = "default", url = "embedded" }
dependencies = []
"""


def start(tmp_path: Path, git_index_factory: Any, database: str | None, **kw: Any) -> RunningRegistry:
    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    users = make_users(tokens, "alice", "bob", "carol")
    return RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=users, refresh=0.0, database=database,
                           **kw).start()


@pytest.fixture
def registry(tmp_path: Path, git_index_factory: Any, results_database: str | None) -> Iterator[RunningRegistry]:
    reg = start(tmp_path, git_index_factory, results_database)
    try:
        yield reg
    finally:
        reg.stop()


def shared(i: int, **kw: Any) -> dict[str, Any]:
    """A record as `ckpm results push` sends it: times rise and sizes fall with ``i`` (a trade-off)."""
    rec = record(times=[0.1 + 0.01 * i, 0.102 + 0.01 * i], sizes=[20000.0 - 100 * i] * 2, at=i,
                 cflags=(f"-O{i % 4}",), lock=LOCK, **kw)
    rec["experiment"] = "baseline"
    return shared_record(rec, home="/home/someone")


def post(reg: RunningRegistry, records: Any, user: str | None = "alice", *, raw: bytes | None = None,
         token: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    elif user:
        headers.update(reg.headers(user))
    body = raw if raw is not None else json.dumps({"records": records}).encode()
    return requests.post(f"{reg.url}/api/v1/results", data=body, headers=headers, timeout=30)


def total(reg: RunningRegistry) -> int:
    return int(reg.app.state.results.count())


def error_of(resp: requests.Response) -> str:
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["error"]
    return str(body["error"]["code"])


# -- push, query, get, delete -----------------------------------------------------------------


def test_push_twice_adds_once_and_queries_sort_and_filter(registry: RunningRegistry) -> None:
    recs = [shared(i) for i in range(5)]
    r = post(registry, recs)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["user"] == "alice" and len(first["added"]) == 5 and first["existing"] == []
    r = post(registry, recs)  # the same records again: nothing added
    assert r.status_code == 200 and r.json()["added"] == [] and r.json()["existing"] == first["ids"]
    assert total(registry) == 5
    # bob pushes the same record: it is his, a record of its own
    r = post(registry, recs[:1], "bob")
    assert r.status_code == 201 and r.json()["ids"][0] not in first["ids"]

    page = requests.get(f"{registry.url}/api/v1/results", params={"program": PROGRAM}, timeout=30).json()
    assert page["total"] == 6 and [x["user"] for x in page["results"]][0] == "bob"  # newest first
    page = requests.get(f"{registry.url}/api/v1/results", timeout=30,
                        params={"program": PROGRAM, "metric": "time", "user": "alice", "limit": 2}).json()
    assert page["total"] == 5 and [x["metrics"]["time"]["median"] for x in page["results"]] == pytest.approx(
        [0.101, 0.111])
    page2 = requests.get(f"{registry.url}/api/v1/results", timeout=30,
                         params={"program": PROGRAM, "metric": "size", "limit": 2, "offset": 1}).json()
    assert [x["metrics"]["size"]["median"] for x in page2["results"]] == [19700.0, 19800.0]  # smallest first
    assert requests.get(f"{registry.url}/api/v1/results", params={"program": "nothing"}, timeout=30).json()[
        "total"] == 0
    lock = page["results"][0]["lock"]
    assert lock.startswith("sha256:") and requests.get(f"{registry.url}/api/v1/results", timeout=30, params={
        "lock": lock}).json()["total"] == 6

    one = requests.get(f"{registry.url}/api/v1/results/{first['ids'][0]}", timeout=30).json()
    rec = one["record"]
    assert rec["metrics"]["time"]["values"] == [0.1, 0.102] and rec["metrics"]["time"]["median"] == 0.101
    assert rec["lock"]["packages"] == [{"name": "compiler-gcc", "version": "12.2.0", "source": "host"},
                                       {"name": "dataset-images-small", "version": "1.0.0", "source": "index"}]
    assert rec["host"]["software"] == {"compiler-gcc": "12.2.0"} and "someone" not in json.dumps(rec)
    assert "path" not in rec["config"]["compiler"] and "command_lines" not in rec and "stages" not in rec


def test_each_endpoint_refuses_with_a_json_error_and_stores_nothing(registry: RunningRegistry) -> None:
    rec = shared(0)
    cases = [
        (post(registry, [rec], None), 401, "unauthorized"),
        (post(registry, [rec], token="ckpm_wrong"), 401, "unauthorized"),
        (post(registry, None, raw=b"{not json"), 400, "bad-request"),
        (post(registry, None, raw=b"[1, 2]"), 400, "bad-request"),
        (post(registry, []), 422, "invalid"),
        (post(registry, [{**rec, "home": "/home/x"}]), 422, "invalid"),  # nothing but the listed keys
        (post(registry, [{**rec, "format": 2}]), 422, "invalid"),
        (post(registry, [{**rec, "program": {"name": "../etc"}}]), 422, "invalid"),
        (post(registry, [{**rec, "metrics": {}}]), 422, "invalid"),
        (post(registry, [{**rec, "metrics": {"time": {"values": []}}}]), 422, "invalid"),
        (post(registry, [{**rec, "metrics": {"time": {"values": ["1"]}}}]), 422, "invalid"),
        (post(registry, [{**rec, "metrics": {"time": {"values": [1], "better": "up"}}}]), 422, "invalid"),
        (post(registry, None, raw=b'{"records": [{"format": 1, "metrics": {"t": {"values": [NaN]}}}]}'), 422,
         "invalid"),
        (post(registry, [rec, {**rec, "ok": "yes"}]), 422, "invalid"),  # one bad record: none stored
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        assert error_of(resp) == code
    assert total(registry) == 0
    url = f"{registry.url}/api/v1/results"
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"program": "x" * 200}):
        r = requests.get(url, params=params, timeout=30)
        assert r.status_code == 422 and error_of(r) == "invalid"
    for rid in ("0" * 32, "not-an-id", "x" * 300):
        r = requests.get(f"{url}/{rid}", timeout=30)
        assert r.status_code == 404 and error_of(r) == "not-found"
    rid = post(registry, [rec]).json()["ids"][0]
    r = requests.delete(f"{url}/{rid}", timeout=30)
    assert r.status_code == 401
    r = requests.delete(f"{url}/{rid}", headers=registry.headers("bob"), timeout=30)
    assert r.status_code == 403 and error_of(r) == "forbidden" and "alice" in r.json()["error"]["error"]
    r = requests.delete(f"{url}/{'f' * 32}", headers=registry.headers("alice"), timeout=30)
    assert r.status_code == 404
    assert total(registry) == 1
    r = requests.delete(f"{url}/{rid}", headers=registry.headers("alice"), timeout=30)
    assert r.status_code == 200 and r.json() == {"deleted": rid}
    assert requests.get(f"{url}/{rid}", timeout=30).status_code == 404 and total(registry) == 0
    # the scoreboard forgets it too
    r = requests.get(f"{registry.url}/results/{PROGRAM}", timeout=30)
    assert r.status_code == 404 and error_of(r) == "not-found"


# -- limits -----------------------------------------------------------------------------------


def test_limits_answer_413_422_429_and_never_5xx(tmp_path: Path, git_index_factory: Any,
                                                 results_database: str | None) -> None:
    from ckpm_registry.results import ResultsLimits

    lim = ResultsLimits(records_per_push=3, metrics_per_record=4, values_per_metric=5, string_length=100,
                        pushes_per_minute=6)
    reg = start(tmp_path, git_index_factory, results_database, max_body=20_000, results_limits=lim)
    try:
        rec = shared(0)
        big = post(reg, [rec] * 40)  # over the body size
        assert big.status_code == 413 and error_of(big) == "too-large"
        r = post(reg, [shared(i) for i in range(4)])
        assert r.status_code == 422 and "at most 3" in r.json()["error"]["error"]
        many = {f"m{i}": {"values": [1.0]} for i in range(5)}
        r = post(reg, [{**rec, "metrics": many}])
        assert r.status_code == 422 and "at most 4 per record" in r.json()["error"]["error"]
        r = post(reg, [{**rec, "metrics": {"time": {"values": [1.0] * 6}}}])
        assert r.status_code == 422 and "at most 5" in r.json()["error"]["error"]
        r = post(reg, [{**rec, "target": "x" * 101}])
        assert r.status_code == 422 and "longer than 100" in r.json()["error"]["error"]
        r = post(reg, [{**rec, "config": {"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}}])
        assert r.status_code == 422 and "nested deeper" in r.json()["error"]["error"]
        assert total(reg) == 0
        # 5 pushes so far were counted against alice's token (the 413 never reached the service): one more is fine
        assert post(reg, [rec]).status_code == 201
        r = post(reg, [rec])
        assert r.status_code == 429 and error_of(r) == "too-many-requests"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert post(reg, [shared(1)], "bob").status_code == 201  # another token has its own budget
        assert total(reg) == 2
    finally:
        reg.stop()


def test_rate_limiter_window() -> None:
    from ckpm_registry.results import RateLimiter

    now = [1000.0]
    rl = RateLimiter(2, clock=lambda: now[0])
    assert rl.take("a") is None and rl.take("a") is None
    assert rl.take("a") == pytest.approx(60.0) and rl.take("b") is None
    now[0] += 30
    assert rl.take("a") == pytest.approx(30.0)
    now[0] += 30
    assert rl.take("a") is None  # the first of the two left the window


# -- the scoreboard's numbers -------------------------------------------------------------------


def test_scoreboard_machines_reproductions_unexpected_and_frontier(registry: RunningRegistry) -> None:
    other = {**HOST, "__libc": "2.31"}
    recs = [shared(i) for i in range(6)]
    # three runs of one configuration, and a fourth, on the same lock and machine, far slower: unexpected
    same = [shared_record({**record(times=[0.2 + 0.001 * k, 0.2], at=40 + k, lock=LOCK, env=T4), "experiment": "b"})
            for k in range(3)]
    slow = shared_record({**record(times=[0.5, 0.52], at=30, lock=LOCK, env=T4), "experiment": "b"})
    assert post(registry, [*recs, *same, slow]).status_code == 201
    bob = [shared(i, host=other) for i in (1, 2)]
    assert post(registry, bob, "bob").status_code == 201
    data = registry.app.state.results.scoreboard(PROGRAM, x="time", y="size")
    users = sorted(m["user"] for m in data["machines"])
    assert users == ["alice", "bob"]
    alice = next(m for m in data["machines"] if m["user"] == "alice")
    assert alice["metrics"]["time"]["best"] == 0.1 and alice["metrics"]["time"]["n"] == 10
    assert alice["metrics"]["time"]["median"] == pytest.approx((0.141 + 0.151) / 2)
    assert data["reproduced"] == [{"lock": recs[0]["lock"]["hash"], "machines": 2, "users": 2}]
    flagged = {(f["metric"], f["value"]) for f in data["unexpected"]}
    assert flagged == {("time", 0.51)}  # not the other configurations: they are not its peers
    one = requests.get(f"{registry.url}/api/v1/results/{data['unexpected'][0]['id']}", timeout=30).json()
    assert one["unexpected"][0]["median"] == pytest.approx(0.20075) and one["unexpected"][0]["median_id"] in {
        x["id"] for x in requests.get(f"{registry.url}/api/v1/results", timeout=30,
                                      params={"program": PROGRAM, "limit": 100}).json()["results"]}
    # the frontier is the one ckpm.experiment.results.pareto finds over every record's medians
    every = requests.get(f"{registry.url}/api/v1/results", params={"program": PROGRAM, "limit": 100},
                         timeout=30).json()["results"]
    pts = [(x["metrics"]["time"]["median"], x["metrics"]["size"]["median"]) for x in every]
    want = sorted({pts[i] for i in pareto(pts)})  # one record per distinct point
    assert sorted((p["x"], p["y"]) for p in data["frontier"]) == want
    assert len(data["frontier"]) + len(data["points"]) <= len(every)
    # filters
    only_bob = registry.app.state.results.scoreboard(PROGRAM, user="bob", x="time", y="size")
    assert [m["user"] for m in only_bob["machines"]] == ["bob"] and {p["id"] for p in only_bob["frontier"]} <= {
        x["id"] for x in every if x["user"] == "bob"}
    assert registry.app.state.results.scoreboard(PROGRAM, compiler="clang 1")["machines"] == []
    # the statistics kept push by push are those a rebuild from the records finds
    db = registry.app.state.results
    def boards() -> list[dict[str, Any]]:  # (the points drawn beside the frontier are a sample, in any order)
        return [{**b, "points": sorted(p["id"] for p in b["points"])} for b in (
            db.scoreboard(PROGRAM, x=x, y=y, user=u) for x, y in (("time", "size"), ("size", "max_rss"))
            for u in ("", "bob"))]

    before = boards()
    db.rebuild_stats()
    assert boards() == before


# -- the client: push, dry run, pull, compare --------------------------------------------------


def project_with(tmp_path: Path, name: str, n: int, home: Path, **kw: Any) -> Path:
    proj = tmp_path / name
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "{name}"\nversion = "1.2.0"\n')
    for i in range(n):
        rec = record(times=[0.1 + 0.01 * i, 0.11 + 0.01 * i], at=i, **kw)
        rec["config"]["compiler"]["path"] = f"{home}/toolchains/bin/gcc"
        rec["config"]["input"] = f"{home}/data/images"
        save_record(proj, "baseline", rec)
    return proj


def test_push_dry_run_pull_and_compare(registry: RunningRegistry, tmp_path: Path) -> None:
    from ckpm.sharing import pull, push

    home = tmp_path / "home-a"
    env = {"HOME": str(home), "CKPM_CONFIG": str(tmp_path / "a.toml")}
    proj = project_with(tmp_path, "alice-proj", 3, home)
    s = Settings(env=env)
    dry = push(proj, "baseline", registry=registry.url, dry_run=True, settings=s)
    text = json.dumps(dry.to_dict())
    assert len(dry.records) == 3 and str(home) not in text and "~/data/images" in text
    assert "/toolchains/bin/gcc" not in text and total(registry) == 0
    with pytest.raises(Exception) as e:  # no token: refused before anything is sent
        push(proj, "baseline", registry=registry.url, settings=s)
    assert "no token" in str(e.value)
    res = push(proj, "baseline", registry=registry.url, token=registry.tokens_of["alice"], settings=s)
    assert res.user == "alice" and len(res.added) == 3 and res.existing == []
    again = push(proj, "baseline", registry=registry.url, token=registry.tokens_of["alice"], settings=s)
    assert again.added == [] and sorted(again.existing) == sorted(res.added)
    with pytest.raises(Exception) as e:
        push(proj, "baseline", registry=registry.url, token="ckpm_wrong", settings=s)
    assert getattr(e.value, "code", "") == "unauthorized"

    third = tmp_path / "third"
    third.mkdir()
    (third / "ckpm.toml").write_text('[project]\nname = "third"\n')
    got = pull(third, PROGRAM, registry=registry.url, settings=Settings(env={"HOME": str(tmp_path / "c")}))
    assert got.records == 3 and got.new == 3 and got.users == ["alice"] and got.experiment == f"{PROGRAM}-pulled"
    again_pull = pull(third, PROGRAM, registry=registry.url, settings=Settings(env={"HOME": str(tmp_path / "c")}))
    assert again_pull.records == 3 and again_pull.new == 0
    view = show(third, f"{PROGRAM}-pulled")
    assert len(view["records"]) == 3 and view["metrics"][:3] == ["time", "size", "max_rss"]
    ids = [r["id"] for r in view["records"]]
    cmp = compare(third, f"{PROGRAM}-pulled@{ids[0]}", f"{PROGRAM}-pulled@{ids[-1]}")
    time_cmp = next(m for m in cmp["metrics"] if m["metric"] == "time")
    assert time_cmp["verdict"] == "slower" and time_cmp["ratio"] == pytest.approx(0.125 / 0.105)
    from ckpm.experiment.record import load_experiment

    pulled = load_experiment(third, f"{PROGRAM}-pulled").records[0]
    assert pulled["pulled"]["user"] == "alice" and pulled["pulled"]["registry"] == registry.url
    # a pulled record is never pushed again as one's own
    with pytest.raises(Exception) as e:
        push(third, f"{PROGRAM}-pulled", registry=registry.url, token=registry.tokens_of["bob"],
             settings=Settings(env={"HOME": "/nonexistent"}))
    assert "no record to push" in str(e.value)


def test_tune_push_sends_each_point_as_it_arrives(tmp_path: Path, git_index_factory: Any) -> None:
    """`ckpm tune --push NAME --registry URL` (a real C program tuned with the machine's compiler)."""
    import os
    import subprocess
    import sys

    from test_tune import REAL_SPACE, _summer

    reg = start(tmp_path, git_index_factory, None)
    try:
        proj = _summer(tmp_path)
        # n = 70 fails validation: those points are pushed too, as not validated
        (proj / "space.toml").write_text(REAL_SPACE + '\n[params]\nn = ["100000", "70"]\n')
        r = subprocess.run([sys.executable, "-m", "ckpm", "tune", "--space", "space.toml", "--objectives", "time,size",
                            "--budget", "6", "--record", "t", "--push", "crowd", "--registry", reg.url, "--token",
                            reg.tokens_of["carol"], "--json"], cwd=proj, capture_output=True, text=True, timeout=300,
                           env=os.environ.copy())
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)["data"]
        measured = [rec for rec in data["records"] if rec.get("metrics")]
        assert len(data["pushed"]["added"]) == len(measured) == 6
        page = requests.get(f"{reg.url}/api/v1/results", params={"user": "carol", "full": "true"}, timeout=30).json()
        assert page["total"] == 6
        pushed = {json.dumps(x["record"]["point"], sort_keys=True): x for x in page["results"]}
        assert set(pushed) == {json.dumps(rec["point"], sort_keys=True) for rec in measured}
        for rec in measured:
            x = pushed[json.dumps(rec["point"], sort_keys=True)]
            assert x["ok"] is rec["ok"] and x["record"]["validation"]["ok"] is rec["ok"]
        assert {x["record"]["experiment"] for x in page["results"]} == {"crowd"}
        r = subprocess.run([sys.executable, "-m", "ckpm", "tune", "--space", "space.toml", "--budget", "1",
                            "--registry", reg.url], cwd=proj, capture_output=True, text=True, timeout=300,
                           env=os.environ.copy())
        assert r.returncode == 64 and "--registry is for --push" in r.stderr
    finally:
        reg.stop()
