#!/usr/bin/env python3
"""The overhead of a warm ``ckpm run``: everything provisioned and compiled.

    python bench/bench_run.py [--runs 15]

A project under bench/_work/run/ with a small C program (it sums a few numbers: the program
itself takes about a millisecond). After one ``ckpm run`` (which locks, syncs and
compiles), each run is timed (median of ``--runs``), all in the same process tree:

- the compiled binary run directly (subprocess): the baseline;
- ``ckpm run`` as a separate process (what a user types);
- ``ckpm.access({"action": "run"})`` in this process (a notebook or a CI script);
- ``python -c pass``: the interpreter's own start, part of every ``ckpm`` command.

Byte code is compiled first, as an installed ckpm has it. Target (issue 9): a warm ``ckpm
run`` under 0.15 s over running the program directly, whole process. Not run by the tests.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work" / "run"
sys.path.insert(0, str(ROOT))

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000, s = 0;
    for (long i = 0; i < n; i++) s += i % 7;
    printf("sum: %ld\n", s);
    return 0;
}
"""
MANIFEST = """\
[project]
name = "bench-run"

[dependencies]
compiler = { tags = "compiler,lang-c", version = ">=9", kind = "build" }

[run]
sources = ["sum.c"]
binary = "sum"
cflags = ["-O2"]

[run.commands.sum]
args = ["1000"]

[run.validate]
stdout = ["sum: 2997"]

[run.metrics]
sum = { regex = "sum: ([0-9]+)" }
"""


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / "sum.c").write_text(PROGRAM)
    (WORK / "ckpm.toml").write_text(MANIFEST)
    env = {**os.environ, "CKPM_CACHE_DIR": str(WORK / ".cache"), "CKPM_STORE": str(WORK / ".store"),
           "CKPM_CONFIG": str(WORK / "no-config.toml")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.update({k: env[k] for k in ("CKPM_CACHE_DIR", "CKPM_STORE", "CKPM_CONFIG")})
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ckpm")], check=True)
    ckpm = [sys.executable, "-m", "ckpm", "-C", str(WORK), "run"]
    first = subprocess.run([*ckpm, "--json"], env=env, capture_output=True, text=True)
    if first.returncode != 0:
        raise SystemExit(first.stderr)
    binary = next((WORK / ".ckpm" / "build").glob("*/sum"))
    import ckpm as lib

    rows = {
        "program alone": lambda: subprocess.run([str(binary), "1000"], capture_output=True, check=True),
        "python -c pass": lambda: subprocess.run([sys.executable, "-c", "pass"], env=env, check=True),
        "ckpm run (process)": lambda: subprocess.run(ckpm, env=env, capture_output=True, check=True),
        "ckpm.access run (in process)": lambda: lib.access({"action": "run", "project": str(WORK)}),
    }
    times: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(args.runs):
        for label, fn in rows.items():
            times[label].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"warm run bench: runs={args.runs}")
    for label, t in med.items():
        print(f"  {label:30s} median {t * 1000:7.1f} ms   min {min(times[label]) * 1000:7.1f} ms")
    over = med["ckpm run (process)"] - med["program alone"]
    print(f"  overhead of ckpm run over the program: {over * 1000:.1f} ms "
          f"(target < 150 ms: {'ok' if over < 0.15 else 'MISSED'}); "
          f"in process: {(med['ckpm.access run (in process)'] - med['program alone']) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
