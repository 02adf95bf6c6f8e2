"""Tuning: the search-space file, the strategies, the frontier, local and Dask executors, and
``ckpm tune`` end to end with the real pipeline (a C program and the machine's compiler).

The library tests use a real, deterministic evaluator written here (``synthetic``): metrics
computed from the request (a known landscape, so the optimum is known) with a jitter across
repetitions seeded by the request. It is a module-level function so that Dask worker processes
can import it (pytest puts tests/ on sys.path; the workers inherit it).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from ckpm.errors import CkpmError
from ckpm.experiment.executor import DaskExecutor, LocalExecutor
from ckpm.experiment.record import load_experiment, summarise
from ckpm.experiment.space import MAX_POINTS, SpaceError, load_space, parse_space
from ckpm.experiment.tune import TuneError, dominates, objective_vector, pareto_frontier, tune

SPACE = """\
[run]
repeat = 3
cflags = ["-g"]
env = { GREETING = "hi" }

[flags]
choices = ["", "speed", "size"]

[cflags.opt]
choices = ["-O0", "-O1", "-O2", "-O3", "-Os"]

[switches]
unroll = "-funroll-loops"
lto = "-flto"

[env]
OMP_NUM_THREADS = ["1", "2", "4", "8"]

[params]
block = ["16", "32", "64", "128"]
"""
SIZE = 3 * 5 * 2 * 2 * 4 * 4
OPTIMUM = {"flags": "speed", "cflags.opt": "-O3", "switches.unroll": "on", "switches.lto": "on",
           "env.OMP_NUM_THREADS": "4", "params.block": "64"}

OPT_TIME = {"-O0": 2.0, "-O1": 1.3, "-O2": 1.0, "-O3": 0.9, "-Os": 1.15}
OPT_SIZE = {"-O0": 1.0, "-O1": 0.8, "-O2": 0.85, "-O3": 1.1, "-Os": 0.7}
THREADS = {"1": 1.0, "2": 0.6, "4": 0.4, "8": 0.45}
BLOCK = {"16": 1.2, "32": 1.0, "64": 0.95, "128": 1.1}
PROFILE_TIME = {None: 1.0, "speed": 0.97, "size": 1.05}
PROFILE_SIZE = {None: 1.0, "speed": 1.1, "size": 0.8}


class SyntheticFailure(CkpmError):
    code = "synthetic"


def synthetic(request: dict[str, Any]) -> dict[str, Any]:
    """A record computed from the request: time and size from a known landscape (unique
    optimum OPTIMUM for time), a 'score' where higher is better, and a jitter of ±1% across
    repetitions seeded by the request (deterministic)."""
    if request["params"].get("fail"):
        raise SyntheticFailure("asked to fail")
    cflags = request["cflags"]
    opt = next(f for f in cflags if f.startswith("-O"))
    unroll, lto = "-funroll-loops" in cflags, "-flto" in cflags
    threads, block = request["env"]["OMP_NUM_THREADS"], request["params"]["block"]
    assert request["env"]["GREETING"] == "hi" and "-g" in cflags  # the [run] defaults reach every point
    if block == "128" and threads == "8":
        raise SyntheticFailure(f"crashed with block {block} on {threads} threads")
    time = (OPT_TIME[opt] * (0.93 if unroll else 1.0) * (0.95 if lto else 1.0) * THREADS[threads] * BLOCK[block]
            * PROFILE_TIME[request["flags"]])
    size = 10_000 * OPT_SIZE[opt] * (1.2 if unroll else 1.0) * (0.9 if lto else 1.0) * PROFILE_SIZE[request["flags"]]
    rng = random.Random(hashlib.sha256(json.dumps(request, sort_keys=True).encode()).digest())
    reps = [{"metrics": {"time": time * (1 + rng.uniform(-0.01, 0.01)), "size": size, "score": 1 / time},
             "ok": True} for _ in range(request["repeat"])]
    return {"format": 1, "ok": True, "request": request, "repetitions": reps,
            "metrics": summarise(reps, {"score": "higher"})}


def synthetic_packed(pack: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """What a Dask worker runs: the fixed argument (a 'pack') first, as run_packed takes it."""
    assert pack["format"] == 1 and pack["name"] == "synthetic"
    return synthetic(request)


PACK = {"format": 1, "name": "synthetic", "manifest": "", "lock": "", "files": {}}


@pytest.fixture
def space():
    return parse_space(SPACE, "space.toml")


def _points(result) -> list[tuple[tuple[str, str], ...]]:
    return [tuple(sorted(r["point"].items())) for r in result.records]


# -- the space file ------------------------------------------------------------------------------

def test_space_parses_in_a_documented_order(space, tmp_path: Path) -> None:
    assert space.names == ["flags", "cflags.opt", "switches.unroll", "switches.lto", "env.OMP_NUM_THREADS",
                           "params.block"]
    assert space.size == SIZE
    pts = list(space.points())
    assert len(pts) == SIZE and len({tuple(p.items()) for p in pts}) == SIZE
    assert pts[0] == {"flags": "", "cflags.opt": "-O0", "switches.unroll": "off", "switches.lto": "off",
                      "env.OMP_NUM_THREADS": "1", "params.block": "16"}
    assert pts[1]["params.block"] == "32"  # the last dimension moves fastest
    assert all(space.index_of(p) == i for i, p in enumerate(pts))
    # the same file gives the same enumeration
    f = tmp_path / "space.toml"
    f.write_text(SPACE)
    assert list(load_space(f).points()) == pts
    req = space.request(OPTIMUM)
    assert req == {"component": None, "command": None, "flags": "speed",
                   "cflags": ["-g", "-O3", "-funroll-loops", "-flto"],
                   "env": {"GREETING": "hi", "OMP_NUM_THREADS": "4"}, "params": {"block": "64"}, "input": None,
                   "target": None, "repeat": 3}
    assert space.request(pts[0])["flags"] is None and space.request(pts[0])["cflags"] == ["-g", "-O0"]
    # the caller's base request comes first, the space's [run] over it, the point last
    req = space.request(pts[0], {"repeat": 5, "env": {"A": "1"}, "cflags": "-march=native", "input": None,
                                 "component": "prog"})
    assert req["repeat"] == 3 and req["env"] == {"A": "1", "GREETING": "hi", "OMP_NUM_THREADS": "1"}
    assert req["cflags"] == ["-march=native", "-g", "-O0"] and req["component"] == "prog" and req["input"] is None
    # neighbours differ in exactly one coordinate; a mutation in at least one
    nb = space.neighbours(OPTIMUM)
    assert len(nb) == sum(len(d.values) - 1 for d in space.dimensions)
    assert all(sum(p[k] != OPTIMUM[k] for k in p) == 1 for p in nb)
    rng = random.Random(1)
    assert all(space.mutate(OPTIMUM, rng) != OPTIMUM for _ in range(50))
    assert [space.random(random.Random(5)) for _ in range(2)] == [space.random(random.Random(5))] * 2


@pytest.mark.parametrize("text, words", [
    ("[flags]\nchoices = []\n", "flags.choices must be a non-empty list"),
    ("[flags]\nchoices = ['speed', 'speed']\n", "flags.choices lists 'speed' twice"),
    ("[flags]\nchoice = ['speed']\n", "[flags] takes only choices"),
    ("[cflags.opt]\nchoices = ['-O2', 'O3']\n", "cflags.opt.choices: 'O3' is not a compiler flag"),
    ("[cflags]\nopt = ['-O2']\n", "[cflags.opt] takes only choices"),
    ("[switches]\nlto = true\n", "switches.lto must be a string"),
    ("[switches]\nlto = '/etc/passwd'\n", "switches.lto: '/etc/passwd' is not a compiler flag"),
    ("[env]\n'A B' = ['1']\n", "env.A B: not an environment variable name"),
    ("[env]\nX = '1'\n", "env.X must be a non-empty list of strings"),
    ("[env]\nX = [1, 2]\n", "env.X: 1 is not a string"),
    ('[params]\nn = ["1\\u0007"]\n', "holds a control character"),
    ("[run]\nrepeat = 0\n[env]\nX = ['1']\n", "run.repeat must be a whole number"),
    ("[run]\nrepeats = 2\n[env]\nX = ['1']\n", "run.repeats: unknown key"),
    ("[run]\nflags = 'speed'\n[flags]\nchoices = ['size']\n", "run.flags and [flags] both"),
    ("[runs]\n", "unknown table [runs]"),
    ("[run]\nrepeat = 2\n", "no dimension: nothing to tune"),
    ("[env\n", "not valid TOML"),
    ("[params]\n" + "".join(f"p{i} = [{', '.join(repr(str(j)) for j in range(10))}]\n" for i in range(7)),
     f"more than {MAX_POINTS:,} points"),
])
def test_space_errors_name_the_file_and_the_key(text: str, words: str) -> None:
    with pytest.raises(SpaceError) as e:
        parse_space(text, "my-space.toml")
    assert e.value.message.startswith("my-space.toml: ") and words in e.value.message, e.value.message


def test_space_file_problems(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="cannot read the space file"):
        load_space(tmp_path / "nope.toml")
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 20))
    with pytest.raises(SpaceError, match="larger than"):
        load_space(big)
    space = parse_space(SPACE)
    with pytest.raises(SpaceError, match="'-O9' is not one of"):
        space.request({**OPTIMUM, "cflags.opt": "-O9"})


# -- strategies --------------------------------------------------------------------------------

class Counting:
    """The synthetic evaluator, counting what it was asked (thread-safe)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(json.dumps(request, sort_keys=True))
        return synthetic(request)


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_budget_respected_and_no_point_twice(space, strategy: str) -> None:
    ev = Counting()
    seen: list[dict[str, Any]] = []
    res = tune(space, ev, objectives=["time", "size"], budget=37, strategy=strategy, seed=3, on_record=seen.append)
    assert len(res.records) == 37 == len(ev.requests) == len(seen)
    assert len(set(ev.requests)) == 37 and len(set(_points(res))) == 37
    assert [r["tune"]["n"] for r in res.records] == list(range(1, 38))
    # a budget above the space's size stops when the space is exhausted
    small = parse_space("[cflags.opt]\nchoices = ['-O1', '-O2', '-O3']\n[env]\nOMP_NUM_THREADS = ['1', '2']\n"
                        "[run]\nparams = { block = '32' }\nenv = { GREETING = 'hi' }\ncflags = ['-g']\n")
    res = tune(small, synthetic, objectives=["time"], budget=50, strategy=strategy, seed=1)
    assert len(res.records) == 6 and len(set(_points(res))) == 6


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_deterministic_for_a_seed(space, strategy: str) -> None:
    a = tune(space, synthetic, objectives=["time", "size"], budget=30, strategy=strategy, seed=7)
    b = tune(space, synthetic, objectives=["time", "size"], budget=30, strategy=strategy, seed=7)
    c = tune(space, synthetic, objectives=["time", "size"], budget=30, strategy=strategy, seed=8)
    assert a.records == b.records and a.frontier == b.frontier
    assert _points(a) != _points(c)


def test_evolution_finds_the_optimum_more_often_than_chance(space) -> None:
    budget, seeds = 48, range(10)
    best = {}
    for strategy in ("random", "evolution"):
        hits = []
        for seed in seeds:
            res = tune(space, synthetic, objectives=["time"], budget=budget, strategy=strategy, seed=seed)
            (chosen,) = res.frontier
            hits.append(chosen["point"] == OPTIMUM)
        best[strategy] = sum(hits)
    # chance: budget/size = 5% per run, so 0.5 hits expected in 10 runs
    assert best["evolution"] >= 5 and best["evolution"] > best["random"], best
    res = tune(space, synthetic, objectives=["time"], budget=budget, strategy="evolution", seed=0)
    assert res.frontier[0]["point"] == OPTIMUM


@pytest.mark.parametrize("objectives", [["time", "size"], ["size", "score"], ["time", "size", "score"]])
def test_frontier_holds_only_non_dominated_points(space, objectives: list[str]) -> None:
    res = tune(space, synthetic, objectives=objectives, budget=80, strategy="random", seed=2)
    front = res.frontier
    assert len(front) >= 2
    vec = {id(r): objective_vector(r, objectives) for r in res.records}
    ok = [r for r in res.records if vec[id(r)] is not None]
    for r in ok:  # every pair: nothing on the frontier is dominated; everything off it is
        dominated = any(dominates(vec[id(q)], vec[id(r)]) for q in ok)
        assert dominated == (not any(r is f for f in front)), r["point"]
    if "score" in objectives:  # higher is better: the best score is on the frontier
        top = max(ok, key=lambda r: r["metrics"]["score"]["median"])
        assert any(top is f for f in front)


def test_pareto_frontier_by_hand() -> None:
    def rec(t: float, s: float, ok: bool = True) -> dict[str, Any]:
        return {"ok": ok, "metrics": {"time": {"min": t, "median": t, "max": t, "better": "lower"},
                                      "acc": {"min": s, "median": s, "max": s, "better": "higher"}}}

    a, b, c, d, e, f = rec(1, 0.5), rec(2, 0.9), rec(2, 0.4), rec(3, 0.9), rec(0.5, 0.1, ok=False), rec(1, 0.5)
    assert pareto_frontier([a, b, c, d, e, f], ["time", "acc"]) == [a, f, b]  # c, d dominated; e failed; ties kept


def test_failed_points_are_recorded_and_the_search_goes_on(space) -> None:
    for strategy in ("random", "evolution"):
        res = tune(space, synthetic, objectives=["time"], budget=120, strategy=strategy, seed=4)
        failed = res.failed
        assert failed and len(res.records) == 120
        for r in failed:
            assert r["ok"] is False and r["metrics"] == {} and r["format"] == 1
            assert r["point"]["params.block"] == "128" and r["point"]["env.OMP_NUM_THREADS"] == "8"
            assert r["error"]["code"] == "synthetic" and "crashed with block 128" in r["error"]["error"]
        assert all(r["ok"] for r in res.frontier)
    # every point failing is not an error of tune(): the caller decides
    always = parse_space("[run]\nparams = { fail = 'yes', block = '1' }\n[env]\nX = ['1', '2']\n")
    res = tune(always, lambda req: synthetic(req), objectives=["time"], budget=2)
    assert len(res.failed) == 2 and res.frontier == []


def test_an_objective_the_program_does_not_measure_stops_the_search(space) -> None:
    got: list[dict[str, Any]] = []
    with pytest.raises(TuneError, match="measures no speed") as e:
        tune(space, synthetic, objectives=["time", "speed"], budget=20, jobs=2, on_record=got.append)
    assert "score, size, time" in (e.value.hint or "")
    assert 1 <= len(got) < 20  # stopped early; what arrived was reported
    for bad, words in ((dict(objectives=[]), "objectives must be"), (dict(budget=0), "budget must be"),
                       (dict(strategy="annealing"), "no tuning strategy")):
        kw: dict[str, Any] = {"objectives": ["time"], "budget": 5, **bad}
        with pytest.raises(TuneError, match=words):
            tune(space, synthetic, **kw)


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_jobs_2_gives_the_records_of_jobs_1(space, strategy: str) -> None:
    one = tune(space, synthetic, objectives=["time", "size"], budget=40, strategy=strategy, jobs=1, seed=5)
    two = tune(space, synthetic, objectives=["time", "size"], budget=40, strategy=strategy, jobs=2, seed=5)
    assert two.records == one.records and two.frontier == one.frontier


def test_local_executor_yields_every_outcome_once() -> None:
    reqs = [{"n": i} for i in range(9)]
    ex = LocalExecutor(lambda r: {"ok": True, "n": r["n"]}, jobs=3)
    outs = list(ex.run(reqs))
    assert sorted(o.index for o in outs) == list(range(9)) and all(o.record["n"] == o.index for o in outs)
    with pytest.raises(CkpmError, match="at least 1"):
        LocalExecutor(synthetic, jobs=0)
    # leaving early cancels what has not started: the first call returns, the others wait
    started: list[int] = []
    release = threading.Event()

    def slow(r: dict[str, Any]) -> dict[str, Any]:
        started.append(r["n"])
        if r["n"]:
            release.wait(10)
        return {"ok": True}

    gen = LocalExecutor(slow, jobs=2).run(reqs)
    assert next(gen).index == 0
    gen.close()
    release.set()
    assert len(started) <= 3


# -- Dask ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(request) -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    c = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                 worker_dashboard_address=None)
    request.addfinalizer(c.close)
    yield c


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_dask_gives_the_records_of_local(space, cluster, strategy: str) -> None:
    local = tune(space, functools.partial(synthetic_packed, PACK), objectives=["time", "size"], budget=24,
                 strategy=strategy, jobs=2, seed=9)
    ex = DaskExecutor(cluster.scheduler_address, synthetic_packed, PACK)  # an address: its own client
    try:
        assert ex.jobs == 2
        seen: list[dict[str, Any]] = []
        remote = tune(space, None, objectives=["time", "size"], budget=24, strategy=strategy, executor=ex, seed=9,
                      on_record=seen.append)
    finally:
        ex.close()
    assert remote.records == local.records and remote.frontier == local.frontier and len(seen) == 24


def test_dask_failed_points_keep_their_error(space, cluster) -> None:
    from distributed import Client

    with Client(cluster) as client:
        ex = DaskExecutor(client, synthetic_packed, PACK)
        res = tune(space, None, objectives=["time"], budget=120, executor=ex, seed=4)
        assert not client.status == "closed"  # the caller's client stays open
    failed = res.failed
    assert failed and all(r["error"]["code"] == "synthetic" and "crashed" in r["error"]["error"] for r in failed)
    local = tune(space, synthetic, objectives=["time"], budget=120, seed=4)
    assert _points(res) == _points(local) and [r["ok"] for r in res.records] == [r["ok"] for r in local.records]


def test_dask_unreachable_scheduler_is_a_clear_error() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(CkpmError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        DaskExecutor("tcp://127.0.0.1:9", synthetic_packed, PACK, timeout=2)


# -- ckpm tune end to end: the real pipeline, a C program, the machine's compiler ----------------

REAL_SPACE = """\
[run]
repeat = 2

[cflags.opt]
choices = ["-O0", "-O1", "-O2"]

[switches]
unroll = "-funroll-loops"
"""


def ckpm_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())


def _summer(tmp_path: Path) -> Path:
    from test_run import _project  # the program of tests/test_run.py: sum of i % 7, validated

    return _project(tmp_path)


def _check_frontier(front: list[dict[str, Any]], records: list[dict[str, Any]], objectives: list[str]) -> None:
    vec = [objective_vector(r, objectives) for r in records if r["ok"]]
    fv = [objective_vector(r, objectives) for r in front]
    assert front and all(v is not None for v in fv)
    assert not any(dominates(a, b) for a in vec for b in fv if a is not None and b is not None)


def test_cli_tune_records_every_point_and_prints_the_frontier(tmp_path: Path) -> None:
    proj = _summer(tmp_path)
    # n = 70 gives a sum the program's validation rejects: those points fail, the search goes on
    (proj / "space.toml").write_text(REAL_SPACE + '\n[params]\nn = ["100000", "70"]\n')
    r = ckpm_cli("tune", "--space", "space.toml", "--objectives", "time,size", "--budget", "8", "--record", "t1",
                 "--strategy", "evolution", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert "(8/8)" in r.stderr and "FAILED: summer: sum is 210, expected 299995" in r.stderr
    assert "Pareto frontier" in r.stdout and "-O" in r.stdout
    exp = load_experiment(proj, "t1")
    assert len(exp.records) == 8 and not exp.problems
    points = [json.dumps(rec["point"], sort_keys=True) for rec in exp.records]
    assert len(set(points)) == 8
    failed = [rec for rec in exp.records if not rec["ok"]]
    assert failed and all(rec["point"]["params.n"] == "70" and rec["error"]["code"] == "validation" for rec in failed)
    for rec in exp.records:
        assert rec["request"]["cflags"][0] in ("-O0", "-O1", "-O2") and rec["tune"]["strategy"] == "evolution"
    ok = [rec for rec in exp.records if rec["ok"]]
    assert ok and all(rec["config"]["params"]["n"] == "100000" and rec["metrics"]["size"]["median"] > 0 for rec in ok)
    # errors are one clear line
    r = ckpm_cli("tune", "--space", "space.toml", "--objectives", "time,speed", "--budget", "2", cwd=proj)
    assert r.returncode == 1 and "measures no speed" in r.stderr and "Traceback" not in r.stderr
    assert "(1/2)" not in r.stderr  # refused before a first point was compiled and run
    (proj / "bad.toml").write_text("[cflags.opt]\nchoices = ['O2']\n")
    r = ckpm_cli("tune", "--space", "bad.toml", cwd=proj)
    assert r.returncode == 1 and "bad.toml: cflags.opt.choices: 'O2' is not a compiler flag" in r.stderr
    r = ckpm_cli("tune", "--space", "space.toml", "--executor", "dask", cwd=proj)
    assert r.returncode == 64 and "needs --scheduler" in r.stderr


def test_cli_tune_parallel_2_json(tmp_path: Path) -> None:
    proj = _summer(tmp_path)
    (proj / "space.toml").write_text(REAL_SPACE)  # every point compiles its own binary
    r = ckpm_cli("tune", "--space", "space.toml", "--objectives", "time,size", "--budget", "6", "--parallel", "2",
                 "--record", "t2", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["data"]
    assert data["evaluated"] == 6 and data["failed"] == 0 and data["space_size"] == 6 and data["experiment"] == "t2"
    assert all("lock" not in rec for rec in data["records"])
    _check_frontier(data["frontier"], data["records"], ["time", "size"])
    assert len(load_experiment(proj, "t2").records) == 6
    r = ckpm_cli("tune", "--space", "space.toml", "-j", "2", cwd=proj)  # -j is a build's jobs (sync), not this
    assert r.returncode == 64 and "No such option" in r.stderr


def test_cli_tune_on_a_dask_cluster(tmp_path: Path, cluster) -> None:
    proj = _summer(tmp_path)
    (proj / "space.toml").write_text(REAL_SPACE)
    r = ckpm_cli("lock", cwd=proj)  # workers provision from the shipped lock
    assert r.returncode == 0, r.stderr
    r = ckpm_cli("tune", "--space", "space.toml", "--objectives", "time,size", "--budget", "4", "--record", "t3",
                 "--scheduler", cluster.scheduler_address, "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["data"]
    assert data["evaluated"] == 4 and data["failed"] == 0, [x.get("error") for x in data["records"]]
    assert all(rec["worker"]["host"] for rec in data["records"])  # each record came back from a worker
    _check_frontier(data["frontier"], data["records"], ["time", "size"])
    exp = load_experiment(proj, "t3")
    assert len(exp.records) == 4 and all(rec["ok"] and rec["lock"] for rec in exp.records)


def test_run_on_a_dask_worker(tmp_path: Path, cluster: Any) -> None:
    """`ckpm run --scheduler`: the run happens on a worker, from the shipped lock; the record
    (with the worker's host name) comes back and is saved here."""
    proj = _summer(tmp_path)
    r = ckpm_cli("run", "--repeat", "2", "--record", "remote", "--scheduler", cluster.scheduler_address, "--json",
                 cwd=proj)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)["data"]
    assert rec["ok"] and rec["worker"]["host"] and rec["metrics"]["time"]["n"] == 2
    assert rec["metrics"]["sum"]["median"] == 299995
    assert load_experiment(proj, "remote").records[0]["id"] == rec["id"]
