"""Records: JSON round trips, hashing, ordering, and the package's layering and lightness."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from ckpm.detect import Detected, DetectionResult
from ckpm.detect.record import FrozenDict, rank, version_sort_key
from ckpm.detect.testing import tool_script, write_exe

ROOT = Path(__file__).resolve().parent.parent


def rec(version, path="/x", **extra):
    return Detected("tool", version, path, "executable", "fp", extra)


def test_json_round_trip_and_hash():
    d = Detected("gcc", "12.2.0", "/usr/bin/gcc", "compiler", "abc",
                 {"target": "x86_64-linux-gnu", "rule": {"compiler": "gcc", "languages": ["c", "c++"]}})
    j = json.loads(json.dumps(d.to_json()))
    assert j["extra"]["rule"]["languages"] == ["c", "c++"]
    back = Detected.from_json(j)
    assert back == d and hash(back) == hash(d)
    assert {d, back} == {d}
    assert pickle.loads(pickle.dumps(d)) == d


def test_extra_is_read_only():
    d = rec("1.0", cross=False)
    with pytest.raises(TypeError):
        d.extra["cross"] = True  # type: ignore[index]
    with pytest.raises(TypeError):
        d.extra |= {"cross": True}  # type: ignore[operator]
    assert d.extra == {"cross": False}
    assert isinstance(d.extra, FrozenDict)


def test_result_round_trip():
    r = DetectionResult(found={"tool": [rec("1.0")]}, facts={"__os": Detected("__os", "6.1", None, "fact", "f")},
                        warnings=["w"], probes_run=3, cache_hits=1, cache_misses=2, cache_path="/c")
    assert DetectionResult.from_json(json.loads(json.dumps(r.to_json()))) == r
    assert r.best("tool") == rec("1.0") and r.best("none") is None


def test_rank_native_first_then_newest_then_discovery_order():
    recs = [rec("9.1.0", "/cross", cross=True), rec("11.4.0", "/b"), rec("12.0rc1", "/c"), rec("12.0", "/d"),
            rec("11.4.0", "/a"), rec("1.10", "/e")]
    assert [d.path for d in rank(recs)] == ["/d", "/c", "/b", "/a", "/e", "/cross"]


@pytest.mark.parametrize("lo, hi", [
    ("1.9", "1.10"), ("12.2", "12.2.1"), ("2.0rc1", "2.0"), ("v1.2", "1.3"), ("1.1.1", "1.1.1w"),
])
def test_version_sort_key(lo, hi):
    assert version_sort_key(lo) < version_sort_key(hi)


def test_detectors_do_not_import_the_resolver_or_the_cli():
    for path in (ROOT / "ckpm" / "detect").rglob("*.py"):
        text = path.read_text()
        for bad in ("ckpm.resolve", "ckpm.cli", "import click", "from click"):
            assert bad not in text, f"{path} mentions {bad}"


def test_warm_process_is_lean(tmp_path):
    """A warm detection in a fresh process imports no archspec, importlib.metadata, click or resolver."""
    write_exe(tmp_path / "bin" / "tool", tool_script("tool 1.0"))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"tool": [{"executable": ["tool"]}], "pt": [{"python_package": "pytest"}]}))
    script = (
        "import json, sys\n"
        "from ckpm.detect import detect\n"
        f"r = detect(json.load(open({str(rules)!r})), cache_dir={str(tmp_path / 'cache')!r})\n"
        "mods = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('archspec', 'click', 'packaging', 'platformdirs') or m.startswith(('ckpm.resolve', 'ckpm.cli', "
        "'importlib.metadata', 'subprocess')))\n"
        "print(json.dumps({'probes': r.probes_run, 'mods': mods, 'found': len(r.found['tool'])}))\n"
    )
    env = {**os.environ, "PATH": str(tmp_path / "bin")}
    env.pop("CKPM_CACHE_DIR", None)
    run = lambda: json.loads(subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True,
                                            capture_output=True, text=True).stdout)
    cold = run()
    assert cold["probes"] >= 1 and cold["found"] == 1
    warm = run()
    assert warm["probes"] == 0 and warm["found"] == 1
    assert warm["mods"] == [], f"imported on the warm path: {warm['mods']}"
