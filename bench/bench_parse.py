"""Cold reading of index component files: ``FolderIndex.entries()`` in fresh processes.

```
python bench/bench_parse.py [INDEX] [--runs 7] [--files 444] [--tree DIR]
```

INDEX is a format-1 folder index whose components are ``pkg-0000`` .. (``gen_conflict.py``
writes one; the default is ``bench/_work/conflict/n2000-m20-c0.3-r10/seed-004/index``).
Each run is a fresh Python process (cold memos: versions, specifiers, dependencies) that
reads every fourth component's file once through ``entries()`` and, in the same process
afterwards, the same files' lines with a plain ``json.loads`` per line (the floor: no
checks, no objects). Prints the median over the runs of each, µs per line, and the ratio.
``--tree`` imports ckpm from another checkout (to compare two versions in one sitting).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "bench/_work/conflict/n2000-m20-c0.3-r10/seed-004/index"

CHILD = r"""
import gc, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from ckpm.index.folder import FolderIndex
from ckpm.index.layout import entry_path
root, files = Path(sys.argv[2]), int(sys.argv[3])
gc.disable()
ix = FolderIndex(root)
names = [f"pkg-{i:04d}" for i in range(1, 100000, 4)][:files]
names = [n for n in names if (root / entry_path(n)).is_file()]
t = time.perf_counter()
lines = 0
for n in names:
    lines += len(ix.entries(n))
ckpm_s = time.perf_counter() - t
t = time.perf_counter()
for n in names:
    for line in (root / entry_path(n)).read_bytes().decode("utf-8").split("\n"):
        if line.strip():
            json.loads(line)
json_s = time.perf_counter() - t
print(json.dumps({"files": len(names), "lines": lines, "ckpm": ckpm_s, "json": json_s}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("index", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--files", type=int, default=444)
    ap.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose ckpm is measured")
    a = ap.parse_args()
    if not (a.index / "config.json").is_file():
        print(f"{a.index}: no index there (bench/gen_conflict.py writes one)", file=sys.stderr)
        return 2
    got = []
    for _ in range(a.runs):
        out = subprocess.run([sys.executable, "-c", CHILD, str(a.tree), str(a.index), str(a.files)],
                             check=True, capture_output=True, text=True).stdout
        got.append(json.loads(out))
    files, lines = got[0]["files"], got[0]["lines"]
    ck = statistics.median(g["ckpm"] for g in got)
    js = statistics.median(g["json"] for g in got)
    print(f"{files} files, {lines} lines, median of {a.runs} fresh processes")
    print(f"entries():  {ck * 1000:7.1f} ms  {ck / lines * 1e6:5.1f} µs/line")
    print(f"json.loads: {js * 1000:7.1f} ms  {js / lines * 1e6:5.1f} µs/line  (read, decode, split, loads)")
    print(f"ratio entries()/json.loads: {ck / js:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
