"""Compiler detection: fake compilers as data (tests/cases/detect/compilers.toml) and the real gcc."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ckpm.detect import detect, recheck
from ckpm.detect.context import host_arch
from ckpm.detect.detectors.compiler import identify, language_of, parse_macros, triple_platform
from ckpm.detect.testing import compiler_script, runs_of, write_exe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CASES = Path(__file__).parent / "cases" / "detect" / "compilers.toml"
HOST = host_arch()
FOREIGN = "aarch64" if HOST != "aarch64" else "riscv64"


def _fill(value):
    if isinstance(value, str):
        return value.replace("{host}", HOST).replace("{foreign}", FOREIGN)
    if isinstance(value, dict):
        return {k: _fill(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v) for v in value]
    return value


def load_cases():
    data = tomllib.loads(CASES.read_text())
    return [pytest.param(_fill(c), id=c["id"]) for c in data["case"]]


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.mark.parametrize("case", load_cases())
def test_compiler_case(case, tmp_path, monkeypatch, cache):
    bindir = tmp_path / "bin"
    for exe in case["exe"]:
        body = compiler_script(exe["version"], exe["triple"], family=exe["family"],
                               version_text=exe.get("version_text"), macros_family=exe.get("macros_family"))
        write_exe(bindir / exe["name"], body)
    monkeypatch.setenv("PATH", str(bindir))
    result = detect({"cc": [case["rule"]]}, cache_dir=cache)
    got = result.found["cc"]
    assert [os.path.basename(d.path) for d in got] == [e["exe"] for e in case["expect"]], result.warnings
    for d, exp in zip(got, case["expect"]):
        assert d.detector == "compiler"
        assert d.version == exp["version"]
        for key in ("cross", "family", "language", "target", "target_platform", "vendor"):
            if key in exp:
                assert d.extra[key] == exp[key], (key, dict(d.extra))
    assert result.warnings == []


def test_real_gcc_version_and_triple(tmp_path, monkeypatch, cache):
    gcc = shutil.which("gcc", path="/usr/bin")
    assert gcc == "/usr/bin/gcc", "this machine (and CI) must have /usr/bin/gcc"
    full = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True, check=True).stdout.strip()
    triple = subprocess.run([gcc, "-dumpmachine"], capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.setenv("PATH", "/usr/bin")
    result = detect({"gcc": [{"compiler": "gcc", "languages": ["c", "c++"]}]}, cache_dir=cache)
    by_path = {d.path: d for d in result.found["gcc"]}
    assert "/usr/bin/gcc" in by_path, result.warnings
    d = by_path["/usr/bin/gcc"]
    assert d.version == full
    assert d.extra["target"] == triple
    assert d.extra["family"] == "gcc"
    assert d.extra["language"] == "c"
    assert d.extra["cross"] is False
    assert d.extra["target_platform"] == f"linux-{HOST}"
    gxx = [x for x in result.found["gcc"] if x.extra["language"] == "c++"]
    assert gxx and gxx[0].version == full
    # the many names of the one gcc (gcc, gcc-12, x86_64-linux-gnu-gcc-12) are reported once
    reals = [os.path.realpath(x.path) for x in result.found["gcc"]]
    assert len(reals) == len(set(reals))


def test_real_gcc_is_not_a_clang():
    out = subprocess.run(["/usr/bin/gcc", "-dM", "-E", "-x", "c", os.devnull], capture_output=True, text=True).stdout
    ver = subprocess.run(["/usr/bin/gcc", "--version"], capture_output=True, text=True).stdout
    assert identify(ver, parse_macros(out)) == "gcc"


def test_compiler_probes_are_cached_and_rechecked(tmp_path, monkeypatch, cache):
    bindir = tmp_path / "bin"
    counter = tmp_path / "runs"
    gcc = write_exe(bindir / "gcc", compiler_script("12.3.0", f"{HOST}-linux-gnu"), counter=counter)
    monkeypatch.setenv("PATH", str(bindir))
    rules = {"gcc": [{"compiler": "gcc"}]}
    first = detect(rules, cache_dir=cache)
    assert first.found["gcc"][0].version == "12.3.0"
    assert runs_of(counter, "gcc") == 3  # --version, -dM -E, -dumpmachine
    second = detect(rules, cache_dir=cache)
    assert second.found == first.found
    assert second.probes_run == 0 and runs_of(counter, "gcc") == 3
    write_exe(gcc, compiler_script("13.1.0", f"{HOST}-linux-gnu"), counter=counter)
    (again,) = recheck("gcc", rules["gcc"][0], path=str(gcc))  # the index's rule, run afresh
    assert (again.version, again.path, again.extra["family"]) == ("13.1.0", str(gcc), "gcc")


@pytest.mark.parametrize("triple, platform", [
    ("x86_64-linux-gnu", "linux-x86_64"),
    ("aarch64-linux-gnu", "linux-aarch64"),
    ("arm-linux-gnueabihf", "linux-armv7"),
    ("arm64-apple-darwin23.4.0", "macos-aarch64"),
    ("x86_64-w64-mingw32", "windows-x86_64"),
    ("aarch64-linux-android", "android-aarch64"),
    ("arm-none-eabi", "none-armv7"),
    ("riscv64-unknown-linux-gnu", "linux-riscv64"),
])
def test_triple_platform(triple, platform):
    assert triple_platform(triple) == platform


@pytest.mark.parametrize("name, lang", [
    ("gcc", "c"), ("g++-12", "c++"), ("clang++", "c++"), ("aarch64-linux-gnu-g++", "c++"),
    ("gfortran", "fortran"), ("clang-17", "c"),
])
def test_language_of(name, lang):
    assert language_of(name) == lang
