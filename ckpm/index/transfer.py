"""Bounded transfers: size caps, deadlines and low-speed limits for every download ckpm makes.

Whatever a server sends is data written by someone else, so no transfer is unbounded:

- **size**: an HTTP index file is read while streaming and refused past its cap (the
  index's own caps, :func:`ckpm.index.base.limit_of`: 64 KiB for ``config.json``, 8 MiB per
  component file, 64 MiB for ``summary.jsonl``), counting both the bytes on the wire and the
  decoded bytes (a gzip or deflate bomb stops at the cap); a git clone or fetch stops past
  :data:`GIT_MAX_BYTES` received;
- **time**: each transfer has a timeout (:attr:`Limits.timeout`), and a client may carry a
  whole-command deadline (a ``time.monotonic()`` value): a transfer gets
  ``min(timeout, time left)``;
- **speed**: a transfer that receives fewer than :attr:`Limits.low_speed_bytes` in any window
  of :attr:`Limits.low_speed_seconds` is abandoned (a server that trickles, or says nothing).

libgit2 cannot be bounded reliably from inside (a silent server blocks in a C call that no
callback interrupts, and a Ctrl-C raised in a cffi callback is swallowed), so a clone or fetch
over the network runs in a child process (``python -m ckpm.index.transfer``) that the parent
kills at the deadline, when the transfer is too slow or too large, or on Ctrl-C. The child
reports the bytes received on stdout and exits when its stdin closes (the parent died).
Local repositories (``file://`` URLs and paths) are cloned and fetched in-process: there is
no server to wait for.

The caps and limits (defaults):

=================  ==========================  ======================================
``HTTP_LIMITS``    10 s, 1 KiB per 10 s        one HTTP request (``HttpIndex(timeout=)``)
``GIT_LIMITS``     600 s, 1 KiB per 30 s       one git clone or fetch
``GIT_MAX_BYTES``  2 GiB                       received by one git clone or fetch
=================  ==========================  ======================================
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Callable

from ckpm.procutil import kill_group

MiB = 1024 * 1024

#: the most one git clone or fetch may receive
GIT_MAX_BYTES = 2 * 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """How long one transfer may take and how slow it may be."""

    #: seconds for the whole transfer (connect to last byte)
    timeout: float
    #: fewer than this many bytes in any window of ``low_speed_seconds`` aborts the transfer
    low_speed_bytes: int = 1024
    low_speed_seconds: float = 30.0
    #: the most bytes the transfer may receive (git; HTTP caps each file: ckpm.index.base.limit_of)
    max_bytes: int = GIT_MAX_BYTES

    def with_timeout(self, timeout: float) -> "Limits":
        return replace(self, timeout=timeout)


#: HTTP index requests (the size cap is per file: ckpm.index.base.limit_of)
HTTP_LIMITS = Limits(timeout=10.0, low_speed_bytes=1024, low_speed_seconds=10.0)
GIT_LIMITS = Limits(timeout=600.0, low_speed_bytes=1024, low_speed_seconds=30.0, max_bytes=GIT_MAX_BYTES)


class TransferError(Exception):
    """A transfer stopped by a bound (or failed); ``reason`` is a short phrase for a message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransferTimeout(TransferError):
    """The transfer's timeout or the command's deadline passed."""


class TooSlow(TransferError):
    """Fewer bytes than the low-speed limit arrived in a window."""


class TooLarge(TransferError):
    """The body is larger than its cap."""


def time_left(timeout: float, deadline: float | None) -> float:
    """Seconds this transfer may take: ``min(timeout, deadline - now)`` (may be <= 0)."""
    if deadline is None:
        return timeout
    return min(timeout, deadline - time.monotonic())


def expired_reason(timeout: float, deadline: float | None) -> str:
    """Why there is no time left: the command's deadline, or this transfer's timeout."""
    if deadline is not None and deadline - time.monotonic() <= timeout:
        return "the command's time limit (--timeout) ran out"
    return f"timed out after {timeout:g} s"


class Meter:
    """Watches one transfer: total time, low speed, size. Call :meth:`add` as bytes arrive
    and :meth:`check` whenever there is a chance (also when nothing arrived)."""

    def __init__(self, limits: Limits, deadline: float | None, *, max_bytes: int | None = None) -> None:
        self.limits = limits
        self.deadline = deadline
        self.max_bytes = limits.max_bytes if max_bytes is None else max_bytes
        self.start = time.monotonic()
        self.end = self.start + time_left(limits.timeout, deadline)
        self._why_end = expired_reason(limits.timeout, deadline)
        self.total = 0
        self._window_start = self.start
        self._window_bytes = 0

    def add(self, n: int) -> None:
        self.total += n
        self._window_bytes += n
        if self.total > self.max_bytes:
            raise TooLarge(f"larger than the {human_bytes(self.max_bytes)} cap")

    def set_total(self, total: int) -> None:
        """For a source that reports a running total (git's received bytes)."""
        if total > self.total:
            self.add(total - self.total)

    def remaining(self) -> float:
        """Seconds until the transfer must end (may be <= 0)."""
        return self.end - time.monotonic()

    def wait_slice(self) -> float:
        """How long one blocking read may wait: until the end, or the end of the speed window."""
        now = time.monotonic()
        window_end = self._window_start + self.limits.low_speed_seconds
        return max(0.001, min(self.end, window_end) - now)

    def silence_slice(self) -> float:
        """How long one blocking read may see no data: a whole low-speed window, or until the end."""
        return max(0.001, min(self.end - time.monotonic(), self.limits.low_speed_seconds))

    def check(self) -> None:
        now = time.monotonic()
        if now >= self.end:
            raise TransferTimeout(self._why_end)
        if now - self._window_start >= self.limits.low_speed_seconds:
            if self._window_bytes < self.limits.low_speed_bytes:
                raise TooSlow(f"too slow (fewer than {self.limits.low_speed_bytes} bytes in "
                              f"{self.limits.low_speed_seconds:g} s)")
            self._window_start = now
            self._window_bytes = 0


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


# -- git in a child process -------------------------------------------------------------------

#: run git transfers of local repositories in a child process too (tests of the child path)
ALWAYS_CHILD = False


def is_local(url: str) -> bool:
    """A ``file://`` URL or a path: libgit2 reads it without a server."""
    if url.startswith("file://"):
        return True
    if "://" in url:
        return False
    if os.path.isabs(url) or url.startswith("."):
        return True
    return ":" not in url.split("/", 1)[0]  # ``user@host:path`` is ssh


class GitTransferError(Exception):
    """libgit2 refused (bad URL, not a repository, authentication): ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def git_clone(url: str, dest: Path, *, limits: Limits = GIT_LIMITS, deadline: float | None = None) -> None:
    """Clone ``url`` bare into ``dest`` (which must not exist), with automatic tags off.

    Raises :class:`TransferError` when a bound stops it, :class:`GitTransferError` when git
    fails, and KeyboardInterrupt on Ctrl-C (the child is killed first). ``dest`` may be left
    half-made: clone into a temporary folder (``build_dir_atomically``).
    """
    _git_op({"op": "clone", "url": url, "path": str(dest)}, limits, deadline)


def git_fetch(url: str, repo_path: Path, refspecs: list[str], *, limits: Limits = GIT_LIMITS,
              deadline: float | None = None) -> None:
    """Fetch ``refspecs`` (pruning) from remote ``origin`` of the bare repository at ``repo_path``."""
    _git_op({"op": "fetch", "url": url, "path": str(repo_path), "refspecs": refspecs}, limits, deadline)


def _git_op(req: dict[str, Any], limits: Limits, deadline: float | None) -> None:
    if time_left(limits.timeout, deadline) <= 0:
        raise TransferTimeout(expired_reason(limits.timeout, deadline))
    if is_local(req["url"]) and not ALWAYS_CHILD:
        import pygit2

        try:
            _run_op(req, None)
        except pygit2.GitError as e:
            raise GitTransferError(git_reason(e)) from None
        return
    _run_child(req, limits, deadline)


def git_reason(e: BaseException) -> str:
    """The useful part of a libgit2 error message (here, so that the transfer child, which
    imports nothing of the index clients, words its errors as they do)."""
    return (str(e).strip() or type(e).__name__).rstrip(".")


def _run_op(req: dict[str, Any], progress: Callable[[int], None] | None) -> None:
    """Do the git operation in this process (the child, or the parent for local repositories)."""
    import pygit2
    from pygit2.enums import FetchPrune

    callbacks: Any = None
    if progress is not None:
        report: Callable[[int], None] = progress

        class Callbacks(pygit2.RemoteCallbacks):  # type: ignore[misc]
            def transfer_progress(self, stats: Any) -> None:
                report(int(stats.received_bytes))

        callbacks = Callbacks()
    if req["op"] == "clone":
        repo = pygit2.clone_repository(req["url"], req["path"], bare=True, callbacks=callbacks)
        repo.config["remote.origin.tagopt"] = "--no-tags"
        repo.free()
    else:
        repo = pygit2.Repository(req["path"])
        try:
            repo.remotes["origin"].fetch(list(req["refspecs"]), prune=FetchPrune.PRUNE, callbacks=callbacks)
        except KeyError:
            raise pygit2.GitError("the mirror has no remote 'origin'") from None
        finally:
            repo.free()


def _child_cmd() -> list[str]:
    return [sys.executable, "-m", "ckpm.index.transfer"]


def _run_child(req: dict[str, Any], limits: Limits, deadline: float | None) -> None:
    meter = Meter(limits, deadline)
    env = dict(os.environ)
    # the child imports this very ckpm, wherever it was imported from
    pkg_parent = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    req = {**req, "timeout_ms": int(max(1.0, limits.low_speed_seconds) * 1000)}
    kw: dict[str, Any] = {}
    if os.name == "posix":
        kw["start_new_session"] = True  # a terminal's Ctrl-C reaches the parent; the parent kills the child
    else:  # pragma: no cover - Windows
        kw["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    proc = subprocess.Popen(_child_cmd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, **kw)
    lines: "queue.Queue[bytes | None]" = queue.Queue()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stderr_chunks: list[bytes] = []

    def pump(stream: IO[bytes], sink: Callable[[bytes], None], end: Callable[[], None]) -> None:
        try:
            for line in stream:
                sink(line)
        except (OSError, ValueError):
            pass
        end()

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, lines.put, lambda: lines.put(None)), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, stderr_chunks.append, lambda: None), daemon=True),
    ]
    for t in threads:
        t.start()
    result: dict[str, Any] | None = None
    finished = False
    try:
        proc.stdin.write((json.dumps(req) + "\n").encode("utf-8"))
        proc.stdin.flush()
        while True:
            try:
                line = lines.get(timeout=min(0.1, meter.wait_slice()))
            except queue.Empty:
                meter.check()
                continue
            if line is None:
                break
            msg = _parse(line)
            if "received" in msg:
                meter.set_total(int(msg["received"]))
            elif "ok" in msg or "error" in msg:
                result = msg
            meter.check()
        proc.wait(timeout=max(1.0, meter.remaining()))
        finished = True
    finally:
        if not finished:
            kill_group(proc, wait=10)
        for s in (proc.stdin, proc.stdout, proc.stderr):
            try:
                s.close()
            except OSError:
                pass
    if result is None:
        detail = b"".join(stderr_chunks).decode("utf-8", "replace").strip().splitlines()
        raise GitTransferError(f"the git process failed ({detail[-1] if detail else f'exit {proc.returncode}'})")
    if "error" in result:
        raise GitTransferError(str(result["error"]))


def _parse(line: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except ValueError:
        return {}
    return msg if isinstance(msg, dict) else {}


def remove_stale_git_locks(repo_path: Path) -> None:
    """Remove ``*.lock`` files a killed git process left in a bare repository.

    Call only while holding ckpm's own lock on the repository, so that no live ckpm
    process is writing it.
    """
    for name in ("packed-refs.lock", "config.lock", "HEAD.lock", "FETCH_HEAD.lock", "shallow.lock"):
        try:
            (repo_path / name).unlink()
        except OSError:
            pass
    refs = repo_path / "refs"
    if refs.is_dir():
        for p in refs.rglob("*.lock"):
            try:
                p.unlink()
            except OSError:
                pass


def _child_main() -> int:
    """The child: read one request on stdin, do it, report progress and the result on stdout."""
    import pygit2

    raw = sys.stdin.readline()
    req = json.loads(raw)
    out = sys.stdout

    def stdin_watch() -> None:  # the parent died or gave up: stop at once
        try:
            sys.stdin.read()
        finally:
            os._exit(3)

    threading.Thread(target=stdin_watch, daemon=True).start()
    lock = threading.Lock()
    last = [-1, 0.0]

    def progress(received: int) -> None:
        now = time.monotonic()
        if received != last[0] and now - last[1] >= 0.05:
            last[0], last[1] = received, now
            with lock:
                out.write(json.dumps({"received": received}) + "\n")
                out.flush()

    try:  # belt and braces: libgit2's own socket timeouts (milliseconds)
        pygit2.settings.server_connect_timeout = int(req.get("timeout_ms", 30000))
        pygit2.settings.server_timeout = int(req.get("timeout_ms", 30000))
    except (AttributeError, ValueError, pygit2.GitError):  # pragma: no cover - older libgit2
        pass
    try:
        _run_op(req, progress)
        msg: dict[str, Any] = {"ok": True}
    except pygit2.GitError as e:
        msg = {"error": git_reason(e)}
    except Exception as e:  # noqa: BLE001 - reported to the parent, which words it
        msg = {"error": f"{type(e).__name__}: {e}"}
    with lock:
        out.write(json.dumps(msg) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
