"""A no-op ``ckpm lock --check`` against a no-op ``ckpm lock``: whole processes, median of N.

    python bench/bench_lock_check.py [--project DIR] [--runs 11] [--ckpm PATH]

Both verify the lock (``api.check``: every package against its index line or git manifest,
the graph against the manifest, the host pins re-checked); ``lock --check`` also asks the
repository of each index package published from a git tag where its tag points now. The
project's lock is written first (untimed), then one untimed warm-up run of each, then the
runs interleaved. Run it from a regular (or byte-compiled) installation: an editable install
whose ``__pycache__`` cannot be written compiles every module on every run.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="the project (default: the repository's demo)")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--ckpm", default=shutil.which("ckpm") or "ckpm")
    args = ap.parse_args()
    check, lock = [args.ckpm, "lock", "--check"], [args.ckpm, "lock"]
    run(lock, args.project)  # the lock exists and holds
    run(check, args.project)
    run(lock, args.project)
    times: dict[str, list[float]] = {"lock --check": [], "lock": []}
    for _ in range(args.runs):
        times["lock --check"].append(run(check, args.project))
        times["lock"].append(run(lock, args.project))
    for name, ts in times.items():
        print(f"{'ckpm ' + name:<20} median {statistics.median(ts):.3f} s  (min {min(ts):.3f}, max {max(ts):.3f}, "
              f"{len(ts)} runs)")


if __name__ == "__main__":
    main()
