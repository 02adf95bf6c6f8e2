"""Safe unpacking: a corpus of hostile archives, built here byte by byte, and good ones of every kind.

Every refusal is checked the same way (:func:`refused`): an UnpackError naming the member,
the destination absent, no hidden work folder left beside it, and a canary folder beside
the destination untouched.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import stat
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable

import pytest

from ckpm.errors import UnpackError
from ckpm.fsutil import current_umask
from ckpm.store.unpack import UnpackBudget, archive_kind, unpack

UMASK = current_umask()

# -- building archives -------------------------------------------------------------------------------

Member = tuple  # ("file", name, data[, mode]) | ("dir", name) | ("sym", name, target) | ("link", name, target) | ("type", name, tartype)


def tar_bytes(members: Iterable[Member], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar holding exactly ``members`` (tarfile writes any name or type it is given)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for m in members:
            info = tarfile.TarInfo(m[1])
            info.mtime = 1_600_000_000
            if m[0] == "file":
                info.size = len(m[2])
                info.mode = m[3] if len(m) > 3 else 0o644
                tf.addfile(info, io.BytesIO(m[2]))
                continue
            if m[0] == "dir":
                info.type, info.mode = tarfile.DIRTYPE, (m[2] if len(m) > 2 else 0o755)
            elif m[0] == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, m[2]
            elif m[0] == "link":
                info.type, info.linkname = tarfile.LNKTYPE, m[2]
            elif m[0] == "type":
                info.type = m[2]
            tf.addfile(info)
    return buf.getvalue()


def write_tar(path: Path, members: Iterable[Member], compression: str = "") -> Path:
    data = tar_bytes(members)
    if compression == "gz":
        data = gzip.compress(data)
    elif compression == "bz2":
        data = bz2.compress(data)
    elif compression == "xz":
        data = lzma.compress(data)
    elif compression == "zst":
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def zip_file(path: Path, members: Iterable[Member]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for m in members:
            info = zipfile.ZipInfo(m[1], date_time=(2020, 9, 13, 12, 26, 40))
            info.create_system = 3
            if m[0] == "file":
                info.external_attr = (stat.S_IFREG | (m[3] if len(m) > 3 else 0o644)) << 16
                zf.writestr(info, m[2], zipfile.ZIP_DEFLATED)
            elif m[0] == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
                zf.writestr(info, b"")
            elif m[0] == "sym":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, m[2].encode())
            elif m[0] == "mode":  # a raw st_mode (FIFO, device…)
                info.external_attr = m[2] << 16
                zf.writestr(info, b"")
    return path


@pytest.fixture
def place(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, canary): dest does not exist yet; canary is an empty folder beside it."""
    (tmp_path / "out").mkdir()
    canary = tmp_path / "out" / "canary"
    canary.mkdir()
    return tmp_path / "out" / "dest", canary


def refused(archive: Path, dest: Path, canary: Path, member: str, *, budget: UnpackBudget = UnpackBudget(),
            strip: str | int = "auto", says: str = "") -> UnpackError:
    """Unpacking is refused, names ``member``, and leaves nothing behind."""
    with pytest.raises(UnpackError) as info:
        unpack(archive, dest, budget=budget, strip=strip)
    err = info.value
    assert str(archive) in err.message
    assert member in err.message, err.message
    assert says in err.message, err.message
    assert not dest.exists() and not dest.is_symlink()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["canary"]  # no hidden work folder
    assert list(canary.iterdir()) == []
    assert not (canary.parent.parent / "evil").exists()
    return err


# -- hostile tars ----------------------------------------------------------------------------------------

HOSTILE_TARS: list[tuple[str, list[Member], str, str]] = [
    ("dotdot", [("file", "pkg/ok", b"x"), ("file", "pkg/../../canary/evil", b"x")], "pkg/../../canary/evil", "'..'"),
    ("dotdot-first", [("file", "../evil", b"x")], "../evil", "'..'"),
    ("absolute", [("file", "/tmp/evil-ckpm-test", b"x")], "/tmp/evil-ckpm-test", "absolute"),
    ("drive", [("file", "C:/evil", b"x")], "C:/evil", "drive letter"),
    ("backslash", [("file", "..\\..\\evil", b"x")], "evil", "backslash"),
    ("empty-name", [("file", "", b"x")], "''", "empty name"),
    ("symlink-absolute", [("sym", "pkg/etc", "/etc")], "pkg/etc", "absolute"),
    ("symlink-up", [("sym", "pkg/up", "../../canary")], "pkg/up", "leaves the destination"),
    ("symlink-dotdot-root", [("sym", "a", "..")], "'a'", "leaves the destination"),
    ("symlink-then-file", [("sym", "a", "."), ("file", "a/passwd", b"x")], "a/passwd", "symlink"),
    ("symlink-dir-then-member", [("dir", "d"), ("dir", "d/sub"), ("sym", "d/l", "sub"), ("file", "d/l/f", b"x")],
     "d/l/f", "symlink"),
    ("symlink-parent-dotdot", [("dir", "d"), ("sym", "d/up", ".."), ("file", "d/up/x", b"x")], "d/up/x", "symlink"),
    # the chain that escaped 3.11's filter="data": a link to the root, then a link that climbs through it
    ("symlink-chain", [("dir", "s/d", 0o755), ("sym", "s/d/a", "../.."), ("sym", "s/d/b", "a/../../../evil")],
     "s/d/b", "climbs"),
    ("hardlink-escape", [("file", "f", b"x"), ("link", "h", "../canary/f")], "'h'", "'..'"),
    ("hardlink-absolute", [("link", "h", "/etc/passwd")], "'h'", "absolute"),
    ("hardlink-missing", [("link", "h", "later"), ("file", "later", b"x")], "'h'", "not a regular file"),
    ("hardlink-to-symlink", [("sym", "s", "t"), ("link", "h", "s")], "'h'", "not a regular file"),
    ("chr-device", [("type", "dev/null", tarfile.CHRTYPE)], "dev/null", "device"),
    ("blk-device", [("type", "dev/sda", tarfile.BLKTYPE)], "dev/sda", "device"),
    ("fifo", [("type", "pipe", tarfile.FIFOTYPE)], "pipe", "FIFO"),
    ("unknown-type", [("type", "odd", b"Z")], "odd", "member type"),
    ("dup-file-then-symlink", [("file", "f", b"x"), ("sym", "f", "g")], "'f'", "twice"),
    ("dup-symlink-then-file", [("sym", "f", "g"), ("file", "f", b"x")], "'f'", "twice"),
    ("dup-dir-then-file", [("dir", "d"), ("file", "d", b"x")], "'d'", "twice"),
    ("file-as-parent", [("file", "f", b"x"), ("file", "f/g", b"x")], "f/g", "not a folder"),
    ("control-chars", [("file", "a\x1b[31m/../../evil", b"x")], "\\x1b[31m", "'..'"),
]


@pytest.mark.parametrize("members,member,says", [pytest.param(m, n, s, id=i) for i, m, n, s in HOSTILE_TARS])
def test_hostile_tar_is_refused(tmp_path: Path, place: tuple[Path, Path], members: list[Member], member: str,
                                says: str) -> None:
    dest, canary = place
    archive = write_tar(tmp_path / "a.tar", members)
    err = refused(archive, dest, canary, member, says=says)
    assert "\x1b" not in err.message


def test_hostile_zip_names_are_refused(tmp_path: Path, place: tuple[Path, Path]) -> None:
    dest, canary = place
    for i, (name, says) in enumerate([("../evil", "'..'"), ("ok/../../evil", "'..'"), ("/abs", "absolute"),
                                      ("..\\evil", "backslash"), ("C:/x", "drive letter")]):
        archive = zip_file(tmp_path / f"z{i}.zip", [("file", "fine", b"x"), ("file", name, b"x")])
        refused(archive, dest, canary, name.replace("\\", "\\\\"), says=says)


def test_hostile_zip_symlinks_and_types_are_refused(tmp_path: Path, place: tuple[Path, Path]) -> None:
    dest, canary = place
    cases: list[tuple[list[Member], str, str]] = [
        ([("sym", "l", "../canary")], "'l'", "leaves the destination"),
        ([("sym", "l", "/etc")], "'l'", "absolute"),
        ([("sym", "l", "."), ("file", "l/f", b"x")], "l/f", "symlink"),
        ([("mode", "p", stat.S_IFIFO | 0o644)], "'p'", "FIFO"),
        ([("mode", "c", stat.S_IFCHR | 0o644)], "'c'", "device"),
        ([("mode", "s", stat.S_IFSOCK | 0o644)], "'s'", "socket"),
    ]
    for i, (members, member, says) in enumerate(cases):
        refused(zip_file(tmp_path / f"z{i}.zip", members), dest, canary, member, says=says)


def test_symlink_that_auto_strip_would_make_escape(tmp_path: Path, place: tuple[Path, Path]) -> None:
    dest, canary = place
    archive = write_tar(tmp_path / "a.tar", [("file", "pkg/f", b"x"), ("sym", "pkg/l", "../elsewhere")])
    refused(archive, dest, canary, "pkg/l", says="strip")
    members = unpack(archive, dest, strip=0)  # without strip the link stays inside
    assert os.readlink(dest / "pkg" / "l") == "../elsewhere" and members == ["pkg/f", "pkg/l"]


# -- bombs ------------------------------------------------------------------------------------------------

BOMB = 200 << 20  # bytes of zeros, compressed to a few hundred kB
SMALL = UnpackBudget(max_bytes=10 << 20)


def _zeros(write: Callable[[bytes], object], total: int) -> None:
    block = bytes(1 << 20)
    for _ in range(total // len(block)):
        write(block)


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bombs") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("pkg/readme", b"hello")
        with zf.open("pkg/zeros", "w") as f:
            _zeros(f.write, BOMB)
    assert path.stat().st_size < 2 << 20
    return path


def test_zip_bomb_stops_at_the_budget(tmp_path: Path, place: tuple[Path, Path], zip_bomb: Path) -> None:
    dest, canary = place
    refused(zip_bomb, dest, canary, "pkg/zeros", budget=SMALL, says="budget")


def test_zip_bomb_stops_at_the_ratio(tmp_path: Path, place: tuple[Path, Path], zip_bomb: Path) -> None:
    dest, canary = place
    refused(zip_bomb, dest, canary, "pkg/zeros", budget=UnpackBudget(max_ratio=20), says="times its own size")


def _patch_zip_sizes(path: Path, member: bytes, size: int) -> None:
    """Make the local and central headers of ``member`` claim ``size`` uncompressed bytes."""
    data = bytearray(path.read_bytes())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (local := data.find(sig, start)) >= 0:
            name_at = local + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(member)] == member:
                struct.pack_into("<I", data, local + off, size)
            start = local + 4
    path.write_bytes(bytes(data))


def test_zip_whose_headers_lie_about_the_size(tmp_path: Path, place: tuple[Path, Path], zip_bomb: Path) -> None:
    """Headers claiming 1 kB over 200 MB of data: refused (the data does not match), nothing left."""
    dest, canary = place
    liar = tmp_path / "liar.zip"
    liar.write_bytes(zip_bomb.read_bytes())
    _patch_zip_sizes(liar, b"pkg/zeros", 1000)
    assert zipfile.ZipFile(liar).getinfo("pkg/zeros").file_size == 1000
    refused(liar, dest, canary, "pkg/zeros", budget=SMALL)
    # and headers that claim more than there is: the budget counts real bytes, not the claim
    big = tmp_path / "big.zip"
    big.write_bytes(zip_bomb.read_bytes())
    _patch_zip_sizes(big, b"pkg/zeros", 0xFFFFFFF0)
    refused(big, dest, canary, "pkg/zeros", budget=SMALL, says="budget")


def test_tar_bomb_by_size(tmp_path: Path, place: tuple[Path, Path]) -> None:
    dest, canary = place
    archive = tmp_path / "bomb.tar.gz"
    with gzip.open(archive, "wb", compresslevel=1) as gz:
        info = tarfile.TarInfo("pkg/zeros")
        info.size = BOMB
        gz.write(info.tobuf(tarfile.PAX_FORMAT))
        _zeros(gz.write, BOMB)
        gz.write(bytes(1024))
    refused(archive, dest, canary, "pkg/zeros", budget=SMALL, says="budget")


def test_tar_bomb_by_file_count(tmp_path: Path, place: tuple[Path, Path]) -> None:
    dest, canary = place
    archive = write_tar(tmp_path / "many.tar.gz", [("file", f"pkg/f{i}", b"") for i in range(3000)], "gz")
    refused(archive, dest, canary, "pkg/f1000", budget=UnpackBudget(max_files=1000), says="1000 members")
    zarchive = zip_file(tmp_path / "many.zip", [("file", f"pkg/f{i}", b"") for i in range(300)])
    refused(zarchive, dest, canary, "pkg/f100", budget=UnpackBudget(max_files=100), says="100 members")


def test_huge_tar_header_is_refused(tmp_path: Path, place: tuple[Path, Path]) -> None:
    """A pax header of 20 MB (a 'path' record) is not read into memory whole."""
    dest, canary = place
    archive = write_tar(tmp_path / "pax.tar.gz", [("file", "pkg/ok", b"x"), ("file", "pkg/" + "a" * (20 << 20), b"x")],
                        "gz")
    refused(archive, dest, canary, "pkg/ok", says="MiB")


def test_truncated_archive_is_refused(tmp_path: Path, place: tuple[Path, Path]) -> None:
    dest, canary = place
    data = gzip.compress(tar_bytes([("file", "pkg/a", b"x" * 100_000), ("file", "pkg/b", b"y")]))
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(data[: len(data) // 2])
    refused(archive, dest, canary, "", says="pkg/a")


# -- good archives ------------------------------------------------------------------------------------------

GOOD: list[Member] = [
    ("dir", "pkg-1.0", 0o775),
    ("file", "pkg-1.0/README", b"read me\n", 0o664),
    ("dir", "pkg-1.0/bin", 0o1777),
    ("file", "pkg-1.0/bin/tool", b"#!/bin/sh\necho hi\n", 0o4755),
    ("file", "pkg-1.0/bin/sgid", b"", 0o2644),
    ("file", "pkg-1.0/lib/libx.so.1", b"\x7fELF...", 0o755),
    ("sym", "pkg-1.0/lib/libx.so", "libx.so.1"),
    ("sym", "pkg-1.0/lib/share", "../share/doc"),
    ("file", "pkg-1.0/share/doc/a.txt", b"doc"),
]
EXPECTED = ["README", "bin", "bin/tool", "bin/sgid", "lib/libx.so.1", "lib/libx.so", "lib/share", "share/doc/a.txt"]


def check_good(dest: Path, members: list[str], *, hardlink: bool) -> None:
    assert members == EXPECTED + (["lib/hard"] if hardlink else [])
    assert (dest / "README").read_bytes() == b"read me\n"
    mode = lambda p: stat.S_IMODE(os.lstat(dest / p).st_mode)  # noqa: E731
    assert mode("README") == 0o644 & ~UMASK
    assert mode("bin/tool") == 0o755 & ~UMASK  # setuid dropped, executable kept
    assert mode("bin/sgid") == 0o644 & ~UMASK
    assert mode("bin") == 0o755 & ~UMASK  # sticky dropped
    assert mode(".") == 0o755 & ~UMASK
    assert os.readlink(dest / "lib" / "libx.so") == "libx.so.1"
    assert (dest / "lib" / "libx.so").read_bytes() == b"\x7fELF..."
    assert (dest / "lib" / "share" / "a.txt").read_bytes() == b"doc"
    if hardlink:
        assert os.stat(dest / "lib" / "hard").st_ino == os.stat(dest / "lib" / "libx.so.1").st_ino
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz", "zst"])
def test_good_tar_of_every_kind(tmp_path: Path, compression: str) -> None:
    if compression == "zst":
        pytest.importorskip("zstandard")
    archive = write_tar(tmp_path / "good.tar", GOOD + [("link", "pkg-1.0/lib/hard", "pkg-1.0/lib/libx.so.1")],
                        compression)
    assert archive_kind(archive) == ("tar." + compression if compression else "tar")
    dest = tmp_path / "dest"
    check_good(dest, unpack(archive, dest), hardlink=True)
    assert os.stat(dest / "README").st_mtime == 1_600_000_000


def test_zstd_without_a_module_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # hide both zstd modules (an entry of None makes the import fail), whatever is installed
    monkeypatch.setitem(sys.modules, "zstandard", None)
    monkeypatch.setitem(sys.modules, "compression", None)
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    archive = tmp_path / "good.tar.zst"
    archive.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(64))  # the zstd magic is all archive_kind can see
    assert archive_kind(archive) == "tar.zst"
    with pytest.raises(UnpackError, match="zstandard"):
        unpack(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_good_zip(tmp_path: Path) -> None:
    archive = zip_file(tmp_path / "good.zip", GOOD)
    assert archive_kind(archive) == "zip"
    dest = tmp_path / "dest"
    check_good(dest, unpack(archive, dest), hardlink=False)


def test_strip_counts_and_existing_empty_dest(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "good.tar.gz", GOOD, "gz")
    assert unpack(archive, tmp_path / "s0", strip=0)[:2] == ["pkg-1.0", "pkg-1.0/README"]
    assert (tmp_path / "s0" / "pkg-1.0" / "bin" / "tool").is_file()
    assert unpack(archive, tmp_path / "s1", strip=1) == EXPECTED
    with pytest.raises(UnpackError, match="lib/share' is a symlink to '../share/doc', which leaves"):
        unpack(archive, tmp_path / "s2", strip=2)  # stripped, the link would climb out of dest
    assert not (tmp_path / "s2").exists()
    flat = write_tar(tmp_path / "flat.tar", [f for f in GOOD if f[1] != "pkg-1.0/lib/share"])
    assert unpack(flat, tmp_path / "s2", strip=2) == ["tool", "sgid", "libx.so.1", "libx.so", "doc/a.txt"]
    (tmp_path / "empty").mkdir()
    assert unpack(archive, tmp_path / "empty") == EXPECTED
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UnpackError, match="not empty"):
        unpack(archive, tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "x"


def test_auto_strip_keeps_several_top_entries(tmp_path: Path) -> None:
    archive = zip_file(tmp_path / "flat.zip", [("file", "a", b"1"), ("file", "b/c", b"2")])
    assert unpack(archive, tmp_path / "d") == ["a", "b/c"]
    single = write_tar(tmp_path / "one.tar", [("file", "only-file", b"1")])
    assert unpack(single, tmp_path / "e") == ["only-file"]
    dotted = write_tar(tmp_path / "dot.tar", [("dir", "./"), ("dir", "./pkg"), ("file", "./pkg/x", b"1")])
    assert unpack(dotted, tmp_path / "f") == ["x"]


def test_duplicates_a_file_may_replace_a_file(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "dup.tar", [("file", "p/f", b"old"), ("dir", "p/d"), ("dir", "p/d"),
                                               ("file", "p/f", b"new", 0o755)])
    assert unpack(archive, tmp_path / "d") == ["f", "d"]
    assert (tmp_path / "d" / "f").read_bytes() == b"new"
    assert stat.S_IMODE((tmp_path / "d" / "f").stat().st_mode) == 0o755 & ~UMASK


def test_archive_kind_is_by_content(tmp_path: Path) -> None:
    (tmp_path / "data.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n" * 100))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "good.tgz.bin").write_bytes(gzip.compress(tar_bytes(GOOD)))
    (tmp_path / "x.xz").write_bytes(lzma.compress(b"plain"))
    assert archive_kind(tmp_path / "data.csv.gz") is None
    assert archive_kind(tmp_path / "notes.txt") is None
    assert archive_kind(tmp_path / "x.xz") is None
    assert archive_kind(tmp_path / "good.tgz.bin") == "tar.gz"
    with pytest.raises(UnpackError, match="not an archive"):
        unpack(tmp_path / "notes.txt", tmp_path / "d")
    assert not (tmp_path / "d").exists()
