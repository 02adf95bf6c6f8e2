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
