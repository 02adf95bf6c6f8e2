"""``ckpm run``: provision → compile → run → validate → record.

Each stage is a function taking the run's context (a dict) and returning its own output
(a dict), which the record keeps under ``stages``: the Collective Knowledge habit of
stages that pass dicts, so a notebook can call them one by one. Work happens under the
project's ``.ckpm/``: compiled programs in ``.ckpm/build/<key>/`` (reused when the sources,
flags, compiler and target are the same), runs in ``.ckpm/runs/<id>/`` — never inside a
component's source or a store prefix.

The program comes from the project's ``[run]`` table (``ckpm run``) or a dependency's
(``ckpm run COMPONENT``: its ``run`` table in the lock, its sources in its store prefix).
Running it is what the user asked for; its description is still checked whole first
(:mod:`ckpm.model.program`), and the program runs without a shell, with a clean
environment, a timeout, and its output bounded when it is read back.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from ckpm import __version__
from ckpm.procutil import kill_group
from ckpm.errors import BuildError, CkpmError
from ckpm.detect.machine import machine_facts
from ckpm.experiment.record import new_id, save_record, summarise
from ckpm.experiment.tolerance import for_record as tolerances_for
from ckpm.fsutil import atomic_write, sha256_file
from ckpm.model.lockfile import Lock
from ckpm.model.program import (PLACEHOLDER_RE, Program, ProgramError, UnknownFlags, UnknownParameter,
                                 parse_program)
from ckpm.model.source import HostSource
from ckpm.workspace import Workspace

STATE = Path(".ckpm")
# The program is started by a small launcher compiled once per machine: it forks and execs
# the program, then reports the program's own exit status, peak memory and wall time. Started
# from Python directly, Linux would count the Python process's memory as the program's peak
# (ru_maxrss keeps the high-water mark across the exec of a vforked child).
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


class ValidationFailed(CkpmError):
    """The program ran, but its output is not what its ``[run.validate]`` expects; ``record``
    is the run's record (saved when the request named an experiment)."""

    code = "validation"
    exit_code = 5
    record: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        rec = self.record or {}
        return {**super().to_dict(), "record": {k: v for k, v in rec.items() if k not in ("lock", "stages")}}


class ProgramFailed(ValidationFailed):
    """The program ran and exited with an error (or a signal): ``details`` hold the end of its
    stderr, whole lines; ``record`` is the run's record, as for a failed validation."""

    code = "program-failed"
    exit_code = 10


class RunFailed(CkpmError):
    """The program could not be run, or exited with an error."""

    code = "run"


@dataclass
class RunRequest:
    """What to run, and how: the inputs of ``ckpm run`` (and of each tuning point)."""

    component: str | None = None
    command: str | None = None
    flags: str | None = None
    cflags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    input: str | None = None
    target: str | None = None
    repeat: int = 1
    record: str | None = None
    locked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "command": self.command, "flags": self.flags,
                "cflags": list(self.cflags), "env": dict(self.env), "params": dict(self.params),
                "input": self.input, "target": self.target, "repeat": self.repeat}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunRequest":
        """A request from plain data (``ckpm.access``, a tuning point, a record); checked."""
        if not isinstance(d, Mapping):
            raise ProgramError("a run request is a table")

        def s(k: str) -> str | None:
            v = d.get(k)
            if v is not None and not isinstance(v, str):
                raise ProgramError(f"run request: {k} must be a string")
            return v

        def strmap(k: str) -> dict[str, str]:
            v = d.get(k) or {}
            if not isinstance(v, Mapping) or not all(isinstance(a, str) and isinstance(b, (str, int, float))
                                                    and not isinstance(b, bool) for a, b in v.items()):
                raise ProgramError(f"run request: {k} must map names to strings")
            return {a: str(b) for a, b in v.items()}

        cflags = d.get("cflags") or []
        if isinstance(cflags, str):
            cflags = cflags.split()
        if not isinstance(cflags, (list, tuple)) or not all(isinstance(x, str) for x in cflags):
            raise ProgramError("run request: cflags must be a list of strings")
        repeat = d.get("repeat", 1)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 10_000:
            raise ProgramError("run request: repeat must be a whole number from 1 to 10,000")
        return cls(component=s("component"), command=s("command"), flags=s("flags"), cflags=tuple(cflags),
                   env=strmap("env"), params=strmap("params"), input=s("input"), target=s("target"),
                   repeat=repeat, record=s("record"), locked=bool(d.get("locked", False)))


# -- the stages ------------------------------------------------------------------------------

def provision_stage(ws: Workspace, ctx: dict[str, Any]) -> dict[str, Any]:
    """Lock (unless given a lock, or ``locked``) and sync for the target; where each key is."""
    from ckpm import provision as prov

    req: RunRequest = ctx["request"]
    target = req.target or ws.host_target
    lock: Lock | None = ctx.get("lock")
    mirror_dirs = tuple(ctx.get("mirror_dirs", ()))  # vendored folders tried first (an artifact's sources)
    if lock is None:
        from ckpm.api import LockOptions, sync

        outcome, res = sync(ws, prov.SyncOptions(target=target, mirror_dirs=mirror_dirs), LockOptions(locked=req.locked))
        lock = outcome.lock
    else:  # a recorded lock (replay, a remote worker): its recipes run only from verified lines
        from ckpm.api import verify_packages

        prov.use_vendored(ws, mirror_dirs, lock)  # vendored git commits and index lines, for the verification
        verify_packages(ws, lock, what="the recorded lock")
        res = prov.sync(ws, lock, prov.SyncOptions(target=target, mirror_dirs=mirror_dirs))
    ctx["lock"] = lock
    where: dict[str, str] = {}
    for p in res.packages:
        if p.path is None:
            continue
        path = p.path
        if p.action == "host":
            path = str(prov.host_prefix(Path(p.path))) if Path(p.path).is_file() else p.path
        for q in lock.packages:
            if q.name == p.name and q.version == p.version:
                for k in q.keys:
                    where.setdefault(k, path)
                where.setdefault(q.name, path)
        where.setdefault(p.name, path)
    ctx["prefixes"] = where
    ctx["installed"] = {p.path for p in res.packages if p.path and p.action in ("store", "built", "venv")}
    ctx["target"] = target
    return {"target": target, "packages": [p.to_dict() for p in res.packages], "prefixes": where,
            "lock_changed": res.lock_changed}


def program_of(ws: Workspace, ctx: dict[str, Any]) -> tuple[Program, Path]:
    """The program to run and its folder: the project's [run], or a locked component's."""
    req: RunRequest = ctx["request"]
    lock: Lock = ctx["lock"]
    if req.component is None:
        data = ws.manifest.data.get("run")
        if data is None:
            raise ProgramError(f"{ws.manifest_path} has no [run] table: nothing to run",
                               hint="describe the project's program in [run] (docs/formats.md, Programs), "
                                    "or name a component: ckpm run COMPONENT")
        return parse_program(data, name=ws.manifest.name, where=f"{ws.manifest_path} [run]"), ws.root
    name = req.component.lower()
    pkg = next((p for p in lock.packages if p.name == name or name in p.keys), None)
    if pkg is None:
        from difflib import get_close_matches

        near = get_close_matches(name, sorted({p.name for p in lock.packages}), n=3)
        raise ProgramError(f"{req.component} is not in {ws.lock_path.name}",
                           hint=(f"did you mean {', '.join(near)}? " if near else "")
                           + f"add it first: ckpm add {req.component}")
    if pkg.run is None:
        raise ProgramError(f"{pkg.name} {pkg.version} describes no program (no run table in its index line)")
    folder = ctx["prefixes"].get(pkg.name)
    if folder is None:
        raise ProgramError(f"{pkg.name} {pkg.version} was not provisioned on {ctx['target']}: its sources are "
                           "not on this machine", hint="its index line needs an install recipe that copies them")
    return pkg.run, Path(folder)  # checked when the lock was read


def compile_stage(ws: Workspace, ctx: dict[str, Any]) -> dict[str, Any]:
    """Compile the program's sources with the locked (or detected) compiler for the target;
    reuse the binary when the sources, flags, compiler and target are unchanged."""
    req: RunRequest = ctx["request"]
    prog: Program = ctx["program"]
    folder: Path = ctx["folder"]
    target: str = ctx["target"]
    if req.flags is not None and req.flags not in prog.flags:
        raise UnknownFlags(f"{prog.name} has no flag profile {req.flags!r}"
                           + (f" (it has {', '.join(prog.flags)})" if prog.flags else " (it declares none)"))
    cflags = [*prog.cflags, *(prog.flags.get(req.flags, ()) if req.flags else ()), *req.cflags]
    cc, cc_info = _compiler(ws, ctx, prog, target)
    include = [f"-I{p}/include" for p in _dep_prefixes(ctx) if (Path(p) / "include").is_dir()]
    libs = [f"-L{p}/lib" for p in _dep_prefixes(ctx) if (Path(p) / "lib").is_dir()]
    sources = []
    digest = hashlib.sha256()
    for rel in prog.sources:
        path = (folder / rel)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ProgramError(f"{prog.name}: cannot read the source {rel} in {folder} ({e.strerror or e})") from None
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
        sources.append(str(path))
    key_data = {"cc": cc_info, "cflags": cflags, "ldflags": list(prog.ldflags), "include": include, "libs": libs,
                "target": target, "sources": digest.hexdigest(), "binary": prog.binary}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:20]
    out_dir = ws.root / STATE / "build" / key
    binary = out_dir / prog.binary
    marker = out_dir / "ok.json"
    reused = binary.is_file() and marker.is_file()
    if not reused:
        from ckpm.fsutil import file_lock

        # one compile per key at a time (parallel tuning points often share one): the first
        # compiles into a fresh folder renamed into place, the others wait and reuse it
        with file_lock(ws.root / STATE / "build" / f".{key}.lock", on_wait=ws.reporter.note,
                       what=f"compiling {prog.name}"):
            reused = binary.is_file() and marker.is_file()
            if not reused:
                _compile(prog, folder, cc, cflags, include, libs, sources, out_dir, key_data)
    argv = [cc, *cflags, *include, "-o", str(binary), *sources, *libs, *prog.ldflags]
    return {"compiler": cc_info, "command": argv, "binary": str(binary), "size": binary.stat().st_size,
            "reused": reused, "key": key, "cflags": cflags, "ldflags": list(prog.ldflags)}


def _compile(prog: Program, folder: Path, cc: str, cflags: list[str], include: list[str], libs: list[str],
             sources: list[str], out_dir: Path, key_data: dict[str, Any]) -> None:
    """Compile into a staging folder beside ``out_dir`` and rename it into place (marker inside)."""
    import shutil

    stage = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.{threading.get_ident()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    log = stage / "compile.log"
    argv = [cc, *cflags, *include, "-o", str(stage / prog.binary), *sources, *libs, *prog.ldflags]
    env = {"PATH": SYSTEM_PATH, "LANG": "C", "LC_ALL": "C", "HOME": str(stage), "TMPDIR": str(stage)}
    try:
        with open(log, "wb") as f:
            f.write(("$ " + " ".join(argv) + "\n").encode())
            f.flush()
            try:
                r = subprocess.run(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                   stderr=subprocess.STDOUT, timeout=prog.timeout)
            except subprocess.TimeoutExpired:
                raise BuildError(f"{prog.name}: compiling took longer than {prog.timeout:g} s", log=str(log)) from None
            except OSError as e:
                raise BuildError(f"{prog.name}: cannot run the compiler {cc} ({e.strerror or e})") from None
        if r.returncode != 0:
            keep = out_dir.with_name(f"{out_dir.name}-failed")
            shutil.rmtree(keep, ignore_errors=True)
            os.replace(stage, keep)  # the log stays readable
            log = keep / "compile.log"
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise BuildError(f"{prog.name}: compiling failed (exit {r.returncode})", log=str(log), tail=tail)
        atomic_write(stage / "ok.json", json.dumps(key_data, sort_keys=True) + "\n")
        shutil.rmtree(out_dir, ignore_errors=True)  # an incomplete folder of a killed compile
        os.replace(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def run_stage(ws: Workspace, ctx: dict[str, Any]) -> dict[str, Any]:
    """Run the chosen command ``repeat`` times, each in a fresh output folder; measure."""
    req: RunRequest = ctx["request"]
    prog: Program = ctx["program"]
    binary = Path(ctx["stages"]["compile"]["binary"])
    name, cmd = prog.command_named(req.command)
    unknown = sorted(set(req.params) - set(prog.params))
    if unknown:
        raise UnknownParameter(f"{prog.name} has no parameter {', '.join(unknown)}"
                               + (f" (it has {', '.join(prog.params)})" if prog.params else " (it declares none)"))
    params = {**prog.params, **req.params}
    input_key = req.input or prog.input
    prefixes: Mapping[str, str] = ctx["prefixes"]
    if input_key is not None and input_key not in prefixes:
        raise ProgramError(f"the input {input_key!r} is not a provisioned dependency of this project",
                           hint=f"add it (ckpm add {input_key}) and run again")
    run_id = new_id()
    run_dir = ws.root / STATE / "runs" / run_id
    emulator: list[str] = []
    if ctx["target"] != ctx["host"]:
        tc = _toolchain(ws, ctx)
        if not tc.emulator:
            raise RunFailed(f"no emulator for {ctx['target']} on this host: the program was built but cannot run here",
                            hint="install Debian's qemu-user (qemu-aarch64) or run it on a machine of that target")
        emulator = list(tc.emulator)
    reps = []
    argv: list[str] = []
    launcher = launcher_for(ws, ctx)
    for i in range(req.repeat):
        rep_dir = run_dir / f"rep-{i + 1}"
        out = rep_dir / "out"
        out.mkdir(parents=True)
        values = {"out": str(out), "src": str(ctx["folder"]), "bin": str(binary),
                  "input": prefixes.get(input_key, "") if input_key else ""}
        args = [_fill(a, values, params, prefixes, prog.name) for a in cmd.get("args", [])]
        env = _run_env(ctx, {**prog.env, **cmd.get("env", {})}, values, params, prefixes, prog.name, req.env, rep_dir)
        argv = [*emulator, str(binary), *args]
        reps.append(_measure(argv, rep_dir, env, prog, binary, launcher))
    return {"command": name, "argv": argv, "env": {k: v for k, v in env.items() if k not in ("PATH", "HOME")},
            "params": params, "input": input_key, "run_dir": str(run_dir), "repetitions": reps}


def validate_stage(ws: Workspace, ctx: dict[str, Any]) -> dict[str, Any]:
    """Every check of ``[run.validate]`` on every repetition; the first failure named."""
    prog: Program = ctx["program"]
    v = prog.validate
    checks: list[dict[str, Any]] = []
    for rep in ctx["stages"]["run"]["repetitions"]:
        out = Path(rep["out"])
        n = rep["n"]
        if rep["exit"] != 0:
            checks.append({"check": f"run {n} exit status", "ok": False,
                           "detail": f"the program exited with {rep['exit']}" + (f": {rep['stderr_tail']}"
                                                                                 if rep.get("stderr_tail") else "")})
            continue
        for rel in v.get("exists", []):
            ok = (out / rel).exists()
            checks.append({"check": f"run {n}: {rel} exists", "ok": ok, "detail": "" if ok else f"{rel} was not written"})
        for f in v.get("files", []):
            p = out / f["path"]
            got = sha256_file(p) if p.is_file() else None
            ok = got == f["sha256"].lower()
            checks.append({"check": f"run {n}: sha256 of {f['path']}", "ok": ok,
                           "detail": "" if ok else (f"{f['path']} differs: sha256 {got[:16]}…, expected "
                                                    f"{f['sha256'][:16]}…" if got else f"{f['path']} was not written")})
        stdout = rep.get("_stdout", "")
        for line in v.get("stdout", []):
            ok = line in stdout
            checks.append({"check": f"run {n}: output has {line!r}", "ok": ok,
                           "detail": "" if ok else f"the output lacks {line!r}"})
        for c in v.get("metrics", []):
            val = rep["metrics"].get(c["name"])
            ok, why = _check_metric(val, c)
            checks.append({"check": f"run {n}: metric {c['name']}", "ok": ok, "detail": why})
    return {"ok": all(c["ok"] for c in checks), "checks": checks}


def record_stage(ws: Workspace, ctx: dict[str, Any]) -> dict[str, Any]:
    """The experiment record (ckpm/experiment/record.py); saved when the request names one."""
    req: RunRequest = ctx["request"]
    prog: Program = ctx["program"]
    stages = ctx["stages"]
    reps = [{k: v for k, v in r.items() if not k.startswith("_")} for r in stages["run"]["repetitions"]]
    better = {m.name: m.better for m in prog.metrics}
    lock: Lock = ctx["lock"]
    comp = stages["compile"]
    record: dict[str, Any] = {
        "format": 1, "id": new_id(), "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ckpm_version": __version__,
        "ok": bool(stages["validate"]["ok"]) and all(r["exit"] == 0 for r in reps),
        "program": {"name": prog.name, "command": stages["run"]["command"],
                    "version": _version_of(lock, prog.name), "component": req.component},
        "target": ctx["target"],
        "config": {"flags": req.flags, "cflags": comp["cflags"], "ldflags": comp["ldflags"],
                   "extra_cflags": list(req.cflags), "env": {**prog.env, **req.env}, "params": stages["run"]["params"],
                   "input": stages["run"]["input"], "repeat": req.repeat, "compiler": comp["compiler"],
                   "command": stages["run"]["command"], "component": req.component, "target": ctx["target"]},
        "request": req.to_dict(),
        "lock": lock.dumps(),
        "host": _facts(ws),
        "machine": machine_facts(),  # CPU model and count, OS, libc: what a pushed record says of the machine
        "stages": {k: _small(v) for k, v in stages.items()},
        "command_lines": [stages["compile"]["command"], stages["run"]["argv"]],
        "repetitions": reps,
        "metrics": summarise(reps, better),
        "validation": stages["validate"]["checks"],
    }
    record["tolerances"] = tolerances_for(record["metrics"], prog.tolerance)
    if req.record:
        record["experiment"] = req.record
        path = save_record(ws.root, req.record, record)
        record["path"] = str(path)
    return record


STAGES: list[tuple[str, Callable[[Workspace, dict[str, Any]], dict[str, Any]]]] = [
    ("provision", provision_stage), ("compile", compile_stage), ("run", run_stage), ("validate", validate_stage),
]


def run(ws: Workspace, request: RunRequest, *, lock: Lock | None = None,
        mirror_dirs: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The whole pipeline; returns the record (saved when ``request.record`` names an
    experiment). A failed validation is recorded first, then raised (ValidationFailed).
    ``mirror_dirs``: vendored folders the provision stage tries first (``sync --mirror``)."""
    ctx: dict[str, Any] = {"request": request, "stages": {}, "host": ws.host_target,
                           "mirror_dirs": tuple(mirror_dirs)}
    if lock is not None:
        ctx["lock"] = lock
    for name, stage in STAGES:
        if name == "compile":
            ctx["program"], ctx["folder"] = program_of(ws, ctx)
        ctx["stages"][name] = stage(ws, ctx)
    record = record_stage(ws, ctx)
    failed = next((r for r in ctx["stages"]["run"]["repetitions"] if r["exit"] != 0), None)
    if failed is not None:
        saved = f"; the record was saved as {record['path']}" if record.get("path") else ""
        err: ValidationFailed = ProgramFailed(
            f"{record['program']['name']}: the program exited with {failed['exit']} (run {failed['n']})",
            details=failed["stderr_tail"].splitlines() or ["(it wrote nothing on stderr)"],
            hint=f"its whole output is in {failed['stderr']} and {failed['stdout']}{saved}")
        err.record = record
        raise err
    if not record["ok"]:
        bad = next((c for c in record["validation"] if not c["ok"]), None)
        err = ValidationFailed(f"{record['program']['name']}: {bad['detail'] if bad else 'a repetition failed'}",
                               details=[f"{c['check']}: {c['detail']}" for c in record["validation"] if not c["ok"]][:10],
                               hint=("the record was saved as " + record["path"]) if record.get("path") else None)
        err.record = record
        raise err
    return record


def run_request(project: Path | str, settings: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """One run from plain data (a tuning point): the record, or a CkpmError."""
    ws = Workspace(Path(project), settings)
    return run(ws, RunRequest.from_dict(request))


def request_evaluator(project: Path, settings: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``evaluate(request) -> record`` for tuning on this machine."""
    import functools

    return functools.partial(run_request, Path(project), settings)


# -- helpers ----------------------------------------------------------------------------------

def _dep_prefixes(ctx: dict[str, Any]) -> list[str]:
    """The prefixes sync installed (the store's, the project's environment): their include,
    lib and bin folders are the program's; the host's own folders are the system's already."""
    return sorted(ctx.get("installed", ()))


def _toolchain(ws: Workspace, ctx: dict[str, Any]) -> Any:
    tc = ctx.get("_toolchain")
    if tc is None:
        from ckpm.build.toolchain import find_toolchain

        tc = ctx["_toolchain"] = find_toolchain(ctx["target"], settings=ws.settings, host_target=ctx["host"])
    return tc


def _compiler(ws: Workspace, ctx: dict[str, Any], prog: Program, target: str) -> tuple[str, dict[str, Any]]:
    """The compiler: the lock's pin of ``prog.compiler`` when it is a host compiler for this
    target, else the toolchain detection finds for the target (a cross compiler)."""
    lock: Lock = ctx["lock"]
    if target == ctx["host"]:
        for p in lock.packages:
            if prog.compiler in p.keys and isinstance(p.source, HostSource) and p.source.path and target in p.targets:
                path = p.source.path
                if prog.language == "c++" and not re.search(r"(\+\+|xx)[^/]*$", path):
                    break
                return path, {"name": p.name, "version": p.version, "path": path}
    tc = _toolchain(ws, ctx)
    cc = tc.cxx if prog.language == "c++" else tc.cc
    if not cc:
        raise BuildError(f"no {prog.language} compiler for {target} on this host",
                         hint="add one: ckpm add compiler --tags compiler,lang-c (or install Debian's gcc)")
    return cc, {"name": Path(cc).name, "version": _cc_version(cc), "path": cc}


def _cc_version(cc: str) -> str:
    try:
        r = subprocess.run([cc, "-dumpfullversion", "-dumpversion"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _fill(text: str, values: Mapping[str, str], params: Mapping[str, str], prefixes: Mapping[str, str],
          program: str) -> str:
    def one(m: re.Match[str]) -> str:
        kind, arg = m.group(1), m.group(2)
        if kind == "param":
            if arg not in params:
                raise ProgramError(f"{program}: {{param.{arg}}} names no parameter")
            return params[arg]
        if kind == "dep":
            if arg not in prefixes:
                raise ProgramError(f"{program}: {{dep.{arg}}} names no provisioned dependency")
            return prefixes[arg]
        return values.get(kind, "")

    return PLACEHOLDER_RE.sub(one, text)


def _run_env(ctx: dict[str, Any], declared: Mapping[str, str], values: Mapping[str, str],
             params: Mapping[str, str], prefixes: Mapping[str, str], program: str, user: Mapping[str, str],
             rep_dir: Path) -> dict[str, str]:
    """A clean environment: the system PATH (with the dependencies' bin first), LANG=C, a HOME
    in the run's folder, the dependencies' variables, the program's env, then the user's --env."""
    from ckpm.build.environment import deps_env

    deps = {k: Path(v) for k, v in prefixes.items() if v in _dep_prefixes(ctx)}
    env = {"PATH": SYSTEM_PATH, "LANG": "C", "LC_ALL": "C", "HOME": str(rep_dir), "TMPDIR": str(rep_dir)}
    env.update(deps_env(deps, base_path=SYSTEM_PATH))
    env.update({k: _fill(v, values, params, prefixes, program) for k, v in declared.items()})
    env.update(user)
    return env


def _measure(argv: list[str], rep_dir: Path, env: dict[str, str], prog: Program, binary: Path,
             launcher: str | None = None) -> dict[str, Any]:
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
    metrics: dict[str, Any] = {"time": wall, "size": binary.stat().st_size, "max_rss": rss_mib}
    problems = []
    for m in prog.metrics:
        value, why = _parse_metric(m, stdout, out)
        if value is not None:
            metrics[m.name] = value
        else:
            problems.append(why)
    return {"n": int(rep_dir.name.split("-")[-1]), "exit": code, "metrics": metrics, "out": str(out),
            "stdout": str(stdout_path), "stderr": str(stderr_path),
            "stderr_tail": _tail_lines(_read(stderr_path)) if code else "",
            "metric_problems": problems, "_stdout": stdout}


def launcher_for(ws: Workspace, ctx: dict[str, Any]) -> str | None:
    """The measuring launcher for this host: compiled once into the cache by the host's C
    compiler (found by detection only then), reused by every later run (None without a compiler)."""
    key = hashlib.sha256((ctx["host"] + "\0" + LAUNCHER_C).encode()).hexdigest()[:16]
    path = Path(ws.settings.cache_root) / "launcher" / key / "ckpm-launch"
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    try:
        from ckpm.build.toolchain import find_toolchain

        tc = find_toolchain(ctx["host"], settings=ws.settings, host_target=ctx["host"])
    except CkpmError:
        return None
    if not tc.cc:
        return None
    tmp = path.with_name(f".ckpm-launch.{os.getpid()}.{threading.get_ident()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    src = path.with_name("launch.c")
    atomic_write(src, LAUNCHER_C)
    try:
        r = subprocess.run([tc.cc, "-O2", "-o", str(tmp), str(src)], capture_output=True, timeout=60,
                           env={"PATH": SYSTEM_PATH, "LANG": "C"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    os.replace(tmp, path)
    return str(path)


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


def _tail_lines(text: str, head: int = 3, tail: int = 9, chars: int = 2000) -> str:
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


def _parse_metric(m: Any, stdout: str, out: Path) -> tuple[float | None, str]:
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


def _check_metric(val: Any, c: Mapping[str, Any]) -> tuple[bool, str]:
    if not isinstance(val, (int, float)):
        return False, f"the metric {c['name']} was not found in the output"
    if "equals" in c:
        tol = float(c.get("tolerance", 0))
        want = float(c["equals"])
        if abs(val - want) > tol * abs(want) + 1e-12:
            return False, f"{c['name']} is {val:g}, expected {want:g}" + (f" (±{tol:.0%})" if tol else "")
    if "min" in c and val < c["min"]:
        return False, f"{c['name']} is {val:g}, below {c['min']:g}"
    if "max" in c and val > c["max"]:
        return False, f"{c['name']} is {val:g}, above {c['max']:g}"
    return True, ""


def _facts(ws: Workspace) -> dict[str, str]:
    try:
        from ckpm.detect import host_facts

        return {k: d.version for k, d in sorted(host_facts(ws.settings.environ, cache_dir=ws.settings.cache_dir).items())}
    except CkpmError:
        return {}


def _version_of(lock: Lock, name: str) -> str | None:
    return next((p.version for p in lock.packages if p.name == name), None)


def _small(v: Any) -> Any:
    """A stage's output for the record: no private fields."""
    if isinstance(v, dict):
        return {k: _small(x) for k, x in v.items() if not str(k).startswith("_")}
    if isinstance(v, list):
        return [_small(x) for x in v]
    return v


def with_target(request: RunRequest, target: str | None) -> RunRequest:
    return replace(request, target=target)


def packed_evaluator(project: Path | Workspace, settings: Any = None, *,
                     check: bool = True) -> tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]:
    """For Dask: ``(run_packed, (pack,))`` (see ckpm/pipeline/remote.py)."""
    from ckpm.pipeline.remote import packed_evaluator as pe

    return pe(project, settings, check=check)
