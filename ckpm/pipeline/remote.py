"""Running a project's program on another machine (a Dask worker): pack, ship, run.

``pack_project`` packs what an artifact bundle holds for the run (ckpm/artifact/bundle.py: the
project's tracked files, its ``ckpm.toml`` and ``ckpm.lock``, and every source the lock needs,
vendored; no experiment records), as bytes, bounded by :data:`MAX_PACK_BYTES`. The worker
needs no view of the project's folder and no network: ``run_packed`` unpacks the bundle into
a temporary folder (checked member by member against its manifest), provisions from the
shipped lock with the bundle's ``sources/`` as the first mirror (nothing is resolved, every
file verified against the lock), runs the request and returns the record. The worker's own
settings apply (its store, its cache, its mirrors config), so a cluster whose workers share a
store builds each prefix once, and a worker whose store has a prefix already reads nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ckpm.model.program import ProgramError
from ckpm.workspace import Workspace

if TYPE_CHECKING:
    from ckpm.pipeline.run import RunRequest
    from ckpm.settings import Settings

#: what a Dask executor submits per point: ``run_packed(pack, request) -> record``
PackedRun = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]

MAX_PACK_BYTES = 1 << 30
PACK_FORMAT = 2


def pack_project(project: Path | Workspace, settings: Settings | None = None, *,
                 check: bool = True) -> dict[str, Any]:
    """The project as an artifact bundle (bytes) with its name: picklable plain data.

    ``check``: refuse a lock that does not hold (``api.check``); a caller that has just locked
    passes False."""
    from ckpm.artifact.bundle import pack_bytes

    ws = project if isinstance(project, Workspace) else Workspace(Path(project), settings)
    data = pack_bytes(ws, experiments=False, check=check, limit=MAX_PACK_BYTES)
    return {"format": PACK_FORMAT, "name": ws.manifest.name, "bundle": data}


def run_packed(pack: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """On a worker: unpack and verify the bundle, provision from its lock and sources, run, return the record."""
    import tempfile  # here: with shutil, bz2, lzma and random, which a local run never needs

    from ckpm.artifact.bundle import unpack_verified
    from ckpm.pipeline.run import RunRequest, run
    from ckpm.settings import Settings

    if not isinstance(pack, Mapping) or pack.get("format") != PACK_FORMAT or not isinstance(pack.get("bundle"), bytes):
        raise ProgramError("not a ckpm project pack (or one from another ckpm version)")
    with tempfile.TemporaryDirectory(prefix="ckpm-worker-") as tmp:
        bundle = Path(tmp) / "project.ckpm.tar"
        bundle.write_bytes(pack["bundle"])
        un = unpack_verified(bundle, Path(tmp) / "bundle")
        bundle.unlink()
        ws = Workspace(un.project, Settings(), search_up=False)
        lock = ws.read_lock()
        if lock is None:
            raise ProgramError("the project pack holds no ckpm.lock")
        req = RunRequest.from_dict({**dict(request), "locked": True})
        record = run(ws, req, lock=lock, mirror_dirs=(un.sources,))
        record["worker"] = {"host": _hostname()}
        return record


def packed_evaluator(project: Path | Workspace, settings: Settings | None = None, *,
                     check: bool = True) -> tuple[PackedRun, tuple[dict[str, Any]]]:
    """``(run_packed, (pack,))``: what a Dask executor submits per point (the pack once)."""
    return run_packed, (pack_project(project, settings, check=check),)


def _hostname() -> str:
    import socket

    return socket.gethostname()


def run_remote(project: Path | Workspace, request: Mapping[str, Any], scheduler: Any) -> dict[str, Any]:
    """``ckpm run --scheduler ADDR``: one run (all its repetitions) on a worker of an existing
    Dask cluster (``scheduler``: its address, or a ``distributed.Client``), from the shipped
    bundle (files, lock, vendored sources); the record comes back here. The caller has locked
    the project (``api.lock``)."""
    from ckpm.experiment.executor import DaskExecutor

    fn, fixed = packed_evaluator(project, check=False)
    ex = DaskExecutor(scheduler, fn, *fixed)
    try:
        outcome = next(iter(ex.run([dict(request)])))
    finally:
        ex.close()
    if outcome.error is not None:
        carried = getattr(outcome.error, "record", None)
        if carried is not None and not carried.get("ok"):
            from ckpm.pipeline.run import ProgramFailed, ValidationFailed

            kind = ProgramFailed if outcome.error.code == ProgramFailed.code else ValidationFailed
            err = kind(outcome.error.message, details=outcome.error.details, hint=outcome.error.hint)
            err.record = carried
            raise err
        raise outcome.error
    assert outcome.record is not None
    return outcome.record


def run_pipeline(ws: Workspace, request: "RunRequest", *, scheduler: Any = None) -> dict[str, Any]:
    """``ckpm run`` and the ``run`` action of ``access()``: the pipeline here, or with a
    ``scheduler`` on a worker of a Dask cluster, the lock checked (``request.locked``) or made
    first. The record is saved as the request says, here, and carries ``experiment`` either way."""
    from ckpm.pipeline.run import run

    if not scheduler:
        return run(ws, request)
    from ckpm.api import LockOptions, lock
    from ckpm.experiment.record import save_record

    lock(ws, LockOptions(locked=request.locked))  # the workers get a lock that holds
    rec = run_remote(ws, {**request.to_dict(), "record": None}, scheduler)
    if request.record:
        rec["path"] = str(save_record(ws.root, request.record, rec))
        rec["experiment"] = request.record
    return rec

