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

With wrk installed (``apt-get install wrk``), also requests per second measured by wrk (2
threads, 16 connections, random component paths), which the Python generator cannot saturate.
With nginx installed (``apt-get install nginx-light``), the same figures for nginx serving the
service's export folder, as docs/registry.md puts it in front: what a static server gives,
so the part of the gap that is the client's own shows.

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


NGINX_CONF = """\
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    default_type application/x-ndjson;
    client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
    uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ add_header Cache-Control "public, max-age=60, must-revalidate"; try_files $uri =404; }}
    }}
}}
"""


def start_nginx(root: Path) -> tuple[subprocess.Popen[str], str] | None:
    """nginx serving the registry's export folder (as docs/registry.md puts it in front), if installed."""
    import socket

    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    if exe is None:
        return None
    work = WORK / "nginx"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, root=root))
    proc = subprocess.Popen([exe, "-c", str(conf), "-p", str(work), "-g", "daemon off;"], text=True)
    import requests

    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/config.json", timeout=1)
            return proc, f"http://127.0.0.1:{port}"
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    return None


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


def lock_bench(index: Path, url: str, project: Path, runs: int, static: str | None) -> dict[str, Any]:
    cache = WORK / "cache"
    out: dict[str, list[float]] = {"folder": [], "registry_cold": [], "registry_warm": []}
    if static:
        out.update({"nginx_cold": [], "nginx_warm": []})
    locks: dict[str, str] = {}
    timed_lock(project, str(index), cache, clear=True)  # warm-up (file cache, imports)
    for _ in range(runs):
        out["folder"].append(timed_lock(project, str(index), cache, clear=True))
        locks["folder"] = (project / "ckpm.lock").read_text()
        out["registry_cold"].append(timed_lock(project, url, cache, clear=True))
        locks["registry"] = (project / "ckpm.lock").read_text()
        out["registry_warm"].append(timed_lock(project, url, cache, clear=False))
        if static:
            out["nginx_cold"].append(timed_lock(project, static, cache, clear=True))
            out["nginx_warm"].append(timed_lock(project, static, cache, clear=False))
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


WRK_LUA = """\
local paths, etags = {}, {}
for line in io.lines("%s") do
  local p, e = line:match("^(%%S+)\t(.*)$")
  paths[#paths + 1] = p
  etags[#etags + 1] = e
end
local revalidate = %s
math.randomseed(%d)
request = function()
  local i = math.random(#paths)
  if revalidate then return wrk.format("GET", paths[i], {["If-None-Match"] = etags[i]}) end
  return wrk.format("GET", paths[i])
end
"""


def wrk_bench(url: str, index: Path, seconds: float, threads: int, connections: int) -> dict[str, Any] | None:
    """Requests per second measured by wrk (a C load generator: it is not the bottleneck), if installed."""
    import re

    import requests

    exe = shutil.which("wrk")
    if exe is None:
        return None
    sys.path.insert(0, str(ROOT))
    from ckpm.index.layout import entry_path

    names = [json.loads(ln)["name"] for ln in (index / "summary.jsonl").read_text().splitlines()]
    s = requests.Session()
    listing = WORK / "wrk-paths.tsv"
    listing.write_text("".join(f"/{entry_path(n)}\t{s.get(url + '/' + entry_path(n), timeout=30).headers['etag']}\n"
                               for n in names))
    out: dict[str, Any] = {"threads": threads, "connections": connections, "seconds": seconds}
    for label, revalidate in (("200", False), ("304", True)):
        script = WORK / f"wrk-{label}.lua"
        script.write_text(WRK_LUA % (listing, "true" if revalidate else "false", 1))
        r = sh([exe, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url])
        rate = re.search(r"Requests/sec:\s*([0-9.]+)", r.stdout)
        bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", r.stdout)
        latency = re.search(r"Latency\s+(\S+)", r.stdout)
        out[label] = {"per_second": float(rate.group(1)) if rate else None, "non_2xx_3xx": int(bad.group(1)) if bad else 0,
                      "mean_latency": latency.group(1) if latency else None}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--components", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--nginx", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure nginx serving the export folder, when nginx is installed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    index, bare, project = setup(args.components)
    proc, url = start_registry(bare, WORK / "state")
    nginx = start_nginx(WORK / "state" / "export") if args.nginx else None
    wrk = wrk_nginx = None
    try:
        lock = lock_bench(index, url, project, args.runs, nginx[1] if nginx else None)
        rps = rps_bench(url, index, args.seconds, args.procs, args.threads)
        wrk = wrk_bench(url, index, args.seconds, 2, 16)
        if nginx:
            rps["nginx"] = rps_bench(nginx[1], index, args.seconds, args.procs, args.threads)
            wrk_nginx = wrk_bench(nginx[1], index, args.seconds, 2, 16)
    finally:
        for p in (proc, nginx[0] if nginx else None):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)
    if args.json:
        print(json.dumps({"lock": lock, "rps": rps, "wrk": wrk, "wrk_nginx": wrk_nginx}, indent=2))
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
    for who, w in (("registry", wrk), ("nginx", wrk_nginx)):
        if w is not None:
            print(f"wrk against the {who} ({w['threads']} threads, {w['connections']} connections, "
                  f"{w['seconds']:g} s, random component files):")
            for label in ("200", "304"):
                r = w[label]
                print(f"  {label}: {r['per_second'] or 0:8.0f} requests/s  mean latency {r['mean_latency']}, "
                      f"{r['non_2xx_3xx']} other statuses")
    if "nginx_cold" in m:
        print("the same export folder served by nginx (a static server in front, for reference):")
        print(f"  ckpm lock, nginx (cold cache)    {m['nginx_cold']:.3f} s   ratio "
              f"{m['nginx_cold'] / m['folder']:.2f}x")
        print(f"  ckpm lock, nginx (warm, 304s)    {m['nginx_warm']:.3f} s   ratio "
              f"{m['nginx_warm'] / m['folder']:.2f}x")
        for label in ("200", "304"):
            r = rps["nginx"][label]
            print(f"  GETs {label}: {r['per_second']:8.0f} requests/s  ({r['requests']} ok, {r['errors']} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
