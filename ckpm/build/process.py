"""Running one build command: argv, a clean environment, a log, a deadline, a process group.

The one place that owns how a build command runs (as ``ckpm.detect.probe`` does for
probes): the command line and its output are appended to the build log, stdin is closed,
the child gets its own session so that on a timeout or Ctrl-C the whole group it started
(``make -j`` and its compilers) is killed, and a failure becomes a
:class:`~ckpm.errors.BuildError` naming the step and the command, with the last lines of
the log and the log's path.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence

from ckpm.procutil import kill_group
from ckpm.errors import BuildError
from ckpm.report import escape_control

#: lines of the log a BuildError carries
TAIL_LINES = 20
#: bytes read from the end of the log for the tail; characters kept per tail line
_TAIL_BYTES = 64 * 1024
_TAIL_WIDTH = 400
#: seconds a group gets between SIGTERM and SIGKILL
GRACE = 3.0
#: how much of a command line a message shows
_CMD_WIDTH = 200


def log_tail(log: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of the log, decoded leniently, control characters escaped."""
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r", "")
    out = [escape_control(line[:_TAIL_WIDTH]) for line in text.splitlines() if line.strip()]
    return out[-lines:]


def append_log(log: Path, text: str) -> None:
    """Append ``text`` (a header, a note of what ckpm did) to the build log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(text)


def short_command(argv: Sequence[str]) -> str:
    """A command line for a message: shell-quoted, its middle cut out when long (the program and
    the last arguments are what tell commands apart)."""
    cmd = shlex.join(argv)
    if len(cmd) <= _CMD_WIDTH:
        return cmd
    head = _CMD_WIDTH * 2 // 5
    return cmd[:head] + " … " + cmd[-(_CMD_WIDTH - head):]


def fail(step: str, message: str, log: Path, hint: str | None = None) -> BuildError:
    """A BuildError for ``step`` with the log's tail and path."""
    return BuildError(f"{step}: {message}", log=str(log), tail=log_tail(log),
                      hint=hint or f"read the whole log: {log}")


def resolve_program(name: str, env: Mapping[str, str], step: str, log: Path, cwd: Path) -> str:
    """``name`` as an absolute path: a path as given (relative ones from ``cwd``), a bare name
    looked up on the build environment's PATH (not ckpm's)."""
    if os.sep in name:
        return os.path.join(cwd, name)
    found = shutil.which(name, path=env.get("PATH", ""))
    if not found:
        raise fail(step, f"`{name}` is not installed (not found on the build PATH {env.get('PATH', '')})", log,
                   hint=f"install {name} (e.g. Debian/Ubuntu `apt-get install {name}`) and run the command again")
    return found


def run_command(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path, step: str, deadline: float,
) -> None:
    """Run ``argv`` in ``cwd`` with exactly ``env``, output appended to ``log``.

    ``deadline`` is a ``time.monotonic()`` value: past it the process group is killed and a
    BuildError raised. A non-zero exit is a BuildError naming ``step`` and the command; Ctrl-C
    (KeyboardInterrupt) kills the group and is re-raised.
    """
    args = list(argv)
    args[0] = resolve_program(args[0], env, step, log, cwd)
    append_log(log, f"\n$ {shlex.join(args)}\n# in {cwd}\n")
    left = deadline - time.monotonic()
    if left <= 0:
        raise fail(step, f"no time left to run `{short_command(args)}` (the build's timeout has passed)", log)
    posix = os.name == "posix"
    with open(log, "ab") as out:
        try:
            proc = subprocess.Popen(args, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=posix)
        except OSError as e:
            raise fail(step, f"cannot run `{short_command(args)}`: {e.strerror or e}", log) from None
        try:
            code = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            kill_group(proc, grace=GRACE, wait=None)
            out.write(f"\n# ckpm: killed after the build's timeout\n".encode())
            out.flush()
            raise fail(step, f"`{short_command(args)}` did not finish in time and was stopped", log,
                       hint="the build took longer than its timeout; raise the timeout or read the log") from None
        except BaseException:
            kill_group(proc, grace=GRACE, wait=None)
            raise
    if code != 0:
        why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        raise fail(step, f"`{short_command(args)}` failed ({why})", log)


