"""A no-op ``ckpm lock --check`` against a no-op ``ckpm lock``: whole processes, median of N.

    python bench/bench_lock_check.py [--project DIR] [--runs 11] [--ckpm PATH] [--baseline SRC]

Both verify the lock (``api.check``: every package against its index line or git manifest,
the graph against the manifest, the host pins re-checked); ``lock --check`` also asks the
repository of each index package published from a git tag where its tag points now. The
project's lock is written first (untimed), then one untimed warm-up run of each, then the
runs interleaved. Run it from a regular (or byte-compiled) installation: an editable install
whose ``__pycache__`` cannot be written compiles every module on every run.

Each run reports its wall time and its CPU time (user + system, from ``wait4``): on a shared,
loaded machine the wall time measures the queue for a core, the CPU time what the command
costs. ``--baseline SRC`` adds the same two commands run as ``python -m ckpm`` with
``PYTHONPATH=SRC`` (a source tree of another commit, e.g. ``git archive BASE ckpm | tar -x``),
interleaved with the others.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process; exits when the command fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()}")
    return dt, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="the project (default: the repository's demo)")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--ckpm", default=shutil.which("ckpm") or "ckpm")
    ap.add_argument("--baseline", type=Path, help="a source tree of ckpm to compare with (PYTHONPATH)")
    args = ap.parse_args()
    cases: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "lock --check": ([args.ckpm, "lock", "--check"], None),
        "lock": ([args.ckpm, "lock"], None),
    }
    if args.baseline is not None:
        base = [sys.executable, "-m", "ckpm"]
        env = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
        cases["lock --check (baseline)"] = (base + ["lock", "--check"], env)
        cases["lock (baseline)"] = (base + ["lock"], env)
    run([args.ckpm, "lock"], args.project)  # the lock exists and holds
    for cmd, cenv in cases.values():  # warm-up
        run(cmd, args.project, cenv)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, (cmd, cenv) in cases.items():
            times[name].append(run(cmd, args.project, cenv))
    for name, ts in times.items():
        wall, cpu = [t[0] for t in ts], [t[1] for t in ts]
        print(f"ckpm {name:<24} wall median {statistics.median(wall):.3f} s (min {min(wall):.3f})  "
              f"CPU median {statistics.median(cpu):.3f} s (min {min(cpu):.3f})  {len(ts)} runs")
    in_process(args.project, args.runs)


def in_process(project: Path, runs: int) -> None:
    """``api.check`` in this process (imports done, a fresh Workspace each time): its CPU time, and
    the share of the verification of the lock against its lines (``resolve/verify.py``)."""
    import ckpm.api as api

    verify = api._verify
    spent: list[float] = []

    def timed(*a: object, **k: object) -> list[str]:
        t = time.process_time()
        try:
            return verify(*a, **k)  # type: ignore[arg-type]
        finally:
            spent.append(time.process_time() - t)

    api._verify = timed  # type: ignore[assignment]
    total: list[float] = []
    for _ in range(runs + 1):
        t = time.process_time()
        res = api.check(api.Workspace(project))
        total.append(time.process_time() - t)
        if not res.ok:
            sys.exit(f"the lock does not hold: {res.problems}")
    print(f"api.check in process (warm)    CPU median {statistics.median(total[1:]) * 1000:.1f} ms, of which the "
          f"verification {statistics.median(spent[1:]) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
