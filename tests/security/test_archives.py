"""Hostile archives (issue 24, findings 3 and 4): trees nested thousands of folders deep, and
decompression bombs in every format the unpacker reads.

The reproduction of finding 3 was a 166-byte tar.gz nested 1,500 folders deep, which the
unpacker accepted and the `copy` step then died on (a RecursionError traceback, and a
`store/tmp/build-*` folder left at every try). Finding 4 was a 300 KB gzip of 300 MB of
zeros, accepted and built. Every archive here is made in tmp_path and served from a loopback
server; `ckpm sync` runs as a real process.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sec_store_support import (COPY, FileServer, ckpm_env, line, make_index, make_project, run_ckpm,  # noqa: E402
                               source_of, staging_left, tar_bytes)
from sec_store_support import server  # noqa: E402,F401 (a fixture this module uses)

from ckpm.errors import UnpackError  # noqa: E402
from ckpm.fsutil import copy_tree, remove_tree, walk_tree  # noqa: E402
from ckpm.model.entry import IndexDataError, check_entry  # noqa: E402
from ckpm.store.unpack import MAX_DEPTH, RATIO_FLOOR, UnpackBudget, unpack  # noqa: E402

DEEP = 1500


# -- finding 3: depth ------------------------------------------------------------------------------

def _deep_variants() -> dict[str, Callable[[], bytes]]:
    """Archives whose members lie 1,500 folders deep: one file at the bottom (the 166-byte
    reproduction), every folder as a member, and the same in plain tar and in zip."""
    path = "/".join(["a"] * DEEP)

    def zip_one() -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(path + "/f", b"x")
        return buf.getvalue()

    return {
        "tar.gz one file": lambda: tar_bytes([(path + "/f", b"x")]),
        "tar.gz every folder": lambda: tar_bytes([("/".join(["a"] * i), None) for i in range(1, DEEP + 1)]),
        "tar one file": lambda: tar_bytes([(path + "/f", b"x")], mode="w"),
        "tar.xz one file": lambda: tar_bytes([(path + "/f", b"x")], mode="w:xz"),
        "zip one file": zip_one,
    }


DEEP_VARIANTS = _deep_variants()


@pytest.mark.parametrize("variant", sorted(DEEP_VARIANTS))
def test_an_archive_nested_1500_folders_deep_is_refused_as_a_whole(tmp_path: Path, variant: str) -> None:
    archive = tmp_path / "deep.bin"
    archive.write_bytes(DEEP_VARIANTS[variant]())
    dest = tmp_path / "out"
    with pytest.raises(UnpackError) as e:
        unpack(archive, dest)
    assert f"ckpm unpacks at most {MAX_DEPTH}" in e.value.message
    assert not dest.exists()
    assert sorted(os.listdir(tmp_path)) == ["deep.bin"]  # no hidden extraction folder left


def test_the_166_byte_reproduction_is_that_small(tmp_path: Path) -> None:
    data = DEEP_VARIANTS["tar.gz one file"]()
    assert len(data) < 400  # the attack costs nothing to send: the cap must hold before anything is built


def test_a_deep_archive_through_sync_fails_in_one_line_and_leaves_no_staging(tmp_path: Path,
                                                                              server: FileServer) -> None:
    archive = server.root / "deep-1.0.tar.gz"
    archive.write_bytes(DEEP_VARIANTS["tar.gz one file"]())
    index = make_index(tmp_path / "index", [line("deep-data", "1.0", source_of(server, archive), COPY)])
    proj = make_project(tmp_path / "proj", index, {"deep-data": ">=1"})
    env = ckpm_env(tmp_path)
    for _ in range(3):  # every try used to leave a store/tmp/build-* folder behind
        r = run_ckpm("sync", cwd=proj, env=env)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr and "RecursionError" not in r.stderr
        assert f"at most {MAX_DEPTH}" in r.stderr
        assert staging_left(tmp_path / "store") == []
    prefixes = tmp_path / "store" / "prefixes"
    assert not prefixes.is_dir() or os.listdir(prefixes) == []


def test_a_tree_as_deep_as_the_cap_is_built_by_the_copy_step(tmp_path: Path, server: FileServer) -> None:
    """Below the cap, the copy step copies a deep tree (walked iteratively)."""
    path = "/".join(["d"] * (MAX_DEPTH - 2))
    archive = server.root / "deepok-1.0.tar.gz"
    archive.write_bytes(tar_bytes([("top/" + path + "/leaf.txt", b"bottom\n")]))
    index = make_index(tmp_path / "index", [line("deep-ok", "1.0", source_of(server, archive), COPY)])
    proj = make_project(tmp_path / "proj", index, {"deep-ok": ">=1"})
    r = run_ckpm("sync", "--json", cwd=proj, env=ckpm_env(tmp_path))
    assert r.returncode == 0, r.stderr
    import json

    (pkg,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "deep-ok"]
    assert (Path(pkg["path"]) / "share" / path / "leaf.txt").read_text() == "bottom\n"
    assert staging_left(tmp_path / "store") == []


def _deep_tree(root: Path, depth: int) -> None:
    """A chain of ``depth`` folders under ``root`` (made through folder descriptors: os.makedirs
    itself recurses), a file at the bottom."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("a", dir_fd=fd)
            nfd = os.open("a", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        wfd = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(wfd, b"x")
        os.close(wfd)
    finally:
        os.close(fd)


def test_tree_walks_copies_and_removals_need_no_recursion(tmp_path: Path) -> None:
    """What a build may leave (any depth): walked, copied and removed without a RecursionError."""
    src = tmp_path / "src"
    _deep_tree(src, DEEP)
    assert sum(len(files) for _, _, files in walk_tree(src)) == 1
    copy_tree(src, tmp_path / "dst")
    assert sum(1 for _ in walk_tree(tmp_path / "dst")) == DEEP + 1
    remove_tree(src)
    remove_tree(tmp_path / "dst")
    assert sorted(os.listdir(tmp_path)) == []


# -- finding 4: bombs ------------------------------------------------------------------------------

BOMB_BYTES = RATIO_FLOOR + (8 << 20)  # 72 MiB of zeros: past the floor, and compressed far past 100:1


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.n = n

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        k = min(len(b), self.n)
        b[:k] = bytes(k)
        self.n -= k
        return k


def _tar_into(f: Any, n: int) -> None:
    with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("bomb/zeros.bin")
        info.size, info.mode = n, 0o644
        tf.addfile(info, io.BufferedReader(_Zeros(n), 1 << 20))


def make_bomb(kind: str, path: Path, n: int = BOMB_BYTES) -> Path:
    """A tar of ``n`` zero bytes compressed with ``kind``, or a zip of them."""
    if kind == "gzip":
        with gzip.open(path, "wb", compresslevel=9) as f:
            _tar_into(f, n)
    elif kind == "bzip2":
        with bz2.open(path, "wb", compresslevel=9) as f:
            _tar_into(f, n)
    elif kind == "xz":
        with lzma.open(path, "wb", preset=0) as f:
            _tar_into(f, n)
    elif kind == "zstd":
        zstandard = pytest.importorskip("zstandard")
        with open(path, "wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as f:
            _tar_into(f, n)
    else:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            with zf.open("bomb/zeros.bin", "w", force_zip64=True) as f:
                left = n
                while left:
                    k = min(left, 1 << 20)
                    f.write(bytes(k))
                    left -= k
    return path


BOMBS = ("gzip", "xz", "bzip2", "zstd", "zip")


@pytest.mark.parametrize("kind", BOMBS)
def test_a_bomb_is_refused_past_100_times_its_size_and_64_mib(tmp_path: Path, kind: str) -> None:
    bomb = make_bomb(kind, tmp_path / f"bomb.{kind}")
    assert os.path.getsize(bomb) * 100 < BOMB_BYTES  # a bomb indeed
    dest = tmp_path / "out"
    with pytest.raises(UnpackError) as e:
        unpack(bomb, dest)
    assert "100 times its own size" in e.value.message and "64 MiB" in e.value.message
    assert "unpacked-size" in (e.value.hint or "")
    assert not dest.exists()
    assert sorted(os.listdir(tmp_path)) == [bomb.name]


@pytest.mark.parametrize("kind", ("gzip", "zstd"))
def test_a_declared_unpacked_size_lets_the_archive_through_and_caps_it(tmp_path: Path, kind: str) -> None:
    bomb = make_bomb(kind, tmp_path / f"bomb.{kind}")
    members = unpack(bomb, tmp_path / "ok", budget=UnpackBudget.for_declared(BOMB_BYTES))
    assert members == ["zeros.bin"] and (tmp_path / "ok" / "zeros.bin").stat().st_size == BOMB_BYTES
    # the declared size (plus 10 %) is the cap: an archive that writes more is refused
    with pytest.raises(UnpackError) as e:
        unpack(bomb, tmp_path / "small", budget=UnpackBudget.for_declared(BOMB_BYTES // 2))
    assert "declared unpacked-size" in e.value.message
    assert not (tmp_path / "small").exists()
    # just under the declared size plus 10 % passes
    unpack(bomb, tmp_path / "margin", budget=UnpackBudget.for_declared(int(BOMB_BYTES / 1.09)))


def test_an_ordinary_compressible_archive_under_64_mib_is_accepted(tmp_path: Path) -> None:
    """1000:1 is refused only past the floor: a small, very compressible data set is fine."""
    bomb = make_bomb("gzip", tmp_path / "small.tar.gz", n=RATIO_FLOOR - (1 << 20))
    assert unpack(bomb, tmp_path / "out") == ["zeros.bin"]


def test_sync_refuses_a_bomb_and_builds_it_once_the_index_declares_its_size(tmp_path: Path,
                                                                             server: FileServer) -> None:
    bomb = make_bomb("gzip", server.root / "zeros-1.0.tar.gz")
    lines = [line("zeros", "1.0", source_of(server, bomb), COPY),
             line("zeros-declared", "1.0", source_of(server, bomb, **{"unpacked-size": BOMB_BYTES + 4096}), COPY)]
    index = make_index(tmp_path / "index", lines)
    env = ckpm_env(tmp_path)
    proj = make_project(tmp_path / "proj", index, {"zeros": ">=1"})
    r = run_ckpm("sync", cwd=proj, env=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "100 times its own size" in r.stderr and "unpacked-size" in r.stderr
    assert staging_left(tmp_path / "store") == []

    proj2 = make_project(tmp_path / "proj2", index, {"zeros-declared": ">=1"})
    r = run_ckpm("sync", "--json", cwd=proj2, env=env)
    assert r.returncode == 0, r.stderr
    assert 'unpacked-size = ' in (proj2 / "ckpm.lock").read_text()  # the lock carries the declaration
    import json

    (pkg,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "zeros-declared"]
    assert (Path(pkg["path"]) / "share" / "zeros.bin").stat().st_size == BOMB_BYTES


@pytest.mark.parametrize("value", ["big", -1, 1.5, True, [1], 1 << 60])
def test_unpacked_size_must_be_a_byte_count(value: Any) -> None:
    raw = {"name": "x", "version": "1.0", "source": {"urls": ["https://h/x.tgz"], "unpacked-size": value}}
    with pytest.raises(IndexDataError, match="unpacked-size"):
        check_entry(raw)


# -- git trees: the other kind of unpacked tree --------------------------------------------------------

def _deep_git_repo(path: Path, depth: int) -> tuple[Any, str]:
    """A bare repository whose one commit holds ``ckpm.toml`` and a file ``depth`` folders deep."""
    import pygit2

    repo = pygit2.init_repository(str(path), bare=True)
    tb = repo.TreeBuilder()
    tb.insert("f", repo.create_blob(b"bottom\n"), pygit2.GIT_FILEMODE_BLOB)
    tree = tb.write()
    for _ in range(depth):
        tb = repo.TreeBuilder()
        tb.insert("a", tree, pygit2.GIT_FILEMODE_TREE)
        tree = tb.write()
    tb = repo.TreeBuilder(repo[tree])
    tb.insert("ckpm.toml", repo.create_blob(b'[component]\nname = "deep"\nversion = "1.0.0"\n'),
              pygit2.GIT_FILEMODE_BLOB)
    sig = pygit2.Signature("t", "t@example.org", 0, 0)
    commit = repo.create_commit("refs/heads/main", sig, sig, "deep", tb.write(), [])
    repo.create_reference("refs/tags/v1.0.0", commit)
    return repo, str(commit)


@pytest.mark.parametrize("depth,ok", [(DEEP, False), (MAX_DEPTH - 1, True)])
def test_a_deep_git_tree_is_exported_or_refused_without_recursion(tmp_path: Path, depth: int, ok: bool) -> None:
    from ckpm.errors import GitSourceError
    from ckpm.index.archive import tree_cksum_of
    from ckpm.index.gitsource import GitComponentSource

    repo, commit = _deep_git_repo(tmp_path / "deep.git", depth)
    assert tree_cksum_of(repo, commit).startswith("sha256:")  # hashed with an explicit stack, any depth
    src = GitComponentSource(str(tmp_path / "deep.git"), cache_dir=tmp_path / "cache")
    dest = tmp_path / "export"
    if ok:
        src.export(commit, dest)
        assert (dest / "/".join(["a"] * depth) / "f").read_text() == "bottom\n"
    else:
        with pytest.raises(GitSourceError, match="folders deep"):
            src.export(commit, dest)
