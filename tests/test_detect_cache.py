"""The host profile: a warm detection re-runs nothing; a changed file is probed again."""
from __future__ import annotations

import json
import os

import pytest

from ckpm.detect import detect, fingerprint_of
from ckpm.detect.cache import profile_path
from ckpm.detect.testing import compiler_script, run_count, runs_of, tool_script, write_exe

VER = {"version_regex": r"tool (\d+\.\d+(?:\.\d+)?)"}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    counter = tmp_path / "runs"
    write_exe(bindir / "tool-a", tool_script("tool 1.0.0"), counter=counter)
    write_exe(bindir / "tool-b", tool_script("tool 2.0.0"), counter=counter)
    write_exe(bindir / "gcc", compiler_script("12.3.0", "x86_64-linux-gnu"), counter=counter)
    write_exe(bindir / "tool-crash", tool_script(stderr="boom", exit_code=2), counter=counter)
    monkeypatch.setenv("PATH", str(bindir))
    rules = {
        "tool": [{"executable": ["tool-*"], **VER}],
        "gcc": [{"compiler": "gcc"}],
        "py": [{"python_package": "pytest"}],
    }
    return bindir, counter, rules, tmp_path / "cache"


def test_warm_detection_runs_nothing(setup):
    bindir, counter, rules, cache = setup
    cold = detect(rules, cache_dir=cache)
    ran = run_count(counter)
    assert ran == cold.probes_run == 6  # 3 tools + 3 gcc probes (--version, -dM -E, -dumpmachine)
    assert [d.version for d in cold.found["tool"]] == ["2.0.0", "1.0.0"]
    assert len(cold.warnings) == 1 and "tool-crash" in cold.warnings[0]
    warm = detect(rules, cache_dir=cache)
    assert run_count(counter) == ran, "a warm detection must not run any probe"
    assert warm.probes_run == 0 and warm.cache_misses == 0 and warm.cache_hits > 0
    assert warm.found == cold.found and warm.facts == cold.facts
    assert warm.warnings == cold.warnings  # the crash is remembered, not re-run


def test_changed_executable_is_probed_again_alone(setup):
    bindir, counter, rules, cache = setup
    detect(rules, cache_dir=cache)
    before_a, before_b = runs_of(counter, "tool-a"), runs_of(counter, "tool-b")
    write_exe(bindir / "tool-a", tool_script("tool 1.1.0 (patched build)"), counter=counter)
    result = detect(rules, cache_dir=cache)
    assert runs_of(counter, "tool-a") == before_a + 1
    assert runs_of(counter, "tool-b") == before_b
    assert result.probes_run == 1
    assert [d.version for d in result.found["tool"]] == ["2.0.0", "1.1.0"]


def test_same_size_rewrite_is_seen_by_mtime(setup):
    bindir, counter, rules, cache = setup
    detect(rules, cache_dir=cache)
    p = bindir / "tool-b"
    fp = fingerprint_of(p)
    p.write_text(p.read_text().replace("2.0.0", "2.0.9"))
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert fingerprint_of(p) != fp
    result = detect(rules, cache_dir=cache)
    assert result.probes_run == 1
    assert result.found["tool"][0].version == "2.0.9"


def test_removed_and_added_executables(setup):
    bindir, counter, rules, cache = setup
    detect(rules, cache_dir=cache)
    (bindir / "tool-a").unlink()
    write_exe(bindir / "tool-c", tool_script("tool 3.0.0"), counter=counter)
    result = detect(rules, cache_dir=cache)
    assert [d.version for d in result.found["tool"]] == ["3.0.0", "2.0.0"]
    assert result.probes_run == 1
    entries = json.loads(profile_path(cache).read_text())["entries"]
    assert not any(str(bindir / "tool-a") in k for k in entries), "entries of vanished files are dropped"


def test_refresh_probes_everything_again(setup):
    bindir, counter, rules, cache = setup
    cold = detect(rules, cache_dir=cache)
    ran = run_count(counter)
    again = detect(rules, cache_dir=cache, refresh=True)
    assert run_count(counter) == 2 * ran and again.found == cold.found


def test_changed_rule_is_probed_again(setup):
    bindir, counter, rules, cache = setup
    detect(rules, cache_dir=cache)
    ran = run_count(counter)
    other = {"tool": [{"executable": ["tool-*"], "version_regex": r"tool (\d+)\."}]}
    result = detect(other, cache_dir=cache)
    assert run_count(counter) == ran + 3
    assert [d.version for d in result.found["tool"]] == ["2", "1"]


def test_corrupt_profile_is_ignored_and_replaced(setup):
    bindir, counter, rules, cache = setup
    cache.mkdir()
    path = profile_path(cache)
    path.write_text('{"format": 1, "entries": {"x": ')
    result = detect(rules, cache_dir=cache)
    assert [d.version for d in result.found["tool"]] == ["2.0.0", "1.0.0"]
    assert any("unreadable" in w for w in result.warnings)
    assert json.loads(path.read_text())["format"] == 1
    path.write_text('["not", "a", "profile"]')
    assert detect(rules, cache_dir=cache).found == result.found


def test_writes_are_atomic_and_leave_no_temporary_files(setup):
    bindir, counter, rules, cache = setup
    detect(rules, cache_dir=cache)
    detect(rules, cache_dir=cache, refresh=True)
    # the profile and its inter-process lock file (kept, as file locks are); no temporary file
    assert sorted(p.name for p in cache.iterdir()) == [profile_path(cache).name, profile_path(cache).name + ".lock"]
    mtime = profile_path(cache).stat().st_mtime_ns
    detect(rules, cache_dir=cache)
    assert profile_path(cache).stat().st_mtime_ns == mtime, "a warm run writes nothing"


def test_cache_dir_from_the_environment(setup, monkeypatch, tmp_path):
    bindir, counter, rules, cache = setup
    envdir = tmp_path / "envcache"
    monkeypatch.setenv("CKPM_CACHE_DIR", str(envdir))
    detect(rules)
    assert profile_path(envdir).is_file()
    ran = run_count(counter)
    assert detect(rules).probes_run == 0 and run_count(counter) == ran


def test_unwritable_cache_is_a_warning(setup, tmp_path):
    bindir, counter, rules, cache = setup
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    result = detect(rules, cache_dir=blocker / "sub")
    assert [d.version for d in result.found["tool"]] == ["2.0.0", "1.0.0"]
    assert any("could not write the host profile" in w for w in result.warnings)


def test_fingerprint_of():
    assert fingerprint_of("/nonexistent/ckpm/file") == ""
    assert fingerprint_of("/usr/bin/gcc") == fingerprint_of("/usr/bin/gcc") != ""


def test_two_runs_merge_their_entries(setup, tmp_path):
    """Two ckpm processes with different rules share one profile: neither loses the other's entries."""
    from ckpm.detect.cache import HostProfile

    path = profile_path(tmp_path / "cache")
    a, b = HostProfile.load(path), HostProfile.load(path)  # both read the (missing) file first
    a.put("a", "fp-a", 1, [], None)
    b.put("b", "fp-b", 2, [], None)
    a.save()
    b.save()
    assert set(HostProfile.load(path).entries) == {"a", "b"}
    b.put("b", "fp-b2", 3, [], None)  # an update of its own entry wins over what is on disk
    b.save()
    assert HostProfile.load(path).get("b", "fp-b2")["value"] == 3
    assert HostProfile.load(path).get("a", "fp-a")["value"] == 1


def test_concurrent_processes_keep_every_entry(setup, tmp_path):
    import subprocess
    import sys

    bindir, counter, rules, cache = setup
    for i in range(6):
        write_exe(bindir / f"conc{i}", tool_script(f"tool {i}.0"))
    procs = []
    for i in range(6):
        rfile = tmp_path / f"rules{i}.json"
        rfile.write_text(json.dumps({f"c{i}": [{"executable": [f"conc{i}"], **VER}]}))
        procs.append(subprocess.Popen([sys.executable, "-m", "ckpm.detect", str(rfile), "--json",
                                       "--cache-dir", str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env={**os.environ, "PATH": str(bindir)}))
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    entries = json.loads(profile_path(cache).read_text())["entries"]
    for i in range(6):
        assert any(f"conc{i}" in k for k in entries), f"entry of process {i} lost"


def test_profile_keeps_its_mode(setup):
    bindir, counter, rules, cache = setup
    detect(rules, cache_dir=cache)
    path = profile_path(cache)
    os.chmod(path, 0o640)
    detect(rules, cache_dir=cache, refresh=True)
    assert path.stat().st_mode & 0o777 == 0o640
