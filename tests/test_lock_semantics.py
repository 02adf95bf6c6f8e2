"""The lock means what it says: targets kept, text always valid TOML, who asked for a missing
name, changed dependencies and unreachable sources noticed by --check, --locked never re-resolves.

Real index folders, real git repositories with tags, real `ckpm` processes where the CLI matters.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ckpm import api
from ckpm.errors import LockError, ResolutionError, StaleLock, UnknownComponent
from ckpm.index.writer import init_index, reindex, write_component
from ckpm.model.lockfile import Lock, LockedDep, LockedPackage
from ckpm.model.source import ArchiveSource, GitSource, HostSource, IndexSource, StoreSource, source_from_lock
from ckpm.testing import component_toml, entry


@pytest.fixture
def index(tmp_path: Path) -> Path:
    root = tmp_path / "index"
    init_index(root, "lab")
    write_component(root, [entry("lib-a", "1.0"), entry("lib-a", "2.0")])
    write_component(root, [entry("lib-b", "1.0", deps=[{"name": "lib-a", "req": ">=1"}])])
    write_component(root, [entry("lib-broken", "1.0", deps=[{"name": "lib-gone", "req": "*"}])])
    reindex(root)
    return root


def project(tmp_path: Path, index: Path, deps: str = "") -> api.Workspace:
    d = tmp_path / "proj"
    api.init_project(d, "proj")
    with open(d / "ckpm.toml", "a") as f:
        f.write(deps + f'\n[[index]]\nname = "lab"\nurl = "{index}"\n')
    return api.Workspace(d)


def fresh(ws: api.Workspace, **kw: bool) -> api.Workspace:
    return api.Workspace(ws.root, api.Settings(**kw))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_relocking_keeps_the_locks_targets(tmp_path: Path, index: Path) -> None:
    ws = project(tmp_path, index)
    api.lock(ws, api.LockOptions(targets=["linux-x86_64", "linux-aarch64"]))
    api.add(fresh(ws), [api.AddRequest("lib-b")])
    lk = fresh(ws).read_lock()
    assert lk is not None and lk.targets == ["linux-aarch64", "linux-x86_64"]
    assert {t for p in lk.packages for t in p.targets} == {"linux-aarch64", "linux-x86_64"}


def test_the_lock_writer_escapes_control_characters_and_refuses_surrogates() -> None:
    weird = "a\x00b\x1b[31m\x7f\"\\ü"
    lk = Lock(manifest_hash="sha256:x", targets=["linux-x86_64"], roots=[LockedDep("k", "lib-a", weird)],
              packages=[LockedPackage("lib-a", weird, "lib", GitSource("file:///r\x01", "0" * 40, weird), ["linux-x86_64"],
                                      ["k", "\x02key"])])
    text = lk.dumps()
    assert "\x1b" not in text and "\x00" not in text and "\x7f" not in text
    data = tomllib.loads(text)  # valid TOML
    assert data["package"][0]["version"] == weird and data["package"][0]["keys"] == ["\x02key", "k"]
    assert Lock.loads(text).packages[0].source == lk.packages[0].source
    lk.packages[0].version = "\ud800"
    with pytest.raises(LockError, match="lone surrogate"):
        lk.dumps()


def test_sources_have_one_identity_and_round_trip() -> None:
    srcs = [IndexSource("lab", "file:///i", "sha256:1"), GitSource("file:///g", "a" * 40, "v1", "sub"),
            HostSource("fact", fingerprint="fp", fact="__libc"), HostSource("executable", "/usr/bin/x", "fp", "sha256:r"),
            ArchiveSource(("https://m1/x.tgz", "file:///mirror/x.tgz"), "b" * 64), StoreSource("c" * 16)]
    for s in srcs:
        assert source_from_lock(s.to_lock()) == s
        assert dict(s) == s.to_lock()
    assert [s.identity() for s in srcs] == [
        "index:lab", f"git:file:///g#sub@{'a' * 40}", "host:__libc", "host:/usr/bin/x", f"archive:{'b' * 64}",
        f"store:{'c' * 16}"]
    with pytest.raises(LockError, match="needs rev"):
        source_from_lock({"git": "file:///g"})
    with pytest.raises(LockError, match="none of"):
        source_from_lock({"what": 1})


def test_a_lock_that_is_not_utf8_is_one_line_and_lock_rewrites_it(tmp_path: Path, index: Path) -> None:
    ws = project(tmp_path, index, 'lib-a = "*"\n')
    api.lock(ws)
    ws.lock_path.write_bytes(b"\xff\xfe not text")
    r = run("lock", "--check", cwd=ws.root)
    assert r.returncode == 1 and "not a valid lock file (not UTF-8" in r.stderr and "Traceback" not in r.stderr
    r = run("lock", cwd=ws.root)
    assert r.returncode == 0 and "it is rewritten" in r.stderr
    assert api.check(fresh(ws)).ok


def test_a_missing_dependency_says_who_required_it(tmp_path: Path, index: Path) -> None:
    ws = project(tmp_path, index, 'lib-broken = "*"\n')
    with pytest.raises(ResolutionError) as info:  # a dead end: no version of lib-broken avoids it
        api.lock(ws)
    assert "lib-gone is required but no index has it" in info.value.message
    assert "lib-broken 1.0 requires lib-gone, which no index has: no component named 'lib-gone'" in info.value.render()


def test_check_notices_changed_dependencies_of_a_pinned_version(tmp_path: Path, index: Path) -> None:
    ws = project(tmp_path, index, 'lib-b = "*"\n')
    api.lock(ws)
    assert api.check(fresh(ws)).ok
    write_component(index, [entry("lib-b", "1.0", deps=[{"name": "lib-a", "req": "<2"}])])  # rewritten in place
    res = api.check(fresh(ws))
    assert not res.ok and res.exit_code == 3
    # the pin of the edge is named, with the field and the requirement it breaks (resolve/verify.py)
    assert res.problems == ["lib-a 2.0: version: outside <2, which lib-b 1.0 requires (lib-a <2)"]
    with pytest.raises(StaleLock, match="--locked"):
        api.lock(fresh(ws), api.LockOptions(locked=True))


def test_locked_never_resolves_and_writes_nothing(tmp_path: Path, index: Path) -> None:
    ws = project(tmp_path, index, 'lib-b = "*"\n')
    api.lock(ws)
    before = ws.lock_path.read_bytes()
    write_component(index, [entry("lib-a", "1.0"), entry("lib-a", "2.0"), entry("lib-a", "3.0")])
    out = api.lock(fresh(ws), api.LockOptions(locked=True))
    assert not out.changed and ws.lock_path.read_bytes() == before
    r = run("lock", "--locked", cwd=ws.root)
    assert r.returncode == 0, r.stderr


def test_check_that_cannot_reach_a_git_source_fails_unless_offline(tmp_path: Path, index: Path,
                                                                    git_repo_factory, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    repo = git_repo_factory("mytool", {"v0.1.0": component_toml("mytool", "0.1.0", kind="tool")})
    ws = project(tmp_path, index)
    api.add(ws, [api.AddRequest("mytool", git=repo.url)])
    assert api.check(fresh(ws)).ok
    shutil.rmtree(repo.path)
    res = api.check(fresh(ws))
    assert not res.ok and "could not verify against" in res.problems[0]
    res = api.check(fresh(ws, offline=True))
    assert res.ok and res.notes == []  # offline, the cached mirror is what is checked
    r = run("lock", "--check", cwd=ws.root)
    assert r.returncode == 3 and "could not verify against" in r.stderr and "Traceback" not in r.stderr


def test_a_capability_whose_summary_is_stale_does_not_crash(tmp_path: Path, index: Path) -> None:
    write_component(index, [entry("lib-zz", "1.0", tags=["zz"])])
    reindex(index)
    os.unlink(index / "li" / "b-" / "lib-zz")  # summary.jsonl still lists it
    ws = project(tmp_path, index)
    r = run("add", "cap", "--tags", "zz", cwd=ws.root)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    r = run("add", "lib-zz", cwd=ws.root)
    assert "did you mean lib-zz" not in r.stderr and "Traceback" not in r.stderr


def test_a_resolution_failure_is_data_in_the_json_envelope(tmp_path: Path, index: Path) -> None:
    ws = project(tmp_path, index, 'lib-b = "*"\nlib-a = ">=9"\n')
    r = run("lock", "--json", cwd=ws.root)
    out = __import__("json").loads(r.stdout)
    assert r.returncode == 2 and out["ok"] is False and out["command"] == "lock"
    err = out["error"]
    assert err["code"] == "resolution" and err["target"]
    (c,) = err["conflict"]
    assert c["key"] == "lib-a"
    assert [q["requirement"] for q in c["requirements"]] == ["lib-a >=9"]
    assert {(x["version"], bool(x["rejected"])) for x in c["candidates"]} == {("1.0", True), ("2.0", True)}
    assert c["candidates"][0]["rejected"][0]["asked_by"] == "the project"


def test_deeply_nested_toml_is_one_line_not_a_traceback(tmp_path: Path, index: Path) -> None:
    from ckpm.errors import ManifestError
    from ckpm.model.manifest import parse_component_manifest

    deep = "x = " + "[" * 50_000 + "]" * 50_000 + "\n"
    ws = project(tmp_path, index, 'lib-a = "*"\n')
    api.lock(ws)
    good_lock = ws.lock_path.read_text()
    ws.lock_path.write_text(good_lock + deep)
    r = run("lock", "--check", cwd=ws.root)
    assert r.returncode == 1 and "nested too deeply" in r.stderr and "Traceback" not in r.stderr
    ws.lock_path.write_text(good_lock)
    ws.manifest_path.write_text(ws.manifest_path.read_text() + deep)
    r = run("tree", cwd=ws.root)
    assert r.returncode == 1 and "ckpm.toml: invalid TOML: arrays or tables nested too deeply" in r.stderr
    with pytest.raises(ManifestError, match="nested too deeply"):  # a component's manifest in someone's git tag
        parse_component_manifest('[component]\nname = "x"\n' + deep, "repo@v1:ckpm.toml")


def test_an_unchanged_relock_does_not_resolve_and_any_change_does(tmp_path: Path, index: Path) -> None:
    ws = project(tmp_path, index, 'lib-b = "*"\n')
    first = api.lock(ws)
    assert first.resolved and first.changed
    again = api.lock(fresh(ws))
    assert not again.resolved and not again.changed
    assert {(p.name, p.version) for p in again.lock.packages} == {(p.name, p.version) for p in first.lock.packages}
    assert api.lock(fresh(ws), api.LockOptions(upgrade=True)).resolved  # --upgrade always resolves
    write_component(index, [entry("lib-b", "1.0", deps=[{"name": "lib-a", "req": "<2"}])])  # a pinned line changed
    changed = api.lock(fresh(ws))
    assert changed.resolved and changed.updated == ["lib-a 2.0 -> 1.0"]
    assert api.add(fresh(ws), [api.AddRequest("lib-a")]).resolved  # the manifest changed
    r = run("lock", "--json", cwd=ws.root)
    assert r.returncode == 0 and __import__("json").loads(r.stdout)["data"]["resolved"] is False
