#!/usr/bin/env python3
"""``ckpm container build`` of the demo: the first build, the rebuild after one file, the size.

    CONTAINERS_CONF=… python bench/bench_container.py [--base localhost/debian:bookworm] [--engine podman]

Copies the repository's demo (ckpm.toml, programs/, vendor/) under bench/_work/container/,
locks it, and builds its image three times with the library's ``build_image``: once with
``no_cache`` (every step anew, the base image aside: a first build), once more unchanged (all
from the cache), and once after one line is added to one project file (programs/image-corners/
corners.c). Prints the wall time of each (context, host check in the base and build), the
steps taken from the cache, the image's size, and the size of each of its layers. The base
image must exist (docs/guide.md, "Containers"). Not run by the tests.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work" / "container"
sys.path.insert(0, str(ROOT))

from ckpm import api  # noqa: E402
from ckpm.container.build import build_image  # noqa: E402
from ckpm.container.engine import find_engine  # noqa: E402
from ckpm.workspace import Settings, Workspace  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="localhost/debian:bookworm")
    ap.add_argument("--engine", default=None)
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    project = WORK / "demo"
    project.mkdir(parents=True)
    shutil.copy(ROOT / "ckpm.toml", project / "ckpm.toml")
    shutil.copytree(ROOT / "programs", project / "programs")
    shutil.copytree(ROOT / "vendor", project / "vendor")
    ws = Workspace(project, Settings(cache_dir=WORK / "cache", store_dir=WORK / "store",
                                     config_path=WORK / "no-config.toml"))
    api.lock(ws)
    engine = find_engine(args.engine)
    rows = []
    for label, change, no_cache in (("first build (no cache)", False, True), ("unchanged", False, False),
                                    ("one file changed", True, False)):
        if change:
            src = project / "programs" / "image-corners" / "corners.c"
            src.write_text(src.read_text() + "/* one more line */\n")
        t = time.monotonic()
        res = build_image(ws, base=args.base, tag="localhost/ckpm-bench-demo:latest", engine_name=args.engine,
                          no_cache=no_cache)
        rows.append((label, time.monotonic() - t, res.cached_steps, res.steps, res.size))
    for label, secs, cached, steps, size in rows:
        print(f"{label:24} {secs:6.1f} s   {cached:2d}/{steps} steps cached   image {size / 1e6:.0f} MB")
    hist = subprocess.run([engine.path, "history", "--format", "{{.Size}}\t{{.CreatedBy}}",
                           "localhost/ckpm-bench-demo:latest"], capture_output=True, text=True, check=True)
    print("layers (newest first):")
    for line in hist.stdout.splitlines():
        size, _, what = line.partition("\t")
        if size.strip() not in ("0B", "0 B"):
            print(f"  {size:>10}  {what[:100]}")
    print(json.dumps({"runs": [dict(zip(("build", "seconds", "cached", "steps", "size"), r)) for r in rows]}))


if __name__ == "__main__":
    main()
