"""The container engine: podman or docker, found on PATH, run as a subprocess.

Everything ckpm asks of an engine goes through :meth:`Engine.run`, which owns the one
wording of a failure: the command that failed, its exit status and the engine's last lines,
as one :class:`ContainerError` (never a traceback). The engine's own configuration (for
podman, ``CONTAINERS_CONF``, storage, runtime) comes from the environment ckpm runs in.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ckpm.errors import CkpmError

ENGINES = ("podman", "docker")  # tried in this order when none is named
LAST_LINES = 3  # of the engine's output, in the one line of an error
OUTPUT_CAP = 1 << 20  # characters of output kept from one engine command


class ContainerError(CkpmError):
    """The engine is missing, or one of its commands failed."""

    code = "container"


@dataclass(frozen=True)
class EngineResult:
    """What one engine command printed (stdout and stderr, capped) and its exit status."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def last_lines(self, n: int = LAST_LINES) -> list[str]:
        """The last ``n`` non-empty lines: the command's output first, then the engine's errors."""
        lines = [ln.strip() for ln in (self.stdout + "\n" + self.stderr).splitlines() if ln.strip()]
        return [ln[:300] for ln in lines[-n:]]


@dataclass(frozen=True)
class Engine:
    """One container engine: its name (``podman`` or ``docker``) and the executable's path."""

    name: str
    path: str

    def run(self, args: Sequence[str], *, check: bool = True, timeout: float | None = None,
            env: Mapping[str, str] | None = None, what: str | None = None) -> EngineResult:
        """Run ``ENGINE ARGS…``; with ``check``, a non-zero exit is a :class:`ContainerError`
        whose one line names ``what`` (default: the subcommand) and the engine's last lines."""
        argv = (self.path, *args)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                                  env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise ContainerError(f"{self.name} {what or args[0]} took longer than {timeout:.0f} s",
                                 hint="is the engine stuck? try the command by hand") from e
        except OSError as e:
            raise ContainerError(f"cannot run {self.path}: {e.strerror or e}") from e
        res = EngineResult(argv, proc.returncode, proc.stdout[-OUTPUT_CAP:], proc.stderr[-OUTPUT_CAP:])
        if check and res.returncode != 0:
            raise engine_failure(self, what or args[0], res)
        return res


def engine_failure(engine: Engine, what: str, res: EngineResult) -> ContainerError:
    """The one-line error of a failed engine command, with its last lines."""
    tail = " | ".join(res.last_lines()) or "(no output)"
    return ContainerError(f"{engine.name} {what} failed (exit {res.returncode}): {tail}",
                          hint=f"the full command: {' '.join(res.argv[:1] + tuple(res.argv[1:12]))}"
                               + (" …" if len(res.argv) > 12 else ""))


def find_engine(name: str | None = None, *, env: Mapping[str, str] | None = None) -> Engine:
    """The engine named (``podman`` or ``docker``), else the first of them on PATH."""
    path_var = (os.environ if env is None else env).get("PATH", os.defpath)
    names = (name,) if name else ENGINES
    for n in names:
        if n not in ENGINES:
            raise ContainerError(f"unknown container engine {n!r}", hint=f"use one of {', '.join(ENGINES)}")
        found = shutil.which(n, path=path_var)
        if found:
            return Engine(n, str(Path(found)))
    if name:
        raise ContainerError(f"{name} is not installed (not on PATH)",
                             hint="install it (Debian: apt-get install podman runc) or pass --engine")
    raise ContainerError("no container engine found: neither podman nor docker is on PATH",
                         hint="install podman (Debian: apt-get install podman runc), or docker")
