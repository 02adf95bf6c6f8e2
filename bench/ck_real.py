"""``ckpm import ck`` on real CK repositories, as a new user would: import, lock, run.

    .venv/bin/python bench/ck_real.py [--work DIR] [--jobs N] [--timeout S] REPO...

Each REPO is a CK repository: a folder, a local git repository (bare, e.g. what the
``fetch`` of ``github:ctuning/ctuning-programs`` gives) or a git URL. All are imported into
one index (packages and soft first, so that programs link the libraries they name), then
every imported program is locked in a project of its own (``[[index]]`` = that index only:
compilers come from the imported ``soft`` entries, detected on this machine), and each
locked program's default command is run with ``ckpm run`` (compile with the detected
compiler, run on the data set the lock chose, check the outputs). It prints the share of
entries imported per CK module, how many programs lock, and how many compile and run with
their checks passing (also per command with ``--all-commands``).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CKPM = [sys.executable, "-m", "ckpm"]
MODULES = ("program", "dataset", "soft", "package")


def sh(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    try:
        r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired:
        return -1, "", f"timed out after {timeout:g} s"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("repos", nargs="+")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--all-commands", action="store_true")
    ap.add_argument("--only", default=None, help="programs whose name contains this text")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="ck-real-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CKPM_CACHE_DIR": str(work / "cache"), "CKPM_STORE": str(work / "store")}
    index = work / "index"
    totals: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    programs: list[str] = []
    reasons: collections.Counter[tuple[str, str]] = collections.Counter()
    # packages and soft first, then data sets, then programs (which look up the packages' libraries)
    for repo in a.repos:
        t0 = time.perf_counter()
        code, out, err = sh([*CKPM, "import", "ck", repo, "--into", str(index), "--json"], work, env, 1800)
        if code != 0:
            print(f"{repo}: import failed: {err.strip()[-500:]}")
            return 1
        rep = json.loads(out)["data"]
        counts = {m: c for m, c in rep["counts"].items() if m in MODULES}
        print(f"{repo} at {str(rep['rev'])[:12]}: " + ", ".join(f"{m} {c['imported']}/{c['entries']}"
                                                               for m, c in counts.items())
              + f"  ({time.perf_counter() - t0:.1f} s)")
        for m, c in counts.items():
            totals[m][0] += c["imported"]
            totals[m][1] += c["entries"]
        for e in rep["entries"]:
            if e["module"] == "program" and e["imported"]:
                programs.append(e["component"])
            if not e["imported"] and e["module"] in MODULES:
                reasons[(e["module"], (e["reason"] or "")[:90])] += 1
    print("\nimported per CK module: " + ", ".join(f"{m} {i}/{n} ({100 * i / max(n, 1):.0f}%)"
                                                  for m, (i, n) in sorted(totals.items())))
    print("most frequent reasons for skipping:")
    for (m, why), n in reasons.most_common(12):
        print(f"  {n:4d}  {m}: {why}")
    if a.only:
        programs = [p for p in programs if a.only in p]

    def one(name: str) -> dict[str, object]:
        proj = work / "projects" / name
        proj.mkdir(parents=True, exist_ok=True)
        (proj / "ckpm.toml").write_text(f'[project]\nname = "p"\n\n[dependencies]\n"{name}" = "*"\n\n'
                                        f'[[index]]\nname = "ck"\nurl = "{index}"\n')
        code, out, err = sh([*CKPM, "lock"], proj, env, 600)
        res: dict[str, object] = {"name": name, "locked": code == 0, "lock_error": err.strip()[-300:] if code else ""}
        if code != 0:
            return res
        line = json.loads((index / _layout(name)).read_text().splitlines()[-1])
        cmds = list(line["run"]["commands"]) if a.all_commands else [line["run"].get("command")]
        res["commands"] = {}
        for cmd in cmds:
            code, out, err = sh([*CKPM, "run", name, "--cmd", cmd, "--json"], proj, env, a.timeout)
            ok = False
            why = ""
            try:
                d = json.loads(out)
                ok = bool(d.get("ok") and d["data"].get("ok"))
                why = "" if ok else str((d.get("error") or {}).get("error", ""))[:200]
            except ValueError:
                why = (err.strip().splitlines() or ["no output"])[-1][:200]
            res["commands"][cmd] = {"ok": ok, "why": why}  # type: ignore[index]
        return res

    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.jobs) as pool:
        results = list(pool.map(one, programs))
    locked = [r for r in results if r["locked"]]
    passed = [r for r in locked if r.get("commands") and all(c["ok"] for c in r["commands"].values())]  # type: ignore
    print(f"\nprograms: {len(programs)} imported, {len(locked)} locked, {len(passed)} compiled and ran with "
          f"their checks passing ({time.perf_counter() - t0:.0f} s)")
    if a.all_commands:
        cmds = [c for r in locked for c in r.get("commands", {}).values()]  # type: ignore
        print(f"commands: {sum(1 for c in cmds if c['ok'])} of {len(cmds)} passed")
    why_lock = collections.Counter(str(r["lock_error"]).splitlines()[0][:110] if r["lock_error"] else "?"
                                   for r in results if not r["locked"])
    print("why programs did not lock:")
    for w, n in why_lock.most_common(10):
        print(f"  {n:4d}  {w}")
    print("programs that locked but failed:")
    for r in locked:
        if r not in passed:
            bad = {k: v["why"] for k, v in r.get("commands", {}).items() if not v["ok"]}  # type: ignore
            print(f"  {r['name']}: {json.dumps(bad)[:220]}")
    print("passed: " + ", ".join(str(r["name"]) for r in passed))
    (work / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n(details: {work / 'results.json'})")
    return 0


def _layout(name: str) -> str:
    sys.path.insert(0, str(ROOT))
    from ckpm.index.layout import entry_path

    return entry_path(name)


if __name__ == "__main__":
    sys.exit(main())
