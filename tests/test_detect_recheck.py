"""``recheck``: run the rule (as the index has it) again to report drift (what a lock expects vs
what is there). Nothing is taken from the lock but the component name and the recorded path,
which is only compared, never executed."""
from __future__ import annotations

import json
import os

import pytest

from ckpm.detect import Detected, detect, match_recorded, recheck, rule_id
from ckpm.detect.testing import runs_of, tool_script, write_exe
from ckpm.report import Reporter

VER = {"version_regex": r"tool (\d+\.\d+\.\d+)"}
RULE = {"executable": ["tool", "tool-*"], **VER}


@pytest.fixture
def found(tmp_path, monkeypatch):
    counter = tmp_path / "runs"
    write_exe(tmp_path / "bin" / "tool", tool_script("tool 1.0.0"), counter=counter)
    write_exe(tmp_path / "bin" / "tool-2", tool_script("tool 2.0.0"), counter=counter)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    result = detect({"tool": [RULE]}, cache_dir=tmp_path / "cache")
    return tmp_path / "bin", counter, {os.path.basename(d.path): d for d in result.found["tool"]}


def test_unchanged(found):
    bindir, counter, recs = found
    d = recs["tool"]
    before = runs_of(counter, "tool")
    now = recheck("tool", RULE, path=d.path)
    assert [x.path for x in now] == [d.path, str(bindir / "tool-2")], "every match, the recorded path first"
    assert now[0] == d
    assert runs_of(counter, "tool") == before + 1, "probed again, never from the cache"
    assert d.extra["rule_id"] == rule_id(RULE)
    got = match_recorded(now, d.path)
    assert got.same_path and got.record == d and not got.missing


def test_version_drift_from_a_lockfile_dict(found):
    bindir, counter, recs = found
    locked = json.loads(json.dumps(recs["tool"].to_json()))  # as a lockfile would store it
    write_exe(bindir / "tool", tool_script("tool 1.1.0"))
    got = match_recorded(recheck(locked["name"], RULE, path=locked["path"]), locked["path"])
    now = got.record
    assert got.same_path and now is not None and now.version == "1.1.0" and now.path == locked["path"]
    assert now.fingerprint != locked["fingerprint"]


def test_missing(found):
    bindir, counter, recs = found
    (bindir / "tool").unlink()
    got = match_recorded(recheck("tool", RULE, path=recs["tool"].path), recs["tool"].path)
    assert not got.same_path and got.record is not None and got.record.version == "2.0.0", \
        "another version elsewhere, not the recorded one"
    (bindir / "tool-2").unlink()
    got = match_recorded(recheck("tool", RULE, path=recs["tool"].path), recs["tool"].path)
    assert got.missing


def test_same_version_at_another_path(found, tmp_path, monkeypatch):
    bindir, counter, recs = found
    other = tmp_path / "other"
    write_exe(other / "tool", tool_script("tool 1.0.0"))
    (bindir / "tool").unlink()
    monkeypatch.setenv("PATH", f"{other}{os.pathsep}{bindir}")
    now = recheck("tool", RULE, path=recs["tool"].path)
    got = match_recorded(now, recs["tool"].path, version="1.0.0")
    assert not got.same_path and got.record is not None
    assert (got.record.version, got.record.path) == ("1.0.0", str(other / "tool"))
    assert match_recorded(now, recs["tool"].path).record.version == "2.0.0", "without a version: the best"


def test_broken_now_is_none_not_an_exception(found):
    bindir, counter, recs = found
    write_exe(bindir / "tool", tool_script(stderr="error while loading shared libraries", exit_code=127))
    rep = Reporter()
    warnings = rep.warnings  # what the reporter was told, in order, once each
    now = recheck("tool", RULE, path=recs["tool"].path, reporter=rep)
    assert not match_recorded(now, recs["tool"].path).same_path
    assert any("exited with 127" in w for w in warnings)


def test_hanging_now_times_out(found):
    import shutil
    import time

    bindir, counter, recs = found
    write_exe(bindir / "tool", f"exec {shutil.which('sleep', path='/usr/bin:/bin')} 30")
    rep = Reporter()
    warnings = rep.warnings  # what the reporter was told, in order, once each
    now = recheck("tool", RULE, path=recs["tool"].path, timeout=0.3, reporter=rep)
    assert not match_recorded(now, recs["tool"].path).same_path
    assert any("timed out after 0.3s" in w for w in warnings)


def test_fact(tmp_path, monkeypatch):
    monkeypatch.setenv("CKPM_CACHE_DIR", str(tmp_path / "cache"))
    facts = detect({}).facts
    assert recheck("__libc") == [facts["__libc"]]
    monkeypatch.setenv("CKPM_OVERRIDE_GLIBC", "2.17")
    assert [d.version for d in recheck("__libc")] == ["2.17"]


def test_no_rule_finds_nothing():
    assert recheck("x", None) == []


def test_a_lock_record_naming_a_shell_runs_nothing(tmp_path, monkeypatch):
    """A lock whose host pin names /bin/sh with hostile arguments: neither the recorded path nor
    the recorded rule is executed."""
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    hostile = {"executable": "/bin/sh", "version_args": ["-c", f"touch {marker}; echo 1.0"]}
    rep = Reporter()
    warnings = rep.warnings  # what the reporter was told, in order, once each
    # a harmless-looking rule with the path of a shell: the path is only compared
    assert recheck("evil", {"executable": "ckpm-surely-absent-tool", "version_args": ["--version"]},
                   path="/bin/sh") == []
    assert recheck("evil", hostile, path="/bin/sh", reporter=rep) == []
    assert not marker.exists()
    assert any("executable '/bin/sh' must be a bare name" in w for w in warnings)
    args_only = {"executable": "sh", "version_args": ["-c", f"touch {marker}"]}
    assert recheck("evil", args_only, path="/bin/sh", reporter=rep) == []
    assert not marker.exists()
    assert any("version_args ['-c', " in w for w in warnings)
