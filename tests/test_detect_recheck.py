"""``recheck``: re-probe a recorded detection to report drift (what a lock expects vs what is there)."""
from __future__ import annotations

import json
import os

import pytest

from ckpm.detect import Detected, detect, recheck
from ckpm.detect.testing import runs_of, tool_script, write_exe

VER = {"version_regex": r"tool (\d+\.\d+\.\d+)"}


@pytest.fixture
def found(tmp_path, monkeypatch):
    counter = tmp_path / "runs"
    write_exe(tmp_path / "bin" / "tool", tool_script("tool 1.0.0"), counter=counter)
    write_exe(tmp_path / "bin" / "tool-2", tool_script("tool 2.0.0"), counter=counter)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    result = detect({"tool": [{"executable": ["tool", "tool-*"], **VER}]}, cache_dir=tmp_path / "cache")
    return tmp_path / "bin", counter, {os.path.basename(d.path): d for d in result.found["tool"]}


def test_unchanged(found):
    bindir, counter, recs = found
    d = recs["tool"]
    before = runs_of(counter, "tool-2")
    again = recheck(d)
    assert again == d
    assert runs_of(counter, "tool-2") == before, "only the recorded path is probed"


def test_version_drift_from_a_lockfile_dict(found):
    bindir, counter, recs = found
    locked = json.loads(json.dumps(recs["tool"].to_json()))  # as a lockfile would store it
    write_exe(bindir / "tool", tool_script("tool 1.1.0"))
    now = recheck(locked)
    assert now is not None and now.version == "1.1.0" and now.path == locked["path"]
    assert now.fingerprint != locked["fingerprint"]


def test_missing(found):
    bindir, counter, recs = found
    (bindir / "tool").unlink()
    assert recheck(recs["tool"]) is None


def test_broken_now_is_none_not_an_exception(found):
    bindir, counter, recs = found
    write_exe(bindir / "tool", tool_script(stderr="error while loading shared libraries", exit_code=127))
    assert recheck(recs["tool"]) is None


def test_hanging_now_times_out(found):
    import shutil
    import time

    bindir, counter, recs = found
    write_exe(bindir / "tool", f"exec {shutil.which('sleep', path='/usr/bin:/bin')} 30")
    t0 = time.monotonic()
    assert recheck(recs["tool"], timeout=0.3) is None
    assert time.monotonic() - t0 < 2.5


def test_fact(tmp_path, monkeypatch):
    monkeypatch.setenv("CKPM_CACHE_DIR", str(tmp_path / "cache"))
    facts = detect({}).facts
    assert recheck(facts["__libc"]) == facts["__libc"]
    monkeypatch.setenv("CKPM_OVERRIDE_GLIBC", "2.17")
    assert recheck(facts["__libc"]).version == "2.17"


def test_unknown_detector_is_none():
    assert recheck(Detected("x", "1", "/nowhere", "no-such-detector", "")) is None
