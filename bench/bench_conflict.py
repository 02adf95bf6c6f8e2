#!/usr/bin/env python3
"""Conflict-heavy resolver benchmark: ckpm lock, the minimal resolvelib provider and uv, checked.

    python bench/bench_conflict.py [--seeds 40] [--n 2000] [--m 20] [--c 0.15 0.3] [--timeout 60]
                                   [--runs 1] [--json] [--json-out FILE] [--no-uv] [--uv PATH] [--work DIR]
    python bench/bench_conflict.py --ratio [--seeds 40] [--c 0.15 0.3] [--easy-c 0.05] [--easy-seeds 10]
                                   [--runs 3] [--ckpm PATH] ...

``--ratio`` times only ckpm and uv, interleaved per seed after one untimed warm-up of each
(ckpm's parsed-index cache in ``WORK/ckpm-cache``, uv's cache in ``WORK/uv-cache``; with
``--no-hint`` ckpm's hint beside the lock is dropped before each run, so that every lock
starts as a project's first), checks
both results as below, and prints each graph's ratio ckpm / uv, their median and maximum per
C, and the targets (conflict graphs: median <= 1.0, none over 1.3; easy graphs: <= 0.8).

For each C and each seed (1..SEEDS), generates an ecosystem with
bench/gen_conflict.py into ``WORK/n{N}-m{M}-c{C}/seed-{S}`` (reused when
present), then times, one after the other, as whole processes:

(a) ``ckpm -C PROJECT lock --no-host`` on a fresh copy of the project (no
    ckpm.lock, so every run resolves). By default ckpm is this checkout's
    code, run as ``python -m ckpm`` with the repository on PYTHONPATH;
    ``--ckpm PATH`` times another command;
(b) ``python bench/minimal_provider.py INDEX ROOT...`` (a plain resolvelib
    provider; ``--minimal-timeout`` bounds it separately, as it can backtrack
    for minutes on these graphs);
(c) ``uv pip compile --no-index --find-links WHEELS requirements.in -o OUT
    --no-cache`` when uv is found (``--uv PATH``, else on PATH, else
    bench/_work/uvenv/bin/uv); otherwise ``n/a``.

Each result's pins are read (ckpm.lock, the provider's stdout, uv's
requirements file) and CHECKED against the graph in meta.json: every root's
range holds, every pinned package's version exists and each of its
dependencies is pinned at a version its range admits, and no name is pinned
twice. "Passed over" is the sum over the pins of how many versions newer than
the chosen one exist (0 = every package at its newest).

A run past ``--timeout`` is reported as ``timeout``, a non-zero exit as
``failed`` with its error line. Timings are the median of ``--runs`` runs.
Nothing here asserts timing: the targets are printed beside the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import gen_conflict  # noqa: E402
from bench_lock import error_line, python_speed  # noqa: E402

WORK = HERE / "_work" / "conflict"
TARGET_TIME_S = 2.0
TARGET_UV_RATIO = 2.0
TARGET_PASSED_OVER_RATIO = 1.5
TOOLS = ("ckpm", "minimal", "uv")


# ---------------------------------------------------------------------- checker
def vkey(version: str) -> tuple[int, ...]:
    """The order of the generator's versions (``X.Y.Z``, integers)."""
    return tuple(int(p) for p in version.strip().split("."))


_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([0-9][0-9.]*)\s*$")


def satisfies(version: str, req: str) -> bool:
    """Whether ``version`` is in ``req`` (comma-separated ``>=``/``<``/... clauses, or ``*``)."""
    req = (req or "").strip()
    if req in ("", "*"):
        return True
    v = vkey(version)
    for clause in req.split(","):
        m = _CLAUSE.match(clause)
        if not m:
            raise ValueError(f"not a range the checker knows: {req!r}")
        op, bound = m.group(1), vkey(m.group(2))
        # pad to the same length (1.0 == 1.0.0)
        width = max(len(v), len(bound))
        a, b = v + (0,) * (width - len(v)), bound + (0,) * (width - len(bound))
        ok = {">=": a >= b, "<=": a <= b, "==": a == b, "!=": a != b, ">": a > b, "<": a < b}[op]
        if not ok:
            return False
    return True


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip().lower())


def pins_from_lock(path: Path) -> list[tuple[str, str]]:
    """The ``[[package]]`` pins of a ckpm.lock (TOML), in file order."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [(normalize(p["name"]), str(p["version"])) for p in data.get("package", [])]


def pins_from_requirements(text: str) -> list[tuple[str, str]]:
    """``name==version`` lines (uv's output, the provider's stdout); comments and annotations skipped."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line[:1].isspace():
            continue
        body = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" not in body:
            continue
        name, version = body.split("==", 1)
        out.append((normalize(name), version.strip()))
    return out


def check(meta: dict[str, Any], pins: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Check pins against the graph. Returns ``{"valid", "errors", "packages", "passed_over", "unreachable"}``."""
    comps = meta["components"]
    errors: list[str] = []
    chosen: dict[str, str] = {}
    for name, version in pins:
        if name in chosen and chosen[name] != version:
            errors.append(f"{name} pinned twice: {chosen[name]} and {version}")
            continue
        chosen[name] = version
    for name, version in sorted(chosen.items()):
        comp = comps.get(name)
        if comp is None:
            errors.append(f"{name}: not a component of the graph")
            continue
        if version not in comp["deps"]:
            errors.append(f"{name}=={version}: no such version")
            continue
        for dep, req in comp["deps"][version]:
            got = chosen.get(dep)
            if got is None:
                errors.append(f"{name}=={version} needs {dep}{req}: not pinned")
            elif not satisfies(got, req):
                errors.append(f"{name}=={version} needs {dep}{req}: pinned {got}")
    for name, req in meta["roots"]:
        got = chosen.get(name)
        if got is None:
            errors.append(f"root {name}{req}: not pinned")
        elif not satisfies(got, req):
            errors.append(f"root {name}{req}: pinned {got}")
    # what the roots reach through the chosen versions (extra pins are not an error, only counted)
    reach: set[str] = set()
    stack = [name for name, _ in meta["roots"]]
    while stack:
        name = stack.pop()
        if name in reach or name not in chosen or name not in comps:
            continue
        reach.add(name)
        stack.extend(dep for dep, _ in comps[name]["deps"].get(chosen[name], []))
    return {
        "valid": not errors,
        "errors": errors[:20],
        "n_errors": len(errors),
        "packages": len(chosen),
        "passed_over": passed_over(meta, chosen),
        "unreachable": len(set(chosen) - reach),
    }


def passed_over(meta: dict[str, Any], chosen: dict[str, str]) -> int:
    """Sum over the pins of the number of versions newer than the one chosen."""
    total = 0
    for name, version in chosen.items():
        comp = meta["components"].get(name)
        if comp is None:
            continue
        v = vkey(version)
        total += sum(1 for other in comp["versions"] if vkey(other) > v)
    return total


# ---------------------------------------------------------------------- running
def run(cmd: list[str], timeout: float, *, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds": time.perf_counter() - t0, "error": f"timed out after {timeout:g} s"}
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"status": "failed", "seconds": dt, "returncode": proc.returncode, "error": error_line(proc),
                "stdout": proc.stdout, "stderr": proc.stderr}
    return {"status": "ok", "seconds": dt, "stdout": proc.stdout, "stderr": proc.stderr}


def find_uv(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    found = shutil.which("uv")
    if found:
        return found
    local = HERE / "_work" / "uvenv" / "bin" / "uv"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def ckpm_command(explicit: str | None) -> tuple[list[str], dict[str, str]]:
    """``--ckpm PATH``, else this checkout's code: ``python -m ckpm`` with the repository first on PYTHONPATH.

    PYTHONDONTWRITEBYTECODE is dropped: an installed tool runs from compiled bytecode (pip
    compiles it at install), and with the variable set every run would compile ckpm's ~100
    modules again (0.1-0.15 s). The untimed warm-up run writes the bytecode.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if explicit:
        return [explicit], env
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [sys.executable, "-m", "ckpm"], env


def ensure_generated(d: Path, n: int, m: int, c: float, seed: int, roots: int, wheels: bool) -> float:
    """Generate into ``d`` unless it is there; add wheels/ when asked and missing. Returns seconds spent."""
    t0 = time.perf_counter()
    if not (d / "meta.json").is_file():  # meta.json is written last but for the wheels
        if d.exists():
            shutil.rmtree(d)
        gen_conflict.generate(d, n, m, c, seed, roots, wheels)
        if wheels:
            (d / "wheels.complete").write_text("")
        return time.perf_counter() - t0
    if wheels and not (d / "wheels.complete").is_file():
        if (d / "wheels").exists():
            shutil.rmtree(d / "wheels")
        gen_conflict.write_wheels(gen_conflict.Plan(n, m, c, seed, roots), d / "wheels")
        (d / "wheels.complete").write_text("")
    return time.perf_counter() - t0


def measure(tool: str, d: Path, meta: dict[str, Any], args: argparse.Namespace,
            ckpm: tuple[list[str], dict[str, str]], uv: str | None) -> dict[str, Any]:
    """Run ``tool`` ``args.runs`` times on the seed in ``d``; check the last run's pins."""
    roots = [f"{name}{req}" for name, req in meta["roots"]]
    times: list[float] = []
    res: dict[str, Any] = {}
    for _ in range(args.runs):
        if tool == "ckpm":
            proj = d / "run-ckpm"
            if proj.exists():
                shutil.rmtree(proj)
            proj.mkdir()
            shutil.copy2(d / "project" / "ckpm.toml", proj / "ckpm.toml")
            res = run([*ckpm[0], "-C", str(proj), "lock", "--no-host"], args.timeout, env=ckpm[1])
            if res["status"] == "ok":
                res["pins"] = pins_from_lock(proj / "ckpm.lock")
        elif tool == "minimal":
            res = run([sys.executable, str(HERE / "minimal_provider.py"), str(d / "index"), *roots],
                      args.minimal_timeout or args.timeout)
            if res["status"] == "ok":
                res["pins"] = pins_from_requirements(res["stdout"])
        else:
            out = d / "uv-out.txt"
            if out.exists():
                out.unlink()
            cache = ["--cache-dir", str(args.work / "uv-cache")] if getattr(args, "ratio", False) else ["--no-cache"]
            res = run([uv or "uv", "pip", "compile", "--no-index", "--find-links", str(d / "wheels"),
                       str(d / "requirements.in"), "-o", str(out), *cache, "--no-header", "--no-annotate",
                       "-q"], args.timeout)
            if res["status"] == "ok":
                res["pins"] = pins_from_requirements(out.read_text(encoding="utf-8"))
        if res["status"] != "ok":
            break
        times.append(res["seconds"])
    out_res: dict[str, Any] = {"status": res["status"]}
    if res["status"] == "ok":
        out_res["seconds"] = statistics.median(times)
        out_res.update(check(meta, res["pins"]))
        if not out_res["valid"]:
            out_res["status"] = "invalid"
    else:
        out_res["seconds"] = res["seconds"]
        out_res["error"] = res.get("error")
    if tool == "minimal" and res.get("stderr"):
        out_res["stats"] = res["stderr"].strip().splitlines()[-1][:200]
    return out_res


# ---------------------------------------------------------------------- summary
def summarize(rows: list[dict[str, Any]], tools: list[str]) -> dict[str, Any]:
    s: dict[str, Any] = {"seeds": len(rows)}
    for tool in tools:
        rs = [r[tool] for r in rows]
        done = [x["seconds"] for x in rs if x["status"] in ("ok", "invalid")]
        s[tool] = {
            "valid": sum(1 for x in rs if x["status"] == "ok"),
            "invalid": sum(1 for x in rs if x["status"] == "invalid"),
            "failed": sum(1 for x in rs if x["status"] == "failed"),
            "timeout": sum(1 for x in rs if x["status"] == "timeout"),
            "max_s": max(done) if done else None,
            "median_s": statistics.median(done) if done else None,
            "passed_over": sum(x["passed_over"] for x in rs if x["status"] == "ok"),
        }
    ck = [r["ckpm"] for r in rows]
    s["ckpm"]["fast_and_valid"] = sum(1 for x in ck if x["status"] == "ok" and x["seconds"] < TARGET_TIME_S)
    if "uv" in tools:
        slow = 0
        po_ck = po_uv = 0
        both = 0
        for r in rows:
            a, b = r["ckpm"], r["uv"]
            if b["status"] == "ok" and (a["status"] != "ok" or a["seconds"] > TARGET_UV_RATIO * b["seconds"]):
                slow += 1
            if a["status"] == "ok" and b["status"] == "ok":
                both += 1
                po_ck += a["passed_over"]
                po_uv += b["passed_over"]
        s["ckpm_over_2x_uv"] = slow
        s["passed_over_both"] = {"seeds": both, "ckpm": po_ck, "uv": po_uv,
                                 "ratio": (po_ck / po_uv) if po_uv else (None if po_ck else 1.0)}
    return s


def fmt_s(x: dict[str, Any]) -> str:
    if x["status"] == "ok":
        return f"{x['seconds']:.2f}"
    if x["status"] == "invalid":
        return f"{x['seconds']:.2f}!"
    return x["status"]


def print_table(res: dict[str, Any]) -> None:
    tools = res["tools"]
    print(f"conflict bench: N={res['n']} M={res['m']} roots={res['roots']} seeds={res['seeds']} runs={res['runs']} "
          f"timeout={res['timeout']}s minimal-timeout={res['minimal_timeout']}s")
    print(f"ckpm: {' '.join(res['ckpm_cmd'])}   uv: {res['uv'] or 'n/a (not found)'}")
    loop = res["python_loop_s"]
    print(f"machine: a 3,000,000-step Python loop took {loop['before']} s before the seeds, "
          f"{loop.get('after', '?')} s after")
    for block in res["by_c"]:
        c = block["c"]
        print()
        print(f"C = {c}")
        head = f"{'seed':>4} {'pins':>5}"
        for t in tools:
            head += f" {t + ' s':>10} {t + ' PO':>10}"
        print(head)
        for r in block["rows"]:
            line = f"{r['seed']:>4} {r['ckpm'].get('packages', '-'):>5}"
            for t in tools:
                x = r[t]
                line += f" {fmt_s(x):>10} {x.get('passed_over', '-') if x['status'] in ('ok', 'invalid') else '-':>10}"
            print(line)
            for t in tools:
                x = r[t]
                if x["status"] == "invalid":
                    print(f"      {t} INVALID ({x['n_errors']} errors): {'; '.join(x['errors'][:3])}")
                elif x["status"] == "failed":
                    print(f"      {t} failed: {x.get('error')}")
        print_summary(block["summary"], tools, c)


def _t(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f} s"


def print_summary(s: dict[str, Any], tools: list[str], c: float) -> None:
    n = s["seeds"]
    print(f"-- summary, C = {c}, {n} seeds")
    for t in tools:
        x = s[t]
        print(f"   {t:<8} valid {x['valid']}/{n}  invalid {x['invalid']}  failed {x['failed']}  timeout {x['timeout']}"
              f"  max {_t(x['max_s'])}  median {_t(x['median_s'])}  passed-over (valid) {x['passed_over']}")
    ck = s["ckpm"]
    print(f"   target: every seed < {TARGET_TIME_S:g} s with a valid lock:  {ck['fast_and_valid']}/{n}"
          f"  {'ok' if ck['fast_and_valid'] == n else 'MISSED'}")
    if "uv" in tools:
        print(f"   target: no seed > {TARGET_UV_RATIO:g}x uv:  {s['ckpm_over_2x_uv']} seeds"
              f"  {'ok' if s['ckpm_over_2x_uv'] == 0 else 'MISSED'}")
        po = s["passed_over_both"]
        ratio = po["ratio"]
        rtxt = "n/a" if ratio is None else f"{ratio:.2f}x"
        ok = ratio is not None and ratio <= TARGET_PASSED_OVER_RATIO
        print(f"   target: passed-over <= {TARGET_PASSED_OVER_RATIO:g}x uv:  {rtxt} (ckpm {po['ckpm']} / uv {po['uv']}"
              f" over {po['seeds']} seeds where both are valid)  {'ok' if ok else 'MISSED'}")
    else:
        print("   uv: n/a (not found or --no-uv): the uv targets are not measured")


# ---------------------------------------------------------------------- ratio mode
TARGET_RATIO_MEDIAN = 1.0  # conflict graphs: the median of ckpm / uv over the seeds
TARGET_RATIO_MAX = 1.3  # conflict graphs: no seed over this
TARGET_RATIO_EASY = 0.8  # easy graphs: every seed at most this


def measure_pair(d: Path, meta: dict[str, Any], args: argparse.Namespace,
                 ckpm: tuple[list[str], dict[str, str]], uv: str) -> dict[str, Any]:
    """ckpm and uv on one seed, runs interleaved (ckpm, uv, ckpm, uv, ...) after one untimed
    warm-up of each (their caches: ckpm's parsed index, uv's wheel metadata), so that a drift
    of the machine's speed hits both; the ratio of their medians."""
    one = argparse.Namespace(**{**vars(args), "runs": 1})
    row: dict[str, Any] = {}
    times: dict[str, list[float]] = {"ckpm": [], "uv": []}
    for i in range(args.runs + 1):
        for tool in ("ckpm", "uv"):
            if tool == "ckpm" and args.no_hint:  # each lock as the project's first (ckpm.resolve.hint)
                shutil.rmtree(Path(ckpm[1]["CKPM_CACHE_DIR"]) / "resolve-hints", ignore_errors=True)
            got = measure(tool, d, meta, one, ckpm, uv)
            if got["status"] != "ok":
                row[tool] = got
            elif i > 0:  # run 0 is the warm-up; its result is checked all the same
                times[tool].append(got["seconds"])
            row.setdefault(tool, got)
    for tool in ("ckpm", "uv"):
        if row[tool]["status"] == "ok" and times[tool]:
            row[tool]["seconds"] = statistics.median(times[tool])
    a, b = row["ckpm"], row["uv"]
    row["ratio"] = a["seconds"] / b["seconds"] if a["status"] == "ok" and b["status"] == "ok" else None
    return row


def ratio_summary(rows: list[dict[str, Any]], easy: bool) -> dict[str, Any]:
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    both = [r for r in rows if r["ckpm"]["status"] == "ok" and r["uv"]["status"] == "ok"]
    po_ck = sum(r["ckpm"]["passed_over"] for r in both)
    po_uv = sum(r["uv"]["passed_over"] for r in both)
    s: dict[str, Any] = {
        "seeds": len(rows), "compared": len(ratios),
        "ckpm_valid": sum(1 for r in rows if r["ckpm"]["status"] == "ok"),
        "uv_valid": sum(1 for r in rows if r["uv"]["status"] == "ok"),
        "median_ratio": statistics.median(ratios) if ratios else None,
        "max_ratio": max(ratios) if ratios else None,
        "min_ratio": min(ratios) if ratios else None,
        "over_max": sum(1 for x in ratios if x > (TARGET_RATIO_EASY if easy else TARGET_RATIO_MAX)),
        "ckpm_median_s": statistics.median(r["ckpm"]["seconds"] for r in both) if both else None,
        "uv_median_s": statistics.median(r["uv"]["seconds"] for r in both) if both else None,
        "passed_over": {"ckpm": po_ck, "uv": po_uv},
    }
    return s


def print_ratio(res: dict[str, Any]) -> None:
    print(f"ratio mode: ckpm / uv per graph, N={res['n']} M={res['m']} roots={res['roots']} runs={res['runs']} "
          f"(medians, interleaved, after one untimed warm-up each)")
    print(f"ckpm: {' '.join(res['ckpm_cmd'])} (parsed-index cache: {res['ckpm_cache']}; hint beside the lock: "
          f"{'dropped before each run' if res['no_hint'] else 'kept'})   uv: {res['uv']} "
          f"(--cache-dir {res['uv_cache']})")
    loop = res["python_loop_s"]
    print(f"machine: a 3,000,000-step Python loop took {loop['before']} s before the seeds, "
          f"{loop.get('after', '?')} s after; load average {res['load_before']} before, {res.get('load_after', '?')} after")
    for block in res["by_c"]:
        print()
        kind = "easy" if block["easy"] else "conflict"
        print(f"C = {block['c']:g} ({kind})")
        print(f"{'seed':>4} {'pins':>5} {'ckpm s':>8} {'uv s':>8} {'ratio':>6} {'ckpm PO':>8} {'uv PO':>8}")
        for r in block["rows"]:
            a, b = r["ckpm"], r["uv"]
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(f"{r['seed']:>4} {a.get('packages', '-'):>5} {fmt_s(a):>8} {fmt_s(b):>8} {ratio:>6} "
                  f"{a.get('passed_over', '-'):>8} {b.get('passed_over', '-'):>8}")
            for t in ("ckpm", "uv"):
                x = r[t]
                if x["status"] == "invalid":
                    print(f"      {t} INVALID ({x['n_errors']} errors): {'; '.join(x['errors'][:3])}")
                elif x["status"] == "failed":
                    print(f"      {t} failed: {x.get('error')}")
        s = block["summary"]
        med = "n/a" if s["median_ratio"] is None else f"{s['median_ratio']:.2f}x"
        mx = "n/a" if s["max_ratio"] is None else f"{s['max_ratio']:.2f}x"
        mn = "n/a" if s["min_ratio"] is None else f"{s['min_ratio']:.2f}x"
        print(f"-- C = {block['c']:g} ({kind}), {s['seeds']} seeds: ckpm valid {s['ckpm_valid']}, uv valid "
              f"{s['uv_valid']}; ratio median {med}, max {mx}, min {mn}; ckpm median {_t(s['ckpm_median_s'])}, "
              f"uv median {_t(s['uv_median_s'])}; passed over ckpm {s['passed_over']['ckpm']} / uv "
              f"{s['passed_over']['uv']}")
        if block["easy"]:
            print(f"   target: every seed <= {TARGET_RATIO_EASY:g}x uv:  {s['over_max']} over  "
                  f"{'ok' if s['over_max'] == 0 and s['compared'] == s['seeds'] else 'MISSED'}")
        else:
            ok_med = s["median_ratio"] is not None and s["median_ratio"] <= TARGET_RATIO_MEDIAN
            print(f"   target: median <= {TARGET_RATIO_MEDIAN:g}x uv:  {med}  {'ok' if ok_med else 'MISSED'}")
            print(f"   target: no seed over {TARGET_RATIO_MAX:g}x uv:  {s['over_max']} over  "
                  f"{'ok' if s['over_max'] == 0 and s['compared'] == s['seeds'] else 'MISSED'}")


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main_ratio(args: argparse.Namespace, uv: str | None) -> int:
    """``--ratio``: ckpm against uv, seed by seed, on the conflict graphs of ``--c`` and the easy
    graphs of ``--easy-c``; prints each ratio, their median and maximum, and the targets."""
    if not uv:
        print("--ratio needs uv (--uv PATH, on PATH, or bench/_work/uvenv/bin/uv)", file=sys.stderr)
        return 2
    ckpm = ckpm_command(args.ckpm)
    cache = args.work / "ckpm-cache"
    ckpm[1]["CKPM_CACHE_DIR"] = str(cache)
    res: dict[str, Any] = {
        "mode": "ratio", "date": time.strftime("%Y-%m-%d %H:%M"), "n": args.n, "m": args.m, "roots": args.roots,
        "runs": args.runs, "ckpm_cmd": ckpm[0], "ckpm_cache": str(cache), "no_hint": args.no_hint, "uv": uv,
        "uv_cache": str(args.work / "uv-cache"), "python": sys.executable, "by_c": [],
        "python_loop_s": {"before": round(python_speed(), 3)}, "load_before": _load(),
    }
    run([*ckpm[0], "--version"], args.timeout, env=ckpm[1])
    if not args.ckpm:
        run([sys.executable, "-c", "import ckpm.api, ckpm.cli.main, ckpm.resolve.resolve, ckpm.resolve.sat, "
             "ckpm.resolve.explain, ckpm.index.folder"], args.timeout, env=ckpm[1])
    run([uv, "--version"], args.timeout)
    blocks = [(c, args.seeds, False) for c in args.c] + [(c, args.easy_seeds, True) for c in args.easy_c]
    for c, seeds, easy in blocks:
        rows = []
        for seed in range(args.first_seed, args.first_seed + seeds):
            d = (args.work / f"n{args.n}-m{args.m}-c{c:g}-r{args.roots}" / f"seed-{seed:03d}").resolve()
            ensure_generated(d, args.n, args.m, c, seed, args.roots, wheels=True)
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
            row = {"seed": seed, "dir": str(d), **measure_pair(d, meta, args, ckpm, uv)}
            rows.append(row)
            if not args.json:
                ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
                print(f"C={c:g} seed {seed}: ckpm {fmt_s(row['ckpm'])}  uv {fmt_s(row['uv'])}  ratio {ratio}",
                      file=sys.stderr, flush=True)
        res["by_c"].append({"c": c, "easy": easy, "rows": rows, "summary": ratio_summary(rows, easy)})
    res["python_loop_s"]["after"] = round(python_speed(), 3)
    res["load_after"] = _load()
    if args.json_out:
        args.json_out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_ratio(res)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Conflict-heavy resolver benchmark (ckpm, minimal provider, uv).")
    ap.add_argument("--seeds", type=int, default=40, help="seeds 1..SEEDS (default 40)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--c", type=float, nargs="+", default=[0.15, 0.3])
    ap.add_argument("--roots", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=60.0, help="per run, seconds (default 60)")
    ap.add_argument("--minimal-timeout", type=float, default=None,
                    help="per run of the minimal provider (default: --timeout)")
    ap.add_argument("--runs", type=int, default=1, help="runs per tool per seed; the median is reported")
    ap.add_argument("--json", action="store_true", help="print the whole table as JSON")
    ap.add_argument("--json-out", type=Path, help="also write the whole table as JSON to this file")
    ap.add_argument("--no-uv", action="store_true", help="do not run uv (no wheels are generated)")
    ap.add_argument("--no-minimal", action="store_true", help="do not run the minimal provider")
    ap.add_argument("--uv", help="the uv executable (default: on PATH, else bench/_work/uvenv/bin/uv)")
    ap.add_argument("--ckpm", help="the ckpm command to time (default: this checkout, python -m ckpm)")
    ap.add_argument("--work", type=Path, default=WORK, help=f"where to generate (default {WORK})")
    ap.add_argument("--ratio", action="store_true",
                    help="ckpm / uv per graph (interleaved runs, warm caches), their median and maximum, on the "
                         "graphs of --c and the easy graphs of --easy-c")
    ap.add_argument("--easy-c", type=float, nargs="*", default=[0.05], help="--ratio: easy graphs' C (default 0.05)")
    ap.add_argument("--easy-seeds", type=int, default=10, help="--ratio: seeds of each easy C (default 10)")
    ap.add_argument("--no-hint", action="store_true",
                    help="--ratio: drop the hint beside the lock before each ckpm run (the timed locks then "
                         "do not know that the warm-up needed the complete search)")
    args = ap.parse_args(argv)

    uv = None if args.no_uv else find_uv(args.uv)
    if args.ratio:
        return main_ratio(args, uv)
    tools = ["ckpm"] + ([] if args.no_minimal else ["minimal"]) + (["uv"] if uv else [])
    ckpm = ckpm_command(args.ckpm)
    res: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "n": args.n, "m": args.m, "roots": args.roots,
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)), "runs": args.runs,
        "timeout": args.timeout, "minimal_timeout": args.minimal_timeout or args.timeout,
        "ckpm_cmd": ckpm[0], "uv": uv, "python": sys.executable, "tools": tools, "by_c": [],
        "python_loop_s": {"before": round(python_speed(), 3)},
    }
    # one untimed run of each program first, so that no seed pays for writing bytecode or a cold file cache
    run([*ckpm[0], "--version"], args.timeout, env=ckpm[1])
    if not args.ckpm:  # --version imports little: compile what a lock imports too
        run([sys.executable, "-c", "import ckpm.api, ckpm.cli.main, ckpm.resolve.resolve, ckpm.resolve.sat, "
             "ckpm.resolve.explain, ckpm.index.folder"], args.timeout, env=ckpm[1])
    run([sys.executable, "-c", "import packaging.specifiers, resolvelib"], args.timeout)
    if uv:
        run([uv, "--version"], args.timeout)
    for c in args.c:
        rows = []
        for seed in res["seeds"]:
            d = (args.work / f"n{args.n}-m{args.m}-c{c:g}-r{args.roots}" / f"seed-{seed:03d}").resolve()
            gen_s = ensure_generated(d, args.n, args.m, c, seed, args.roots, wheels=bool(uv))
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
            row: dict[str, Any] = {"seed": seed, "dir": str(d), "generated_s": round(gen_s, 3),
                                   "planted": check(meta, meta["planted_closure"].items())}
            for tool in tools:
                row[tool] = measure(tool, d, meta, args, ckpm, uv)
            rows.append(row)
            if not args.json:
                print(f"C={c:g} seed {seed}: " + "  ".join(f"{t} {fmt_s(row[t])}" for t in tools),
                      file=sys.stderr, flush=True)
        res["by_c"].append({"c": c, "rows": rows, "summary": summarize(rows, tools)})
    res["python_loop_s"]["after"] = round(python_speed(), 3)
    if args.json_out:
        args.json_out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
