"""Running probe subprocesses with a hard timeout, leaving no trace.

A probe runs in its own session so that, on timeout, the whole process group is
killed: a ``#!/bin/sh`` wrapper whose child keeps the output pipe open cannot hang
ckpm. Each probe runs in a new, empty, private temporary folder (0700, removed after it:
``touch version`` writes nowhere that lasts, and ``sh version`` finds nothing to read),
with stdin from ``/dev/null`` (closed for reading: end of file at once) and a scrubbed
environment (:func:`probe_env`: ``PATH``, ``HOME``, the user's identity and the variables
that say where software is, in the C locale; no tokens, no proxies, no agent sockets, no
shell start-up files). At most
:data:`OUTPUT_LIMIT` bytes of each stream are kept; the rest is read and discarded (so
the child never blocks on a full pipe), and memory stays bounded for a probe that
prints gigabytes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ckpm.procutil import kill_group

TRUNCATE = 300
#: bytes kept of each of a probe's streams
OUTPUT_LIMIT = 1 << 20
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ProbeOutput:
    """What one probe printed and how it ended (``returncode`` None: timed out)."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False  # a stream printed more than OUTPUT_LIMIT bytes (the rest was discarded)

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


#: the variables of the caller's environment a probe sees (docs/detection.md, "Robustness"):
#: where programs, libraries, headers and Python packages are, and who the user is
PROBE_ENV_KEEP = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "TZ",
    "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR",
    "LIBRARY_PATH", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH",
    "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "COMPILER_PATH", "GCC_EXEC_PREFIX",
    "CUDA_HOME", "CUDA_PATH", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "VIRTUAL_ENV", "CONDA_PREFIX",
    "PYENV_ROOT", "PYENV_VERSION", "PYENV_DIR",
    "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "PATHEXT", "COMSPEC",  # Windows cannot start a program without them
})


def probe_env(env: Mapping[str, str], tmpdir: str | None = None) -> dict[str, str]:
    """The environment a probe runs in: the variables of ``env`` named in
    :data:`PROBE_ENV_KEEP`, in the C locale, with ``TMPDIR`` set to ``tmpdir`` (the probe's
    own folder) when given; nothing else of the caller's environment."""
    out = {k: v for k, v in env.items() if k in PROBE_ENV_KEEP}
    out["LC_ALL"] = "C"
    out["LANG"] = "C"
    if tmpdir is not None:
        out["TMPDIR"] = out["TMP"] = out["TEMP"] = tmpdir
    return out


def probe_cwd() -> str:
    """A new, empty, private folder for one probe (0700; the caller removes it)."""
    import tempfile

    return tempfile.mkdtemp(prefix="ckpm-probe-")


def run_probe(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None, limit: int = OUTPUT_LIMIT,
    cwd: str | None = None,
) -> ProbeOutput:
    """Run ``argv`` with no stdin and a timeout, in ``cwd`` (default: a new empty private
    folder, removed afterwards, whatever the probe wrote in it), in the scrubbed
    :func:`probe_env` of ``env``; raises OSError if it cannot start.

    Keeps at most ``limit`` bytes of stdout and of stderr (``truncated`` says if more came).
    """
    posix = os.name == "posix"
    args = list(argv)
    if args and os.sep in args[0] and not os.path.isabs(args[0]):
        args[0] = os.path.abspath(args[0])  # a relative PATH entry: resolved here, not in cwd
    own = probe_cwd() if cwd is None else None
    try:
        return _run(args, argv, timeout, env, limit, own or str(cwd), own, posix)
    finally:
        if own is not None:
            from ckpm.fsutil import remove_tree

            try:
                remove_tree(own)
            except OSError:
                pass


def _run(args: list[str], argv: Sequence[str], timeout: float, env: Mapping[str, str] | None, limit: int,
         cwd: str, tmpdir: str | None, posix: bool) -> ProbeOutput:
    import subprocess
    import time

    proc = subprocess.Popen(
        args,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=probe_env(env if env is not None else os.environ, tmpdir),
        start_new_session=posix,
    )
    assert proc.stdout is not None and proc.stderr is not None
    bufs = [bytearray(), bytearray()]
    over = [False, False]
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        done = _pump([proc.stdout, proc.stderr], bufs, over, limit, deadline, posix)
        if done:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                done = False
        if not done:
            timed_out = True
            kill_group(proc, wait=0)
            # drain what is left for a moment (a grandchild that escaped the group may hold the pipe)
            _pump([proc.stdout, proc.stderr], bufs, over, limit, time.monotonic() + 1.0, posix)
            proc.wait()
    finally:
        for stream in (proc.stdout, proc.stderr):
            stream.close()
    out, err = _decode(bytes(bufs[0])), _decode(bytes(bufs[1]))
    if timed_out:
        return ProbeOutput(tuple(argv), None, out, err, timed_out=True, truncated=any(over))
    return ProbeOutput(tuple(argv), proc.returncode, out, err, truncated=any(over))


def _pump(streams: list[Any], bufs: list[bytearray], over: list[bool], limit: int, deadline: float,
          posix: bool) -> bool:
    """Read ``streams`` until both reach EOF (True) or ``deadline`` passes (False), keeping at
    most ``limit`` bytes of each in ``bufs`` and discarding the rest."""
    import time

    if not posix:
        return _pump_threads(streams, bufs, over, limit, deadline)
    import selectors

    sel = selectors.DefaultSelector()
    try:
        for i, st in enumerate(streams):
            if not st.closed:
                try:
                    sel.register(st.fileno(), selectors.EVENT_READ, i)
                except (ValueError, KeyError, OSError):
                    pass
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in sel.select(timeout=left):
                i = key.data
                try:
                    chunk = os.read(key.fd, _CHUNK)
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                _keep(bufs[i], over, i, chunk, limit)
        return True
    finally:
        sel.close()


def _keep(buf: bytearray, over: list[bool], i: int, chunk: bytes, limit: int) -> None:
    room = limit - len(buf)
    if room >= len(chunk):
        buf += chunk
    else:
        if room > 0:
            buf += chunk[:room]
        over[i] = True


def _pump_threads(streams: list[Any], bufs: list[bytearray], over: list[bool], limit: int,
                  deadline: float) -> bool:
    """:func:`_pump` where pipes cannot be selected (Windows): one reader thread per stream."""
    import threading
    import time

    def reader(i: int) -> None:
        try:
            while True:
                chunk = streams[i].read1(_CHUNK) if hasattr(streams[i], "read1") else streams[i].read(_CHUNK)
                if not chunk:
                    return
                _keep(bufs[i], over, i, chunk, limit)
        except (OSError, ValueError):
            return

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(len(streams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def _decode(b: bytes | None) -> str:
    return (b or b"").decode("utf-8", "replace")
