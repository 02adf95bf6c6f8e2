#!/usr/bin/env python3
"""A warm ``ckpm sync``: everything already provisioned, how long does checking take?

    python bench/bench_sync.py [--runs 7] [--packages 40]

Builds, under bench/_work/sync/, an index folder and a project with ``--packages``
packages: one C library built from a tarball with a ``script`` recipe (the machine's cc,
make), the rest data sets installed by a ``copy`` recipe from ``file://`` tarballs. One
``ckpm sync`` provisions them (pinning each sha256 on first use); then ``--runs`` warm
``ckpm sync`` runs are timed (separate processes, as a user runs them), with ``ckpm lock``
(which a warm sync also does) and ``python -c pass`` measured beside them in the same run.
Prints medians; the issue's target is a warm sync under 0.3 s. Not run by the tests.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work" / "sync"
sys.path.insert(0, str(ROOT))

from ckpm.index.writer import init_index, reindex, write_component  # noqa: E402

MAKEFILE = ("all: libb.a\nlibb.a: b.c\n\t$(CC) -c b.c -o b.o && $(AR) rcs libb.a b.o\n"
            "install: all\n\tmkdir -p $(DESTDIR)$(PREFIX)/lib\n\tcp libb.a $(DESTDIR)$(PREFIX)/lib/\n")


def tarball(path: Path, files: dict[str, str], top: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime = len(data), 0
            tf.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


def setup(n: int) -> tuple[Path, dict[str, str]]:
    shutil.rmtree(WORK, ignore_errors=True)
    dist, idx, proj = WORK / "dist", WORK / "index", WORK / "project"
    for d in (dist, proj):
        d.mkdir(parents=True)
    init_index(idx, "bench")
    tarball(dist / "libb-1.0.tar.gz", {"b.c": "int b(void) { return 1; }\n", "Makefile": MAKEFILE}, "libb-1.0")
    write_component(idx, [{"name": "lib-b", "version": "1.0", "kind": "lib", "tags": ["lib"], "targets": ["*"],
                           "deps": [], "source": {"urls": [(dist / "libb-1.0.tar.gz").as_uri()]},
                           "install": [{"steps": [{"kind": "script", "run": [
                               'make CC="$CC" AR="$AR"', 'make install PREFIX="$PREFIX" DESTDIR="$DESTDIR"']}]}]}])
    deps = ['lib-b = "*"']
    for i in range(n - 1):
        name = f"dataset-{i:03d}"
        tarball(dist / f"{name}.tar.gz", {f"part-{j}.txt": f"{name} {j}\n" * 100 for j in range(5)}, name)
        write_component(idx, [{"name": name, "version": "1.0", "kind": "dataset", "tags": ["dataset"],
                               "targets": ["*"], "deps": [{"name": "lib-b", "req": "*"}] if i % 2 else [],
                               "source": {"urls": [(dist / f"{name}.tar.gz").as_uri()]},
                               "install": [{"steps": [{"kind": "copy", "to": "share"}]}]}])
        deps.append(f'{name} = "*"')
    reindex(idx)
    (proj / "ckpm.toml").write_text('[project]\nname = "bench-sync"\n\n[dependencies]\n' + "\n".join(deps)
                                    + f'\n\n[[index]]\nname = "bench"\nurl = "{idx}"\n')
    env = {**os.environ, "CKPM_CACHE_DIR": str(WORK / "cache"), "CKPM_STORE": str(WORK / "store"),
           "CKPM_CONFIG": str(WORK / "no-config.toml")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte code compiled once, then read
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ckpm")], check=True)
    return proj, env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--packages", type=int, default=40)
    args = ap.parse_args()
    proj, env = setup(args.packages)
    ckpm = [sys.executable, "-m", "ckpm"]
    cold = timed([*ckpm, "sync"], proj, env)
    rows = {"python -c pass": [sys.executable, "-c", "pass"], "ckpm lock (unchanged)": [*ckpm, "lock"],
            "ckpm sync (warm)": [*ckpm, "sync"]}
    times: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(args.runs):
        for label, cmd in rows.items():
            times[label].append(timed(cmd, proj, env))
    print(f"warm sync bench: {args.packages} packages (1 built from C, {args.packages - 1} data sets), "
          f"runs={args.runs}; first sync {cold:.2f} s")
    for label, ts in times.items():
        print(f"  {label:24s} median {statistics.median(ts):.3f} s   min {min(ts):.3f} s")
    warm = statistics.median(times["ckpm sync (warm)"])
    print(f"  target: warm sync < 0.3 s: {warm:.3f} s  {'ok' if warm < 0.3 else 'MISSED'}")


if __name__ == "__main__":
    main()
