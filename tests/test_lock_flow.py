"""Project workflows through the library API: add, lock, check, upgrade, remove, tree, why."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ckpm import api
from ckpm.errors import LockError, ProjectError, ResolutionError, UnknownComponent
from ckpm.index.writer import append_entry, init_index, reindex, write_component


def entry(name: str, version: str, deps: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    e = {"name": name, "version": version, "kind": "lib", "tags": ["lib"], "targets": ["*"], "deps": deps or [],
         "source": {"urls": [f"https://example.org/{name}-{version}.tar.gz"], "sha256": "0" * 64},
         "cksum": f"sha256:{name}-{version}", "yanked": False}
    e.update(kw)
    return e


@pytest.fixture
def index(tmp_path: Path) -> Path:
    root = tmp_path / "index"
    init_index(root, "lab")
    write_component(root, [entry("lib-a", v) for v in ("1.0", "1.1", "2.0")])
    write_component(root, [entry("lib-b", "1.0", [{"name": "lib-a", "req": ">=1"}]),
                           entry("lib-b", "1.1", [{"name": "lib-a", "req": ">=1"}])])
    write_component(root, [entry("lib-c", "0.5", [{"name": "lib-a", "req": "<2"}])])
    write_component(root, [entry("gcc", "12.2.0", tags=["compiler", "lang-c"]),
                           entry("gfortran", "12.2.0", tags=["compiler", "lang-fortran"])][:1])
    reindex(root)
    return root


@pytest.fixture
def project(tmp_path: Path, index: Path) -> api.Workspace:
    d = tmp_path / "proj"
    api.init_project(d, "proj")
    text = (d / "ckpm.toml").read_text()
    (d / "ckpm.toml").write_text(text + "# keep this comment\n" + f'\n[[index]]\nname = "lab"\nurl = "{index}"\n')
    return api.Workspace(d)


def fresh(ws: api.Workspace) -> api.Workspace:
    return api.Workspace(ws.root)


def test_add_writes_manifest_and_lock_keeping_comments(project: api.Workspace) -> None:
    out = api.add(project, [api.AddRequest("lib-b"), api.AddRequest("compiler", tags="compiler,lang-c")])
    text = project.manifest_path.read_text()
    assert "# keep this comment" in text
    assert 'lib-b = ">=1.1"' in text  # no range given: the chosen version becomes the lower bound
    assert 'compiler = {version = "*", tags = "compiler,lang-c"}' in text
    assert sorted(out.added) == ["gcc 12.2.0", "lib-a 2.0", "lib-b 1.1"]
    lock_text = project.lock_path.read_text()
    assert 'keys = ["compiler"]' in lock_text and 'name = "gcc"' in lock_text
    assert api.check(fresh(project)).ok


def test_second_lock_changes_nothing(project: api.Workspace) -> None:
    api.add(project, [api.AddRequest("lib-b@>=1"), api.AddRequest("lib-c")])
    first = project.lock_path.read_bytes()
    out = api.lock(fresh(project))
    assert not out.changed
    assert project.lock_path.read_bytes() == first
    # and a lock from scratch is byte-identical too
    project.lock_path.unlink()
    api.lock(fresh(project))
    assert project.lock_path.read_bytes() == first


def test_check_reports_stale_lock(project: api.Workspace) -> None:
    api.add(project, [api.AddRequest("lib-b@>=1")])
    ws = fresh(project)
    ws.manifest_path.write_text(ws.manifest_path.read_text().replace('lib-b = ">=1"', 'lib-b = ">=1.1"'))
    res = api.check(fresh(project))
    assert not res.ok
    assert any("changed since the lock was written" in p for p in res.problems)


def test_check_without_lock(project: api.Workspace) -> None:
    res = api.check(project)
    assert not res.ok and "does not exist" in res.problems[0]


def test_pins_are_kept_until_upgraded(project: api.Workspace, index: Path) -> None:
    api.add(project, [api.AddRequest("lib-b@>=1"), api.AddRequest("lib-c@*")])
    assert _pins(project) == {"lib-a": "1.1", "lib-b": "1.1", "lib-c": "0.5"}
    append_entry(index, entry("lib-a", "1.2"))
    append_entry(index, entry("lib-b", "1.2", [{"name": "lib-a", "req": ">=1"}]))
    api.lock(fresh(project))
    assert _pins(project) == {"lib-a": "1.1", "lib-b": "1.1", "lib-c": "0.5"}  # minimal change
    out = api.lock(fresh(project), api.LockOptions(upgrade_packages=["lib-a"]))
    assert _pins(project) == {"lib-a": "1.2", "lib-b": "1.1", "lib-c": "0.5"}  # one pin moved
    assert out.updated == ["lib-a 1.1 -> 1.2"]
    api.lock(fresh(project), api.LockOptions(upgrade=True))
    assert _pins(project) == {"lib-a": "1.2", "lib-b": "1.2", "lib-c": "0.5"}
    with pytest.raises(ProjectError, match="no such package") as info:
        api.lock(fresh(project), api.LockOptions(upgrade_packages=["lib-aa"]))
    assert info.value.hint == "did you mean 'lib-a'?"


def test_yanked_pin_stays_installable_from_lock(project: api.Workspace, index: Path) -> None:
    api.add(project, [api.AddRequest("lib-c")])
    write_component(index, [entry("lib-a", "1.0"), entry("lib-a", "1.1", yanked=True), entry("lib-a", "2.0")])
    api.lock(fresh(project))
    assert _pins(project)["lib-a"] == "1.1"  # the locked pin is kept even though it was yanked
    api.lock(fresh(project), api.LockOptions(upgrade=True))
    assert _pins(project)["lib-a"] == "1.0"  # a new resolution skips it


def test_check_detects_changed_published_version(project: api.Workspace, index: Path) -> None:
    api.add(project, [api.AddRequest("lib-c")])
    write_component(index, [entry("lib-a", "1.0"), entry("lib-a", "1.1", cksum="sha256:other"), entry("lib-a", "2.0")])
    res = api.check(fresh(project))
    assert not res.ok and "checksum in index lab changed" in res.problems[0]


def test_locked_refuses_to_change(project: api.Workspace) -> None:
    api.add(project, [api.AddRequest("lib-c")])
    ws = fresh(project)
    ws.manifest_path.write_text(ws.manifest_path.read_text().replace('lib-c = ">=0.5"', 'lib-c = "*"\nlib-b = "*"'))
    with pytest.raises(LockError, match="--locked"):
        api.lock(fresh(project), api.LockOptions(locked=True))


def test_failed_add_leaves_files_untouched(project: api.Workspace) -> None:
    api.add(project, [api.AddRequest("lib-c")])
    before = (project.manifest_path.read_bytes(), project.lock_path.read_bytes())
    with pytest.raises(ResolutionError):
        api.add(fresh(project), [api.AddRequest("lib-a@>=2")])
    with pytest.raises(UnknownComponent, match="lib-zz"):
        api.add(fresh(project), [api.AddRequest("lib-zz")])
    assert (project.manifest_path.read_bytes(), project.lock_path.read_bytes()) == before


def test_remove_tree_and_why(project: api.Workspace) -> None:
    api.add(project, [api.AddRequest("lib-b@>=1"), api.AddRequest("lib-c")])
    trees = api.tree(fresh(project))
    (t, nodes), = trees.items()
    assert [(n.name, [c.name for c in n.children]) for n in nodes] == [("lib-b", ["lib-a"]), ("lib-c", ["lib-a"])]
    chains = api.why(fresh(project), "lib-a")
    assert chains == [
        ["the project", "requires lib-b >=1", "lib-b 1.1 requires lib-a", "lib-a 1.1"],
        ["the project", "requires lib-c >=0.5", "lib-c 0.5 requires lib-a", "lib-a 1.1"],
    ]
    out = api.remove(fresh(project), ["lib-c"])
    assert out.removed == ["lib-c 0.5"]
    assert "lib-c" not in project.manifest_path.read_text()
    with pytest.raises(ProjectError, match="'lib-bb' is not a dependency") as info:
        api.remove(fresh(project), ["lib-bb"])
    assert info.value.hint == "did you mean 'lib-b'?"
    with pytest.raises(UnknownComponent):
        api.why(fresh(project), "lib-c")


def test_why_not_explains(project: api.Workspace) -> None:
    api.add(project, [api.AddRequest("lib-c")])
    res = api.why_not(fresh(project), "lib-a", "2.0")
    assert not res.possible
    assert any("lib-a <2 ← lib-c 0.5 ← the project" in line for line in res.lines)
    res = api.why_not(fresh(project), "lib-a", "1.0")
    assert res.possible and "lib-a 1.1" in res.lines[0]
    res = api.why_not(fresh(project), "lib-a", "9.9")
    assert not res.possible and "does not exist" in res.lines[0]


def test_search_and_show(index: Path) -> None:
    from ckpm.index import open_index

    idx = [open_index(str(index))]
    assert [h.name for h in api.search(idx, tags="compiler,lang-c")] == ["gcc"]
    assert [h.name for h in api.search(idx, text="lib-")] == ["lib-a", "lib-b", "lib-c"]
    info = api.show(idx, "lib-b")
    assert [v["version"] for v in info["versions"]] == ["1.0", "1.1"]
    with pytest.raises(UnknownComponent, match="no component named 'lib-bx'") as info:
        api.show(idx, "lib-bx")
    assert info.value.hint is not None and "lib-b" in info.value.hint


def test_multi_target_lock(project: api.Workspace, index: Path) -> None:
    write_component(index, [entry("lib-win", "1.0", targets=["windows-*"])])
    write_component(index, [entry("lib-x", "1.0", [{"name": "lib-win", "req": "*", "targets": ["windows-*"]},
                                                   {"name": "lib-a", "req": "<2"}])])
    reindex(index)
    api.add(project, [api.AddRequest("lib-x")], lock_options=api.LockOptions(targets=["linux-x86_64", "windows-x86_64"]))
    lk = fresh(project).read_lock()
    assert lk is not None and lk.targets == ["linux-x86_64", "windows-x86_64"]
    x = lk.find("lib-x")[0]
    win = [d for d in x.dependencies if d.name == "lib-win"][0]
    assert win.targets == ("windows-x86_64",)
    assert lk.find("lib-win")[0].targets == ["windows-x86_64"]


def _pins(ws: api.Workspace) -> dict[str, str]:
    lk = fresh(ws).read_lock()
    assert lk is not None
    return {p.name: p.version for p in lk.packages}


@pytest.mark.parametrize("opts,why", [({"max_rounds": 3}, "more than 3 rounds"), ({"timeout": 0.0}, "more than 0 s")])
def test_runaway_resolution_stops_with_an_explanation(project: api.Workspace, opts: dict[str, Any], why: str) -> None:
    ws = project
    ws.manifest_path.write_text(ws.manifest_path.read_text().replace("[dependencies]\n", '[dependencies]\nlib-b = "*"\nlib-c = "*"\n'))
    with pytest.raises(ResolutionError) as info:
        api.lock(fresh(ws), api.LockOptions(**opts))
    text = info.value.render()
    assert "did not finish" in text and why in text
    assert "--max-rounds / --timeout" in text
