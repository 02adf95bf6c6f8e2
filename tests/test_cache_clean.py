"""Store and cache hygiene (issue 23, section 5): `ckpm store gc` decides from each registered
project's current ckpm.lock; `ckpm cache ls` and `ckpm cache clean` show and free the download
cache, never removing what a running command uses. Real `ckpm` processes, a loopback server,
lock holders in other processes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent / "security"))
from sec_store_support import (COPY, FileServer, ckpm_env, line, make_index, make_project, run_ckpm,  # noqa: E402
                               sha256_of, source_of, tar_bytes)
from sec_store_support import server  # noqa: E402,F401 (a fixture this module uses)

DAY = 86400


def _archive(server: FileServer, name: str, payload: bytes) -> Path:
    p = server.root / f"{name}-1.0.tar.gz"
    p.write_bytes(tar_bytes([(f"{name}-1.0/data.bin", payload)]))
    return p


def _synced(tmp_path: Path, server: FileServer) -> tuple[Path, dict[str, str], dict[str, Path], dict[str, str]]:
    """A project on data-a and data-b, synced: its folder, env, archives and prefix keys."""
    archives = {n: _archive(server, n, n.encode() * 50_000) for n in ("data-a", "data-b")}
    index = make_index(tmp_path / "index", [line(n, "1.0", source_of(server, a), COPY) for n, a in archives.items()])
    proj = make_project(tmp_path / "proj", index, {"data-a": ">=1", "data-b": ">=1"})
    env = ckpm_env(tmp_path)
    r = run_ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    keys = {p["name"]: p["key"] for p in json.loads(r.stdout)["data"]["packages"]}
    return proj, env, archives, keys


def test_store_gc_removes_the_prefix_of_a_removed_dependency(tmp_path: Path, server: FileServer) -> None:
    proj, env, _, keys = _synced(tmp_path, server)
    prefixes = tmp_path / "store" / "prefixes"
    assert {keys["data-a"], keys["data-b"]} <= set(os.listdir(prefixes))
    r = run_ckpm("remove", "data-a", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    r = run_ckpm("store", "gc", "--dry-run", "--json", cwd=proj, env=env)
    assert json.loads(r.stdout)["data"]["removed"] == [keys["data-a"]]
    assert keys["data-a"] in os.listdir(prefixes)
    r = run_ckpm("store", "gc", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"]["removed"] == [keys["data-a"]]
    assert sorted(os.listdir(prefixes)) == [keys["data-b"]]
    # a second gc finds nothing more; the project still syncs without rebuilding data-b
    r = run_ckpm("store", "gc", "--json", cwd=proj, env=env)
    assert json.loads(r.stdout)["data"]["removed"] == []
    r = run_ckpm("sync", "--json", cwd=proj, env=env)
    assert [p["action"] for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "data-b"] == ["store"]


def test_store_gc_forgets_a_project_without_a_lock(tmp_path: Path, server: FileServer) -> None:
    proj, env, _, keys = _synced(tmp_path, server)
    (proj / "ckpm.lock").unlink()
    r = run_ckpm("store", "gc", "--json", cwd=tmp_path, env=env)
    assert sorted(json.loads(r.stdout)["data"]["removed"]) == sorted(keys.values())


def _holder(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """A process that takes a lock (``code``), prints ``held`` and keeps it until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", code + "\nprint('held', flush=True)\nimport sys\nsys.stdin.read()"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=60)


def test_cache_ls_and_clean_keep_what_a_concurrent_holder_uses(tmp_path: Path, server: FileServer) -> None:
    proj, env, archives, _ = _synced(tmp_path, server)
    cached = {n: tmp_path / "cache" / "downloads" / "sha256" / sha256_of(a) for n, a in archives.items()}
    assert all(p.is_file() for p in cached.values())
    r = run_ckpm("cache", "ls", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    areas = {a["name"]: a for a in json.loads(r.stdout)["data"]["areas"]}
    assert areas["downloads"]["entries"] == 2
    assert areas["downloads"]["size"] == sum(p.stat().st_size for p in cached.values())

    old = time.time() - 40 * DAY
    for p in cached.values():
        os.utime(p, (old, old))
    # a third download, recent: --older-than keeps it
    recent = _archive(server, "data-c", b"c" * 1000)
    (tmp_path / "cache" / "downloads" / "sha256" / sha256_of(recent)).write_bytes(recent.read_bytes())

    code = ("from ckpm.fsutil import shared_lock\nfrom ckpm.fetch.cache import DownloadCache\nfrom pathlib import Path\n"
            f"held = shared_lock(DownloadCache(Path({str(tmp_path / 'cache')!r})).use_lock({cached['data-b'].name!r}))\n"
            "held.__enter__()")
    holder = _holder(code, env)
    try:
        r = run_ckpm("cache", "clean", "--older-than", "30", "--json", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)["data"]
    finally:
        _release(holder)
    assert [Path(i["path"]).name for i in data["removed"]] == [cached["data-a"].name]
    assert [Path(i["path"]).name for i in data["in_use"]] == [cached["data-b"].name]
    assert data["freed"] == data["removed"][0]["size"] > 0
    assert not cached["data-a"].exists() and cached["data-b"].is_file()
    assert (tmp_path / "cache" / "downloads" / "sha256" / sha256_of(recent)).is_file()

    # the lock a sync holds while it fetches a file (another holder): kept too
    code = ("from ckpm.fsutil import file_lock\nfrom ckpm.fetch.cache import DownloadCache\nfrom pathlib import Path\n"
            f"held = file_lock(DownloadCache(Path({str(tmp_path / 'cache')!r})).lock({cached['data-b'].name!r}))\n"
            "held.__enter__()")
    holder = _holder(code, env)
    try:
        r = run_ckpm("cache", "clean", "--downloads", "--json", cwd=proj, env=env)
        data = json.loads(r.stdout)["data"]
    finally:
        _release(holder)
    assert [Path(i["path"]).name for i in data["in_use"]] == [cached["data-b"].name]
    assert cached["data-b"].is_file()
    # nobody holds anything now: everything goes, and a sync fetches again
    r = run_ckpm("cache", "clean", "--json", cwd=proj, env=env)
    assert json.loads(r.stdout)["data"]["in_use"] == []
    assert os.listdir(tmp_path / "cache" / "downloads" / "sha256") == []
    r = run_ckpm("sync", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr


def test_cache_clean_keeps_the_sources_of_a_running_build(tmp_path: Path, server: FileServer) -> None:
    """A real sync blocked in its build holds its source in use; `cache clean` keeps it."""
    marker, fifo = tmp_path / "started", tmp_path / "gate"
    os.mkfifo(fifo)
    archive = _archive(server, "slow", b"s" * 10_000)
    steps = [{"kind": "script", "run": [f"echo go > {marker}", f"read line < {fifo}",
                                        'mkdir -p "$DESTDIR$PREFIX" && cp data.bin "$DESTDIR$PREFIX/"']}]
    index = make_index(tmp_path / "index", [line("slow", "1.0", source_of(server, archive), steps)])
    proj = make_project(tmp_path / "proj", index, {"slow": ">=1"})
    env = ckpm_env(tmp_path)
    sync = subprocess.Popen([sys.executable, "-m", "ckpm", "sync"], cwd=proj, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300  # a guard, not a measured time: we wait for the marker
        while not marker.exists():
            assert sync.poll() is None, sync.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        r = run_ckpm("cache", "clean", "--json", cwd=proj, env=env)
        data = json.loads(r.stdout)["data"]
        assert [Path(i["path"]).name for i in data["in_use"]] == [sha256_of(archive)]
        assert (tmp_path / "cache" / "downloads" / "sha256" / sha256_of(archive)).is_file()
    finally:
        with open(fifo, "w") as f:  # open the gate: the build finishes
            f.write("go\n")
        out, err = sync.communicate(timeout=300)
    assert sync.returncode == 0, err
    r = run_ckpm("cache", "clean", "--json", cwd=proj, env=env)
    assert [Path(i["path"]).name for i in json.loads(r.stdout)["data"]["removed"]] == [sha256_of(archive)]
