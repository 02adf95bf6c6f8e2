"""Time host detection as whole processes: cold (fresh cache) and warm (profile reused).

Usage: python bench/bench_detect.py [--runs 5] [--rules FILE | --fallback] [--strict]

The rules are the ``detect`` rules of the whole embedded index (``index/``); if it declares
none, a built-in list (gcc, g++, clang, cmake, make, ninja, python3, git, nvcc, pkg-config
zlib/openblas/libjpeg, python packages numpy/tensorflow/torch/onnxruntime). Each run is
``python -m ckpm.detect RULES --json --cache-dir DIR`` in a new process, and then the user's
command ``ckpm detect --json`` (this repository, embedded index); the figures are medians of
``--runs`` runs. Targets: warm < 0.15 s, cold < 3 s (``--strict``: exit 1 if missed).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARM_TARGET = 0.15
COLD_TARGET = 3.0

FALLBACK_RULES: dict[str, list[dict[str, object]]] = {
    "gcc": [{"compiler": "gcc", "languages": ["c"]}],
    "g++": [{"compiler": "gcc", "languages": ["c++"]}],
    "clang": [{"compiler": "clang", "languages": ["c", "c++"]}],
    "cmake": [{"executable": ["cmake", "cmake3"], "version_regex": r"cmake3? version (\d+\.\d+\.\d+)"}],
    "make": [{"executable": ["make", "gmake"], "version_regex": r"GNU Make (\d+\.\d+(?:\.\d+)?)"}],
    "ninja": [{"executable": ["ninja", "ninja-build"]}],
    "python3": [{"executable": ["python3"], "version_regex": r"Python (\d+\.\d+\.\d+)"}],
    "git": [{"executable": ["git"], "version_regex": r"git version (\d+\.\d+\.\d+)"}],
    "nvcc": [{"executable": ["nvcc"], "search_paths": ["/usr/local/cuda*/bin"],
              "version_regex": r"release (\d+\.\d+)"}],
    "zlib": [{"pkg_config": "zlib"}, {"library": "z", "header": "zlib.h"}],
    "openblas": [{"pkg_config": ["openblas", "blas-openblas"]}],
    "libjpeg": [{"pkg_config": "libjpeg"}],
    "numpy": [{"python_package": "numpy"}],
    "tensorflow": [{"python_package": ["tensorflow", "tensorflow-cpu"]}],
    "torch": [{"python_package": "torch"}],
    "onnxruntime": [{"python_package": ["onnxruntime", "onnxruntime-gpu"]}],
}


def index_rules() -> dict[str, list[dict[str, object]]]:
    """The detect rules of the embedded index ({} if it has none or cannot be read)."""
    sys.path.insert(0, str(ROOT))
    try:
        from ckpm.detect.rules import rules_from_index
        from ckpm.index import open_index

        return {k: [dict(r) for r in v] for k, v in rules_from_index(open_index(None)).items()}
    except Exception as e:  # the index is being written elsewhere; fall back
        print(f"(embedded index unreadable: {type(e).__name__}: {e})")
        return {}


def run_once(rules: Path, cache: Path) -> tuple[float, dict[str, object]]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ckpm.detect", str(rules), "--json", "--cache-dir", str(cache)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, json.loads(out.stdout)


def run_cli_once(cache: Path) -> tuple[float, dict[str, object]]:
    """The user's command: ``ckpm detect --json`` in this repository (embedded index)."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ckpm", "--cache-dir", str(cache), "detect", "--json"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, json.loads(out.stdout)


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.3f} s  (min {min(xs):.3f}, max {max(xs):.3f}, n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rules", help="a rules JSON file instead of the index's")
    ap.add_argument("--fallback", action="store_true", help="use the built-in rule list, not the index's")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()

    if args.rules:
        rules, source = json.loads(Path(args.rules).read_text()), args.rules
    elif args.fallback:
        rules, source = FALLBACK_RULES, "built-in fallback list"
    else:
        rules = index_rules()
        source = "embedded index"
        if not rules:
            rules, source = FALLBACK_RULES, "built-in fallback list"
    work = Path(tempfile.mkdtemp(prefix="ckpm-bench-detect-"))
    try:
        rules_file = work / "rules.json"
        rules_file.write_text(json.dumps(rules))
        print(f"rules: {sum(len(v) for v in rules.values())} rules for {len(rules)} components ({source})")

        t = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            t.append(time.perf_counter() - t0)
        print(f"python startup (baseline):  {fmt(t)}")

        cold, data = [], {}
        for i in range(args.runs):
            secs, data = run_once(rules_file, work / f"cold-{i}")
            cold.append(secs)
        probes = data.get("probes_run")
        print(f"cold detect (fresh cache):   {fmt(cold)}   probes per run: {probes}")

        warm_cache = work / "warm"
        run_once(rules_file, warm_cache)
        warm, wdata = [], {}
        for _ in range(args.runs):
            secs, wdata = run_once(rules_file, warm_cache)
            warm.append(secs)
        print(f"warm detect (cached):        {fmt(warm)}   probes per run: {wdata.get('probes_run')}")

        cli_cold = [run_cli_once(work / f"cli-cold-{i}")[0] for i in range(args.runs)]
        print(f"ckpm detect, cold:           {fmt(cli_cold)}")
        run_cli_once(work / "cli-warm")
        cli_warm = [run_cli_once(work / "cli-warm")[0] for _ in range(args.runs)]
        print(f"ckpm detect, warm:           {fmt(cli_warm)}")

        found = {k: v for k, v in wdata.get("found", {}).items() if v}  # type: ignore[union-attr]
        print(f"found {len(found)}/{len(rules)} components: " +
              ", ".join(f"{k} {v[0]['version']}" for k, v in sorted(found.items())))
        print(f"warnings: {len(wdata.get('warnings', []))}")  # type: ignore[arg-type]

        ok_warm = max(statistics.median(warm), statistics.median(cli_warm)) < WARM_TARGET
        ok_cold = max(statistics.median(cold), statistics.median(cli_cold)) < COLD_TARGET
        print(f"targets: warm < {WARM_TARGET} s {'OK' if ok_warm else 'MISSED'}; "
              f"cold < {COLD_TARGET} s {'OK' if ok_cold else 'MISSED'}")
        return 0 if (ok_warm and ok_cold) or not args.strict else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
