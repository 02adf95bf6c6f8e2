"""Malformed components and index lines (issue 24, finding 7).

The reproduction: a git component whose ckpm.toml has ``[install]`` as a table instead of
``[[install]]`` crashed `ckpm lock` with an AttributeError (lockfile.py). Every field of a
component manifest and of an index line is now type-checked when read; a property-based test
drives both readers, and what consumes their output, with arbitrary data: only CkpmError.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ckpm.errors import CkpmError, ManifestError  # noqa: E402
from ckpm.model.entry import IndexEntry, check_entry  # noqa: E402
from ckpm.model.lockfile import provisioning_of, recipe_applies  # noqa: E402
from ckpm.model.manifest import parse_component_manifest  # noqa: E402

GOOD = '[component]\nname = "mytool"\nversion = "{v}"\nkind = "tool"\n'

#: component manifests that break a type, each as a whole file (the version is filled in)
BROKEN: dict[str, str] = {
    "install as a table": GOOD + '\n[install]\nsteps = [{{kind = "copy"}}]\n',
    "install as a string": GOOD + 'install = "make install"\n',
    "install of strings": GOOD + 'install = ["make", "install"]\n',
    "detect as a table": GOOD + '\n[detect]\nexecutable = "mytool"\n',
    "detect as a number": GOOD + "detect = 3\n",
    "run as a string": GOOD + 'run = "./go"\n',
    "tags as a number": '[component]\nname = "mytool"\nversion = "{v}"\nkind = "tool"\ntags = 5\n',
    "tags of tables": '[component]\nname = "mytool"\nversion = "{v}"\nkind = "tool"\ntags = [{{a = 1}}]\n',
    "targets as a table": '[component]\nname = "mytool"\nversion = "{v}"\nkind = "tool"\n[component.targets]\na = 1\n',
    "description as a list": '[component]\nname = "mytool"\nversion = "{v}"\nkind = "tool"\ndescription = ["a"]\n',
    "kind as a list": '[component]\nname = "mytool"\nversion = "{v}"\nkind = ["tool"]\n',
    "version as a number": '[component]\nname = "mytool"\nversion = 1.0\nkind = "tool"\n# {v}\n',
    "dependency tags as a number": GOOD + '\n[dependencies]\nlib-a = {{version = ">=1", tags = 5}}\n',
    "dependency targets as a number": GOOD + '\n[dependencies]\nlib-a = {{version = ">=1", targets = 3}}\n',
    "dependency optional as a string": GOOD + '\n[dependencies]\nlib-a = {{version = ">=1", optional = "yes"}}\n',
    "dependency git as a table": GOOD + '\n[dependencies]\nlib-a = {{version = ">=1", git = {{url = "x"}}}}\n',
    "dependencies as a list": GOOD + 'dependencies = ["lib-a"]\n',
    "authors as a string list of lists": '[component]\nname = "mytool"\nversion = "{v}"\nauthors = [["x"]]\n',
    "index as a string": GOOD + 'index = "https://x"\n',
    "a 2,000-character tag": '[component]\nname = "mytool"\nversion = "{v}"\ntags = ["' + "t" * 2000 + '"]\n',
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_manifest_is_one_manifest_error(case: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_component_manifest(BROKEN[case].format(v="1.0.0"), "repo@v1.0.0:ckpm.toml")
    assert e.value.message.startswith("repo@v1.0.0:ckpm.toml")


def test_a_git_component_with_install_as_a_table_is_skipped_not_a_crash(tmp_path: Path, git_repo_factory) -> None:  # type: ignore[no-untyped-def]
    """The reproduction, through `ckpm lock` as a process: every broken tag is skipped with a
    warning naming it; the good tag is locked; no traceback."""
    versions: dict[str, str] = {"v0.9.0": GOOD.format(v="0.9.0")}
    for i, case in enumerate(sorted(BROKEN)):
        versions[f"v1.{i}.0"] = BROKEN[case].format(v=f"1.{i}.0")
    repo = git_repo_factory("mytool", versions)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "p"\n\n[dependencies]\nmytool = {{ version = ">=0.9", '
                                    f'git = "{repo.url}" }}\n')
    env = {**__import__("os").environ, "CKPM_CACHE_DIR": str(tmp_path / "cache"),
           "CKPM_INDEX": str(tmp_path / "no-index")}
    (tmp_path / "no-index").mkdir()
    (tmp_path / "no-index" / "config.json").write_text('{"format": 1, "name": "none"}')
    r = subprocess.run([sys.executable, "-m", "ckpm", "lock", "--json"], cwd=proj, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "AttributeError" not in r.stderr
    out = json.loads(r.stdout)
    skipped = [w for w in out["warnings"] if "skipped" in w]
    assert len(skipped) == len(BROKEN), skipped
    assert any("[[install]]" in w for w in skipped)
    lock = (proj / "ckpm.lock").read_text()
    assert 'version = "0.9.0"' in lock


# -- the property: any data, only CkpmError ------------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                     st.floats(allow_nan=False), st.text(max_size=20),
                     st.sampled_from(["*", ">=1", "1.0", "linux-*", "gcc", "https://h/x.tgz", "copy", "script"]))
_json = st.recursive(_scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), c, max_size=4)),
                     max_leaves=12)

LINE_KEYS = ["name", "version", "kind", "tags", "description", "targets", "deps", "source", "cksum", "pubtime",
             "detect", "install", "yanked", "run"]
DEP_KEYS = ["name", "req", "tags", "no_tags", "targets", "kind", "prefer", "git", "subdir", "optional"]
SOURCE_KEYS = ["urls", "sha256", "size", "unpacked-size", "git", "rev", "tag", "subdir"]


def _shaped(keys: list[str], inner: Any) -> Any:
    return st.dictionaries(st.sampled_from(keys), inner, max_size=len(keys))


_dep = st.one_of(_shaped(DEP_KEYS, _json), st.fixed_dictionaries({"name": st.sampled_from(["a", "lib-a", "__os"]),
                                                                   "req": st.sampled_from([">=1", "*", "~=2", "x"])}))
_line = st.fixed_dictionaries(
    {"name": st.sampled_from(["comp", "Comp", "", "comp!"]), "version": st.sampled_from(["1.0", "x", "", "1.0.0rc1"])},
    optional={"deps": st.lists(st.one_of(_dep, _json), max_size=3), "source": st.one_of(_shaped(SOURCE_KEYS, _json), _json),
              "install": st.lists(st.one_of(_shaped(["targets", "sources", "steps", "env"], _json), _json), max_size=2),
              "detect": st.lists(_json, max_size=2), "tags": _json, "targets": _json, "kind": _json,
              "description": _json, "yanked": _json, "cksum": _json, "pubtime": _json, "run": _json})


def _consume(entry: IndexEntry) -> None:
    """What ckpm does with a line it accepted: versions, deps, targets, the lock's copy, a line again.

    A line's recipes, sources and program are parsed when first used (reading a component file
    stays cheap), so using them may raise too: a CkpmError naming the line, nothing else."""
    entry.version
    entry.deps
    entry.supports("linux-x86_64")
    try:
        sources, install = provisioning_of(entry)
    except CkpmError as e:
        assert entry.name in e.message, e.message  # the line is named
        install = []
    for r in install:
        recipe_applies(r, ["linux-x86_64"])
    IndexEntry.from_line(entry.to_line(), name=entry.name)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_line, _json))
def test_index_line_reader_raises_only_ckpm_errors(raw: Any) -> None:
    try:
        text = json.dumps(raw)
    except (TypeError, ValueError):
        return
    for read in (lambda: IndexEntry.from_line(text, name="comp"), lambda: check_entry(raw)):
        try:
            entry = read()
        except CkpmError:
            continue
        _consume(entry)



@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(component=st.one_of(_shaped(["name", "version", "kind", "tags", "description", "targets", "authors",
                                    "keywords", "license", "readme", "homepage", "repository"], _json),
                           st.fixed_dictionaries({"name": st.just("mytool")},
                                                 optional={"version": _json, "kind": _json, "tags": _json,
                                                           "targets": _json, "description": _json})),
       top=_shaped(["dependencies", "detect", "install", "run", "index", "targets", "tool", "mirrors", "other"],
                   _json))
def test_component_manifest_reader_raises_only_ckpm_errors(component: Any, top: Any) -> None:
    tomlkit = pytest.importorskip("tomlkit")
    doc = {"component": component, **top}
    try:
        text = tomlkit.dumps(_nulls_dropped(doc))
    except Exception:  # not expressible in TOML: nothing to read
        return
    try:
        line = parse_component_manifest(text, "repo@v1:ckpm.toml")
    except CkpmError:
        return
    line = {**line, "version": line.get("version") or "1.0"}
    try:
        entry = check_entry(json.loads(json.dumps(line)))
    except CkpmError as e:  # pragma: no cover - the reader checks this itself
        pytest.fail(f"a manifest the reader accepted is not a valid index line: {e}")
    _consume(entry)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=300))
def test_any_text_as_a_component_manifest_raises_only_ckpm_errors(text: str) -> None:
    try:
        parse_component_manifest(text, "x")
    except CkpmError:
        pass


def _nulls_dropped(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _nulls_dropped(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_nulls_dropped(x) for x in v if x is not None]
    return v
