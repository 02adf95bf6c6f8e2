#!/usr/bin/env python3
"""Tuning throughput: points per second with ``--jobs 2`` against ``--jobs 1``.

    python bench/bench_tune.py [--runs 3] [--budget 8] [--n 30000000]

Evaluates points with the real pipeline (``ckpm.pipeline.run.request_evaluator``: provision
check, compile with the machine's C compiler, run under the measuring launcher, validate,
record) on a small C program, under bench/_work/tune/. The space varies compiler flags only
(``-O0``…``-O3`` × ``-funroll-loops`` × ``-fomit-frame-pointer``: 16 points), so that each
point compiles its own binary. Each measured run tunes a fresh copy of the project (every point
compiled, nothing reused; the store and the host detection are warm after one warm-up run)
with random search and the same seed, so both settings evaluate the same points. Runs
alternate jobs 1 and jobs 2; prints each setting's median points per second and the ratio.
Not run by the tests.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work" / "tune"
sys.path.insert(0, str(ROOT))

from ckpm.experiment.space import parse_space  # noqa: E402
from ckpm.experiment.tune import tune  # noqa: E402
from ckpm.pipeline.run import request_evaluator  # noqa: E402
from ckpm.settings import Settings  # noqa: E402

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    unsigned long s = 0, x = 88172645463325252UL;
    for (long i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; s += x % 1000; }
    printf("checksum: %lu\n", s % 1000003);
    return 0;
}
"""

MANIFEST = """\
[project]
name = "xorshift"

[dependencies]
compiler = {{ tags = "compiler,lang-c", version = ">=9", kind = "build" }}

[run]
sources = ["src/x.c"]
binary = "x"

[run.params]
n = "{n}"

[run.commands.x]
args = ["{{param.n}}"]

[run.validate]
stdout = ["checksum: "]
"""

SPACE = """\
[cflags.opt]
choices = ["-O0", "-O1", "-O2", "-O3"]

[switches]
unroll = "-funroll-loops"
omit_fp = "-fomit-frame-pointer"
"""


def project(dest: Path, n: int) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "src").mkdir(parents=True)
    (dest / "src" / "x.c").write_text(PROGRAM)
    (dest / "ckpm.toml").write_text(MANIFEST.format(n=n))
    return dest


def one_run(n: int, budget: int, jobs: int, seed: int, k: int) -> tuple[float, int]:
    """Seconds for one tuning run on a fresh project, and the number of failed points."""
    proj = project(WORK / f"p{jobs}-{k}", n)
    evaluate = request_evaluator(proj, Settings())
    space = parse_space(SPACE, "bench space")
    t0 = time.perf_counter()
    res = tune(space, evaluate, objectives=["time", "size"], budget=budget, strategy="random", jobs=jobs, seed=seed)
    dt = time.perf_counter() - t0
    shutil.rmtree(proj, ignore_errors=True)
    return dt, len(res.failed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--n", type=int, default=30_000_000, help="iterations of the program (its run time)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    one_run(a.n, 2, 1, a.seed, -1)  # warm-up: host detection, the launcher, the lock
    times: dict[int, list[float]] = {1: [], 2: []}
    failed = 0
    for k in range(a.runs):
        for jobs in (1, 2):
            dt, f = one_run(a.n, a.budget, jobs, a.seed, k)
            times[jobs].append(dt)
            failed += f
    print("evaluator: the real pipeline (ckpm.pipeline.run.request_evaluator; compile, run, validate per point)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}; budget {a.budget} points, {a.runs} runs each, "
          f"program n = {a.n:,}")
    rate = {}
    for jobs, ts in times.items():
        med = statistics.median(ts)
        rate[jobs] = a.budget / med
        print(f"jobs {jobs}: median {med:.2f} s per tuning run = {rate[jobs]:.2f} points/s "
              f"(runs: {', '.join(f'{t:.2f}' for t in ts)})")
    print(f"jobs 2 / jobs 1: {rate[2] / rate[1]:.2f}x points per second" + (f"; {failed} points failed" if failed
                                                                             else ""))
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
