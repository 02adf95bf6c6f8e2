"""`ckpm artifact pack` and `ckpm artifact evaluate` on the repository's demo.

    .venv/bin/python bench/bench_artifact.py [--runs 5]

The demo project (ckpm.toml, programs/image-corners, vendor/) is copied into bench/_work/,
run once with `--record baseline --repeat 3`, then packed RUNS times (the bundle must come out
the same bytes each time) and evaluated RUNS times, each on a fresh HOME, cache and store and,
where `unshare -n` works, with no network. Each figure is the median wall time of the whole
command (a new Python process each, as a user runs it).
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

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work" / "artifact"


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CKPM_", "XDG_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), CKPM_CACHE_DIR=str(home / "cache"), CKPM_STORE=str(home / "store"),
               CKPM_CONFIG=str(home / "config.toml"))
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    proj = WORK / "demo"
    proj.mkdir(parents=True)
    shutil.copy2(ROOT / "ckpm.toml", proj / "ckpm.toml")
    shutil.copytree(ROOT / "programs" / "image-corners", proj / "programs" / "image-corners")
    shutil.copytree(ROOT / "vendor", proj / "vendor")
    ckpm = [sys.executable, "-m", "ckpm"]
    author = env_for(WORK / "author")
    timed([*ckpm, "run", "--record", "baseline", "--repeat", "3"], proj, author)
    bundle = WORK / "demo.ckpm.tar"
    packs = []
    first = None
    for _ in range(a.runs):
        packs.append(timed([*ckpm, "artifact", "pack", str(bundle)], proj, author))
        data = bundle.read_bytes()
        assert first is None or data == first, "the bundle changed between packs"
        first = data
    unshare = subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    evals = []
    for i in range(a.runs):
        env = env_for(WORK / f"evaluator-{i}")
        cmd = [*ckpm, "artifact", "evaluate", str(bundle), "--report", str(WORK / f"report-{i}")]
        evals.append(timed((["unshare", "-n"] if unshare else []) + cmd, WORK, env))
    print(f"demo bundle: {bundle.stat().st_size:,} bytes; pack median {statistics.median(packs):.2f} s "
          f"(runs: {', '.join(f'{x:.2f}' for x in packs)})")
    print(f"evaluate on a fresh home{' with unshare -n' if unshare else ''}: median {statistics.median(evals):.2f} s "
          f"(runs: {', '.join(f'{x:.2f}' for x in evals)})")


if __name__ == "__main__":
    main()
