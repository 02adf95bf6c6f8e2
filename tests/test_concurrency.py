"""Concurrent ckpm processes on one project serialise and lose nothing; files keep the umask.

Real `ckpm` processes started together on a real project and a real index folder.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ckpm import api
from ckpm.fsutil import atomic_write, file_lock
from ckpm.index.writer import init_index, reindex, write_component
from ckpm.testing import entry

NAMES = [f"lib-n{i}" for i in range(8)]


@pytest.fixture
def index(tmp_path: Path) -> Path:
    root = tmp_path / "index"
    init_index(root, "lab")
    for n in NAMES:
        write_component(root, [entry(n, "1.0"), entry(n, "2.0")])
    write_component(root, [entry("lib-base", "1.0")])
    reindex(root)
    return root


def _project(tmp_path: Path, index: Path) -> Path:
    d = tmp_path / "proj"
    api.init_project(d, "proj")
    with open(d / "ckpm.toml", "a") as f:
        f.write(f'lib-base = "*"\n\n[[index]]\nname = "lab"\nurl = "{index}"\n')
    return d


def _ckpm(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ckpm.cli.main", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})


def test_eight_concurrent_adds_keep_all_eight(tmp_path: Path, index: Path) -> None:
    proj = _project(tmp_path, index)
    procs = [_ckpm(["add", n], proj) for n in NAMES]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [o[1] for o in outs]
    ws = api.Workspace(proj)
    assert set(NAMES) <= set(ws.manifest.dependencies)
    lk = ws.read_lock()
    assert lk is not None and {p.name for p in lk.packages} == {*NAMES, "lib-base"}
    assert api.check(api.Workspace(proj)).ok  # the lock matches the manifest that survived
    waited = [o[1] for o in outs if "waiting for another ckpm process" in o[1]]
    assert waited, "at least one process had to wait, and said so"
    assert all(o[1].count("waiting for another ckpm process") == 1 for o in outs if o[1] in waited)


def test_relock_for_two_targets_racing_an_add_leaves_a_current_lock(tmp_path: Path, index: Path) -> None:
    proj = _project(tmp_path, index)
    for _ in range(3):
        a = _ckpm(["lock", "-U", "-t", "linux-x86_64", "-t", "linux-aarch64"], proj)
        b = _ckpm(["add", NAMES[0]], proj)
        assert a.wait(timeout=120) == 0 and b.wait(timeout=120) == 0
        res = api.check(api.Workspace(proj))
        assert res.ok, res.problems
        api.remove(api.Workspace(proj), [NAMES[0]])


def test_created_files_follow_the_umask_and_replacing_keeps_the_mode(tmp_path: Path, index: Path) -> None:
    old = os.umask(0o022)
    try:
        proj = _project(tmp_path, index)
        api.add(api.Workspace(proj), [api.AddRequest(NAMES[1])])
        for f in ("ckpm.toml", "ckpm.lock"):
            assert stat.S_IMODE(os.stat(proj / f).st_mode) == 0o644, f
        os.chmod(proj / "ckpm.lock", 0o640)
        api.add(api.Workspace(proj), [api.AddRequest(NAMES[2])])
        assert stat.S_IMODE(os.stat(proj / "ckpm.lock").st_mode) == 0o640
    finally:
        os.umask(old)
    atomic_write(tmp_path / "new.txt", "x", mode=0o600)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o600


def _holder(lock: Path, seconds: float, until: Path | None = None) -> subprocess.Popen[str]:
    """Another process that holds ``lock`` for ``seconds`` (or, given ``until``, until that file
    exists: an event, not a duration); returns once it holds it."""
    wait = (f"    while not os.path.exists({str(until)!r}): time.sleep(0.01)" if until is not None
            else f"    time.sleep({seconds})")
    holder = subprocess.Popen([sys.executable, "-c",
                               "import os, time; from ckpm.fsutil import file_lock\n"
                               f"with file_lock({str(lock)!r}):\n"
                               f"    print('held', flush=True)\n{wait}"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_file_lock_waits_and_says_so_once(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    release = tmp_path / "release"
    holder = _holder(lock, 0, until=release)  # held until we have said that we wait
    said: list[str] = []

    def on_wait(message: str) -> None:
        said.append(message)
        release.write_text("")

    with file_lock(lock, on_wait=on_wait, what="on x"):
        pass
    assert holder.wait(timeout=30) == 0
    assert said == ["waiting for another ckpm process on x…"]


def test_file_lock_is_reentrant_in_a_thread_and_excludes_other_threads(tmp_path: Path) -> None:
    import threading

    lock = tmp_path / "x.lock"
    order: list[str] = []
    with file_lock(lock):
        with file_lock(lock):  # the same thread again: no deadlock
            order.append("nested")

        waiting = threading.Event()

        def other() -> None:
            def on_wait(_m: str) -> None:
                order.append("other waits")
                waiting.set()

            with file_lock(lock, on_wait=on_wait):
                order.append("other holds")

        t = threading.Thread(target=other)
        t.start()
        assert waiting.wait(60)  # the other thread is blocked on the lock: an event, not a nap
        order.append("main releases")
    t.join(timeout=30)
    assert order == ["nested", "other waits", "main releases", "other holds"]


def test_file_lock_times_out_and_is_freed_when_its_holder_is_killed(tmp_path: Path) -> None:
    from ckpm.fsutil import LockTimeout

    lock = tmp_path / "x.lock"
    holder = _holder(lock, 60)
    try:
        with pytest.raises(LockTimeout, match="within 0.2 s"):
            with file_lock(lock, timeout=0.2):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with file_lock(lock, timeout=5):  # the kernel released the dead holder's lock
        assert lock.exists()
