"""Compare two ckpm installations command by command, runs interleaved (A, B, A, B, ...).

    python bench/bench_ab.py --a OLD/.venv/bin/ckpm --b .venv/bin/ckpm [--runs 9] [--json]

On a shared machine whose speed drifts, timing A's runs and then B's runs compares two
different machines; interleaving them makes the ratio B/A meaningful. Uses the project
and index of `bench_lock.py` (generated in bench/_work/ if missing) and a cache folder of
its own. Prints the median of each command for A and B and the ratio B/A.
"""
from __future__ import annotations

import argparse
import json
import os
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


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=WORK / "project", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="the ckpm command to compare against (the baseline)")
    ap.add_argument("--b", required=True, help="the ckpm command measured")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.a, args.b = (str(Path(x).resolve()) if os.sep in x else x for x in (args.a, args.b))
    ensure_work()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as cache:
        env["CKPM_CACHE_DIR"] = cache
        for name, argv in COMMANDS.items():
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
