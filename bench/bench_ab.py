"""Compare two ckpm installations command by command, runs interleaved (A, B, A, B, ...).

    python bench/bench_ab.py --a OLD/.venv/bin/ckpm --b .venv/bin/ckpm [--runs 9] [--json] [--set NAME]

On a shared machine whose speed drifts, timing A's runs and then B's runs compares two
different machines; interleaving them makes the ratio B/A meaningful. Uses the project
and index of `bench_lock.py` (generated in bench/_work/ if missing) and a cache folder of
its own. Prints the median of each command for A and B and the ratio B/A.

``--set startup``: a warm ``ckpm run``, ``lock --check`` and a no-op ``lock`` on the project of
``bench_run.py`` (run it once first; its cache, store and config). ``--set search``: ``search
--tags group-07`` over the 10,000 components without summary.jsonl of ``bench_scale.py`` (run
it once first), cold (an empty cache before every run) and warm (A and B each keep their own).
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

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"

COMMANDS = {
    "lock --upgrade --no-host": ["lock", "--upgrade", "--no-host"],
    "search --tags group-07": ["search", "--tags", "group-07"],
    "detect --json, embedded (warm)": ["--index", "embedded", "detect", "--json"],
    "--version": ["--version"],
}


def ensure_work() -> None:
    if not (WORK / "project" / "ckpm.toml").is_file():
        subprocess.run([sys.executable, str(HERE / "gen_index.py"), str(WORK / "index"),
                        "--project", str(WORK / "project")], check=True)


def timed(cmd: list[str], env: dict[str, str], fresh: Path | None = None, cwd: Path = WORK / "project") -> float:
    """Seconds of one run; ``fresh``: a cache folder emptied before it (not timed)."""
    if fresh is not None:
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def other_set(args: argparse.Namespace, base: dict[str, str], cache: Path) -> dict[str, dict[str, float]]:
    """--set startup or search: [(name, argv, cold)] with a cache folder per installation."""
    if args.set == "startup":
        run = WORK / "run"
        if not (run / ".ckpm").is_dir():
            raise SystemExit("run bench/bench_run.py once first (it makes bench/_work/run)")
        env = {**base, "CKPM_CACHE_DIR": str(run / ".cache"), "CKPM_STORE": str(run / ".store"),
               "CKPM_CONFIG": str(run / "no-config.toml")}
        cmds = [("warm run", ["-C", str(run), "run"], False), ("lock --check", ["-C", str(run), "lock", "--check"], False),
                ("no-op lock", ["-C", str(run), "lock"], False)]
        envs = {args.a: env, args.b: env}
    else:
        proj = WORK / "scale" / "search" / "project"
        if not proj.is_dir():
            raise SystemExit("run bench/bench_scale.py --only search once first (it makes bench/_work/scale)")
        argv = ["-C", str(proj), "search", "--tags", "group-07"]
        cmds = [("search cold", argv, True), ("search warm", argv, False)]
        envs = {exe: {**base, "CKPM_CACHE_DIR": str(cache / tag)} for exe, tag in ((args.a, "a"), (args.b, "b"))}
    out: dict[str, dict[str, float]] = {}
    for name, argv, cold in cmds:
        fresh = {exe: Path(e["CKPM_CACHE_DIR"]) if cold else None for exe, e in envs.items()}
        for exe in (args.a, args.b):
            timed([exe, *argv], envs[exe], fresh[exe], WORK)
        a, b = [], []
        for _ in range(args.runs):
            a.append(timed([args.a, *argv], envs[args.a], fresh[args.a], WORK))
            b.append(timed([args.b, *argv], envs[args.b], fresh[args.b], WORK))
        ma, mb = statistics.median(a), statistics.median(b)
        out[name] = {"a": round(ma, 3), "b": round(mb, 3), "ratio": round(mb / ma, 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="the ckpm command to compare against (the baseline)")
    ap.add_argument("--b", required=True, help="the ckpm command measured")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--set", choices=["default", "startup", "search"], default="default")
    args = ap.parse_args()
    args.a, args.b = (str(Path(x).resolve()) if os.sep in x else x for x in (args.a, args.b))
    if args.set == "default":
        ensure_work()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as cache:
        env["CKPM_CACHE_DIR"] = cache
        if args.set != "default":
            out = other_set(args, env, Path(cache))
        for name, argv in (COMMANDS if args.set == "default" else {}).items():
            for exe in (args.a, args.b):  # warm-up: bytecode, host profile, index caches
                timed([exe, *argv], env)
            a, b = [], []
            for _ in range(args.runs):
                a.append(timed([args.a, *argv], env))
                b.append(timed([args.b, *argv], env))
            ma, mb = statistics.median(a), statistics.median(b)
            out[name] = {"a": round(ma, 3), "b": round(mb, 3), "ratio": round(mb / ma, 2)}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"A {args.a}\nB {args.b}\nruns {args.runs}, interleaved, median seconds\n")
    print(f"{'command':32s} {'A':>8s} {'B':>8s} {'B/A':>6s}")
    for name, r in out.items():
        print(f"{name:32s} {r['a']:8.3f} {r['b']:8.3f} {r['ratio']:6.2f}")


if __name__ == "__main__":
    main()
