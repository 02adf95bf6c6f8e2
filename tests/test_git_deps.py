"""Git-native components and remote indexes, end to end through a project.

Real git repositories with real tags (ckpm.testing fixtures), a real git index, and a
real HTTP index on 127.0.0.1 port 0 that fails the test if a file is fetched twice.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ckpm import api
from ckpm.testing import component_toml, entry


def project(tmp_path: Path, index_url: str | None = None) -> api.Workspace:
    d = tmp_path / "proj"
    api.init_project(d, "proj")
    if index_url:
        with open(d / "ckpm.toml", "a") as f:
            f.write(f'\n[[index]]\nname = "lab"\nurl = "{index_url}"\n')
    return api.Workspace(d)


@pytest.fixture
def lab_index(index_factory):  # type: ignore[no-untyped-def]
    return index_factory({
        "lib-a": [entry("lib-a", "1.0"), entry("lib-a", "1.4"), entry("lib-a", "2.0")],
    }, name="lab")


@pytest.fixture
def mytool(git_repo_factory):  # type: ignore[no-untyped-def]
    return git_repo_factory("mytool", {
        "v0.2.0": component_toml("mytool", "0.2.0", kind="tool", tags=["tool"]),
        "v0.3.0": component_toml("mytool", "0.3.0", kind="tool", tags=["tool"], deps={"lib-a": "<2"}),
        "latest": component_toml("mytool", "9.9.9", kind="tool", tags=["tool"]),  # not a version tag
        "0.4.0": component_toml("mytool", "0.4.0", kind="tool", tags=["tool"], deps={"lib-a": ">=1.4,<2"}),
    }, annotated=["v0.3.0"])


def fresh(ws: api.Workspace) -> api.Workspace:
    return api.Workspace(ws.root)


def test_add_git_component_pins_full_commit(tmp_path: Path, lab_index: Path, mytool, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    ws = project(tmp_path, str(lab_index))
    api.add(ws, [api.AddRequest("mytool@>=0.3", git=mytool.url)])
    lk = fresh(ws).read_lock()
    assert lk is not None
    (p,) = lk.find("mytool")
    assert p.version == "0.4.0"  # the tag 'latest' is not a version and is ignored
    assert p.source["git"] == mytool.url and p.source["tag"] == "0.4.0"
    assert p.source["rev"] == mytool.tags()["0.4.0"] and len(p.source["rev"]) == 40
    assert [d.name + " " + d.version for d in p.dependencies] == ["lib-a 1.4"]
    assert api.check(fresh(ws)).ok
    # a second lock changes nothing
    assert not api.lock(fresh(ws)).changed


def test_moved_tag_is_detected_by_check(tmp_path: Path, lab_index: Path, mytool, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    ws = project(tmp_path, str(lab_index))
    api.add(ws, [api.AddRequest("mytool@>=0.3", git=mytool.url)])
    old = mytool.tags()["0.4.0"]
    mytool.move_tag("0.4.0", {"ckpm.toml": component_toml("mytool", "0.4.0", kind="tool", deps={"lib-a": "*"})})
    new = mytool.tags()["0.4.0"]
    assert new != old
    res = api.check(fresh(ws))
    assert not res.ok
    assert res.problems == [f"mytool 0.4.0: source: tag 0.4.0 of {mytool.url} moved from {old[:12]} to {new[:12]} "
                            "since the lock was written; `ckpm lock --upgrade-package mytool` takes the new commit"]
    # re-locking takes the new commit, and its manifest (cache is keyed by commit, not name-version)
    api.lock(fresh(ws), api.LockOptions(upgrade=True))
    (p,) = fresh(ws).read_lock().find("mytool")  # type: ignore[union-attr]
    assert p.source["rev"] == new
    assert [d.name + " " + d.version for d in p.dependencies] == ["lib-a 2.0"]


def test_git_component_conflict_is_explained(tmp_path: Path, lab_index: Path, mytool, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    from ckpm.errors import ResolutionError

    ws = project(tmp_path, str(lab_index))
    with pytest.raises(ResolutionError) as info:
        api.add(ws, [api.AddRequest("mytool@>=0.3", git=mytool.url), api.AddRequest("lib-a@>=2")])
    brief = info.value.render()
    assert "the project requires lib-a >=2: 2.0" in brief, brief
    assert "mytool 0.3.0–0.4.0 require lib-a <2 (0.3.0), >=1.4,<2 (0.4.0): together 1.0–1.4" in brief, brief
    text = info.value.render(verbose=True)
    assert "lib-a <2 ← mytool 0.3.0 (git) ← the project" in text
    assert "lib-a >=1.4,<2 ← mytool 0.4.0 (git) ← the project" in text


def test_git_index_end_to_end(tmp_path: Path, git_index_factory, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    gi = git_index_factory({"lib-a": [entry("lib-a", "1.0")]}, name="lab")
    ws = project(tmp_path, gi.url)
    api.add(ws, [api.AddRequest("lib-a")])
    lk = fresh(ws).read_lock()
    rev1 = lk.indexes[0]["revision"]  # type: ignore[union-attr]
    assert len(rev1) == 40
    gi.publish(entry("lib-a", "1.1"))
    # nothing changes until the index is updated
    assert not api.lock(fresh(ws), api.LockOptions(upgrade=True)).changed
    ws2 = fresh(ws)
    (upd,) = api.index_update(ws2.indexes)
    assert upd["revision"] != rev1
    out = api.lock(fresh(ws), api.LockOptions(upgrade=True))
    assert out.updated == ["lib-a 1.0 -> 1.1"]


def test_http_index_end_to_end(tmp_path: Path, index_factory, http_index_server, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    root = index_factory({
        "lib-a": [entry("lib-a", "1.0"), entry("lib-a", "1.4")],
        "lib-b": [entry("lib-b", "1.0", deps=["lib-a <1.4"])],
        "lib-unused": [entry("lib-unused", "1.0")],
    }, name="lab")
    http_index_server.serve(root)
    ws = project(tmp_path, http_index_server.url)
    api.add(ws, [api.AddRequest("lib-b")])
    # only the files the resolution needs were fetched
    fetched = set(http_index_server.hits)
    assert not any("lib-unused" in p for p in fetched)
    assert any(p.endswith("/lib-a") for p in fetched) and any(p.endswith("/lib-b") for p in fetched)
    before = dict(http_index_server.hits)
    assert api.check(fresh(ws)).ok
    assert not api.lock(fresh(ws)).changed
    # later processes revalidate (304) instead of downloading again; teardown asserts no refetch
    assert http_index_server.hits == before


def test_git_dependency_by_relative_path(tmp_path: Path, lab_index: Path, mytool, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    ws = project(tmp_path, str(lab_index))
    rel = Path("..") / mytool.path.relative_to(tmp_path)
    api.add(ws, [api.AddRequest("mytool@>=0.3", git=str(rel))])
    assert f'git = "{rel}"' in ws.manifest_path.read_text()  # the manifest keeps what the user wrote
    (p,) = fresh(ws).read_lock().find("mytool")  # type: ignore[union-attr]
    assert p.version == "0.4.0" and p.source["rev"] == mytool.tags()["0.4.0"]
    assert api.check(fresh(ws)).ok


def test_repository_without_version_tags(tmp_path: Path, lab_index: Path, git_repo_factory, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    from ckpm.errors import ResolutionError

    repo = git_repo_factory("notags", {"latest": component_toml("notags", "1.0")})
    ws = project(tmp_path, str(lab_index))
    with pytest.raises(ResolutionError) as info:
        api.add(ws, [api.AddRequest("notags", git=repo.url)])
    assert f"{repo.url} has no version tag (like v1.2.0 or 1.2.0) whose commit has a ckpm.toml" in info.value.render()


def test_plain_lock_keeps_the_locked_commit_of_a_moved_tag(tmp_path: Path, lab_index: Path, mytool,
                                                            ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    from ckpm.errors import StaleLock
    from ckpm.report import Reporter

    ws = project(tmp_path, str(lab_index))
    api.add(ws, [api.AddRequest("mytool@>=0.3", git=mytool.url)])
    old = mytool.tags()["0.4.0"]
    mytool.move_tag("0.4.0", {"ckpm.toml": component_toml("mytool", "0.4.0", kind="tool", deps={"lib-a": "*"})})
    new = mytool.tags()["0.4.0"]
    rep = Reporter()
    out = api.lock(api.Workspace(ws.root, api.Settings(reporter=rep)))
    assert not out.changed
    (p,) = fresh(ws).read_lock().find("mytool")  # type: ignore[union-attr]
    assert p.source["rev"] == old and [d.name + " " + d.version for d in p.dependencies] == ["lib-a 1.4"]
    assert any(f"tag 0.4.0 of {mytool.url} moved from {old[:12]} to {new[:12]}; keeping the locked {old[:12]}" in w
               for w in rep.warnings)
    with pytest.raises(StaleLock) as info:  # --locked lists it
        api.lock(fresh(ws), api.LockOptions(locked=True))
    assert f"moved from {old[:12]} to {new[:12]}" in info.value.render()
    api.lock(fresh(ws), api.LockOptions(upgrade_packages=["mytool"]))  # moves it (lib-a's pin still fits "*")
    (p,) = fresh(ws).read_lock().find("mytool")  # type: ignore[union-attr]
    assert p.source["rev"] == new and p.dependencies[0].key == "lib-a"
    assert api.check(fresh(ws)).ok


def test_git_source_warnings_reach_the_user_of_lock(tmp_path: Path, lab_index: Path, git_repo_factory,
                                                    ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    repo = git_repo_factory("halftool", {
        "v0.1.0": component_toml("halftool", "0.1.0", kind="tool"),
        "v0.2.0": {"README": "a tag with no ckpm.toml"},
        "v0.3.0": '[component]\nname = "halftool"\nversion = "0.3.0"\nkind = "tol"\n',  # a broken manifest
    })
    ws = project(tmp_path, str(lab_index))
    text = ws.manifest_path.read_text().replace("[dependencies]\n", f'[dependencies]\nhalftool = {{ git = "{repo.url}" }}\n', 1)
    ws.manifest_path.write_text(text)
    r = subprocess.run([sys.executable, "-m", "ckpm.cli.main", "lock"], cwd=ws.root, capture_output=True, text=True,
                       timeout=60, env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert "+ halftool 0.1.0" in r.stderr
    assert "tag v0.2.0 has no ckpm.toml" in r.stderr
    assert "warning: " in r.stderr and "tag v0.3.0 skipped: " in r.stderr and "kind 'tol'" in r.stderr
