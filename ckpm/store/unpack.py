"""Safe unpacking of tar (plain, gz, bz2, xz, zst) and zip archives.

An archive is data written by someone else, so nothing in it is trusted: not the member
names, not the link targets, not the sizes in the headers. Python's own extraction filters
are not used (3.11's ``filter="data"`` still let a crafted chain of symlinks escape); every
member is checked here and every file, folder and link is created here:

- a member name is split on ``/`` and refused when it is empty, absolute, has a drive letter,
  a backslash, a NUL byte or a ``..`` component;
- a member is never written through a symlink: each parent folder must be a folder this
  extraction created itself (the record of what was made, not the file system, decides), and
  files are opened with ``O_CREAT | O_EXCL | O_NOFOLLOW``;
- a symlink's target must be relative, and of the form ``../../a/b``: its ``..`` steps
  come first and may not climb above the destination, and no ``..`` follows a name (a name
  could itself be a symlink, which would make ``a/..`` mean something else than it reads);
  with that shape, every link, followed by the kernel, stays inside the destination;
- a hard link must name a regular file this extraction already wrote;
- devices, FIFOs and anything else are refused; setuid, setgid and sticky bits are dropped;
  files become 0o644, or 0o755 when an executable bit was set (less the umask); folders 0o755;
- a budget bounds the bytes actually written (counted while writing), the number of members,
  the depth of folders, and the ratio to the archive's size (past a floor), so a
  decompression bomb stops early; an index line that declares ``unpacked-size`` replaces
  the ratio with that size (plus 10 %);
- the extraction happens in a hidden folder beside ``dest`` and is renamed onto ``dest`` only
  when the whole archive was accepted: a refused archive leaves nothing behind.
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Iterator, cast

from ckpm.errors import UnpackError
from ckpm.fsutil import current_umask
from ckpm.report import escape_control

#: the archive kinds :func:`archive_kind` names
KINDS = ("tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst", "zip")
MAX_NAME = 4096  # characters in a member name or a link target
HEADER_CAP = 16 << 20  # bytes tarfile may read for one member's headers (pax, GNU long names)
CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


#: default limits (docs/formats.md, "Limits")
MAX_UNPACKED_BYTES = 8 << 30  # bytes written, whatever the ratio
MAX_MEMBERS = 100_000
MAX_RATIO = 100  # bytes written / archive size ...
RATIO_FLOOR = 64 << 20  # ... enforced once more than this many bytes were written
MAX_DEPTH = 128  # components of a member's path (folders nested inside the destination)
DECLARED_MARGIN = 10  # percent over a declared unpacked-size that is still accepted


@dataclass(frozen=True)
class UnpackBudget:
    """Limits that stop a decompression bomb: counted on what is written, never on headers.

    An archive is refused when what it writes passes ``max_bytes``, or passes both
    ``max_ratio`` times its own size and ``ratio_floor`` bytes; or when it has more than
    ``max_files`` members or a member deeper than ``max_depth`` components.
    """

    max_bytes: int = MAX_UNPACKED_BYTES  # total bytes written
    max_files: int = MAX_MEMBERS  # members
    max_ratio: int | None = MAX_RATIO  # bytes written / archive size (None: no ratio)
    ratio_floor: int = RATIO_FLOOR  # the ratio applies only past this many bytes written
    max_depth: int = MAX_DEPTH  # components of a member's path
    declared: int | None = None  # the unpacked-size an index line declared (max_bytes is derived from it)

    @classmethod
    def for_declared(cls, unpacked_size: int | None) -> "UnpackBudget":
        """The default budget, or, for an archive whose index line declares ``unpacked-size``,
        that size plus :data:`DECLARED_MARGIN` percent as the only bound on bytes (no ratio)."""
        if unpacked_size is None:
            return cls()
        if isinstance(unpacked_size, bool) or not isinstance(unpacked_size, int) or unpacked_size < 0:
            raise ValueError(f"unpacked-size must be a byte count, not {unpacked_size!r}")
        return cls(max_bytes=unpacked_size + unpacked_size * DECLARED_MARGIN // 100, max_ratio=None,
                   declared=unpacked_size)


class _Refused(Exception):
    """One member (or the archive itself, when ``member`` is None) is refused: ``reason`` says why."""

    def __init__(self, member: str | None, reason: str) -> None:
        super().__init__(reason)
        self.member = member
        self.reason = reason


class _Bomb(_Refused):
    """The archive writes more than its budget allows."""


# -- what kind of archive -------------------------------------------------------------------

def archive_kind(path: Path) -> str | None:
    """The archive's kind from its magic bytes (one of :data:`KINDS`), or None for any other file.

    A compressed file is a ``tar.*`` only when its first 512 decompressed bytes are a valid
    tar header (a plain ``data.csv.gz`` is not an archive); a zstd file is taken on its magic
    alone when no zstd module is installed.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(512)
            kind = _magic_kind(head)
            if kind in ("zip", None):
                return kind
            if kind == "tar":
                return "tar" if _is_tar_header(head) else None
            f.seek(0)
            try:
                block = _read_upto(_tar_stream(f, kind, Path(path)), 512)
            except UnpackError:
                return kind  # zstd without a zstd module: taken on its magic
            except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError):
                return kind  # corrupt: unpack() says so
            return kind if _is_tar_header(block) else None
    except IsADirectoryError:
        return None


def _magic_kind(head: bytes) -> str | None:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    for magic, kind in ((b"\x1f\x8b", "tar.gz"), (b"BZh", "tar.bz2"), (b"\xfd7zXZ\x00", "tar.xz"),
                        (b"\x28\xb5\x2f\xfd", "tar.zst")):
        if head.startswith(magic):
            return kind
    return "tar"


def _read_upto(stream: IO[bytes], n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _is_tar_header(block: bytes) -> bool:
    """True when ``block`` is a tar header with a valid checksum (an all-zero block is not)."""
    if len(block) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _zstd_reader(raw: BinaryIO, archive: Path) -> IO[bytes]:
    """A reader of the zstd-decompressed ``raw``: Python 3.14's ``compression.zstd``, else ``zstandard``."""
    try:
        from compression import zstd  # type: ignore[import-not-found]

        return zstd.ZstdFile(raw)  # type: ignore[no-any-return]
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        raise UnpackError(f"cannot unpack {_show_path(archive)}: it is compressed with zstd, and neither "
                          "Python's compression.zstd (3.14+) nor the 'zstandard' module is available",
                          hint="pip install zstandard (in the environment that runs ckpm)") from None
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[no-any-return]


# -- names and link targets -------------------------------------------------------------------

def _split_name(name: str) -> tuple[str, ...]:
    """The components of a member name, or :class:`ValueError` saying why it is refused."""
    if not name:
        raise ValueError("has an empty name")
    if len(name) > MAX_NAME:
        raise ValueError(f"has a name longer than {MAX_NAME} characters")
    if "\x00" in name:
        raise ValueError("has a NUL byte in its name")
    if "\\" in name:
        raise ValueError("has a backslash in its name (a Windows path separator)")
    if name.startswith("/"):
        raise ValueError("is an absolute path")
    if _DRIVE.match(name):
        raise ValueError("starts with a drive letter")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ValueError("has a '..' component")
    if os.name == "nt" and any(":" in p for p in parts):  # pragma: no cover - Windows streams
        raise ValueError("has a ':' in its name (an alternate data stream on Windows)")
    return parts


def _link_ups(target: str) -> int:
    """How many ``..`` steps a symlink target starts with, or :class:`ValueError` when its shape is refused."""
    if not target:
        raise ValueError("is a symlink with an empty target")
    if len(target) > MAX_NAME:
        raise ValueError(f"is a symlink whose target is longer than {MAX_NAME} characters")
    if "\x00" in target or "\\" in target:
        raise ValueError(f"is a symlink whose target {target!r} holds a NUL byte or a backslash")
    if target.startswith("/") or _DRIVE.match(target):
        raise ValueError(f"is a symlink to an absolute path ({target!r})")
    ups, named = 0, False
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            named = True
        elif named:
            raise ValueError(f"is a symlink whose target {target!r} climbs ('..') after a name; another "
                             "symlink on the way could make it leave the destination")
        else:
            ups += 1
    return ups


def _show(name: str) -> str:
    """A member name quoted for a message, control characters escaped."""
    return escape_control(repr(name))


def _show_path(path: Path) -> str:
    return escape_control(str(path))


# -- the extraction ------------------------------------------------------------------------------

class _CountingReader(io.RawIOBase):
    """The decompressed tar stream, bounding what tarfile reads between two members (its headers)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self.stream = stream
        self.count = 0
        self.limit: int | None = None

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        if self.limit is not None:
            n = min(n, self.limit - self.count + 1)
        data = self.stream.read(n)
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise _Refused(None, f"a member's headers take more than {HEADER_CAP >> 20} MiB")
        return data

    def readinto(self, b: "bytearray | memoryview") -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


@dataclass
class _Extraction:
    """What one extraction made so far, and the rules for what it may make next."""

    root: Path
    budget: UnpackBudget
    archive_size: int
    strip: int
    kinds: dict[tuple[str, ...], str] = field(default_factory=dict)  # "dir", "file", "symlink"
    members: dict[tuple[str, ...], None] = field(default_factory=dict)  # explicit members, in order
    symlinks: list[tuple[tuple[str, ...], int, str]] = field(default_factory=list)  # (path, ups, raw name)
    written: int = 0
    count: int = 0

    # budget

    def begin(self, raw: str) -> None:
        """Count one more member."""
        self.count += 1
        if self.count > self.budget.max_files:
            raise _Refused(raw, f"is one member too many: the budget is {self.budget.max_files} members")

    def _account(self, n: int, raw: str) -> None:
        self.written += n
        b = self.budget
        if self.written > b.max_bytes:
            if b.declared is not None:
                raise _Bomb(raw, f"takes the archive past its declared unpacked-size of {b.declared} bytes "
                                 f"(+{DECLARED_MARGIN} %)")
            raise _Bomb(raw, f"takes the archive past the budget of {b.max_bytes} bytes written "
                             "(a decompression bomb?)")
        if (b.max_ratio is not None and self.written > b.ratio_floor
                and self.written > b.max_ratio * max(self.archive_size, 1)):
            raise _Bomb(raw, f"takes the archive past {b.max_ratio} times its own size ({self.archive_size} "
                             f"bytes) and past {b.ratio_floor >> 20} MiB written (a decompression bomb?)")

    # names

    def parts(self, raw: str) -> tuple[str, ...] | None:
        """The validated path of member ``raw`` after stripping (None: stripped away entirely)."""
        try:
            parts = _split_name(raw)
        except ValueError as e:
            raise _Refused(raw, str(e)) from None
        if len(parts) > self.budget.max_depth:
            raise _Refused(raw, f"is nested {len(parts)} folders deep; ckpm unpacks at most "
                                f"{self.budget.max_depth}")
        if self.strip:
            return parts[self.strip:] or None
        return parts

    def _parent(self, parts: tuple[str, ...], raw: str) -> None:
        """Make the parent folders of ``parts`` (never through a symlink or a file)."""
        for i in range(1, len(parts)):
            pre = parts[:i]
            kind = self.kinds.get(pre)
            if kind == "dir":
                continue
            if kind == "symlink":
                raise _Refused(raw, f"lies under {'/'.join(pre)!r}, a symlink in the archive: "
                                    "nothing is written through a symlink")
            if kind is not None:
                raise _Refused(raw, f"lies under {'/'.join(pre)!r}, which is a {kind}, not a folder")
            self._os(raw, os.mkdir, self.root.joinpath(*pre), 0o755)
            self.kinds[pre] = "dir"

    def _claim(self, parts: tuple[str, ...], raw: str, kind: str) -> bool:
        """Check a member against what already has its name; True when it is a folder already there."""
        old = self.kinds.get(parts)
        if old is None:
            return False
        if old == kind == "dir":
            return True
        if old == kind == "file":
            self._os(raw, os.unlink, self.root.joinpath(*parts))
            del self.kinds[parts]
            return False
        raise _Refused(raw, f"appears twice (a {old}, then a {kind}); only a regular file may replace "
                            "a regular file")

    def _os(self, raw: str, fn: "object", *args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)  # type: ignore[operator]
        except OSError as e:
            raise _Refused(raw, f"cannot be written: {e.strerror or e}") from None

    def _done(self, parts: tuple[str, ...], kind: str) -> None:
        self.kinds[parts] = kind
        self.members[parts] = None

    # members

    def directory(self, raw: str) -> None:
        parts = self.parts(raw)
        if not parts:  # stripped away, or the destination itself ("./")
            return
        self._parent(parts, raw)
        if not self._claim(parts, raw, "dir"):
            self._os(raw, os.mkdir, self.root.joinpath(*parts), 0o755)
        self._done(parts, "dir")

    def file(self, raw: str, data: IO[bytes], executable: bool, mtime: float | None) -> None:
        parts = self.parts(raw)
        if parts is None:
            self._skip(raw, data)
            return
        if not parts:
            raise _Refused(raw, "is a file named like the destination folder itself")
        self._parent(parts, raw)
        self._claim(parts, raw, "file")
        path = self.root.joinpath(*parts)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY | _O_CLOEXEC
        fd = self._os(raw, os.open, path, flags, 0o755 if executable else 0o644)
        assert isinstance(fd, int)
        self._done(parts, "file")
        try:
            while True:
                chunk = self._read(raw, data)
                if not chunk:
                    break
                self._account(len(chunk), raw)
                view = memoryview(chunk)
                while view:
                    n = self._os(raw, os.write, fd, view)
                    assert isinstance(n, int)
                    view = view[n:]
            if mtime is not None and os.utime in os.supports_fd:
                with contextlib.suppress(OSError, ValueError, OverflowError):
                    os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)

    def _read(self, raw: str, data: IO[bytes]) -> bytes:
        try:
            return data.read(CHUNK)
        except _Refused:
            raise
        except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError,
                RuntimeError, NotImplementedError) as e:
            raise _Refused(raw, f"cannot be read: {e}") from None

    def _skip(self, raw: str, data: IO[bytes]) -> None:
        """Read a member that strip drops, counting it as written (its bytes are decompressed all the same)."""
        while chunk := self._read(raw, data):
            self._account(len(chunk), raw)

    def symlink(self, raw: str, target: str) -> None:
        parts = self.parts(raw)
        if parts is None:
            return
        if not parts:
            raise _Refused(raw, "is a symlink named like the destination folder itself")
        try:
            ups = _link_ups(target)
        except ValueError as e:
            raise _Refused(raw, str(e)) from None
        if ups > len(parts) - 1:
            raise _Refused(raw, f"is a symlink to {target!r}, which leaves the destination")
        self._parent(parts, raw)
        self._claim(parts, raw, "symlink")
        self._os(raw, os.symlink, target, self.root.joinpath(*parts))
        self._done(parts, "symlink")
        self.symlinks.append((parts, ups, raw))

    def hardlink(self, raw: str, target: str) -> None:
        parts = self.parts(raw)
        if parts is None:
            return
        if not parts:
            raise _Refused(raw, "is a hard link named like the destination folder itself")
        try:
            tparts = self.parts(target)
        except _Refused as e:
            raise _Refused(raw, f"is a hard link whose target {target!r} {e.reason}") from None
        if not tparts or self.kinds.get(tparts) != "file":
            raise _Refused(raw, f"is a hard link to {target!r}, which is not a regular file extracted before it")
        self._parent(parts, raw)
        self._claim(parts, raw, "hard link")
        self._os(raw, os.link, self.root.joinpath(*tparts), self.root.joinpath(*parts), follow_symlinks=False)
        self._done(parts, "file")

    # the end

    def finish(self, auto: bool) -> tuple[Path, list[str]]:
        """The folder that becomes ``dest`` and the member paths relative to it (``auto``: drop a common top folder)."""
        top: str | None = None
        if auto and self.members:
            tops = {p[0] for p in self.members if p}
            deep = any(len(p) > 1 for p in self.members)
            if len(tops) == 1 and deep and all(self.members) and self.kinds.get((next(iter(tops)),)) == "dir":
                top = next(iter(tops))
        if top is None:
            return self.root, ["/".join(p) for p in self.members if p]
        for parts, ups, raw in self.symlinks:
            if ups > len(parts) - 2:
                raise _Refused(raw, f"is a symlink that would leave the destination once the top folder "
                                    f"{top!r} is dropped (strip='auto'); unpack with strip=0")
        return self.root / top, ["/".join(p[1:]) for p in self.members if len(p) > 1]


# -- the two formats ------------------------------------------------------------------------------------

def _tar_stream(raw: BinaryIO, kind: str, archive: Path) -> IO[bytes]:
    if kind == "tar":
        return raw
    if kind == "tar.gz":
        return cast("IO[bytes]", gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "tar.bz2":
        return bz2.BZ2File(raw)
    if kind == "tar.xz":
        return lzma.LZMAFile(raw)
    return _zstd_reader(raw, archive)


def _unpack_tar(archive: Path, kind: str, ex: _Extraction) -> None:
    with open(archive, "rb") as raw:
        reader = _CountingReader(_tar_stream(raw, kind, archive))
        last: str | None = None
        try:
            reader.limit = reader.count + HEADER_CAP
            tf = tarfile.open(fileobj=reader, mode="r|", encoding="utf-8", errors="surrogateescape")  # type: ignore[call-overload]
            with tf:
                while True:
                    reader.limit = reader.count + HEADER_CAP
                    info = tf.next()
                    reader.limit = None
                    if info is None:
                        break
                    last = info.name
                    _tar_member(tf, info, ex)
        except _Refused as e:
            if e.member is None and last is not None:
                raise _Refused(last, f"is followed by headers that are too large: {e.reason}") from None
            raise
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as e:
            where = f" after member {_show(last)}" if last is not None else ""
            raise _Refused(None, f"is not a readable {kind} archive{where} ({e})") from None


def _tar_member(tf: tarfile.TarFile, info: tarfile.TarInfo, ex: _Extraction) -> None:
    raw = info.name
    ex.begin(raw)
    if info.isreg():
        data = tf.extractfile(info)
        assert data is not None
        ex.file(raw, data, bool(info.mode & 0o111), info.mtime)
    elif info.isdir():
        ex.directory(raw)
    elif info.issym():
        ex.symlink(raw, info.linkname)
    elif info.islnk():
        ex.hardlink(raw, info.linkname)
    elif info.ischr() or info.isblk():
        raise _Refused(raw, "is a device file")
    elif info.isfifo():
        raise _Refused(raw, "is a FIFO (named pipe)")
    else:
        raise _Refused(raw, f"has a member type ckpm does not extract ({info.type!r})")


def _unpack_zip(archive: Path, ex: _Extraction) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise _Refused(None, f"is not a readable zip archive ({e})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > ex.budget.max_files:
            raise _Refused(infos[ex.budget.max_files].filename,
                           f"is one member too many: the budget is {ex.budget.max_files} members")
        for info in infos:
            raw = info.filename
            ex.begin(raw)
            unix = (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0
            fmt = stat.S_IFMT(unix)
            if info.flag_bits & 0x1:
                raise _Refused(raw, "is encrypted")
            if info.is_dir() or fmt == stat.S_IFDIR:
                ex.directory(raw)
            elif fmt == stat.S_IFLNK:
                with _zip_open(zf, info) as f:
                    target = f.read(MAX_NAME + 1)
                if len(target) > MAX_NAME:
                    raise _Refused(raw, f"is a symlink whose target is longer than {MAX_NAME} bytes")
                ex._account(len(target), raw)
                ex.symlink(raw, target.decode("utf-8", "surrogateescape"))
            elif fmt in (0, stat.S_IFREG):
                with _zip_open(zf, info) as f:
                    ex.file(raw, f, bool(unix & 0o111), _zip_mtime(info))
            elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
                raise _Refused(raw, "is a device file")
            elif fmt == stat.S_IFIFO:
                raise _Refused(raw, "is a FIFO (named pipe)")
            elif fmt == stat.S_IFSOCK:
                raise _Refused(raw, "is a socket")
            else:
                raise _Refused(raw, f"has a file type ckpm does not extract ({oct(fmt)})")


@contextlib.contextmanager
def _zip_open(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
    try:
        f = zf.open(info)
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError, ValueError, EOFError) as e:
        raise _Refused(info.filename, f"cannot be read: {e}") from None
    try:
        yield f
    finally:
        f.close()


def _zip_mtime(info: zipfile.ZipInfo) -> float | None:
    import time

    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (ValueError, OverflowError):
        return None


# -- the entry point -----------------------------------------------------------------------------------

def unpack(archive: Path, dest: Path, *, budget: UnpackBudget = UnpackBudget(),
           strip: str | int = "auto") -> list[str]:
    """Extract ``archive`` into ``dest`` (created; it must not exist or be empty); the member paths written.

    ``strip="auto"`` drops one top folder that every member shares (as most release
    tarballs have); an int drops that many leading components (members with no more
    components are skipped). The archive is checked member by member while it is extracted
    into a hidden folder beside ``dest``; a refused archive raises :class:`UnpackError`
    naming the member and the reason, and leaves ``dest`` as it was (absent or empty).
    """
    archive, dest = Path(archive), Path(dest)
    if strip != "auto" and (isinstance(strip, bool) or not isinstance(strip, int) or strip < 0):
        raise ValueError(f"strip must be 'auto' or a count >= 0, not {strip!r}")
    where = _show_path(archive)
    try:
        size = os.stat(archive).st_size
        kind = archive_kind(archive)
    except OSError as e:
        raise UnpackError(f"cannot read the archive {where}: {e.strerror or e}") from None
    if kind is None:
        raise UnpackError(f"{where} is not an archive ckpm can unpack ({', '.join(KINDS)})")
    existed = _check_dest(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=dest.parent))
    except OSError as e:
        raise UnpackError(f"cannot unpack {where} into {_show_path(dest)}: {e.strerror or e}") from None
    try:
        ex = _Extraction(work, budget, size, 0 if strip == "auto" else int(strip))
        try:
            if kind == "zip":
                _unpack_zip(archive, ex)
            else:
                _unpack_tar(archive, kind, ex)
            final, members = ex.finish(strip == "auto")
        except _Refused as e:
            what = f"member {_show(e.member)} {e.reason}" if e.member is not None else e.reason
            hint = "the archive was refused as a whole; nothing was extracted"
            if isinstance(e, _Bomb) and budget.declared is None:
                hint += ("; if it really unpacks to that much, its index line can declare the size: "
                         "\"unpacked-size\": BYTES in its source")
            raise UnpackError(f"refusing to unpack {where}: {what}", hint=hint) from None
        try:
            os.chmod(final, 0o755 & ~current_umask())
            if existed:
                os.rmdir(dest)
            os.rename(final, dest)
        except OSError as e:
            raise UnpackError(f"cannot move the unpacked {where} to {_show_path(dest)}: {e.strerror or e}") from None
        return members
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_dest(dest: Path) -> bool:
    """True when ``dest`` exists (an empty folder); an UnpackError when it cannot be used."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise UnpackError(f"cannot use {_show_path(dest)} as a destination: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnpackError(f"cannot unpack into {_show_path(dest)}: it exists and is not a folder")
    if any(os.scandir(dest)):
        raise UnpackError(f"cannot unpack into {_show_path(dest)}: the folder is not empty")
    return True
