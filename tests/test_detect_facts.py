"""Host facts as virtual packages, their overrides, and the CUDA and libc probes."""
from __future__ import annotations

import os
import platform
import subprocess

import pytest

from ckpm.detect import detect, host_facts
from ckpm.detect.context import DetectContext, normalize_arch
from ckpm.detect.facts import cuda, libc
from ckpm.detect.testing import runs_of, tool_script, write_exe

NVIDIA_SMI = """\
Tue Mar  5 10:12:01 2024
+---------------------------------------------------------------------------------------+
| NVIDIA-SMI 535.104.05             Driver Version: 535.104.05   CUDA Version: 12.2     |
|-----------------------------------------+----------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id        Disp.A | Volatile Uncorr. ECC |
|   0  NVIDIA A100-SXM4-40GB          On  | 00000000:07:00.0 Off |                    0 |
+-----------------------------------------+----------------------+----------------------+
"""
PROC_VERSION = """\
NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024
GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CKPM_CACHE_DIR", str(tmp_path / "cache"))
    for k in list(os.environ):
        if k.startswith("CKPM_OVERRIDE_"):
            monkeypatch.delenv(k)


def test_real_facts_of_this_machine():
    facts = host_facts()
    assert facts["__python"].version == platform.python_version()
    assert facts["__arch"].extra["name"] == normalize_arch(platform.machine())
    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    assert (facts["__libc"].version, facts["__libc"].extra["name"]) == (glibc, "glibc")
    assert facts["__os"].extra["name"] == "linux"
    assert platform.release().startswith(facts["__os"].version)
    import archspec.cpu

    host = archspec.cpu.host()
    cpu = facts["__cpu"]
    assert cpu.extra["name"] == host.name
    assert list(cpu.extra["features"]) == sorted(host.features)
    assert cpu.version == cpu.extra["level"]
    if host.family.name == "x86_64":
        assert cpu.extra["generic"] == f"x86_64_v{cpu.version}"
    assert all(d.detector == "fact" and d.name == n for n, d in facts.items())


def test_ldd_output_agrees_with_confstr():
    out = subprocess.run(["ldd", "--version"], capture_output=True, text=True)
    assert libc.parse_ldd(out.stdout + out.stderr) == ("glibc", os.confstr("CS_GNU_LIBC_VERSION").split()[1])


def test_musl_from_a_fake_ldd(tmp_path):
    write_exe(tmp_path / "ldd", tool_script(
        stderr="musl libc (x86_64)\nVersion 1.2.4\nDynamic Program Path: /lib/ld-musl-x86_64.so.1\n"
               "Usage: ldd [options] [--] pathname", exit_code=1))
    ctx = DetectContext(env={"PATH": str(tmp_path)})
    assert libc.from_ldd(ctx) == ("musl", "1.2.4")
    assert ctx.probes_run == 1 and ctx.reporter.warnings == []


@pytest.mark.parametrize("var", ["CKPM_OVERRIDE_GLIBC", "CKPM_OVERRIDE_LIBC"])
def test_libc_override(var, monkeypatch):
    monkeypatch.setenv(var, "2.17")
    d = host_facts()["__libc"]
    assert (d.version, d.detector, d.extra["name"]) == ("2.17", "override", "glibc")
    assert d.extra["detected"] == os.confstr("CS_GNU_LIBC_VERSION").split()[1]


def test_override_none_hides_a_fact(monkeypatch):
    monkeypatch.setenv("CKPM_OVERRIDE_GLIBC", "none")
    monkeypatch.setenv("CKPM_OVERRIDE_CPU", "NONE")
    facts = host_facts()
    assert "__libc" not in facts and "__cpu" not in facts
    assert "__python" in facts


def test_overrides_for_another_machine(monkeypatch):
    monkeypatch.setenv("CKPM_OVERRIDE_CUDA", "12.4")
    monkeypatch.setenv("CKPM_OVERRIDE_ARCH", "aarch64")
    monkeypatch.setenv("CKPM_OVERRIDE_CPU", "haswell")
    monkeypatch.setenv("CKPM_OVERRIDE_OS", "linux@5.10")
    monkeypatch.setenv("CKPM_OVERRIDE_LIBC", "musl@1.2.4")
    monkeypatch.setenv("CKPM_OVERRIDE_PYTHON", "3.9.18")
    facts = detect({}, cache_dir=None).facts
    assert facts["__cuda"].version == "12.4"
    assert facts["__arch"].extra["name"] == "aarch64"
    assert (facts["__cpu"].extra["name"], facts["__cpu"].version) == ("haswell", "3")
    assert "avx2" in facts["__cpu"].extra["features"]
    assert (facts["__os"].extra["name"], facts["__os"].version) == ("linux", "5.10")
    assert (facts["__libc"].extra["name"], facts["__libc"].version) == ("musl", "1.2.4")
    assert facts["__python"].version == "3.9.18"
    assert all(d.detector == "override" for d in facts.values())


def test_overrides_are_applied_over_a_warm_cache(monkeypatch, tmp_path):
    cache = tmp_path / "c2"
    real = detect({}, cache_dir=cache).facts["__libc"].version
    monkeypatch.setenv("CKPM_OVERRIDE_GLIBC", "2.17")
    assert detect({}, cache_dir=cache).facts["__libc"].version == "2.17"
    monkeypatch.delenv("CKPM_OVERRIDE_GLIBC")
    assert detect({}, cache_dir=cache).facts["__libc"].version == real


def test_cuda_from_a_fake_nvidia_smi(tmp_path, monkeypatch):
    counter = tmp_path / "runs"
    write_exe(tmp_path / "bin" / "nvidia-smi", tool_script(NVIDIA_SMI), counter=counter)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    d = host_facts()["__cuda"]
    assert (d.version, d.extra["driver"], d.extra["source"]) == ("12.2", "535.104.05", "nvidia-smi")
    host_facts()
    assert runs_of(counter, "nvidia-smi") == 1  # memoised by nvidia-smi's fingerprint


def test_cuda_from_the_proc_file_and_the_driver_table(tmp_path):
    proc = tmp_path / "version"
    proc.write_text(PROC_VERSION)
    ctx = DetectContext(env={"PATH": str(tmp_path / "empty")})
    d = cuda.detect(ctx, proc_version=str(proc))
    assert d is not None and (d.version, d.extra["driver"]) == ("12.4", "550.54.14")
    assert ctx.probes_run == 0


def test_cuda_absent_without_driver(tmp_path):
    ctx = DetectContext(env={"PATH": str(tmp_path)})
    assert cuda.detect(ctx, proc_version=str(tmp_path / "missing")) is None


def test_cuda_smi_without_driver_is_absent_with_a_warning(tmp_path):
    write_exe(tmp_path / "nvidia-smi", tool_script(
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", exit_code=9))
    ctx = DetectContext(env={"PATH": str(tmp_path)})
    assert cuda.detect(ctx, proc_version=str(tmp_path / "missing")) is None
    assert len(ctx.reporter.warnings) == 1 and "couldn't communicate" in ctx.reporter.warnings[0]


@pytest.mark.parametrize("driver, expected", [
    ("535.104.05", "12.2"), ("525.60.13", "12.0"), ("470.57.02", "11.4"), ("580.82.07", "13.0"), ("390.1", None),
])
def test_cuda_for_driver(driver, expected):
    assert cuda.cuda_for_driver(driver) == expected


@pytest.mark.parametrize("text, expected", [
    ("ldd (Debian GLIBC 2.36-9+deb12u4) 2.36\nCopyright (C) 2022", ("glibc", "2.36")),
    ("ldd (GNU libc) 2.17\nCopyright (C) 2012", ("glibc", "2.17")),
    ("musl libc (aarch64)\nVersion 1.2.3\nDynamic Program Path: /lib/ld-musl-aarch64.so.1", ("musl", "1.2.3")),
    ("something else", None),
])
def test_parse_ldd(text, expected):
    assert libc.parse_ldd(text) == expected


# -- invalid overrides say so ---------------------------------------------------------------------

@pytest.mark.parametrize("var, value, why", [
    ("CKPM_OVERRIDE_GLIBC", "banana", "'banana' is not a version"),
    ("CKPM_OVERRIDE_LIBC", "musl@banana", "'banana' is not a version"),
    ("CKPM_OVERRIDE_LIBC", "newlib@1.0", "'newlib' is not a C library name"),
    ("CKPM_OVERRIDE_CUDA", "twelve", "'twelve' is not a version"),
    ("CKPM_OVERRIDE_PYTHON", "3.x", "'3.x' is not a version"),
    ("CKPM_OVERRIDE_OS", "plan9", "'plan9' is not an OS name"),
    ("CKPM_OVERRIDE_OS", "linux@five", "'five' is not a version"),
    ("CKPM_OVERRIDE_ARCH", "banana", "'banana' is not an architecture name"),
    ("CKPM_OVERRIDE_CPU", "banana", "'banana' is not a CPU microarchitecture name"),
])
def test_invalid_override_says_invalid(var, value, why, monkeypatch):
    from ckpm.detect import invalid_overrides

    (msg,) = invalid_overrides({var: value})
    assert msg.startswith(f"{var}={value} is invalid: {why}")
    assert "not found" not in msg
    real = host_facts()
    monkeypatch.setenv(var, value)
    result = detect({})
    assert any(w.startswith(f"{var}={value} is invalid: {why}") and w.endswith("ignored, using what this host has")
               for w in result.warnings)
    # the value is ignored: the fact is what this host has
    assert {n: (d.version, d.detector) for n, d in result.facts.items()} == \
        {n: (d.version, d.detector) for n, d in real.items()}


@pytest.mark.parametrize("var, value", [
    ("CKPM_OVERRIDE_GLIBC", "2.17"), ("CKPM_OVERRIDE_LIBC", "musl@1.2.4"), ("CKPM_OVERRIDE_CUDA", "none"),
    ("CKPM_OVERRIDE_CUDA", ""), ("CKPM_OVERRIDE_OS", "linux@5.10"), ("CKPM_OVERRIDE_OS", "macos"),
    ("CKPM_OVERRIDE_ARCH", "aarch64"), ("CKPM_OVERRIDE_ARCH", "amd64"), ("CKPM_OVERRIDE_CPU", "haswell"),
    ("CKPM_OVERRIDE_CPU", "3"), ("CKPM_OVERRIDE_PYTHON", "3.10.14"),
])
def test_valid_overrides_are_not_reported(var, value):
    from ckpm.detect import invalid_overrides

    assert invalid_overrides({var: value, "PATH": "/usr/bin"}) == []


def test_unknown_override_name_is_reported():
    from ckpm.detect.facts import invalid_overrides

    (msg,) = invalid_overrides({"CKPM_OVERRIDE_GLBC": "2.17"})
    assert msg.startswith("CKPM_OVERRIDE_GLBC is not a known override (known: CKPM_OVERRIDE_OS")
    assert "CKPM_OVERRIDE_GLIBC" in msg
