"""Running a project's program on another machine (a Dask worker): pack, ship, run.

``pack_project`` takes what a worker needs and nothing else: the project's ``ckpm.toml``, its
``ckpm.lock`` and the program's source files (bounded). ``run_packed`` recreates the project
in a temporary folder on the worker, provisions it with the shipped lock (``sync --locked``:
nothing is resolved, every file verified against the lock), runs the request and returns the
record. The worker's own settings apply (its store, its cache, its mirrors config), so a
cluster whose workers share a store builds each prefix once.
"""
from __future__ import annotations

import base64
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

from ckpm.model.lockfile import LOCKFILE
from ckpm.model.manifest import MANIFEST, load_project
from ckpm.model.program import ProgramError, parse_program

MAX_PACK_BYTES = 64 << 20
PACK_FORMAT = 1


def pack_project(project: Path) -> dict[str, Any]:
    """The project's manifest, lock and program sources, as plain data (picklable, JSON-able)."""
    project = Path(project)
    manifest = load_project(project / MANIFEST)
    lock_path = project / LOCKFILE
    if not lock_path.is_file():
        raise ProgramError(f"{project}: no {LOCKFILE}: lock the project before sending it to workers",
                           hint="run `ckpm lock` (or `ckpm sync`) first")
    files: dict[str, str] = {}
    total = 0
    run = manifest.data.get("run")
    if run is not None:
        prog = parse_program(run, name=manifest.name, where=f"{manifest.path} [run]")
        for rel in prog.sources:
            data = (project / rel).read_bytes()
            total += len(data)
            if total > MAX_PACK_BYTES:
                raise ProgramError(f"{project}: the program's sources are larger than {MAX_PACK_BYTES >> 20} MiB")
            files[rel] = base64.b64encode(data).decode("ascii")
    return {"format": PACK_FORMAT, "name": manifest.name,
            "manifest": (project / MANIFEST).read_text(encoding="utf-8"),
            "lock": lock_path.read_text(encoding="utf-8"), "files": files}


def unpack_project(pack: Mapping[str, Any], dest: Path) -> Path:
    """Write a pack into ``dest`` (paths checked: relative, no ``..``); returns the project folder."""
    if not isinstance(pack, Mapping) or pack.get("format") != PACK_FORMAT:
        raise ProgramError("not a ckpm project pack")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MANIFEST).write_text(str(pack["manifest"]), encoding="utf-8")
    (dest / LOCKFILE).write_text(str(pack["lock"]), encoding="utf-8")
    for rel, b64 in dict(pack.get("files") or {}).items():
        p = PurePosixPath(str(rel))
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise ProgramError(f"a project pack holds a path outside the project: {rel!r}")
        target = dest / Path(*p.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(str(b64)))
    return dest


def run_packed(pack: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """On a worker: recreate the project, provision from the shipped lock, run, return the record."""
    from ckpm.pipeline.run import RunRequest, run
    from ckpm.settings import Settings
    from ckpm.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="ckpm-worker-") as tmp:
        project = unpack_project(pack, Path(tmp) / str(pack.get("name") or "project"))
        ws = Workspace(project, Settings(), search_up=False)
        req = RunRequest.from_dict({**dict(request), "locked": True})
        record = run(ws, req)
        record["worker"] = {"host": _hostname()}
        return record


def packed_evaluator(project: Path) -> tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]:
    """``(run_packed, (pack,))``: what a Dask executor submits per point (the pack once)."""
    return run_packed, (pack_project(project),)


def _hostname() -> str:
    import socket

    return socket.gethostname()


def run_remote(project: Path, request: Mapping[str, Any], scheduler: Any) -> dict[str, Any]:
    """``ckpm run --scheduler ADDR``: one run (all its repetitions) on a worker of an existing
    Dask cluster, from the shipped manifest, lock and sources; the record comes back here."""
    from ckpm.experiment.executor import DaskExecutor

    fn, fixed = packed_evaluator(project)
    ex = DaskExecutor(scheduler, fn, *fixed)
    try:
        outcome = next(iter(ex.run([dict(request)])))
    finally:
        ex.close()
    if outcome.error is not None:
        carried = getattr(outcome.error, "record", None)
        if carried is not None and not carried.get("ok"):
            from ckpm.pipeline.run import ValidationFailed

            err = ValidationFailed(outcome.error.message, details=outcome.error.details, hint=outcome.error.hint)
            err.record = carried
            raise err
        raise outcome.error
    assert outcome.record is not None
    return outcome.record
