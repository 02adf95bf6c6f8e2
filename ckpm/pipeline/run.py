"""``ckpm run``: provision → compile → run → validate → record.

Each stage is a function that reads the run's context (a frozen :class:`RunContext`: the
request, the host and target, the lock, where each dependency was provisioned, the program
and its folder) and returns its own typed result (:class:`ProvisionResult`,
:class:`CompileResult`, :class:`RunResult`, :class:`ValidateResult`), which the record keeps
under ``stages`` as plain data (``to_dict``), so a notebook can call them one by one. Work
happens under the project's ``.ckpm/``: compiled programs in ``.ckpm/build/<key>/`` (reused
when the sources, flags, compiler and target are the same), runs in ``.ckpm/runs/<id>/`` —
never inside a component's source or a store prefix. Measuring one run (the launcher, the
wait, the metrics) is :mod:`ckpm.pipeline.measure`.

The program comes from the project's ``[run]`` table (``ckpm run``) or a dependency's
(``ckpm run COMPONENT``: its ``run`` table in the lock, its sources in its store prefix).
Running it is what the user asked for; its description is still checked whole first
(:mod:`ckpm.model.program`), and the program runs without a shell, with a clean
environment, a timeout, and its output bounded when it is read back.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ckpm import __version__
from ckpm.errors import BuildError, CkpmError
from ckpm.detect.machine import machine_facts
from ckpm.experiment.record import new_id, save_record, summarise
from ckpm.experiment.tolerance import for_record as tolerances_for
from ckpm.fsutil import atomic_write, sha256_file
from ckpm.model.lockfile import Lock
from ckpm.model.program import (PLACEHOLDER_RE, Program, ProgramError, UnknownFlags, UnknownParameter,
                                 parse_program)
from ckpm.model.source import HostSource
from ckpm.pipeline.measure import SYSTEM_PATH, Repetition, RunFailed, launcher_for, measure
from ckpm.workspace import Workspace

if TYPE_CHECKING:
    from ckpm.build.toolchain import Toolchain
    from ckpm.pipeline.remote import PackedRun
    from ckpm.provision import Provisioned
    from ckpm.settings import Settings

__all__ = ["RunRequest", "RunContext", "ProvisionResult", "CompileResult", "RunResult", "Check", "ValidateResult",
           "StageResults", "ProgramFailed", "ValidationFailed", "RunFailed", "run", "run_request",
           "request_evaluator", "packed_evaluator", "provision_stage", "program_of", "compile_stage", "run_stage",
           "validate_stage", "record_stage"]

STATE = Path(".ckpm")


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


# -- what the stages read and return -----------------------------------------------------------

@dataclass(frozen=True)
class ProvisionResult:
    """What provisioning did: the target, the lock the run uses, where each dependency is
    (by key and by name), and the prefixes sync installed (the store's, the project's environment)."""

    target: str
    lock: Lock
    prefixes: Mapping[str, str]
    installed: frozenset[str]
    packages: tuple[Provisioned, ...] = ()
    lock_changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "packages": [p.to_dict() for p in self.packages],
                "prefixes": dict(self.prefixes), "lock_changed": self.lock_changed}


@dataclass(frozen=True)
class RunContext:
    """What the stages after provisioning read, frozen: the request, the host and the target,
    the lock, where each dependency is, and the program with the folder of its sources."""

    request: RunRequest
    host: str
    target: str
    lock: Lock
    prefixes: Mapping[str, str]
    installed: frozenset[str]
    program: Program
    folder: Path

    @classmethod
    def after(cls, request: RunRequest, host: str, provisioned: ProvisionResult, program: Program,
              folder: Path) -> "RunContext":
        return cls(request=request, host=host, target=provisioned.target, lock=provisioned.lock,
                   prefixes=provisioned.prefixes, installed=provisioned.installed, program=program, folder=folder)


@dataclass(frozen=True)
class CompileResult:
    """The compiled program: the compiler (name, version, path), the command line, the binary,
    whether an earlier compile was reused, the build key, and the flags."""

    compiler: Mapping[str, str]
    command: tuple[str, ...]
    binary: Path
    size: int
    reused: bool
    key: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    #: the target's toolchain when detection found it for the compile (a cross target), for the run's emulator
    toolchain: Toolchain | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"compiler": dict(self.compiler), "command": list(self.command), "binary": str(self.binary),
                "size": self.size, "reused": self.reused, "key": self.key, "cflags": list(self.cflags),
                "ldflags": list(self.ldflags)}


@dataclass(frozen=True)
class RunResult:
    """The chosen command run ``repeat`` times: its last argv and environment (without PATH
    and HOME), the parameters and input used, the run's folder and each repetition."""

    command: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    params: Mapping[str, str]
    input: str | None
    run_dir: Path
    repetitions: tuple[Repetition, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "argv": list(self.argv), "env": dict(self.env), "params": dict(self.params),
                "input": self.input, "run_dir": str(self.run_dir),
                "repetitions": [r.to_dict() for r in self.repetitions]}


@dataclass(frozen=True)
class Check:
    """One check of ``[run.validate]`` on one repetition."""

    check: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class ValidateResult:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class StageResults:
    """Every stage's result, as the record keeps them under ``stages``."""

    provision: ProvisionResult
    compile: CompileResult
    run: RunResult
    validate: ValidateResult

    def to_dict(self) -> dict[str, Any]:
        return {"provision": self.provision.to_dict(), "compile": self.compile.to_dict(),
                "run": self.run.to_dict(), "validate": self.validate.to_dict()}


# -- the stages ------------------------------------------------------------------------------

def provision_stage(ws: Workspace, request: RunRequest, *, lock: Lock | None = None,
                    mirror_dirs: tuple[Path, ...] = ()) -> ProvisionResult:
    """Lock (unless given a lock, or ``locked``) and sync for the target; where each key is.
    ``mirror_dirs``: vendored folders tried first (an artifact's sources)."""
    from ckpm import provision as prov

    target = request.target or ws.host_target
    mirror_dirs = tuple(mirror_dirs)
    if lock is None:
        from ckpm.api import LockOptions, sync

        outcome, res = sync(ws, prov.SyncOptions(target=target, mirror_dirs=mirror_dirs),
                            LockOptions(locked=request.locked))
        lock = outcome.lock
    else:  # a recorded lock (replay, a remote worker): its recipes run only from verified lines
        from ckpm.api import verify_packages

        prov.use_vendored(ws, mirror_dirs, lock)  # vendored git commits and index lines, for the verification
        verify_packages(ws, lock, what="the recorded lock")
        res = prov.sync(ws, lock, prov.SyncOptions(target=target, mirror_dirs=mirror_dirs))
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
    installed = frozenset(p.path for p in res.packages if p.path and p.action in ("store", "built", "venv"))
    return ProvisionResult(target=target, lock=lock, prefixes=where, installed=installed,
                           packages=tuple(res.packages), lock_changed=res.lock_changed)


def program_of(ws: Workspace, request: RunRequest, provisioned: ProvisionResult) -> tuple[Program, Path]:
    """The program to run and its folder: the project's [run], or a locked component's."""
    req = request
    lock = provisioned.lock
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
    folder = provisioned.prefixes.get(pkg.name)
    if folder is None:
        raise ProgramError(f"{pkg.name} {pkg.version} was not provisioned on {provisioned.target}: its sources are "
                           "not on this machine", hint="its index line needs an install recipe that copies them")
    return pkg.run, Path(folder)  # checked when the lock was read


def compile_stage(ws: Workspace, ctx: RunContext) -> CompileResult:
    """Compile the program's sources with the locked (or detected) compiler for the target;
    reuse the binary when the sources, flags, compiler and target are unchanged."""
    req = ctx.request
    prog = ctx.program
    folder = ctx.folder
    target = ctx.target
    if req.flags is not None and req.flags not in prog.flags:
        raise UnknownFlags(f"{prog.name} has no flag profile {req.flags!r}"
                           + (f" (it has {', '.join(prog.flags)})" if prog.flags else " (it declares none)"))
    cflags = [*prog.cflags, *(prog.flags.get(req.flags, ()) if req.flags else ()), *req.cflags]
    cc, cc_info, tc = _compiler(ws, ctx, prog, target)
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
    return CompileResult(compiler=cc_info, command=tuple(argv), binary=binary, size=binary.stat().st_size,
                         reused=reused, key=key, cflags=tuple(cflags), ldflags=tuple(prog.ldflags), toolchain=tc)


def _compile(prog: Program, folder: Path, cc: str, cflags: list[str], include: list[str], libs: list[str],
             sources: list[str], out_dir: Path, key_data: dict[str, Any]) -> None:
    """Compile into a fresh folder beside ``out_dir``, renamed into place with its marker inside
    (:func:`ckpm.fsutil.build_dir_atomically`); a failed compile's folder is kept as
    ``<out_dir>-failed``, so that its log stays readable. The caller holds the key's lock."""
    import shutil

    from ckpm.fsutil import build_dir_atomically

    def build(stage: Path) -> None:
        stage.mkdir()
        log = stage / "compile.log"
        argv = [cc, *cflags, *include, "-o", str(stage / prog.binary), *sources, *libs, *prog.ldflags]
        env = {"PATH": SYSTEM_PATH, "LANG": "C", "LC_ALL": "C", "HOME": str(stage), "TMPDIR": str(stage)}
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
            stage.rename(keep)  # the log stays readable
            log = keep / "compile.log"
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise BuildError(f"{prog.name}: compiling failed (exit {r.returncode})", log=str(log), tail=tail)
        atomic_write(stage / "ok.json", json.dumps(key_data, sort_keys=True) + "\n")

    shutil.rmtree(out_dir, ignore_errors=True)  # an incomplete folder (its binary or marker removed)
    build_dir_atomically(out_dir, build)


def run_stage(ws: Workspace, ctx: RunContext, compiled: CompileResult) -> RunResult:
    """Run the chosen command ``repeat`` times, each in a fresh output folder; measure."""
    req = ctx.request
    prog = ctx.program
    binary = compiled.binary
    name, cmd = prog.command_named(req.command)
    unknown = sorted(set(req.params) - set(prog.params))
    if unknown:
        raise UnknownParameter(f"{prog.name} has no parameter {', '.join(unknown)}"
                               + (f" (it has {', '.join(prog.params)})" if prog.params else " (it declares none)"))
    params = {**prog.params, **req.params}
    input_key = req.input or prog.input
    prefixes = ctx.prefixes
    if input_key is not None and input_key not in prefixes:
        raise ProgramError(f"the input {input_key!r} is not a provisioned dependency of this project",
                           hint=f"add it (ckpm add {input_key}) and run again")
    run_id = new_id()
    run_dir = ws.root / STATE / "runs" / run_id
    emulator: list[str] = []
    if ctx.target != ctx.host:
        tc = compiled.toolchain or _toolchain(ws, ctx)
        if not tc.emulator:
            raise RunFailed(f"no emulator for {ctx.target} on this host: the program was built but cannot run here",
                            hint="install Debian's qemu-user (qemu-aarch64) or run it on a machine of that target")
        emulator = list(tc.emulator)
    reps = []
    argv: list[str] = []
    env: dict[str, str] = {}
    launcher = launcher_for(ws.settings, ctx.host)
    for i in range(req.repeat):
        rep_dir = run_dir / f"rep-{i + 1}"
        out = rep_dir / "out"
        out.mkdir(parents=True)
        values = {"out": str(out), "src": str(ctx.folder), "bin": str(binary),
                  "input": prefixes.get(input_key, "") if input_key else ""}
        args = [_fill(a, values, params, prefixes, prog.name) for a in cmd.get("args", [])]
        env = _run_env(ctx, {**prog.env, **cmd.get("env", {})}, values, params, prefixes, prog.name, req.env, rep_dir)
        argv = [*emulator, str(binary), *args]
        reps.append(measure(argv, rep_dir, env, prog, binary, launcher))
    return RunResult(command=name, argv=tuple(argv), env={k: v for k, v in env.items() if k not in ("PATH", "HOME")},
                     params=params, input=input_key, run_dir=run_dir, repetitions=tuple(reps))


def validate_stage(ws: Workspace, ctx: RunContext, ran: RunResult) -> ValidateResult:
    """Every check of ``[run.validate]`` on every repetition; the first failure named."""
    v = ctx.program.validate
    checks: list[Check] = []
    for rep in ran.repetitions:
        out = rep.out
        n = rep.n
        if rep.exit != 0:
            checks.append(Check(f"run {n} exit status", False,
                                f"the program exited with {rep.exit}" + (f": {rep.stderr_tail}"
                                                                         if rep.stderr_tail else "")))
            continue
        for rel in v.get("exists", []):
            ok = (out / rel).exists()
            checks.append(Check(f"run {n}: {rel} exists", ok, "" if ok else f"{rel} was not written"))
        for f in v.get("files", []):
            p = out / f["path"]
            got = sha256_file(p) if p.is_file() else None
            ok = got == f["sha256"].lower()
            checks.append(Check(f"run {n}: sha256 of {f['path']}", ok,
                                "" if ok else (f"{f['path']} differs: sha256 {got[:16]}…, expected "
                                               f"{f['sha256'][:16]}…" if got else f"{f['path']} was not written")))
        for line in v.get("stdout", []):
            ok = line in rep.stdout_text
            checks.append(Check(f"run {n}: output has {line!r}", ok, "" if ok else f"the output lacks {line!r}"))
        for c in v.get("metrics", []):
            ok, why = _check_metric(rep.metrics.get(c["name"]), c)
            checks.append(Check(f"run {n}: metric {c['name']}", ok, why))
    return ValidateResult(tuple(checks))


def record_stage(ws: Workspace, ctx: RunContext, stages: StageResults) -> dict[str, Any]:
    """The experiment record (ckpm/experiment/record.py); saved when the request names one."""
    req = ctx.request
    prog = ctx.program
    reps = [r.to_dict() for r in stages.run.repetitions]
    better = {m.name: m.better for m in prog.metrics}
    lock = ctx.lock
    comp = stages.compile
    ran = stages.run
    record: dict[str, Any] = {
        "format": 1, "id": new_id(), "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ckpm_version": __version__,
        "ok": stages.validate.ok and all(r.exit == 0 for r in stages.run.repetitions),
        "program": {"name": prog.name, "command": ran.command,
                    "version": _version_of(lock, prog.name), "component": req.component},
        "target": ctx.target,
        "config": {"flags": req.flags, "cflags": list(comp.cflags), "ldflags": list(comp.ldflags),
                   "extra_cflags": list(req.cflags), "env": {**prog.env, **req.env}, "params": dict(ran.params),
                   "input": ran.input, "repeat": req.repeat, "compiler": dict(comp.compiler),
                   "command": ran.command, "component": req.component, "target": ctx.target},
        "request": req.to_dict(),
        "lock": lock.dumps(),
        "host": _facts(ws),
        "machine": machine_facts(),  # CPU model and count, OS, libc: what a pushed record says of the machine
        "stages": {k: _small(v) for k, v in stages.to_dict().items()},
        "command_lines": [list(comp.command), list(ran.argv)],
        "repetitions": reps,
        "metrics": summarise(reps, better),
        "validation": [c.to_dict() for c in stages.validate.checks],
    }
    record["tolerances"] = tolerances_for(record["metrics"], prog.tolerance)
    if req.record:
        record["experiment"] = req.record
        path = save_record(ws.root, req.record, record)
        record["path"] = str(path)
    return record


def run(ws: Workspace, request: RunRequest, *, lock: Lock | None = None,
        mirror_dirs: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The whole pipeline; returns the record (saved when ``request.record`` names an
    experiment). A failed validation is recorded first, then raised (ValidationFailed).
    ``mirror_dirs``: vendored folders the provision stage tries first (``sync --mirror``)."""
    provisioned = provision_stage(ws, request, lock=lock, mirror_dirs=tuple(mirror_dirs))
    program, folder = program_of(ws, request, provisioned)
    ctx = RunContext.after(request, ws.host_target, provisioned, program, folder)
    compiled = compile_stage(ws, ctx)
    ran = run_stage(ws, ctx, compiled)
    stages = StageResults(provisioned, compiled, ran, validate_stage(ws, ctx, ran))
    record = record_stage(ws, ctx, stages)
    failed = next((r for r in ran.repetitions if r.exit != 0), None)
    if failed is not None:
        saved = f"; the record was saved as {record['path']}" if record.get("path") else ""
        err: ValidationFailed = ProgramFailed(
            f"{record['program']['name']}: the program exited with {failed.exit} (run {failed.n})",
            details=failed.stderr_tail.splitlines() or ["(it wrote nothing on stderr)"],
            hint=f"its whole output is in {failed.stderr} and {failed.stdout}{saved}")
        err.record = record
        raise err
    if not record["ok"]:
        bad = [c for c in stages.validate.checks if not c.ok]
        err = ValidationFailed(f"{record['program']['name']}: {bad[0].detail if bad else 'a repetition failed'}",
                               details=[f"{c.check}: {c.detail}" for c in bad][:10],
                               hint=("the record was saved as " + record["path"]) if record.get("path") else None)
        err.record = record
        raise err
    return record


def run_request(project: Path | str, settings: Settings, request: Mapping[str, Any]) -> dict[str, Any]:
    """One run from plain data (a tuning point): the record, or a CkpmError."""
    ws = Workspace(Path(project), settings)
    return run(ws, RunRequest.from_dict(request))


def request_evaluator(project: Path, settings: Settings) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``evaluate(request) -> record`` for tuning on this machine."""
    import functools

    return functools.partial(run_request, Path(project), settings)


# -- helpers ----------------------------------------------------------------------------------

def _dep_prefixes(ctx: RunContext) -> list[str]:
    """The prefixes sync installed (the store's, the project's environment): their include,
    lib and bin folders are the program's; the host's own folders are the system's already."""
    return sorted(ctx.installed)


def _toolchain(ws: Workspace, ctx: RunContext) -> Toolchain:
    """The target's toolchain, found by detection (cross compilers and their emulator)."""
    from ckpm.build.toolchain import find_toolchain

    return find_toolchain(ctx.target, settings=ws.settings, host_target=ctx.host)


def _compiler(ws: Workspace, ctx: RunContext, prog: Program,
              target: str) -> tuple[str, dict[str, str], Toolchain | None]:
    """The compiler: the lock's pin of ``prog.compiler`` when it is a host compiler for this
    target, else the toolchain detection finds for the target (a cross compiler), returned too."""
    if target == ctx.host:
        for p in ctx.lock.packages:
            if prog.compiler in p.keys and isinstance(p.source, HostSource) and p.source.path and target in p.targets:
                path = p.source.path
                if prog.language == "c++" and not re.search(r"(\+\+|xx)[^/]*$", path):
                    break
                return path, {"name": p.name, "version": p.version, "path": path}, None
    tc = _toolchain(ws, ctx)
    cc = tc.cxx if prog.language == "c++" else tc.cc
    if not cc:
        raise BuildError(f"no {prog.language} compiler for {target} on this host",
                         hint="add one: ckpm add compiler --tags compiler,lang-c (or install Debian's gcc)")
    return cc, {"name": Path(cc).name, "version": _cc_version(cc), "path": cc}, tc


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


def _run_env(ctx: RunContext, declared: Mapping[str, str], values: Mapping[str, str],
             params: Mapping[str, str], prefixes: Mapping[str, str], program: str, user: Mapping[str, str],
             rep_dir: Path) -> dict[str, str]:
    """A clean environment: the system PATH (with the dependencies' bin first), LANG=C, a HOME
    in the run's folder, the dependencies' variables, the program's env, then the user's --env."""
    from ckpm.build.environment import deps_env

    installed = _dep_prefixes(ctx)
    deps = {k: Path(v) for k, v in prefixes.items() if v in installed}
    env = {"PATH": SYSTEM_PATH, "LANG": "C", "LC_ALL": "C", "HOME": str(rep_dir), "TMPDIR": str(rep_dir)}
    env.update(deps_env(deps, base_path=SYSTEM_PATH))
    env.update({k: _fill(v, values, params, prefixes, program) for k, v in declared.items()})
    env.update(user)
    return env


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


def packed_evaluator(project: Path | Workspace, settings: Settings | None = None, *,
                     check: bool = True) -> tuple[PackedRun, tuple[dict[str, Any]]]:
    """For Dask: ``(run_packed, (pack,))`` (see ckpm/pipeline/remote.py)."""
    from ckpm.pipeline.remote import packed_evaluator as pe

    return pe(project, settings, check=check)
