#!/usr/bin/env python3
"""Large indexes and large closures: search without summary.jsonl, reindex, a 3,000-package lock.

    python bench/bench_scale.py [--runs 5] [--json] [--only search|closure]

Two synthetic indexes from bench/gen_index.py, generated into ``bench/_work/scale/`` if
missing:

* ``search``: 10,000 components x 20 versions (200,000 lines) with its summary.jsonl
  removed. Times, as whole processes, ``ckpm search --tags group-07``
  - cold: a fresh cache directory each run, so every component file is read;
  - warm: the summaries kept in the cache by the previous run;
  - beside them, in the same run, the same search over the same index *with* its
    summary.jsonl (the baseline: what a warm search cannot beat, it reads as much);
  and ``ckpm index reindex`` (rebuilds summary.jsonl from every file), and ``ckpm search --help``
  (the start-up every command pays: Python, click and the CLI's modules). Peak memory
  (maximum resident set) of each process is read from ``wait4``.
  Targets: cold < 3 s, warm < 0.2 s, memory < 300 MB.
* ``closure``: 15,200 components, 3,800 of them a deep core, whose 10 roots pull in a
  closure of about 3,000 packages. Times ``ckpm lock --no-host`` from no lock (fresh),
  again with the lock in place (an unchanged re-lock), and ``lock --upgrade --no-host``.
  Target: the fresh lock < 5 s.

Every figure is the median of ``--runs`` runs after one untimed warm-up (file cache),
except cold search, whose every run starts from an empty cache.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_lock import error_line, find_ckpm, python_speed  # noqa: E402

WORK = HERE / "_work" / "scale"
SEARCH_TAG = "group-07"
TARGETS = {"search cold": 3.0, "search warm": 0.2, "search memory MB": 300.0, "lock fresh": 5.0}



def _installed_env() -> dict[str, str]:
    """This environment without PYTHONDONTWRITEBYTECODE: ckpm runs from bytecode, as an installed
    tool does (with the variable set, every run would compile ckpm's modules again)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, int, str]:
    """(seconds, exit status, error line) of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return time.perf_counter() - t0, proc.returncode, error_line(proc)


def measure_rss(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Peak RSS (MB) of one run, measured alone through wait4 so that other runs do not count."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss / 1024


def median_of(cmd: list[str], env: dict[str, str], runs: int, *, cwd: Path | None = None,
              before: Any = None, warmup: bool = True) -> dict[str, Any]:
    if warmup:
        if before:
            before()
        timed(cmd, env, cwd)
    times = []
    for _ in range(runs):
        if before:
            before()
        dt, code, err = timed(cmd, env, cwd)
        if code != 0:
            return {"seconds": None, "error": err}
        times.append(dt)
    if before:
        before()
    return {"seconds": statistics.median(times), "runs": [round(t, 3) for t in times],
            "rss_mb": round(measure_rss(cmd, env, cwd), 1)}


def generate(out: Path, *args: str) -> None:
    if (out / "index" / "config.json").is_file():
        return
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, str(HERE / "gen_index.py"), str(out / "index"), "--project", str(out / "project"),
                    *args], check=True, stdout=subprocess.DEVNULL)


def bench_search(ckpm: list[str], runs: int) -> dict[str, Any]:
    plain, with_summary = WORK / "search", WORK / "search-summary"
    generate(with_summary, "--components", "10000", "--versions", "20")
    if not (plain / "index" / "config.json").is_file():
        shutil.rmtree(plain, ignore_errors=True)
        shutil.copytree(with_summary, plain)
        (plain / "index" / "summary.jsonl").unlink()
        toml = (plain / "project" / "ckpm.toml").read_text().replace(str(with_summary), str(plain))
        (plain / "project" / "ckpm.toml").write_text(toml)
    cache = Path(tempfile.mkdtemp(prefix="ckpm-bench-cache-"))
    env = {**_installed_env(), "CKPM_CACHE_DIR": str(cache)}
    search = [*ckpm, "-C", str(plain / "project"), "search", "--tags", SEARCH_TAG]

    def fresh_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()

    try:
        res = {
            "search cold": median_of(search, env, runs, before=fresh_cache),
            "search warm": median_of(search, env, runs),
            "search with summary.jsonl (baseline)": median_of(
                [*ckpm, "-C", str(with_summary / "project"), "search", "--tags", SEARCH_TAG], env, runs),
            # what any ckpm command costs before it reads anything (Python, click, the CLI):
            # how fast this machine is today, and the part of a warm search that is not the search
            "ckpm search --help (start-up floor)": median_of([*ckpm, "search", "--help"], env, runs),
        }
        scratch = WORK / "reindex"
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(plain / "index", scratch)
        res["index reindex"] = median_of([*ckpm, "index", "reindex", str(scratch)], env, runs)
        same = (scratch / "summary.jsonl").read_bytes() == (with_summary / "index" / "summary.jsonl").read_bytes()
        res["index reindex"]["same bytes as the generator's summary.jsonl"] = same
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return res


def bench_closure(ckpm: list[str], runs: int) -> dict[str, Any]:
    where = WORK / "closure"
    generate(where, "--components", "15200", "--core", "3800", "--versions", "20")
    project = where / "project"
    env = {**_installed_env(), "CKPM_CACHE_DIR": str(WORK / "closure-cache")}
    lock = [*ckpm, "-C", str(project), "lock", "--no-host"]

    def no_lock() -> None:
        (project / "ckpm.lock").unlink(missing_ok=True)

    res = {"lock fresh": median_of(lock, env, runs, before=no_lock)}
    subprocess.run(lock, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = (project / "ckpm.lock").read_text()
    res["lock fresh"]["packages"] = text.count("[[package]]")
    res["re-lock unchanged"] = median_of(lock, env, runs)
    res["lock --upgrade"] = median_of([*lock, "--upgrade"], env, runs)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", choices=["search", "closure"])
    ap.add_argument("--ckpm", help="the ckpm command to measure (default: beside this Python, or .venv)")
    args = ap.parse_args(argv)
    ckpm = find_ckpm(args.ckpm)
    if ckpm is None:
        print("ckpm not found (install it, or pass --ckpm)", file=sys.stderr)
        return 1
    res: dict[str, Any] = {}
    speed_before = python_speed()
    if args.only in (None, "search"):
        res.update(bench_search(ckpm, args.runs))
    if args.only in (None, "closure"):
        res.update(bench_closure(ckpm, args.runs))
    checks = {}
    for name, target in TARGETS.items():
        if name == "search memory MB":
            got = res.get("search cold", {}).get("rss_mb")
        else:
            got = res.get(name, {}).get("seconds")
        if got is not None:
            checks[name] = {"value": round(got, 3), "target": target, "met": got < target}
    speed = {"before": round(speed_before, 3), "after": round(python_speed(), 3)}
    if args.json:
        print(json.dumps({"results": res, "checks": checks, "python_loop_s": speed}, indent=2))
        return 0
    print(f"machine: a 3,000,000-step Python loop took {speed['before']} s before the runs, {speed['after']} s after")
    print(f"{'measure':42} {'median':>9} {'peak RSS':>10}  runs")
    for name, r in res.items():
        if r.get("seconds") is None:
            print(f"{name:42} {'n/a':>9}  {r.get('error', '')}")
            continue
        extra = {k: v for k, v in r.items() if k not in ("seconds", "runs", "rss_mb")}
        print(f"{name:42} {r['seconds']:8.3f}s {r['rss_mb']:8.1f}MB  {r['runs']} {extra or ''}")
    print()
    for name, c in checks.items():
        unit = "" if "MB" in name else " s"
        print(f"{name:20} {c['value']}{unit} (target < {c['target']}{unit}): {'met' if c['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
