"""Files that many ckpm processes share: atomic writes and inter-process locks.

Every write that matters goes through :func:`atomic_write` (a temporary file beside the
target, fsynced, renamed into place), so a reader sees the old file or the new one,
never half of one, and an interrupted command leaves the previous good state.

Every command that writes ``ckpm.toml``, ``ckpm.lock`` or a cache entry first takes a
:func:`file_lock` on it (``fcntl.flock`` on POSIX, here, without the ``filelock`` package,
whose import alone costs 25-45 ms per command; ``filelock``'s ``msvcrt`` lock on Windows;
the lock is released by the kernel when a process dies). A process that has
to wait says so once, through ``on_wait``, as Cargo does ("Blocking waiting for file
lock"), and then goes on. Readers take no lock: atomic replacement is enough for them.

This module imports nothing of ckpm; the index clients, the host profile, the lock and
the manifest writers, and later the store, all use it.
"""
from __future__ import annotations

import contextlib
import os
import threading

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
from pathlib import Path
from typing import Callable, Iterator

_umask: int | None = None
_umask_lock = threading.Lock()

#: how often a waiting process retries the lock (seconds)
POLL = 0.05


def current_umask() -> int:
    """The process umask (read once; reading it means setting it, so it is cached)."""
    global _umask
    if _umask is None:
        with _umask_lock:
            if _umask is None:
                old = os.umask(0o022)
                os.umask(old)
                _umask = old
    return _umask


def atomic_write(path: Path | str, data: str | bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically.

    The new file keeps the mode of the file it replaces; a new file gets ``mode`` (default
    ``0o666``) less the umask, as ``open()`` would give it (``mkstemp`` alone makes 0600).
    ``durable=False`` skips the fsync: for caches, where a file that a power cut left empty
    or torn is detected and fetched again, readers still never see half a file.
    """
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        final_mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        final_mode = (0o666 if mode is None else mode) & ~current_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # name the file the user knows, not our temporary one
        raise type(e)(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, final_mode)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise type(e)(e.errno, e.strerror, str(path)) from None
        raise


def sha256_file(path: Path | str) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_bounded(path: Path | str, limit: int) -> bytes | None:
    """The bytes of ``path``, or None when it holds more than ``limit`` (never reads past it);
    OSError as ``open`` raises it."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    return None if len(data) > limit else data


class LockTimeout(OSError):
    """A file lock could not be taken in the time allowed."""


@contextlib.contextmanager
def file_lock(
    path: Path | str,
    *,
    on_wait: Callable[[str], None] | None = None,
    what: str = "",
    timeout: float | None = None,
) -> Iterator[Path]:
    """Hold an exclusive inter-process lock on ``path`` (a ``.lock`` file, created if missing).

    If another process holds it, ``on_wait`` is called once with a sentence naming
    ``what`` is locked, and the call blocks until the lock is free (or ``timeout`` seconds
    pass: :class:`LockTimeout`). Re-entrant within a process and thread; another thread of
    the same process waits as another process would.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # Windows: the filelock package (msvcrt)
        with _portable_lock(p, on_wait, what, timeout):
            yield p
        return
    key = (os.path.abspath(p), threading.get_ident())
    held = _held.get(key)
    if held is not None:  # re-entered by the thread that holds it
        held[1] += 1
        try:
            yield p
        finally:
            held[1] -= 1
        return
    fd = _flock(p, on_wait, what, timeout)
    _held[key] = [fd, 1]
    try:
        yield p
    finally:
        del _held[key]
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


#: (absolute path, thread) → [descriptor, depth] of the locks this process holds
_held: dict[tuple[str, int], list[int]] = {}


@contextlib.contextmanager
def shared_lock(path: Path | str) -> Iterator[Path]:
    """Hold a shared lock on ``path`` (created if missing): many holders at once, while an
    exclusive :func:`file_lock` of the same path (``timeout=0``) fails. A file in use says so
    this way: a command using it holds it shared; a cleaner takes it exclusively or skips it.
    (Where ``fcntl`` is missing, an exclusive lock.)"""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - Windows
        with file_lock(p):
            yield p
        return
    while True:
        fd = os.open(p, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666 & ~current_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if os.fstat(fd).st_nlink > 0:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # unlinked while we waited: lock the file that is there now
    try:
        yield p
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _flock(p: Path, on_wait: Callable[[str], None] | None, what: str, timeout: float | None) -> int:
    """An open descriptor of ``p`` holding ``flock(LOCK_EX)`` (POSIX).

    The kernel releases the lock when the process dies. A lock file that another process
    unlinked while this one waited is opened again, so that two processes never hold locks
    on two different files of the same name.
    """
    import time

    assert fcntl is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        fd = os.open(p, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666 & ~current_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if not told:
                told = True
                if on_wait is not None:
                    on_wait(f"waiting for another ckpm process {what or 'using ' + str(p)}…")
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(f"could not lock {p} within {timeout:g} s") from None
            time.sleep(POLL)
            continue
        except BaseException:
            os.close(fd)
            raise
        try:
            unlinked = os.fstat(fd).st_nlink == 0
        except BaseException:
            os.close(fd)
            raise
        if not unlinked:
            return fd
        os.close(fd)  # the file went away while we waited: lock the one that is there now


@contextlib.contextmanager
def _portable_lock(p: Path, on_wait: Callable[[str], None] | None, what: str,
                   timeout: float | None) -> Iterator[None]:
    import filelock

    lock = filelock.FileLock(str(p), mode=0o666 & ~current_umask(), is_singleton=True)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if on_wait is not None:
            on_wait(f"waiting for another ckpm process {what or 'using ' + str(p)}…")
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout, poll_interval=POLL)
        except filelock.Timeout:
            raise LockTimeout(f"could not lock {p} within {timeout:g} s") from None
    try:
        yield
    finally:
        lock.release()


# -- trees, walked without recursion -----------------------------------------------------------
#
# An unpacked archive or a build can leave a tree thousands of folders deep; Python 3.11's
# os.walk, shutil.copytree and shutil.rmtree recurse once per level and die with a
# RecursionError at about 1,000 (rmtree even with ignore_errors=True). These three keep an
# explicit stack instead, and never follow a symlink.

def walk_tree(top: Path | str) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top)`` (top-down, symlinks not followed: a symlink to a folder is listed in
    the folder names and not entered), without recursion. Unreadable folders are skipped."""
    stack = [os.fspath(top)]
    while stack:
        folder = stack.pop()
        dirs: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    try:
                        is_dir = entry.is_dir(follow_symlinks=True)
                    except OSError:
                        is_dir = False
                    (dirs if is_dir else files).append(entry.name)
        except OSError:
            continue
        yield folder, dirs, files
        for d in reversed(dirs):
            path = os.path.join(folder, d)
            if not os.path.islink(path):
                stack.append(path)


def remove_tree(path: Path | str) -> None:
    """Remove ``path`` (a file, a symlink, or a folder tree: never followed through a symlink),
    without recursion; absent is fine. A read-only folder a build left is made writable first.
    OSError when something cannot be removed."""
    root = os.fspath(path)
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return
    if not _is_dir_mode(st.st_mode):
        os.unlink(root)
        return
    stack = [root]
    while stack:
        folder = stack[-1]
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except PermissionError:
            os.chmod(folder, 0o700)
            with os.scandir(folder) as it:
                entries = list(it)
        except FileNotFoundError:
            stack.pop()
            continue
        sub = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        for e in entries:
            if not e.is_dir(follow_symlinks=False):
                try:
                    os.unlink(e.path)
                except PermissionError:
                    os.chmod(folder, 0o700)
                    os.unlink(e.path)
                except FileNotFoundError:
                    pass
        if sub:
            stack.extend(sub)
            continue
        stack.pop()
        try:
            os.rmdir(folder)
        except PermissionError:
            os.chmod(os.path.dirname(folder) or ".", 0o700)
            os.rmdir(folder)
        except FileNotFoundError:
            pass


def _is_dir_mode(mode: int) -> bool:
    import stat

    return stat.S_ISDIR(mode)


def copy_tree(src: Path | str, dst: Path | str, *, dirs_exist_ok: bool = False) -> None:
    """``shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=...)`` without recursion:
    symlinks are copied as symlinks, files with ``shutil.copy2``, folders keep their modes."""
    import shutil

    src_root, dst_root = os.fspath(src), os.fspath(dst)
    os.makedirs(dst_root, exist_ok=dirs_exist_ok)
    stack = [(src_root, dst_root)]
    made: list[tuple[str, str]] = []
    while stack:
        s, d = stack.pop()
        made.append((s, d))
        with os.scandir(s) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            target = os.path.join(d, e.name)
            if e.is_symlink():
                if os.path.lexists(target) and dirs_exist_ok:
                    os.unlink(target)
                os.symlink(os.readlink(e.path), target)
            elif e.is_dir(follow_symlinks=False):
                try:
                    os.mkdir(target)
                except FileExistsError:
                    if not dirs_exist_ok or not os.path.isdir(target):
                        raise
                stack.append((e.path, target))
            else:
                shutil.copy2(e.path, target, follow_symlinks=False)
    for s, d in reversed(made):  # modes and times of folders last, deepest first
        with contextlib.suppress(OSError):
            shutil.copystat(s, d, follow_symlinks=False)


def build_dir_atomically(final: Path, build: Callable[[Path], None]) -> bool:
    """Run ``build(tmp)`` on a fresh temporary path beside ``final``, then rename it into place.

    ``tmp`` does not exist when ``build`` is called (``build`` creates it). Returns True when
    this call installed ``final``, False when another process got there first (its copy is
    kept and ours discarded). If ``build`` raises, nothing is left behind.
    """
    import shutil
    import tempfile

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        tmp = work / "new"
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if final.exists():
                return False
            raise
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)
