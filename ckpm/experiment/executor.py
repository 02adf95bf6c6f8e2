"""Where tuning evaluates its points: here (``LocalExecutor``) or on a Dask cluster (``DaskExecutor``).

Both have one small interface, :class:`Executor`: ``run(requests)`` submits a batch of run
requests and yields an :class:`Outcome` per request as each completes (in completion order,
with the request's position in the batch); leaving the loop early — an error, Ctrl-C, a
``break`` — cancels what has not started yet. An evaluation that raises a
:class:`~ckpm.errors.CkpmError` (or an ``OSError``) is an outcome with ``error`` set: a failed
point, which the search records and goes past. Any other exception is a bug and propagates.

``LocalExecutor`` uses threads, not processes: the real evaluation
(``ckpm.pipeline.run.run_request``) spends its time waiting for subprocesses (the compiler and
the measured program), which release the GIL, so ``jobs`` threads keep ``jobs`` programs busy;
threads need no pickling of the evaluation function or its settings (which hold the
reporter), and they add no Python start-up per point. A CPU-bound evaluation written in Python
would not run in parallel in threads; none of ckpm's is. Points measured side by side share
this machine's cores, caches and memory bandwidth: use ``jobs`` below the core count, and
repetitions, when timings matter.

``DaskExecutor`` submits ``fn(*fixed_args, request)`` to an existing cluster
(``dask.distributed``; the optional extra ``ckpm[dask]``): the fixed arguments — for ckpm,
the project pack of ckpm/pipeline/remote.py — are scattered to every worker once, not sent
with each point. The cluster decides how many points run at once (its workers' threads).
Errors are caught on the worker and sent back as data (:class:`RemoteError`), so an error
type that does not pickle never hides the message.
"""
from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

from ckpm.errors import CkpmError

Request = dict[str, Any]
Record = dict[str, Any]
Evaluate = Callable[[Request], Record]


class ExecutorError(CkpmError):
    """An executor that cannot start (no dask installed, no scheduler at the address)."""

    code = "executor"


class EvaluationError(CkpmError):
    """An evaluation that failed with an operating-system error (a file, a process)."""

    code = "evaluation"


class RemoteError(CkpmError):
    """A CkpmError raised on a Dask worker, carried back as data (its ``code`` kept)."""

    code = "remote"

    def __init__(self, message: str, *, code: str = "remote", kind: str = "", hint: str | None = None,
                 details: list[str] | None = None) -> None:
        super().__init__(message, hint=hint, details=details)
        self.code = code
        self.kind = kind


@dataclass
class Outcome:
    """What one evaluation gave: a record, or the error of a failed point (with the record
    the error carried, if any: a run that failed its validation is still measured)."""

    index: int
    record: Record | None = None
    error: CkpmError | None = None


class Executor(Protocol):
    """The interface tuning uses: run a batch, outcomes as they complete, cancel on exit."""

    jobs: int

    def run(self, requests: Sequence[Request]) -> Iterator[Outcome]: ...

    def close(self) -> None: ...


def _outcome(index: int, fn: Callable[..., Record], args: tuple[Any, ...]) -> Outcome:
    try:
        return Outcome(index, record=fn(*args))
    except CkpmError as e:
        rec = getattr(e, "record", None)
        return Outcome(index, record=rec if isinstance(rec, dict) else None, error=e)
    except OSError as e:
        what = f"{type(e).__name__}: {e.strerror or e}" + (f": {e.filename}" if getattr(e, "filename", None) else "")
        return Outcome(index, error=EvaluationError(what))


class LocalExecutor:
    """``jobs`` evaluations at once on this machine, in threads (see the module's note)."""

    def __init__(self, evaluate: Evaluate, jobs: int = 1) -> None:
        if not isinstance(jobs, int) or jobs < 1:
            raise ExecutorError(f"jobs must be a whole number of at least 1 (got {jobs!r})")
        self.evaluate = evaluate
        self.jobs = jobs

    def run(self, requests: Sequence[Request]) -> Iterator[Outcome]:
        """Outcomes in completion order; with ``jobs == 1`` in request order, in this thread."""
        if self.jobs == 1:
            for i, req in enumerate(requests):
                yield _outcome(i, self.evaluate, (req,))
            return
        pool = cf.ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="ckpm-tune")
        try:
            futures = [pool.submit(_outcome, i, self.evaluate, (req,)) for i, req in enumerate(requests)]
            for f in cf.as_completed(futures):
                yield f.result()
        finally:
            # not started: cancelled; running: finished (a thread cannot be stopped), not waited for
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Nothing to release (each batch has its own pool)."""


def remote_call(fn: Callable[..., Record], *args: Any) -> dict[str, Any]:
    """On a worker: ``fn(*args)`` with a CkpmError or OSError returned as data, not raised."""
    out = _outcome(0, fn, args)
    if out.error is None:
        return {"record": out.record}
    e = out.error
    return {"record": out.record, "error": {"code": e.code, "message": e.message, "hint": e.hint,
                                            "details": list(e.details), "kind": type(e).__name__}}


class DaskExecutor:
    """Points evaluated on an existing Dask cluster as ``fn(*fixed_args, request)``.

    ``scheduler`` is an address (``tcp://host:8786``; the client is made and closed here) or a
    ``distributed.Client`` (the caller's; left open). The fixed arguments are scattered to every
    worker once, when the executor is made.
    """

    def __init__(self, scheduler: Any, fn: Callable[..., Record], *fixed_args: Any, timeout: float = 30.0) -> None:
        distributed = _distributed()
        self.fn = fn
        self._own = isinstance(scheduler, str)
        if self._own:
            try:
                self.client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as e:
                raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler} ({e})",
                                    hint="start one (dask scheduler; dask worker ADDRESS) or check the address") from None
        else:
            self.client = scheduler
        try:
            self.fixed = [self.client.scatter([a], broadcast=True)[0] for a in fixed_args]
        except Exception:
            self.close()
            raise
        workers = self.client.scheduler_info().get("workers", {})
        self.jobs = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def run(self, requests: Sequence[Request]) -> Iterator[Outcome]:
        """Every request submitted at once (the cluster schedules them); outcomes as they complete."""
        distributed = _distributed()
        futures = [self.client.submit(remote_call, self.fn, *self.fixed, req, pure=False) for req in requests]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for f in distributed.as_completed(futures, loop=self.client.loop):
                out = f.result()
                i = index[f.key]
                err = out.get("error")
                if err is None:
                    yield Outcome(i, record=out["record"])
                else:
                    yield Outcome(i, record=out.get("record"),
                                  error=RemoteError(err["message"], code=err["code"], kind=err["kind"],
                                                    hint=err["hint"], details=err["details"]))
        finally:
            left = [f for f in futures if not f.done()]
            if left:
                self.client.cancel(left)

    def close(self) -> None:
        """Close the client when this executor made it."""
        if self._own:
            self.client.close()


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ExecutorError("the Dask executor needs dask.distributed, which is not installed",
                            hint="pip install 'ckpm[dask]'") from None
    return distributed
