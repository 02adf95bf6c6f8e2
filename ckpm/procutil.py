"""Stopping a child process and everything it started (a leaf).

A child that ckpm may have to stop (a detection probe, a build step, the measured program, the
git transfer process) is started in a session of its own (``start_new_session=True`` on POSIX),
so that its process group holds it and its descendants and nothing else: a signal to the group
reaches a shell's children too. Elsewhere only the process itself is signalled.
"""
from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # subprocess itself is imported only when a child is stopped (the warm path starts none)
    import subprocess


def signal_group(proc: "subprocess.Popen[bytes]", sig: int) -> None:
    """``sig`` to ``proc``'s process group (POSIX; ``proc`` leads its own session), else to ``proc``."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        elif sig == signal.SIGTERM:  # pragma: no cover - Windows
            proc.terminate()
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass  # gone already, or a group that is no longer ours


def kill_group(proc: "subprocess.Popen[bytes]", *, grace: float = 0.0, wait: float | None = 5.0) -> None:
    """Stop ``proc`` and its group: SIGTERM first when ``grace`` > 0 (SIGKILL after ``grace``
    seconds), else SIGKILL at once; then reap it, waiting at most ``wait`` seconds (None: as long
    as it takes; 0: not at all, the caller reaps)."""
    import subprocess

    if grace > 0:
        signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    signal_group(proc, signal.SIGKILL)
    if wait == 0:
        return
    try:
        proc.wait(timeout=wait)
    except (subprocess.TimeoutExpired, ChildProcessError):  # pragma: no cover - a kill that does not take
        pass
