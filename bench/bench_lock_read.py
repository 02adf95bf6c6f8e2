"""Reading a lock: ``Lock.loads`` of 200 packages with a recipe and a source each (the typed
parse and checks of issue 25 included). CPU time, best of ``--runs``.

    python bench/bench_lock_read.py [--runs 40] [SRC]   # SRC: another checkout's folder, to compare
"""
from __future__ import annotations

import argparse
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", nargs="?", help="the folder holding the ckpm package to measure (default: this one)")
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    from ckpm.model.lockfile import Lock, LockedPackage
    from ckpm.model.source import IndexSource

    recipe = {"targets": ["linux-*"], "env": {"CFLAGS": "-O2"},
              "sources": [{"urls": ["https://e.org/a.tar.gz"], "sha256": "ab" * 32, "size": 5}],
              "steps": [{"kind": "make", "configure_args": ["--x"]}, {"kind": "copy", "from": "d", "to": "share/d"}]}
    packages = [LockedPackage(f"lib-{i}", "1.0", "lib", IndexSource("lab"), ["linux-x86_64"], [f"lib-{i}"], [],
                              [{"urls": [f"https://e.org/{i}.tgz"], "sha256": "cd" * 32}], [recipe])  # type: ignore[list-item]
                for i in range(200)]
    text = Lock("h", ["linux-x86_64"], [], packages).dumps()
    best = float("inf")
    for _ in range(args.runs):
        t = time.process_time()
        Lock.loads(text)
        best = min(best, time.process_time() - t)
    print(f"Lock.loads of 200 packages with a recipe each: {best * 1000:.1f} ms CPU (best of {args.runs})")


if __name__ == "__main__":
    main()
