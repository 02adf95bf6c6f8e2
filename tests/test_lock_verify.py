"""A lock is verified, never trusted (issue 23, part 1).

Each hand edit of ``ckpm.lock`` that the issue lists fails ``ckpm lock --check`` and
``ckpm sync --locked`` with the stale-lock exit code (3), one line naming the package and
the field, and a hint; a marker file proves that no recipe ran, and an empty store that
nothing was built. What may differ (a sha256 learnt on first use where the index has none,
the ``pip`` distributions list) still passes.

Real parts: an index folder, a git component with real tags (moved with a force-retag), a
detected host tool (a real shell script on PATH), a data set downloaded from a loopback HTTP
server on port 0, real ``ckpm`` processes.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from ckpm import api
from ckpm.detect.testing import tool_script, write_exe
from ckpm.errors import StaleLock
from ckpm.model.lockfile import Lock, LockedDep, read_lock
from ckpm.testing import GitRepo, HttpIndexServer, entry

FAKE_RULE = {"executable": ["faketool"], "version_args": ["--version"], "version_regex": r"faketool (\S+)"}
COPY = {"targets": ["*"], "steps": [{"kind": "copy"}]}
MYTOOL = ('[component]\nname = "mytool"\nversion = "0.5.0"\nkind = "tool"\n\n'
          '[[install]]\nsteps = [{ kind = "copy" }]\n')


def _tarball(files: dict[str, str], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class World:
    """A project locked and synced once: its folder, its settings, the parts it uses."""

    def __init__(self, tmp_path: Path, proj: Path, env: dict[str, str], mytool: GitRepo, server: HttpIndexServer,
                 index: Path) -> None:
        self.tmp_path, self.proj, self.env, self.mytool, self.server, self.index = (
            tmp_path, proj, env, mytool, server, index)
        self.marker = tmp_path / "PWNED"
        self.good = (proj / "ckpm.lock").read_text()
        self._stores = 0

    def ckpm(self, *args: str, store: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if store is not None:
            env["CKPM_STORE"] = str(store)
        return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=self.proj, env=env, capture_output=True,
                              text=True, timeout=300)

    def fresh_store(self) -> Path:
        """A store where nothing is built yet: a sync that got past verification would build there."""
        self._stores += 1
        return self.tmp_path / f"empty-store-{self._stores}"

    def lock(self) -> Lock:
        lk = read_lock(self.proj / "ckpm.lock")
        assert lk is not None
        return lk

    def edit(self, change: Callable[[Lock], None]) -> None:
        """A hand edit of ckpm.lock (through its model, so that only the field changes)."""
        lk = self.lock()
        change(lk)
        (self.proj / "ckpm.lock").write_text(lk.dumps())
        assert (self.proj / "ckpm.lock").read_text() != self.good

    def workspace(self) -> api.Workspace:
        return api.Workspace(self.proj)

    def assert_stale(self, *lines: str, hint: str = "`ckpm lock`") -> None:
        """``lock --check`` and ``sync --locked`` refuse the lock: exit 3, each line, the hint;
        nothing ran (the marker), nothing was built (the empty store), nothing was downloaded."""
        hits = dict(self.server.hits)
        r = self.ckpm("lock", "--check")
        assert r.returncode == 3, r.stdout + r.stderr
        for line in lines:
            assert f"  - {line}" in r.stderr, (line, r.stderr)
        assert "hint: " in r.stderr and hint in r.stderr.split("hint: ", 1)[1], r.stderr
        for args in (("lock", "--locked"), ("sync", "--locked"), ("sync", "--locked", "--json")):
            store = self.fresh_store()
            r = self.ckpm(*args, store=store)
            assert r.returncode == 3, (args, r.stdout + r.stderr)
            assert "synced" not in r.stdout + r.stderr
            for line in lines:
                assert line in r.stdout + r.stderr, (args, line, r.stderr)
            assert not store.exists(), args  # the check comes before the store is even opened
        assert not self.marker.exists()
        assert dict(self.server.hits) == hits  # nothing fetched
        res = api.check(self.workspace())
        assert res.exit_code == 3 and all(line in res.problems for line in lines), res.problems
        with pytest.raises(StaleLock):
            api.lock(self.workspace(), api.LockOptions(locked=True))


@pytest.fixture
def world(tmp_path: Path, git_repo_factory: Any, index_factory: Any) -> Iterator[World]:
    files = tmp_path / "files"
    files.mkdir()
    (files / "data-hello-1.0.tar.gz").write_bytes(_tarball({"hello.txt": "hello\n"}, "data-hello-1.0"))
    server = HttpIndexServer(files)
    url = server.start()
    bindir = tmp_path / "bin"
    write_exe(bindir / "faketool", tool_script("faketool 3.25.1\n"))
    index = index_factory({
        "tool-fake": [entry("tool-fake", v, kind="tool", tags=["tool"], detect=[FAKE_RULE], source={})
                      for v in ("1.0.0", "3.25.1")],
        "lib-num": [entry("lib-num", v, source={}) for v in ("2.0.0", "2.1.3")],
        "lib-app": [entry("lib-app", "1.0", deps=["lib-num ==2.1.3"], source={})],
        # no sha256: the first download pins it in the lock (trust on first use)
        "data-hello": [entry("data-hello", "1.0", kind="dataset", install=[COPY],
                             source={"urls": [f"{url}/data-hello-1.0.tar.gz"]})],
    }, name="lab")
    mytool = git_repo_factory("mytool", {"v0.5.0": {"ckpm.toml": MYTOOL, "bin/mytool": "#!/bin/sh\necho mytool\n"}})
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(
        '[project]\nname = "proj"\n\n[dependencies]\n'
        'tool-fake = ">=3.25.1"\nlib-app = "*"\ndata-hello = "*"\n'
        f'mytool = {{ git = "{mytool.url}", version = ">=0.5" }}\n\n'
        f'[[index]]\nname = "lab"\nurl = "{index}"\n')
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "CKPM_CACHE_DIR": str(tmp_path / "cache"), "CKPM_STORE": str(tmp_path / "store"),
           "CKPM_CONFIG": str(tmp_path / "no-config.toml")}
    r = subprocess.run([sys.executable, "-m", "ckpm", "sync"], cwd=proj, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    saved = {k: os.environ.get(k) for k in ("PATH", "CKPM_CACHE_DIR", "CKPM_STORE", "CKPM_CONFIG")}
    os.environ.update({k: env[k] for k in saved})  # the in-process API sees what the processes see
    try:
        yield World(tmp_path, proj, env, mytool, server, index)
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pkg(lk: Lock, name: str) -> Any:
    (p,) = lk.find(name)
    return p


# -- what holds ------------------------------------------------------------------------------------

def test_an_unmodified_lock_holds_with_its_first_use_pin_and_pip_list(world: World) -> None:
    lk = world.lock()
    data = _pkg(lk, "data-hello")
    assert data.sources[0].get("sha256") and data.sources[0].get("size")  # learnt on the first download
    assert _pkg(lk, "tool-fake").source["host"] == "executable"
    r = world.ckpm("lock", "--check")
    assert r.returncode == 0 and "is up to date" in r.stdout, r.stderr
    res = api.check(world.workspace())
    assert res.ok and res.problems == [] and res.notes == []
    r = world.ckpm("sync", "--locked")
    assert r.returncode == 0, r.stderr

    # the pip distributions list is what a first pip install records: it may differ
    def pip_list(lk: Lock) -> None:
        _pkg(lk, "lib-app").pip = [{"name": "numpy", "version": "2.1.3", "sha256": "a" * 64}]
    world.edit(pip_list)
    r = world.ckpm("lock", "--check")
    assert r.returncode == 0, r.stderr
    assert world.ckpm("lock", "--locked").returncode == 0


# -- the hand edits of the issue -----------------------------------------------------------------------

def test_a_copy_step_turned_into_a_script_never_runs(world: World) -> None:
    rev = _pkg(world.lock(), "mytool").source["rev"]

    def evil(lk: Lock) -> None:
        _pkg(lk, "mytool").install = [{"steps": [{"kind": "script", "run": [f"touch {world.marker}"]}]}]
    world.edit(evil)
    world.assert_stale(f"mytool 0.5.0: install: [0].steps[0].kind is 'script' in the lock, 'copy' in the ckpm.toml "
                       f"of {world.mytool.url} at {rev[:12]}")
    # a plain sync locks again from the component's own ckpm.toml: the copy step, never the script
    store = world.fresh_store()
    r = world.ckpm("sync", store=store)
    assert r.returncode == 0, r.stderr
    assert not world.marker.exists()
    assert _pkg(world.lock(), "mytool").install == [{"steps": [{"kind": "copy"}]}]


def test_a_host_tool_pinned_outside_the_manifest_range(world: World) -> None:
    def old_tool(lk: Lock) -> None:
        _pkg(lk, "tool-fake").version = "1.0.0"
        lk.roots = [LockedDep(r.key, r.name, "1.0.0", r.targets, r.original) if r.name == "tool-fake" else r
                    for r in lk.roots]
    world.edit(old_tool)
    world.assert_stale("tool-fake 1.0.0: version: outside >=3.25.1, which ckpm.toml requires (tool-fake >=3.25.1)")


def test_an_edge_that_points_at_nothing(world: World) -> None:
    def other_num(lk: Lock) -> None:
        _pkg(lk, "lib-num").version = "2.0.0"  # lib-app's edge still says 2.1.3
    world.edit(other_num)
    world.assert_stale("lib-app 1.0: dependencies: lib-num points at lib-num 2.1.3, and the lock does not hold "
                       "lib-num 2.1.3",
                       "lib-num 2.0.0: targets: no dependency of ckpm.toml leads to it on any target: a resolution "
                       "would not lock it")
    r = world.ckpm("tree")
    assert r.returncode == 0


def test_a_changed_source_url(world: World) -> None:
    def elsewhere(lk: Lock) -> None:  # the lock's values are typed and frozen: a new one replaces the old
        p = _pkg(lk, "data-hello")
        p.sources[0] = replace(p.sources[0], urls=("http://127.0.0.1:9/data-hello-1.0.tar.gz",))
    world.edit(elsewhere)
    world.assert_stale(f"data-hello 1.0: sources: [0].urls[0] is 'http://127.0.0.1:9/data-hello-1.0.tar.gz' in the "
                       f"lock, '{world.server.url}/data-hello-1.0.tar.gz' in index lab")


def test_a_moved_tag_names_the_command_that_fixes_it(world: World) -> None:
    old = world.mytool.tags()["v0.5.0"]
    new = world.mytool.move_tag("v0.5.0", {"ckpm.toml": MYTOOL, "bin/mytool": "#!/bin/sh\necho moved\n"})
    fix = "`ckpm lock --upgrade-package mytool`"
    line = (f"mytool 0.5.0: source: tag v0.5.0 of {world.mytool.url} moved from {old[:12]} to {new[:12]} since the "
            f"lock was written; {fix} takes the new commit")
    world.assert_stale(line, hint=fix)
    # a plain lock keeps the locked commit and names the same command
    r = world.ckpm("lock")
    assert r.returncode == 0 and fix in r.stderr, r.stderr
    assert _pkg(world.lock(), "mytool").source["rev"] == old
    world.assert_stale(line, hint=fix)  # and so the check agrees: the same line, the same command
    r = world.ckpm("lock", "--upgrade-package", "mytool")
    assert r.returncode == 0, r.stderr
    assert _pkg(world.lock(), "mytool").source["rev"] == new
    r = world.ckpm("lock", "--check")
    assert r.returncode == 0, r.stderr
    assert world.ckpm("sync", "--locked").returncode == 0


# -- every field, in process -----------------------------------------------------------------------

def _kind(lk: Lock) -> None:
    _pkg(lk, "lib-num").kind = "tool"


def _extra_edge(lk: Lock) -> None:
    _pkg(lk, "lib-num").dependencies.append(LockedDep("data-hello", "data-hello", "1.0"))


def _dropped_edge(lk: Lock) -> None:
    _pkg(lk, "lib-app").dependencies = []


def _targets(lk: Lock) -> None:
    _pkg(lk, "lib-num").targets.append("linux-aarch64")


def _keys(lk: Lock) -> None:
    _pkg(lk, "lib-num").keys.append("lib-other")


def _run_table(lk: Lock) -> None:
    # a program the lock's reader accepts (a broken one is refused when read: test_lock_typed.py)
    _pkg(lk, "lib-app").run = {"command": "sh", "sources": ["main.c"]}


def _extra_root(lk: Lock) -> None:
    lk.roots.append(LockedDep("lib-num", "lib-num", "2.1.3", None, "*"))


def _sources_added(lk: Lock) -> None:
    _pkg(lk, "lib-num").sources = [{"urls": ["http://127.0.0.1:9/x.tar.gz"]}]


@pytest.mark.parametrize("change, line", [
    (_kind, "lib-num 2.1.3: kind: 'tool' in the lock, 'lib' in index lab"),
    (_extra_edge, "lib-num 2.1.3: dependencies: data-hello -> data-hello 1.0 is not a dependency its line gives on "
                  "the targets of the edge"),
    (_dropped_edge, "lib-app 1.0: dependencies: lib-num ==2.1.3 has no locked package (target {host})"),
    (_targets, "lib-num 2.1.3: targets: locked for linux-aarch64, {host}; the dependencies reach it on {host}"),
    (_keys, "lib-num 2.1.3: keys: lib-num, lib-other in the lock; it is required as lib-num"),
    (_run_table, "lib-app 1.0: run: command is in the lock but not in index lab"),
    (_extra_root, "ckpm.toml: root: lib-num -> lib-num 2.1.3 is not a dependency of ckpm.toml on the targets of "
                  "the root"),
    (_sources_added, "lib-num 2.1.3: sources: 1 item(s) in the lock, 0 in index lab"),
], ids=["kind", "extra-edge", "dropped-edge", "targets", "keys", "run", "extra-root", "sources"])
def test_each_field_is_compared(world: World, change: Callable[[Lock], None], line: str) -> None:
    world.edit(change)
    ws = world.workspace()
    res = api.check(ws)
    assert res.exit_code == 3
    assert line.format(host=ws.host_target) in res.problems, res.problems
    with pytest.raises(StaleLock) as e:
        api.sync(world.workspace(), None, api.LockOptions(locked=True))
    assert line.format(host=ws.host_target) in e.value.details


# -- the other commands that use a lock ---------------------------------------------------------------

def test_vendor_locked_and_a_replayed_lock_are_verified_too(world: World) -> None:
    from ckpm.pipeline.run import RunRequest, provision_stage

    def evil(lk: Lock) -> None:
        _pkg(lk, "data-hello").install = [{"steps": [{"kind": "script", "run": [f"touch {world.marker}"]}],
                                           "targets": ["*"]}]
    world.edit(evil)
    line = "data-hello 1.0: install: [0].steps[0].kind is 'script' in the lock, 'copy' in index lab"
    r = world.ckpm("vendor", "--locked", str(world.tmp_path / "vendor"))
    assert r.returncode == 3 and line in r.stderr, r.stderr
    assert not (world.tmp_path / "vendor").exists()
    # a replay provisions from the lock its record holds: the same lines are checked first
    recorded = world.lock()
    (world.proj / "ckpm.lock").write_text(world.good)  # the project's own lock is fine
    store = world.fresh_store()
    os.environ["CKPM_STORE"] = str(store)
    with pytest.raises(StaleLock) as e:
        provision_stage(world.workspace(), RunRequest(), lock=recorded)
    assert line in e.value.details and "recorded lock" in e.value.message
    assert not world.marker.exists() and not store.exists()
    provision_stage(world.workspace(), RunRequest(), lock=read_lock(world.proj / "ckpm.lock"))
    assert store.is_dir()  # the verified lock provisions


def test_a_package_moved_to_a_later_index_is_stale(tmp_path: Path, index_factory: Any) -> None:
    """Two indexes with the same version: the resolver takes the first's line; a lock that says
    the second (whose line carries a script) is refused, though it matches that index's line."""
    evil = {"targets": ["*"], "steps": [{"kind": "script", "run": [f"touch {tmp_path / 'PWNED'}"]}]}
    lab = index_factory({"lib-x": [entry("lib-x", "1.0", source={})]}, name="lab")
    other = index_factory({"lib-x": [entry("lib-x", "1.0", source={}, install=[evil])]}, name="other")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "p"\n\n[dependencies]\nlib-x = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{lab}"\n\n'
                                    f'[[index]]\nname = "other"\nurl = "{other}"\n')
    api.lock(api.Workspace(proj))
    assert api.check(api.Workspace(proj)).ok
    lk = read_lock(proj / "ckpm.lock")
    assert lk is not None
    (p,) = lk.find("lib-x")
    from ckpm.model.source import IndexSource

    p.source = IndexSource("other", str(other))
    p.install = [evil]
    (proj / "ckpm.lock").write_text(lk.dumps())
    res = api.check(api.Workspace(proj))
    assert res.problems == ["lib-x 1.0: source: from index other, but index lab comes first and has lib-x, which "
                            "ckpm.toml requires (lib-x)"]
    with pytest.raises(StaleLock):
        api.sync(api.Workspace(proj), None, api.LockOptions(locked=True))
    assert not (tmp_path / "PWNED").exists()
