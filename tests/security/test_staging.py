"""Killed builds (issue 24, finding 5): after 20 SIGKILLs of `ckpm sync`, 11 build folders
(2.3 GB) stayed in `store/tmp`; neither the next sync nor `ckpm store gc` removed them.

Here a real `ckpm sync` builds a recipe whose script writes a marker (with its pid) and then
blocks reading a fifo; the test waits for the marker, kills ckpm with SIGKILL (and the
blocked script's process group), and looks at the store. Everything one build writes lies in
its staging folder `store/tmp/<key>-<random>/` (the DESTDIR and the work folders: sources,
build tree), which the next sync of that prefix, and `ckpm store gc`, remove once its owner is
gone (the key's lock is free).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sec_store_support import (FileServer, ckpm_env, line, make_index, make_project, run_ckpm,  # noqa: E402
                               source_of, staging_left, tar_bytes)
from sec_store_support import server  # noqa: E402,F401 (a fixture this module uses)

from ckpm.fsutil import file_lock  # noqa: E402

KILLS = 5


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> str:
    """The text of ``path`` once the build wrote it (an event, not a time); fails if ckpm ends first."""
    deadline = time.monotonic() + 300  # a guard against a hang, not a measured time
    while time.monotonic() < deadline:
        try:
            text = path.read_text()
            if text.endswith("\n"):
                return text
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"ckpm sync ended before the build started: {proc.returncode}\n{err}")
        time.sleep(0.02)
    pytest.fail("the build never started")


def _gone(pid: int) -> None:
    """Wait until process ``pid`` (not our child) has exited."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    pytest.fail(f"process {pid} did not die")


def _project(tmp_path: Path, server: FileServer) -> tuple[Path, Path, Path]:
    marker, fifo = tmp_path / "started", tmp_path / "gate"
    os.mkfifo(fifo)
    archive = server.root / "slow-1.0.tar.gz"
    archive.write_bytes(tar_bytes([("slow-1.0/data.txt", b"payload\n")]))
    steps = [{"kind": "script", "run": [
        "head -c 4000000 /dev/zero > ballast.bin",  # what a build writes in its work folder
        # one command: the pid written is the shell that blocks, so the test can kill it (a killed
        # ckpm leaves its build's process group running; nothing else would end it)
        f"echo $$ > {marker}.tmp && mv {marker}.tmp {marker} && read line < {fifo}",
        'mkdir -p "$DESTDIR$PREFIX/share" && cp data.txt "$DESTDIR$PREFIX/share/"',
    ]}]
    index = make_index(tmp_path / "index", [line("slow-build", "1.0", source_of(server, archive), steps)])
    return make_project(tmp_path / "proj", index, {"slow-build": ">=1"}), marker, fifo


def _killed_sync(proj: Path, env: dict[str, str], marker: Path) -> None:
    """Start `ckpm sync`, wait until the build blocks, SIGKILL ckpm and the build script."""
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "ckpm", "sync"], cwd=proj, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    script = int(_wait_for(marker, proc).strip())
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    try:  # the build's commands run in a process group of their own
        os.killpg(os.getpgid(script), signal.SIGKILL)
    except ProcessLookupError:
        pass
    _gone(script)


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def test_killed_builds_leave_one_staging_folder_that_the_next_sync_and_gc_remove(tmp_path: Path,
                                                                                 server: FileServer) -> None:
    proj, marker, fifo = _project(tmp_path, server)
    env = ckpm_env(tmp_path)
    store = tmp_path / "store"
    seen: list[str] = []
    for _ in range(KILLS):
        _killed_sync(proj, env, marker)
        left = staging_left(store)
        # the next sync of the prefix removed the previous dead build's folder before starting its own
        assert len(left) == 1 and left[0] not in seen, (left, seen)
        seen.append(left[0])
        staged = store / "tmp" / left[0]
        assert any(p.name == "ballast.bin" for p in staged.rglob("*"))  # the work folder is inside it
        assert _size(staged) >= 4_000_000
    assert not any(p.name.startswith("build-") for p in store.iterdir())

    # gc: the owner is gone and the key's lock free, so the folder goes
    r = run_ckpm("store", "gc", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    assert staging_left(store) == []

    # one more dead build, then a sync that completes: it clears the dead one and leaves nothing
    _killed_sync(proj, env, marker)
    assert len(staging_left(store)) == 1
    fifo.unlink()
    fifo.write_text("go\n")  # the gate is open: `read` returns at once
    r = run_ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    (pkg,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "slow-build"]
    assert pkg["action"] == "built"
    assert (Path(pkg["path"]) / "share" / "data.txt").read_text() == "payload\n"
    assert staging_left(store) == []


def test_gc_keeps_a_staging_folder_whose_build_still_holds_its_lock(tmp_path: Path, server: FileServer) -> None:
    proj, marker, _fifo = _project(tmp_path, server)
    env = ckpm_env(tmp_path)
    store = tmp_path / "store"
    _killed_sync(proj, env, marker)
    (name,) = staging_left(store)
    key = name.rsplit("-", 1)[0]
    with file_lock(store / "locks" / f"{key}.lock"):  # a live build of that key (this process)
        r = run_ckpm("store", "gc", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        assert staging_left(store) == [name]
    r = run_ckpm("store", "gc", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    assert staging_left(store) == []


def test_gc_removes_the_build_folders_older_ckpm_versions_left(tmp_path: Path, server: FileServer) -> None:
    """Before the staging layout, a build's work folder was `store/tmp/build-*` (no key, no lock):
    gc removes those untouched for an hour, and keeps a recent one."""
    from ckpm.store.store import LEGACY_WORK_AGE

    proj, _marker, _fifo = _project(tmp_path, server)
    env = ckpm_env(tmp_path)
    tmp = tmp_path / "store" / "tmp"
    old, recent = tmp / "build-slow-build-k2j4x9", tmp / "build-other-p0q1r2"
    for d in (old, recent):
        (d / "src" / "deep" / "er").mkdir(parents=True)
        (d / "src" / "deep" / "er" / "big.bin").write_bytes(bytes(100_000))
    stale = time.time() - LEGACY_WORK_AGE - 60
    os.utime(old, (stale, stale))
    r = run_ckpm("store", "gc", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    assert staging_left(tmp_path / "store") == [recent.name]
