#!/usr/bin/env python3
"""Two ckpm installations on the same conflict graphs: the same locks, and the cost of a change.

    python bench/bench_locks_ab.py --a OLD_CKPM --b NEW_CKPM [--c 0.15 0.3 0.05] [--seeds 40]
                                   [--runs 1] [--work DIR] [--json-out FILE]

For each graph that bench/bench_conflict.py generated (``WORK/n2000-m20-c{C}-r10/seed-NNN``;
missing ones are generated), runs ``A -C COPY lock --no-host`` and ``B ...`` on fresh copies of
the project, interleaved, after one untimed warm-up of each (each with its own cache folder,
so that B's parsed-index cache is warm as it would be on a user's machine), then:

- checks both locks against the graph (bench_conflict.check: roots, ranges, no name twice);
- compares them: the same pins, or how their "passed over" sums differ (the sum over the pins
  of the number of versions newer than the chosen one; lower is newer);
- prints B / A of the medians per graph, and their median and maximum per C.

A and B are commands (a script, or an installed ``ckpm``); to time a checkout, point one at
a wrapper that runs ``python -m ckpm`` with it on PYTHONPATH and its byte code compiled.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_conflict as bc  # noqa: E402


def lock_once(cmd: str, d: Path, cache: Path, timeout: float, tag: str) -> dict[str, Any]:
    proj = d / f"run-ab-{tag}"
    if proj.exists():
        shutil.rmtree(proj)
    proj.mkdir()
    shutil.copy2(d / "project" / "ckpm.toml", proj / "ckpm.toml")
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["CKPM_CACHE_DIR"] = str(cache)
    res = bc.run([cmd, "-C", str(proj), "lock", "--no-host"], timeout, env=env)
    if res["status"] == "ok":
        res["pins"] = bc.pins_from_lock(proj / "ckpm.lock")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the ckpm command before the change")
    ap.add_argument("--b", required=True, help="the ckpm command after it")
    ap.add_argument("--c", type=float, nargs="+", default=[0.15, 0.3, 0.05])
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1, help="timed runs of each after the warm-up (median)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--work", type=Path, default=bc.WORK)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    caches = {t: args.work / f"ab-cache-{t}" for t in ("a", "b")}
    out: dict[str, Any] = {"a": args.a, "b": args.b, "by_c": []}
    for c in args.c:
        rows = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            d = (args.work / f"n2000-m20-c{c:g}-r10" / f"seed-{seed:03d}").resolve()
            bc.ensure_generated(d, 2000, 20, c, seed, 10, wheels=False)
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
            got: dict[str, dict[str, Any]] = {}
            times: dict[str, list[float]] = {"a": [], "b": []}
            for i in range(args.runs + 1):
                for t in ("a", "b"):
                    res = lock_once(getattr(args, t), d, caches[t], args.timeout, t)
                    if res["status"] != "ok":
                        got[t] = res
                        continue
                    if i > 0:
                        times[t].append(res["seconds"])
                    got.setdefault(t, res)
            row: dict[str, Any] = {"c": c, "seed": seed}
            for t in ("a", "b"):
                r = got[t]
                row[t] = {"status": r["status"], "seconds": statistics.median(times[t]) if times[t] else None}
                if r["status"] == "ok":
                    chk = bc.check(meta, r["pins"])
                    row[t].update(valid=chk["valid"], passed_over=chk["passed_over"], packages=chk["packages"])
                    row[t]["pins"] = sorted(r["pins"])
                else:
                    row[t]["error"] = r.get("error")
            a, b = row["a"], row["b"]
            row["same_pins"] = a.get("pins") is not None and a.get("pins") == b.get("pins")
            row["ratio"] = (b["seconds"] / a["seconds"]) if a["seconds"] and b["seconds"] else None
            rows.append(row)
            print(f"C={c:g} seed {seed}: a {a['seconds'] and round(a['seconds'], 3)} s  b "
                  f"{b['seconds'] and round(b['seconds'], 3)} s  b/a {row['ratio'] and round(row['ratio'], 2)}  "
                  f"valid {a.get('valid')}/{b.get('valid')}  passed over {a.get('passed_over')}/{b.get('passed_over')}"
                  f"  {'same pins' if row['same_pins'] else 'PINS DIFFER'}", flush=True)
        ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
        summary = {
            "seeds": len(rows), "same_pins": sum(r["same_pins"] for r in rows),
            "valid_a": sum(bool(r["a"].get("valid")) for r in rows), "valid_b": sum(bool(r["b"].get("valid")) for r in rows),
            "passed_over_a": sum(r["a"].get("passed_over") or 0 for r in rows),
            "passed_over_b": sum(r["b"].get("passed_over") or 0 for r in rows),
            "median_ratio": statistics.median(ratios) if ratios else None, "max_ratio": max(ratios) if ratios else None,
        }
        out["by_c"].append({"c": c, "rows": rows, "summary": summary})
        s = summary
        print(f"-- C = {c:g}: {s['seeds']} seeds, same pins {s['same_pins']}, valid a {s['valid_a']} b {s['valid_b']}, "
              f"passed over a {s['passed_over_a']} b {s['passed_over_b']}, b/a median "
              f"{s['median_ratio'] and round(s['median_ratio'], 3)} max {s['max_ratio'] and round(s['max_ratio'], 3)}",
              flush=True)
    if args.json_out:
        for block in out["by_c"]:
            for r in block["rows"]:
                for t in ("a", "b"):
                    r[t].pop("pins", None)
        args.json_out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
