"""Python packages: this interpreter (in-process), another interpreter (subprocess), and the cache."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

import pytest

from ckpm.detect import detect, host_facts, recheck
from ckpm.detect.testing import write_dist


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def other_name_for_this_interpreter() -> str:
    """Another path to this very environment's interpreter (python3 beside python)."""
    d = Path(sys.executable).parent
    for n in ("python3", "python", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        p = d / n
        if p.exists() and str(p) != sys.executable:
            return str(p)
    raise AssertionError("no second name for this interpreter in " + str(d))


@pytest.mark.parametrize("pkg", ["pytest", "packaging"])
def test_installed_package_in_process(pkg, cache):
    result = detect({pkg: [{"python_package": pkg}]}, cache_dir=cache)
    [d] = result.found[pkg]
    assert d.version == importlib.metadata.version(pkg)
    assert d.detector == "python_package"
    assert d.path and d.path.endswith(".dist-info") and os.path.isdir(d.path)
    assert d.extra["python"] == sys.executable
    assert result.probes_run == 0  # asked in-process


def test_missing_package_is_not_found(cache):
    result = detect({"nope": [{"python_package": "ckpm-surely-not-installed-pkg"}]}, cache_dir=cache)
    assert result.found["nope"] == [] and result.warnings == []


def test_other_interpreter_is_asked_in_a_subprocess(cache):
    other = other_name_for_this_interpreter()
    rules = {"pytest": [{"python_package": "pytest"}], "packaging": [{"python_package": ["packaging"]}]}
    result = detect(rules, cache_dir=cache, python=other)
    assert result.probes_run >= 2, "the other interpreter must have been run"
    assert result.found["pytest"][0].version == importlib.metadata.version("pytest")
    assert result.found["packaging"][0].version == importlib.metadata.version("packaging")
    assert result.found["pytest"][0].extra["python"] == other
    assert result.facts["__python"].version == platform.python_version()
    warm = detect(rules, cache_dir=cache, python=other)
    assert warm.probes_run == 0 and warm.found == result.found


def test_rule_may_not_name_its_interpreter(cache):
    # the interpreter is the user's (python= / CKPM_PYTHON), never one an index names
    other = other_name_for_this_interpreter()
    result = detect({"pt": [{"python_package": "pytest", "python": other}]}, cache_dir=cache)
    assert result.found["pt"] == []
    assert any("component pt: detect rule 1: python: an index may not choose the interpreter" in w
               for w in result.warnings)
    chosen = detect({"pt": [{"python_package": "pytest"}]}, cache_dir=cache, python=other)
    assert chosen.found["pt"][0].extra["python"] == other
    assert chosen.found["pt"][0].version == importlib.metadata.version("pytest")


def test_broken_interpreter_is_a_warning(tmp_path, cache):
    from ckpm.detect.testing import tool_script, write_exe

    bad = write_exe(tmp_path / "python9", tool_script(stderr="fatal: no encodings module", exit_code=1))
    result = detect({"pt": [{"python_package": "pytest"}]}, cache_dir=cache, python=str(bad))
    assert result.found["pt"] == []
    assert any("no encodings module" in w for w in result.warnings)


def test_install_and_upgrade_invalidate_the_cache(tmp_path, monkeypatch, cache):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    rules = {"demo": [{"python_package": "ckpm-demo-dist"}]}
    assert detect(rules, cache_dir=cache).found["demo"] == []
    write_dist(site, "ckpm-demo-dist", "1.0")
    first = detect(rules, cache_dir=cache)
    assert [d.version for d in first.found["demo"]] == ["1.0"]
    warm = detect(rules, cache_dir=cache)
    assert warm.cache_misses == 0 and warm.found == first.found
    old = site / "ckpm_demo_dist-1.0.dist-info"
    new = site / "ckpm_demo_dist-2.0.dist-info"
    old.rename(new)
    (new / "METADATA").write_text("Metadata-Version: 2.1\nName: ckpm-demo-dist\nVersion: 2.0\n")
    upgraded = detect(rules, cache_dir=cache)
    assert [d.version for d in upgraded.found["demo"]] == ["2.0"]
    assert upgraded.cache_misses >= 1


def test_recheck_python_package(cache):
    d = detect({"pytest": [{"python_package": "pytest"}]}, cache_dir=cache).found["pytest"][0]
    (now,) = recheck("pytest", {"python_package": "pytest"}, path=d.path)  # the user's interpreter
    assert (now.version, now.path, now.extra["python"]) == (d.version, d.path, sys.executable)


def test_python_fact_is_this_interpreter(tmp_path, monkeypatch):
    monkeypatch.setenv("CKPM_CACHE_DIR", str(tmp_path / "cache"))
    facts = host_facts()
    assert facts["__python"].version == platform.python_version()
    assert facts["__python"].path == sys.executable
    assert facts["__python"].extra["implementation"] == sys.implementation.name
