"""Measuring one run of a program: the launcher, the wait, the metrics read back.

The program is started by a small launcher compiled once per machine (:func:`launcher_for`):
it forks and execs the program, then reports the program's own exit status, peak memory and
wall time. Started from Python directly, Linux would count the Python process's memory as the
program's peak (ru_maxrss keeps the high-water mark across the exec of a vforked child).

:func:`measure` runs the program once in its own session (so that a timeout stops it and
everything it started), with stdin from ``/dev/null`` and stdout and stderr in files; what is
read back (metrics, the end of stderr) is bounded (:data:`MAX_OUTPUT`, :data:`REGEX_WINDOW`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckpm.errors import CkpmError
from ckpm.procutil import kill_group

if TYPE_CHECKING:
    from ckpm.model.program import Metric, Program
    from ckpm.settings import Settings

LAUNCHER_C = r"""
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 127;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) return 127;
    if (pid == 0) { execv(argv[2], argv + 2); _exit(127); }
    int status = 0; struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return 127;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    FILE *f = fopen(argv[1], "w");
    if (f) {
        fprintf(f, "%d %ld %.9f\n", status, (long)ru.ru_maxrss,
                (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
        fclose(f);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) { signal(WTERMSIG(status), SIG_DFL); kill(getpid(), WTERMSIG(status)); }
    return 128;
}
"""
MAX_OUTPUT = 16 << 20  # bytes of stdout read back for metrics and checks
REGEX_WINDOW = 1 << 20  # characters at the end of stdout that [run.metrics] patterns search
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RunFailed(CkpmError):
    """The program could not be run, or exited with an error."""

    code = "run"


@dataclass(frozen=True)
class Repetition:
    """One measured run: what the record keeps under ``repetitions`` (:meth:`to_dict`), and the
    text of its stdout (bounded) for the validation, which the record does not keep."""

    n: int
    exit: int
    metrics: dict[str, float]
    out: Path
    stdout: Path
    stderr: Path
    stderr_tail: str
    metric_problems: tuple[str, ...]
    stdout_text: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "exit": self.exit, "metrics": dict(self.metrics), "out": str(self.out),
                "stdout": str(self.stdout), "stderr": str(self.stderr), "stderr_tail": self.stderr_tail,
                "metric_problems": list(self.metric_problems)}


def launcher_for(settings: Settings, host: str) -> str | None:
    """The measuring launcher for this host: compiled once into the cache by the host's C
    compiler (found by detection only then), reused by every later run (None without a compiler)."""
    from ckpm.fsutil import build_dir_atomically

    key = hashlib.sha256((host + "\0" + LAUNCHER_C).encode()).hexdigest()[:16]
    folder = Path(settings.cache_root) / "launcher" / key
    path = folder / "ckpm-launch"
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    try:
        from ckpm.build.toolchain import find_toolchain

        tc = find_toolchain(host, settings=settings, host_target=host)
    except CkpmError:
        return None
    cc = tc.cc
    if not cc:
        return None

    def build(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "launch.c").write_text(LAUNCHER_C)
        subprocess.run([cc, "-O2", "-o", str(tmp / path.name), str(tmp / "launch.c")], capture_output=True,
                       timeout=60, env={"PATH": SYSTEM_PATH, "LANG": "C"}, check=True)

    if folder.is_dir() and not path.exists():  # an older ckpm's failed compile (ours appear whole or not at all)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    try:
        build_dir_atomically(folder, build)  # False: another run installed it first, as good
    except (OSError, subprocess.SubprocessError):
        return None
    return str(path) if path.is_file() else None


def measure(argv: list[str], rep_dir: Path, env: dict[str, str], prog: Program, binary: Path,
            launcher: str | None = None) -> Repetition:
    """Run once: wall time, exit status, peak memory, parsed metrics; output to files.

    With the launcher (the usual case) the times and the peak memory are the program's own;
    without one (no C compiler for this host), Python measures: the wall time then includes
    starting the process, and the peak memory is at least Python's (a documented floor)."""
    out = rep_dir / "out"
    stdout_path, stderr_path = rep_dir / "stdout.txt", rep_dir / "stderr.txt"
    report = rep_dir / "launcher.txt"
    posix = os.name == "posix"
    full = [launcher, str(report), *argv] if launcher else argv
    with open(stdout_path, "wb") as so, open(stderr_path, "wb") as se:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(full, cwd=rep_dir, env=env, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                    start_new_session=posix)
        except OSError as e:
            raise RunFailed(f"cannot run {argv[0]} ({e.strerror or e})") from None
        rss_mib = 0.0
        code: int
        try:
            if posix and hasattr(os, "wait4"):
                code, rss_mib = _wait4(proc, prog.timeout, t0)
            else:  # pragma: no cover
                code = proc.wait(timeout=prog.timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise RunFailed(f"{prog.name} ran longer than {prog.timeout:g} s and was stopped",
                            hint=f"its output so far: {stdout_path}") from None
        except BaseException:
            kill_group(proc)
            raise
        wall = time.perf_counter() - t0
    if launcher:
        parts = _read(report).split()
        if len(parts) == 3:
            status, maxrss, secs = int(parts[0]), int(parts[1]), float(parts[2])
            code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else code
            rss_mib = maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
            wall = secs
        elif code == 127:
            raise RunFailed(f"cannot run {argv[0]}: not found or not executable")
    stdout = _read(stdout_path)
    metrics: dict[str, float] = {"time": wall, "size": binary.stat().st_size, "max_rss": rss_mib}
    problems = []
    for m in prog.metrics:
        value, why = _parse_metric(m, stdout, out)
        if value is not None:
            metrics[m.name] = value
        else:
            problems.append(why)
    return Repetition(n=int(rep_dir.name.split("-")[-1]), exit=code, metrics=metrics, out=out, stdout=stdout_path,
                      stderr=stderr_path, stderr_tail=tail_lines(_read(stderr_path)) if code else "",
                      metric_problems=tuple(problems), stdout_text=stdout)


def _wait4(proc: subprocess.Popen[bytes], timeout: float, t0: float) -> tuple[int, float]:
    """Wait for ``proc`` within ``timeout``: its exit code and peak memory (MiB)."""
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid != 0:
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code
            return code, usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        if time.perf_counter() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(0.0005 if time.perf_counter() - t0 < 0.05 else 0.005)


def tail_lines(text: str, head: int = 3, tail: int = 9, chars: int = 2000) -> str:
    """What explains a failure, from a program's stderr: whole lines, never one cut mid-word.
    A long output keeps its first ``head`` lines (a tool often says what went wrong first, then
    prints its usage) and its last ``tail`` (a crash's last words), with ``…`` between them."""
    lines = [line[:300] for line in text.rstrip().splitlines()]
    if len(lines) > head + tail:
        lines = [*lines[:head], "…", *lines[-tail:]]
    kept: list[str] = []
    size = 0
    for line in lines:
        size += len(line) + 1
        if size > chars:
            kept.append("…")
            break
        kept.append(line)
    return "\n".join(kept)


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_OUTPUT).decode("utf-8", "replace")
    except OSError:
        return ""


def _parse_metric(m: Metric, stdout: str, out: Path) -> tuple[float | None, str]:
    if m.regex is not None:
        # the last MiB only: a program prints its figures at the end, and a pattern from
        # someone else's [run] must not backtrack over megabytes of output
        hit = re.search(m.regex, stdout[-REGEX_WINDOW:])
        if hit is None:
            return None, f"{m.name}: the output has no match for {m.regex!r}"
        text = hit.group(1)
    else:
        path = out / (m.file or "metrics.json")
        try:
            data = json.loads(_read(path) or "null")
        except ValueError:
            return None, f"{m.name}: {path.name} is not JSON"
        if not isinstance(data, dict) or m.json not in data:
            return None, f"{m.name}: {path.name} has no key {m.json!r}"
        text = data[m.json]
    try:
        return float(text), ""
    except (TypeError, ValueError):
        if isinstance(text, str) and re.fullmatch(r"[0-9a-fA-F]{1,16}", text):
            return float(int(text, 16)), ""
        return None, f"{m.name}: {str(text)[:40]!r} is not a number"
