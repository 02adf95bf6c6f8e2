#!/usr/bin/env python3
"""The registry service: a client lock through its sparse files, and sparse-file GETs per second.

    python bench/bench_registry.py [--runs 5] [--components 3000] [--seconds 5] [--procs 2] [--threads 4]

Sets up in ``bench/_work/registry/`` (kept between runs): the synthetic index of
``bench/gen_index.py`` committed into a bare git repository, and its project (10 roots whose
closures hold ~250 components). Starts ``ckpm-registry serve`` on 127.0.0.1 (a port of its
own choosing; access log off), then reports:

1. ``ckpm --index FOLDER lock --upgrade`` (the same files read from a local folder) against
   ``ckpm --index http://127.0.0.1:PORT lock --upgrade`` through the registry, cold (an empty
   HTTP cache: every file fetched) and warm (the cache revalidated: one 304 per file);
   median of ``--runs`` runs each, one untimed warm-up; target: registry/folder <= 2.
2. GETs per second of component files on loopback: ``--procs`` processes x ``--threads``
   threads, each with a keep-alive session, for ``--seconds`` seconds, over random component
   paths: full responses (200), then revalidations (``If-None-Match``, 304).

Every response is checked (status and body), so a figure never counts errors.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work" / "registry"
LOCK_RATIO_TARGET = 2.0


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def setup(components: int) -> tuple[Path, Path, Path]:
    """(index folder, bare git index, project), made once per size."""
    base = WORK / f"c{components}"
    index, bare, project = base / "index", base / "index.git", base / "project"
    if not (bare / "HEAD").is_file():
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
        r = sh([sys.executable, str(HERE / "gen_index.py"), str(index), "--components", str(components),
                "--project", str(project)])
        if r.returncode != 0:
            sys.exit(f"gen_index.py failed: {r.stderr}")
        sys.path.insert(0, str(ROOT))
        from ckpm.testing import GitRepoFactory

        repo = GitRepoFactory(base)("index", bare=True)
        repo.commit({p.relative_to(index).as_posix(): p.read_bytes()
                     for p in sorted(index.rglob("*")) if p.is_file()}, "initial index")
    # the project names its index by URL; the benchmark passes --index instead
    import tomlkit

    doc = tomlkit.parse((project / "ckpm.toml").read_text())
    if "index" in doc:
        del doc["index"]
        (project / "ckpm.toml").write_text(tomlkit.dumps(doc))
    return index, bare, project


def start_registry(bare: Path, state: Path) -> tuple[subprocess.Popen[str], str]:
    if state.exists():
        shutil.rmtree(state)
    proc = subprocess.Popen([sys.executable, "-m", "ckpm_registry.cli", "serve", "--index", str(bare), "--port", "0",
                             "--state", str(state), "--log-level", "warning", "--no-access-log"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " at " not in line:
        proc.kill()
        sys.exit(f"ckpm-registry did not start: {line!r}")
    return proc, line.split(" at ", 1)[1].split()[0]


def ckpm_cmd() -> list[str]:
    cand = Path(sys.executable).parent / "ckpm"
    return [str(cand)] if cand.is_file() else [sys.executable, "-m", "ckpm"]


def timed_lock(project: Path, index: str, cache: Path, *, clear: bool) -> float:
    if clear and cache.exists():
        shutil.rmtree(cache)
    lock = project / "ckpm.lock"
    if lock.exists():
        lock.unlink()
    env = {**os.environ, "CKPM_CACHE_DIR": str(cache)}
    t0 = time.perf_counter()
    r = sh([*ckpm_cmd(), "-C", str(project), "--index", index, "lock", "--upgrade"], env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"ckpm lock --index {index} failed: {r.stderr[-2000:]}")
    return dt


def lock_bench(index: Path, url: str, project: Path, runs: int) -> dict[str, Any]:
    cache = WORK / "cache"
    out: dict[str, list[float]] = {"folder": [], "registry_cold": [], "registry_warm": []}
    locks: dict[str, str] = {}
    timed_lock(project, str(index), cache, clear=True)  # warm-up (file cache, imports)
    for _ in range(runs):
        out["folder"].append(timed_lock(project, str(index), cache, clear=True))
        locks["folder"] = (project / "ckpm.lock").read_text()
        out["registry_cold"].append(timed_lock(project, url, cache, clear=True))
        locks["registry"] = (project / "ckpm.lock").read_text()
        out["registry_warm"].append(timed_lock(project, url, cache, clear=False))
    pins = {k: [ln for ln in v.splitlines() if ln.startswith(("name =", "version ="))] for k, v in locks.items()}
    if pins["folder"] != pins["registry"]:
        sys.exit("the two locks differ: the registry serves other data than the folder")
    med = {k: statistics.median(v) for k, v in out.items()}
    return {"runs": runs, "median_s": med, "all_s": out, "packages": locks["folder"].count("[[package]]"),
            "ratio_cold": med["registry_cold"] / med["folder"], "ratio_warm": med["registry_warm"] / med["folder"]}


# -- load generator --------------------------------------------------------------------------


def _worker(url: str, paths: list[str], etags: dict[str, str], seconds: float, threads: int, revalidate: bool,
            seed: int, q: Any) -> None:
    import requests

    counts = [0] * threads
    errors = [0] * threads
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        rnd = random.Random(seed * 1000 + i)
        s = requests.Session()
        want = 304 if revalidate else 200
        while time.monotonic() < stop:
            p = rnd.choice(paths)
            headers = {"If-None-Match": etags[p]} if revalidate else None
            r = s.get(url + "/" + p, headers=headers, timeout=30)
            if r.status_code == want and (revalidate or r.content):
                counts[i] += 1
            else:
                errors[i] += 1

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    q.put((sum(counts), sum(errors)))


def rps_bench(url: str, index: Path, seconds: float, procs: int, threads: int) -> dict[str, Any]:
    import requests

    sys.path.insert(0, str(ROOT))
    from ckpm.index.layout import entry_path

    names = [json.loads(ln)["name"] for ln in (index / "summary.jsonl").read_text().splitlines()]
    paths = [entry_path(n) for n in names]
    s = requests.Session()
    etags = {p: s.get(url + "/" + p, timeout=30).headers["etag"] for p in paths}
    sizes = [len(s.get(url + "/" + p, timeout=30).content) for p in paths[:200]]
    out: dict[str, Any] = {"procs": procs, "threads": threads, "seconds": seconds, "files": len(paths),
                           "median_file_bytes": statistics.median(sizes)}
    ctx = mp.get_context("spawn")
    for label, revalidate in (("200", False), ("304", True)):
        q = ctx.Queue()
        ps = [ctx.Process(target=_worker, args=(url, paths, etags, seconds, threads, revalidate, i, q))
              for i in range(procs)]
        t0 = time.perf_counter()
        for p in ps:
            p.start()
        results = [q.get() for _ in ps]
        for p in ps:
            p.join()
        wall = time.perf_counter() - t0
        ok = sum(r[0] for r in results)
        out[label] = {"requests": ok, "errors": sum(r[1] for r in results), "per_second": ok / seconds,
                      "wall_s": wall}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--components", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    index, bare, project = setup(args.components)
    proc, url = start_registry(bare, WORK / "state")
    try:
        lock = lock_bench(index, url, project, args.runs)
        rps = rps_bench(url, index, args.seconds, args.procs, args.threads)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if args.json:
        print(json.dumps({"lock": lock, "rps": rps}, indent=2))
        return 0
    m = lock["median_s"]
    print(f"index: {args.components} components (bench/gen_index.py), a lock of {lock['packages']} packages; "
          f"median of {lock['runs']} runs")
    print(f"  ckpm lock, index folder          {m['folder']:.3f} s")
    print(f"  ckpm lock, registry (cold cache) {m['registry_cold']:.3f} s   ratio {lock['ratio_cold']:.2f}x "
          f"(target <= {LOCK_RATIO_TARGET:g}x: {'ok' if lock['ratio_cold'] <= LOCK_RATIO_TARGET else 'MISSED'})")
    print(f"  ckpm lock, registry (warm, 304s) {m['registry_warm']:.3f} s   ratio {lock['ratio_warm']:.2f}x "
          f"(target <= {LOCK_RATIO_TARGET:g}x: {'ok' if lock['ratio_warm'] <= LOCK_RATIO_TARGET else 'MISSED'})")
    print(f"sparse-file GETs on loopback: {rps['procs']} processes x {rps['threads']} threads, {rps['seconds']:g} s, "
          f"{rps['files']} files (median {rps['median_file_bytes']:.0f} bytes), one uvicorn process")
    for label in ("200", "304"):
        r = rps[label]
        print(f"  {label}: {r['per_second']:8.0f} requests/s  ({r['requests']} ok, {r['errors']} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
