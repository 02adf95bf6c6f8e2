"""Detector plugins through the ``ckpm.detectors`` entry-point group, and rule routing."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ckpm.detect import detect
from ckpm.detect.registry import BUILTIN, GROUP, DetectorRegistry
from ckpm.detect.testing import compiler_script, tool_script, write_dist, write_exe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = '''
from ckpm.detect import Detected

class EnvVarDetector:
    """Finds a component named by an environment variable's value (a toy plugin)."""

    kind = "env_var"

    def detect(self, name, rule, ctx):
        value = ctx.env.get(rule["env_var"])
        if value:
            yield Detected(name, value, None, self.kind, "env:" + value, {"var": rule["env_var"]})


def constant(name, rule, ctx):
    return [Detected(name, str(rule["constant"]), None, "constant", "", {})]
'''


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "ckpm_demo_plugin.py").write_text(PLUGIN)
    write_dist(site, "ckpm-demo-plugin", "0.1", entry_points=[
        (GROUP, "env_var", "ckpm_demo_plugin:EnvVarDetector"),
        (GROUP, "constant", "ckpm_demo_plugin:constant"),
        (GROUP, "broken", "ckpm_demo_plugin_missing:Nothing"),
    ])
    monkeypatch.syspath_prepend(str(site))
    return site


def test_builtins_are_registered_in_pyproject_as_the_fallback_table_says():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["entry-points"][GROUP] == BUILTIN


@pytest.mark.parametrize("table", [{}, None], ids=["no-metadata", "this-environment"])
def test_builtins_load_with_or_without_package_metadata(table):
    # {}: a source tree whose entry points are not installed falls back to the built-in table
    reg = DetectorRegistry.with_builtins(table) if table is not None else DetectorRegistry.from_environment(None)
    for kind, ref in BUILTIN.items():
        det = reg.get(kind)
        assert det is not None and det.kind == kind
        assert f"{type(det).__module__}:{type(det).__name__}" == ref
    assert reg.errors == []


def test_third_party_plugin_from_entry_points(plugin_site, tmp_path, monkeypatch):
    monkeypatch.setenv("CKPM_DEMO_VERSION", "4.5.6")
    result = detect({
        "demo": [{"env_var": "CKPM_DEMO_VERSION"}],
        "const": [{"constant": "1.2"}],
        "nothing": [{"broken": True}],
    }, cache_dir=tmp_path / "cache")
    assert [(d.version, d.detector, d.extra["var"]) for d in result.found["demo"]] == [
        ("4.5.6", "env_var", "CKPM_DEMO_VERSION")]
    assert [d.version for d in result.found["const"]] == ["1.2"]
    assert result.found["nothing"] == []
    assert any("'broken'" in w and "failed to load" in w for w in result.warnings)
    assert any("no detector" in w for w in result.warnings)


def test_plugin_table_is_rescanned_when_sys_path_changes(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CKPM_DEMO_VERSION", "1.0")
    rules = {"demo": [{"env_var": "CKPM_DEMO_VERSION"}]}
    before = detect(rules, cache_dir=cache)
    assert before.found["demo"] == [] and any("no detector" in w for w in before.warnings)
    site = tmp_path / "site"
    site.mkdir()
    (site / "ckpm_demo_plugin.py").write_text(PLUGIN)
    write_dist(site, "ckpm-demo-plugin", "0.1", entry_points=[(GROUP, "env_var", "ckpm_demo_plugin:EnvVarDetector")])
    monkeypatch.syspath_prepend(str(site))
    after = detect(rules, cache_dir=cache)
    assert [d.version for d in after.found["demo"]] == ["1.0"]


def test_a_raising_detector_is_a_warning(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "ckpm_bad_plugin.py").write_text(
        "class Bad:\n    kind = 'bad'\n    def detect(self, name, rule, ctx):\n        raise RuntimeError('kaboom')\n")
    write_dist(site, "ckpm-bad-plugin", "0.1", entry_points=[(GROUP, "bad", "ckpm_bad_plugin:Bad")])
    monkeypatch.syspath_prepend(str(site))
    write_exe(tmp_path / "bin" / "tool", tool_script("tool 1.0"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    result = detect({"x": [{"bad": 1}, {"executable": ["tool"]}]}, cache_dir=tmp_path / "cache")
    assert [d.version for d in result.found["x"]] == ["1.0"]
    assert any("kaboom" in w for w in result.warnings)


def test_routing_prefers_compiler_and_honours_an_explicit_detector(tmp_path, monkeypatch):
    write_exe(tmp_path / "bin" / "gcc", compiler_script("12.3.0", "x86_64-linux-gnu"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    both = {"compiler": "gcc", "executable": ["gcc"], "version_args": ["-dumpfullversion"]}
    explicit = {**both, "detector": "executable"}
    result = detect({"a": [both], "b": [explicit]}, cache_dir=tmp_path / "cache")
    assert [d.detector for d in result.found["a"]] == ["compiler"]
    assert [d.detector for d in result.found["b"]] == ["executable"]
    assert result.found["a"][0].version == result.found["b"][0].version == "12.3.0"
