"""Executable detection with fake tools (real shell scripts) and real tools of this machine."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from ckpm.detect import detect
from ckpm.detect.testing import compiler_script, tool_script, write_exe


@pytest.fixture
def bindir(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    return d


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


VER = {"version_args": ["--version"], "version_regex": r"mytool (\d+\.\d+(?:\.\d+)?)"}


def test_finds_all_matches_newest_first(bindir, tmp_path, cache):
    write_exe(bindir / "mytool", tool_script("mytool 1.4.2"))
    write_exe(bindir / "mytool-2", tool_script("mytool 2.0.1"))
    write_exe(bindir / "mytool-config", tool_script("not a tool"))
    extra = tmp_path / "opt" / "mytool-3.1" / "bin"
    write_exe(extra / "mytool", tool_script("mytool 3.1.0"))
    rules = {"mytool": [{"executable": ["mytool", "mytool-[0-9]*"], **VER}]}
    result = detect(rules, cache_dir=cache, search_paths=[str(tmp_path / "opt" / "mytool-3.1")])
    got = [(d.version, d.path) for d in result.found["mytool"]]
    assert got == [
        ("3.1.0", str(extra / "mytool")),
        ("2.0.1", str(bindir / "mytool-2")),
        ("1.4.2", str(bindir / "mytool")),
    ]
    assert all(d.detector == "executable" for d in result.found["mytool"])
    assert result.warnings == []


def test_rule_search_paths_globs_and_exclude(bindir, tmp_path, cache):
    write_exe(tmp_path / "cuda-11.8" / "bin" / "mytool", tool_script("mytool 11.8"))
    write_exe(tmp_path / "cuda-12.4" / "bin" / "mytool", tool_script("mytool 12.4"))
    write_exe(bindir / "mytool3.1-config", tool_script("usage", exit_code=1))
    write_exe(bindir / "mytool3.1", tool_script("mytool 3.1"))
    rule = {"executable": ["mytool", "mytool3.*"], "exclude": ["*-config"],
            "search_paths": [str(tmp_path / "cuda-*")], **VER}
    result = detect({"t": [rule]}, cache_dir=cache, path_roots=[str(tmp_path)])  # the user allows tmp_path
    assert [d.version for d in result.found["t"]] == ["12.4", "11.8", "3.1"]
    assert result.warnings == []


def test_symlinks_to_one_binary_are_reported_once(bindir, cache):
    real = write_exe(bindir / "mytool-1.2", tool_script("mytool 1.2"))
    os.symlink(real.name, bindir / "mytool")
    result = detect({"t": [{"executable": ["mytool", "mytool-*"], **VER}]}, cache_dir=cache)
    assert [d.path for d in result.found["t"]] == [str(bindir / "mytool")]
    assert result.found["t"][0].extra["realpath"] == str(real)


def test_cross_gcc_by_executable_rule(bindir, cache):
    write_exe(bindir / "aarch64-linux-gnu-gcc", compiler_script("12.2.0", "aarch64-linux-gnu"))
    write_exe(bindir / "aarch64-linux-gnu-gcc-12", compiler_script("12.2.0", "aarch64-linux-gnu"))
    rule = {"executable": ["aarch64-linux-gnu-gcc*"], "version_args": ["-dumpfullversion"]}
    result = detect({"xgcc": [rule]}, cache_dir=cache)
    assert [(os.path.basename(d.path), d.version) for d in result.found["xgcc"]] == [
        ("aarch64-linux-gnu-gcc", "12.2.0"), ("aarch64-linux-gnu-gcc-12", "12.2.0")]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_hanging_probe_times_out_fast_and_the_rest_goes_on(bindir, tmp_path, cache):
    sleep = shutil.which("sleep", path="/usr/bin:/bin")
    pidfile = tmp_path / "sleep.pid"
    # the shell waits on a child that keeps the output pipe open: the whole group must die
    write_exe(bindir / "mytool-hang", f"{sleep} 30 &\necho $! > {pidfile}\nwait\necho 'mytool 9.9'")
    write_exe(bindir / "mytool", tool_script("mytool 1.0"))
    result = detect({"t": [{"executable": ["mytool", "mytool-*"], **VER}]}, cache_dir=cache, timeout=0.5)
    assert [d.version for d in result.found["t"]] == ["1.0"]
    assert len(result.warnings) == 1
    assert "mytool-hang" in result.warnings[0] and "timed out after 0.5s" in result.warnings[0]
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 60  # a last-resort bound: the loop ends when the child is gone
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid), "the probe's child must be killed with it"


def test_crashing_probe_is_a_warning_with_its_stderr(bindir, cache):
    write_exe(bindir / "mytool-bad", tool_script(stderr="Segmentation fault (core dumped)", exit_code=3))
    write_exe(bindir / "mytool", tool_script("mytool 1.0"))
    result = detect({"t": [{"executable": ["mytool", "mytool-*"], **VER}]}, cache_dir=cache)
    assert [d.version for d in result.found["t"]] == ["1.0"]
    assert len(result.warnings) == 1
    w = result.warnings[0]
    assert "mytool-bad" in w and "exited with 3" in w and "Segmentation fault" in w


def test_a_shim_with_nothing_behind_it_is_skipped_quietly(bindir, cache):
    """pyenv's shim of an inactive version exits 127 saying "command not found": not a program
    here, so no warning (a loader failure, also 127, still warns: tests/test_detect_recheck.py)."""
    write_exe(bindir / "mytool-9", tool_script(stderr="pyenv: mytool-9: command not found", exit_code=127))
    write_exe(bindir / "mytool", tool_script("mytool 1.0"))
    result = detect({"t": [{"executable": ["mytool", "mytool-*"], **VER}]}, cache_dir=cache)
    assert [d.version for d in result.found["t"]] == ["1.0"]
    assert result.warnings == []


def test_garbage_output_is_reported_raw_and_truncated(bindir, cache):
    garbage = "Welcome to MyTool!! " * 40
    write_exe(bindir / "mytool", tool_script(garbage))
    result = detect({"t": [{"executable": ["mytool"], **VER}]}, cache_dir=cache)
    assert result.found["t"] == []
    assert len(result.warnings) == 1
    w = result.warnings[0]
    assert "no version in output" in w and "Welcome to MyTool!!" in w and "mytool (" in w
    assert "…" in w and len(w) < 600


def test_unexecutable_probe_is_a_warning(bindir, cache):
    p = bindir / "mytool"
    p.write_text("\x7fELF garbage")
    p.chmod(0o755)
    result = detect({"t": [{"executable": ["mytool"], **VER}]}, cache_dir=cache)
    assert result.found["t"] == []
    assert len(result.warnings) == 1 and "could not run" in result.warnings[0]


def test_exit_codes_accepted_by_rule(bindir, cache):
    write_exe(bindir / "mytool", tool_script(stderr="mytool 0.9.1", exit_code=1))
    result = detect({"t": [{"executable": ["mytool"], "exit_codes": [0, 1], **VER}]}, cache_dir=cache)
    assert [d.version for d in result.found["t"]] == ["0.9.1"]


@pytest.mark.parametrize("tool, args, regex", [
    ("cmake", ["--version"], r"cmake version (\d+\.\d+\.\d+)"),
    ("git", ["--version"], r"git version (\d+\.\d+\.\d+)"),
    ("make", ["--version"], r"GNU Make (\d+\.\d+(?:\.\d+)?)"),
    ("gcc", ["-dumpfullversion"], None),
])
def test_real_tools(tool, args, regex, monkeypatch, cache):
    path = shutil.which(tool, path="/usr/bin")
    assert path, f"{tool} must be installed in /usr/bin on this machine and in CI"
    monkeypatch.setenv("PATH", "/usr/bin")
    out = subprocess.run([path, *args], capture_output=True, text=True, check=True).stdout
    import re

    expected = re.search(regex or r"(\d+\.\d+(?:\.\d+)*)", out).group(1)
    rule = {"executable": [tool], "version_args": args}
    if regex:
        rule["version_regex"] = regex
    result = detect({tool: [rule]}, cache_dir=cache)
    assert [(d.path, d.version) for d in result.found[tool]] == [(path, expected)]


def test_real_python_on_path(monkeypatch, cache):
    import platform
    import sys

    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bindir)
    result = detect({"python": [{"executable": [os.path.basename(sys.executable)],
                                 "version_regex": r"Python (\d+\.\d+\.\d+)"}]}, cache_dir=cache)
    assert [d.version for d in result.found["python"]] == [platform.python_version()]
