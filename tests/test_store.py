"""The store of prefixes: install, reuse, failure and SIGKILL half-way, two processes at once, gc by roots.

Concurrency is tested with real processes (``installer.py`` below) that coordinate through
files, never through timing: a build says it started, waits for a release file, and a
process that has to wait for the key's lock says so through its reporter.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from ckpm.errors import StoreError
from ckpm.report import Reporter
from ckpm.store import STORE_ENV, Store, default_store_dir, prefix_key
from ckpm.store.store import MARKER

META = {"name": "tool", "version": "1.0", "target": "x86_64-linux"}

INSTALLER = r'''
import os, sys, time
from pathlib import Path
from ckpm.report import Reporter
from ckpm.store import Store

root, key, work = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

class Notes(Reporter):
    def note(self, message):  # written whole, then renamed: the test reads it once it exists
        tmp = work / f".waiting-{os.getpid()}"
        tmp.write_text(message)
        os.replace(tmp, work / f"waiting-{os.getpid()}")

def build(destdir, prefix):
    with open(work / "builds", "a") as f:
        f.write(f"{os.getpid()}\n")
    staged = destdir / prefix.relative_to(prefix.anchor)
    (staged / "bin").mkdir(parents=True)
    (staged / "bin" / "tool").write_text("#!/bin/sh\n")
    (work / "started").write_text(str(os.getpid()))
    while not (work / "release").exists():
        time.sleep(0.02)
    return {"built_by": os.getpid()}

entry = Store(root, Notes()).install(key, build, meta={"name": "tool", "version": "1.0", "target": "x86_64-linux"})
print(entry.path, entry.meta["built_by"])
'''


def wait_for(cond: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    """Poll ``cond`` (a generous deadline only guards against a hung test; nothing is timed)."""
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def installer(tmp_path: Path) -> Callable[[Path, str, Path], subprocess.Popen[str]]:
    script = tmp_path / "installer.py"
    script.write_text(INSTALLER)

    def start(root: Path, key: str, work: Path) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(script), str(root), key, str(work)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return start


def counting_build(log: list[str], *, fail: bool = False) -> Callable[[Path, Path], dict[str, Any]]:
    def build(destdir: Path, prefix: Path) -> dict[str, Any]:
        log.append(str(prefix))
        staged = destdir / prefix.relative_to(prefix.anchor)
        (staged / "lib").mkdir(parents=True)
        (staged / "lib" / "libx.so").write_bytes(b"x" * 100)
        (staged / "lib" / "pkgconfig.pc").write_text(f"prefix={prefix}\n")
        if fail:
            raise RuntimeError("the recipe failed")
        return {"files": 2}
    return build


def tmp_leftovers(root: Path) -> list[str]:
    return sorted(os.listdir(root / "tmp")) if (root / "tmp").exists() else []


# -- keys --------------------------------------------------------------------------------------------

def test_prefix_key_is_deterministic_and_covers_the_inputs() -> None:
    key = prefix_key("zlib", "1.3.1", "x86_64-linux", {"kind": "make", "args": ["-j"]}, {"cc": "gcc-13-x-abc"})
    assert key == prefix_key("zlib", "1.3.1", "x86_64-linux", {"args": ["-j"], "kind": "make"}, {"cc": "gcc-13-x-abc"})
    assert key.startswith("zlib-1.3.1-x86_64-linux-") and len(key.rsplit("-", 1)[1]) == 20
    others = {prefix_key("zlib", "1.3.1", "x86_64-linux", {"kind": "make", "args": []}, {"cc": "gcc-13-x-abc"}),
              prefix_key("zlib", "1.3.1", "x86_64-linux", {"kind": "make", "args": ["-j"]}, {"cc": "gcc-14-x-abc"}),
              prefix_key("zlib", "1.3.1", "aarch64-linux", {"kind": "make", "args": ["-j"]}, {"cc": "gcc-13-x-abc"}),
              prefix_key("zlib", "1.3.2", "x86_64-linux", {"kind": "make", "args": ["-j"]}, {"cc": "gcc-13-x-abc"})}
    assert key not in others and len(others) == 4
    odd = prefix_key("my pkg/../x", "1.0\n", "t", {}, {})
    assert "/" not in odd and ".." not in odd and "\n" not in odd
    Store(Path("/nonexistent")).path(odd)  # a valid key
    with pytest.raises(StoreError, match="not plain data"):
        prefix_key("a", "1", "t", {"x": object()}, {})


@pytest.mark.parametrize("key", ["a/b", "..", "../x", "a..b", "", ".hidden", "a\\b", "a\x1bb", "x" * 300])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = Store(tmp_path / "store")
    with pytest.raises(StoreError, match="not a valid store key") as info:
        store.path(key)
    assert "\x1b" not in info.value.message
    called: list[str] = []
    with pytest.raises(StoreError):
        store.install(key, counting_build(called), meta=META)
    assert called == [] and not (tmp_path / "store" / "prefixes").exists()


def test_default_store_dir() -> None:
    assert default_store_dir({STORE_ENV: "/data/ckpm-store"}) == Path("/data/ckpm-store")
    assert default_store_dir({}).parts[-2:] == ("ckpm", "store")


@pytest.mark.skipif(sys.platform == "win32", reason="the XDG folders are those of Linux and the BSDs")
def test_user_folders_follow_the_settings_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The folders come from the Settings' env (not the process's), and agree with platformdirs."""
    import platformdirs

    from ckpm.settings import Settings, user_dir

    env = {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "xc"), "XDG_DATA_HOME": "relative/no"}
    s = Settings(env=env)
    if sys.platform != "darwin":
        assert s.cache_dir == tmp_path / "xc" / "ckpm"
        assert s.store_dir == tmp_path / "home" / ".local" / "share" / "ckpm" / "store"  # a relative XDG value is ignored
        assert s.config_path == tmp_path / "home" / ".config" / "ckpm" / "config.toml"
    for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "h2"))
    assert str(user_dir("cache")) == platformdirs.user_cache_dir("ckpm")
    assert str(user_dir("data")) == platformdirs.user_data_dir("ckpm")
    assert str(user_dir("config")) == platformdirs.user_config_dir("ckpm")


# -- install -------------------------------------------------------------------------------------------

def test_install_complete_entries(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = Store(root)
    key = prefix_key("tool", "1.0", "x86_64-linux", {"kind": "make"}, {})
    assert store.complete(key) is None and store.entries() == []
    log: list[str] = []
    entry = store.install(key, counting_build(log), meta=META)
    assert log == [str(root / "prefixes" / key)]  # the build was given the final prefix
    assert entry.path == store.path(key) == root / "prefixes" / key
    assert (entry.name, entry.version, entry.target, entry.key) == ("tool", "1.0", "x86_64-linux", key)
    assert entry.meta == {**META, "files": 2} and entry.size is not None and entry.size >= 100
    assert (entry.path / "lib" / "pkgconfig.pc").read_text() == f"prefix={entry.path}\n"
    marker = json.loads((entry.path / MARKER).read_text())
    assert marker["key"] == key and "created" in marker
    again = store.install(key, counting_build(log), meta=META)
    assert len(log) == 1 and again == entry == store.complete(key)
    assert store.entries() == [entry]
    assert tmp_leftovers(root) == []


def test_build_that_raises_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = Store(root)
    log: list[str] = []
    with pytest.raises(RuntimeError, match="the recipe failed"):
        store.install("k-1", counting_build(log, fail=True), meta=META)
    assert store.complete("k-1") is None and not store.path("k-1").exists() and tmp_leftovers(root) == []
    entry = store.install("k-1", counting_build(log), meta=META)
    assert len(log) == 2 and (entry.path / "lib" / "libx.so").is_file()


def test_build_that_installs_nothing_or_in_place(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with pytest.raises(StoreError, match="installed nothing"):
        store.install("empty-1", lambda destdir, prefix: None, meta=META)
    assert not store.path("empty-1").exists() and tmp_leftovers(store.root) == []

    def in_place(destdir: Path, prefix: Path) -> None:  # a recipe that ignores DESTDIR
        prefix.mkdir(parents=True)
        (prefix / "f").write_text("x")
    assert (store.install("inplace-1", in_place, meta=META).path / "f").read_text() == "x"

    def stray(destdir: Path, prefix: Path) -> None:  # a recipe that also writes beside its prefix
        counting_build([])(destdir, prefix)
        (destdir / "etc").mkdir()
        (destdir / "etc" / "tool.conf").write_text("x")
    assert store.install("stray-1", stray, meta=META).meta["name"] == "tool"
    assert any("stray-1" in w and "/etc/tool.conf" in w for w in store.reporter.warnings)
    assert tmp_leftovers(store.root) == []


def test_a_tampered_marker_is_not_complete(tmp_path: Path) -> None:
    reporter = Reporter()
    store = Store(tmp_path / "store", reporter)
    log: list[str] = []
    entry = store.install("k-1", counting_build(log), meta=META)
    marker = entry.path / MARKER
    doc = json.loads(marker.read_text())
    for bad in [b"not json", b"[1]", json.dumps({**doc, "key": "other-1"}).encode(),
                json.dumps({**doc, "meta": "x"}).encode(), b" " * (2 << 20)]:
        marker.write_bytes(bad)
        assert store.complete("k-1") is None
    assert any("k-1" in w and "rebuilt" in w for w in reporter.warnings)
    assert store.install("k-1", counting_build(log), meta=META).meta["files"] == 2 and len(log) == 2
    # a prefix left without its marker (killed between the rename and the marker) is rebuilt too
    marker.unlink()
    assert store.complete("k-1") is None and store.entries() == []
    store.install("k-1", counting_build(log), meta=META)
    assert len(log) == 3 and store.complete("k-1") is not None


# -- processes -------------------------------------------------------------------------------------------

def test_sigkill_half_way_leaves_the_store_consistent(tmp_path: Path, installer: Any) -> None:
    root, work, key = tmp_path / "store", tmp_path / "work", "tool-1.0-x86_64-linux-0123456789abcdef0123"
    work.mkdir()
    proc = installer(root, key, work)
    wait_for(lambda: (work / "started").exists() or proc.poll() is not None, "the build to start")
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(root)
    assert store.complete(key) is None and store.entries() == []
    assert len(tmp_leftovers(root)) == 1  # the dead build's staging root, until someone holds the lock
    log: list[str] = []
    entry = store.install(key, counting_build(log), meta=META)
    assert len(log) == 1 and entry.meta["files"] == 2 and not (entry.path / "bin").exists()
    assert tmp_leftovers(root) == []


def test_two_processes_install_one_key_with_one_build(tmp_path: Path, installer: Any) -> None:
    root, work, key = tmp_path / "store", tmp_path / "work", "tool-1.0-x86_64-linux-0123456789abcdef0123"
    work.mkdir()
    first = installer(root, key, work)
    wait_for(lambda: (work / "started").exists() or first.poll() is not None, "the first build to start")
    second = installer(root, key, work)
    wait_for(lambda: (work / f"waiting-{second.pid}").exists() or second.poll() is not None,
             "the second process to wait for the lock")
    assert "waiting for another ckpm process building " + key in (work / f"waiting-{second.pid}").read_text()
    (work / "release").write_text("")
    out1, err1 = first.communicate(timeout=60)
    out2, err2 = second.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert (work / "builds").read_text().splitlines() == [str(first.pid)]
    assert out1 == out2 == f"{root / 'prefixes' / key} {first.pid}\n"


# -- gc -----------------------------------------------------------------------------------------------------

def test_gc_keeps_what_live_projects_use(tmp_path: Path, installer: Any) -> None:
    root = tmp_path / "store"
    store = Store(root)
    log: list[str] = []
    for key in ("a-1", "b-1", "c-1"):
        store.install(key, counting_build(log), meta=META)
    store.path("broken-1").mkdir()  # a prefix without a marker
    live, gone = tmp_path / "live", tmp_path / "gone"
    for project in (live, gone):
        project.mkdir()
        (project / "ckpm.lock").write_text("")
    store.register_root(live, ["a-1"])
    store.register_root(gone, ["b-1", "a-1"])
    assert len(os.listdir(root / "roots")) == 2
    assert store.gc() == ["broken-1", "c-1"]
    (gone / "ckpm.lock").unlink()
    assert store.gc(dry_run=True) == ["b-1"] and store.complete("b-1") is not None
    assert len(os.listdir(root / "roots")) == 2
    assert store.gc() == ["b-1"]
    assert [e.key for e in store.entries()] == ["a-1"] and sorted(os.listdir(root / "prefixes")) == ["a-1"]
    assert [json.loads(p.read_text())["project"] for p in (root / "roots").iterdir()] == [str(live.resolve())]
    store.register_root(live, [])  # the project's lock no longer uses a-1
    assert store.gc() == ["a-1"] and store.entries() == []

    # a prefix being built (its lock held by another process) is skipped, staging root included
    work, key = tmp_path / "work", "d-1"
    work.mkdir()
    proc = installer(root, key, work)
    wait_for(lambda: (work / "started").exists() or proc.poll() is not None, "the build to start")
    assert store.gc() == [] and len(tmp_leftovers(root)) == 1
    (work / "release").write_text("")
    assert proc.wait(timeout=60) == 0
    assert store.gc() == ["d-1"] and tmp_leftovers(root) == []
