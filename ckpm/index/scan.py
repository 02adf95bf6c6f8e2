"""Reading many component files for their summaries, on two processes when that pays.

A cold search of an index without summary.jsonl reads every component file (10,000 files,
73 MB in the benchmark): parsing their lines is nearly all of its time, and one Python
process uses one core. When there are at least :data:`MIN_FILES` files to read, this
process may use two cores, and it runs no other thread (a fork copies the locks other
threads hold, never their owners), a forked child reads the second half of the files while
this process reads the first; the child sends each file's result back through a pipe as
marshal data and ends with ``os._exit`` (no handlers, no buffered output flushed twice).

The child only reads: it reports nothing (each file's problems come back with its summary
and are reported here, as for the files read here) and writes nothing but the pipe. Whatever
goes wrong with it (it died, sent nothing, too much, or something of the wrong shape) is only
slower: this process reads that half itself. Used for a folder index only; a git index's
reads go through libgit2 and an HTTP index's through the network, neither of which is for a
forked child.
"""
from __future__ import annotations

import marshal
import os
import signal
import sys
from typing import Callable

from ckpm.index.summary_cache import MAX_CACHE_BYTES, Scanned
from ckpm.model.entry import ComponentSummary

#: fewer files than this are read here: a fork and a pipe cost about as much as reading 100
MIN_FILES = 2000


def _two_cores() -> bool:
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except (AttributeError, OSError):
        return (os.cpu_count() or 1) >= 2


def can_fork() -> bool:
    """Whether a child may read half the files: Linux, two cores for this process, no other thread."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    threading = sys.modules.get("threading")  # not imported: no thread was started from Python
    return (threading is None or threading.active_count() == 1) and _two_cores()


def scan(read_one: Callable[[str], Scanned], names: list[str], *, parallel: bool = True) -> dict[str, Scanned]:
    """``read_one(name)`` of each of ``names``, in their order; with ``parallel``, a forked child
    reads the second half when there are enough of them and :func:`can_fork`."""
    if not (parallel and len(names) >= MIN_FILES and can_fork()):
        return {n: read_one(n) for n in names}
    half = len(names) // 2
    mine, theirs = names[:half], names[half:]
    child = _start(read_one, theirs)
    if child is None:
        return {n: read_one(n) for n in names}
    pid, fd = child
    try:
        out = {n: read_one(n) for n in mine}
    except BaseException:
        _end(pid, fd)
        raise
    got = _receive(pid, fd, theirs)
    if got is None:
        got = {n: read_one(n) for n in theirs}
    out.update(got)
    return out


def _start(read_one: Callable[[str], Scanned], names: list[str]) -> tuple[int, int] | None:
    """A forked child that reads ``names`` and writes their results to a pipe: (its pid, the read end)."""
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(r)
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, without a traceback
            rows = []
            for n in names:
                s = read_one(n)
                summary = None if s.summary is None else (
                    s.summary.kind, s.summary.tags, s.summary.description, tuple(s.summary.versions))
                rows.append((s.key, summary, tuple(s.problems)))
            view = memoryview(marshal.dumps(rows))
            while view:
                view = view[os.write(w, view):]
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    return pid, r


def _end(pid: int, fd: int) -> None:
    """Stop the child (if it still runs) and reap it."""
    try:
        os.close(fd)
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _receive(pid: int, fd: int, names: list[str]) -> dict[str, Scanned] | None:
    """The child's results for ``names`` (None when it failed or sent something else); reaps it."""
    chunks: list[bytes] = []
    size, too_much = 0, False
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > 2 * MAX_CACHE_BYTES:  # not what our child sends
                too_much = True
                break
            chunks.append(chunk)
    finally:
        os.close(fd)  # a child still writing gets a broken pipe and ends
        _, status = os.waitpid(pid, 0)
    if status != 0 or too_much:
        return None
    try:
        rows = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        return None
    if type(rows) is not list or len(rows) != len(names):
        return None
    out: dict[str, Scanned] = {}
    for name, row in zip(names, rows):
        if type(row) is not tuple or len(row) != 3:
            return None
        key, summary, problems = row
        if type(key) is not str or type(problems) is not tuple:
            return None
        if summary is None:
            out[name] = Scanned(key, None, problems)
            continue
        if type(summary) is not tuple or len(summary) != 4:
            return None
        kind, tags, description, versions = summary
        out[name] = Scanned(key, ComponentSummary.of(name, kind, tags, description, versions), problems)
    return out
