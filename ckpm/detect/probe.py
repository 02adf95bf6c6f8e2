"""Running probe subprocesses with a hard timeout.

A probe runs in its own session so that, on timeout, the whole process group is
killed: a ``#!/bin/sh`` wrapper whose child keeps the output pipe open cannot hang
ckpm. Probes run with ``LC_ALL=C`` so that outputs parse the same everywhere.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

TRUNCATE = 300


@dataclass(frozen=True)
class ProbeOutput:
    """What one probe printed and how it ended (``returncode`` None: timed out)."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def text(self) -> str:
        """stdout then stderr (many tools print their version on stderr)."""
        if self.stdout and self.stderr:
            return self.stdout + ("" if self.stdout.endswith("\n") else "\n") + self.stderr
        return self.stdout or self.stderr

    @property
    def command(self) -> str:
        return " ".join(self.argv)


def truncate(text: str, limit: int = TRUNCATE) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    one = text.strip().replace("\r", "").replace("\n", "\\n")
    return one if len(one) <= limit else one[:limit] + "…"


def probe_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a probe runs in: the caller's, in the C locale."""
    out = dict(env)
    out["LC_ALL"] = "C"
    out["LANG"] = "C"
    out.pop("LANGUAGE", None)
    return out


def run_probe(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None) -> ProbeOutput:
    """Run ``argv`` with no stdin and a timeout; raises OSError if it cannot start."""
    import subprocess

    posix = os.name == "posix"
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=probe_env(env if env is not None else os.environ),
        start_new_session=posix,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc, posix)
        try:
            out, err = proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:  # a grandchild escaped the group and holds the pipe
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            proc.wait()
            out, err = b"", b""
        return ProbeOutput(tuple(argv), None, _decode(out), _decode(err), timed_out=True)
    return ProbeOutput(tuple(argv), proc.returncode, _decode(out), _decode(err))


def _kill_group(proc: "object", posix: bool) -> None:
    import signal

    pid = getattr(proc, "pid")
    try:
        if posix:
            os.killpg(pid, signal.SIGKILL)
        else:
            getattr(proc, "kill")()
    except (ProcessLookupError, PermissionError):
        pass


def _decode(b: bytes | None) -> str:
    return (b or b"").decode("utf-8", "replace")
