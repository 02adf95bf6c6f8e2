"""``ckpm run`` and ``ckpm replay``: over ``ckpm.pipeline`` (the stages provision, compile, run,
validate, record). ``ckpm tune`` is :mod:`ckpm.ops.tune`.

Each function imports the pipeline when called, so that ``ckpm run`` loads neither the
replay nor the tuning modules.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ckpm.pipeline.replay import ReplayResult
    from ckpm.pipeline.run import RunRequest
    from ckpm.workspace import Workspace

#: the exit code of a replay that differs from its record (configuration, regression, validation)
REPLAY_DIFFERS = 6


def run(ws: Workspace, request: RunRequest, *, scheduler: str | None = None) -> dict[str, Any]:
    """Provision, compile, run, validate and record a program, here or (``scheduler``) on a worker
    of a Dask cluster; the record as the caller sees it (the lock's text stays in the record file)."""
    from ckpm.pipeline.remote import run_pipeline

    rec = run_pipeline(ws, request, scheduler=scheduler)
    return {k: v for k, v in rec.items() if k != "lock"}


def run_request(data: dict[str, Any]) -> RunRequest:
    """A run request from plain data (``component``, ``command``, ``flags``, ``cflags``, ``env``,
    ``params``, ``input``, ``target``, ``repeat``, ``record``, ``locked``), checked."""
    from ckpm.pipeline.run import RunRequest

    return RunRequest.from_dict(data)


def replay(ws: Workspace, name: str, *, record_id: str | None = None, tolerance: float | None = None,
           save_as: str | None = None) -> ReplayResult:
    """Run experiment ``name``'s latest record (or ``record_id``) again with its configuration and
    lock, and compare (a metric regresses when worse than the recorded worst run by ``tolerance``)."""
    from ckpm.pipeline.replay import DEFAULT_TOLERANCE
    from ckpm.pipeline.replay import replay as _replay

    return _replay(ws, name, record_id=record_id, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                   save_as=save_as)
