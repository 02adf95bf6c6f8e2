"""``ckpm tune``: the search of ``ckpm.experiment.tune`` over this project's runs (the pipeline
evaluates each point, here or on a Dask cluster; ``ckpm.pipeline.tuning``), each point's record
saved and, with ``push``, sent to a registry as it arrives (``ckpm.sharing``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from ckpm.experiment.space import Space
    from ckpm.experiment.tune import TuneResult
    from ckpm.sharing import PushResult
    from ckpm.workspace import Workspace


def objective_names(objectives: str | Sequence[str]) -> list[str]:
    """``"time,size"`` or ``["time", "size"]`` → ``["time", "size"]``."""
    items = [objectives] if isinstance(objectives, str) else list(objectives)
    return [o.strip() for it in items for o in it.split(",") if o.strip()]


@dataclass
class TuneOutcome:
    result: TuneResult
    space: Space
    experiment: str | None = None
    pushed: PushResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "experiment": self.experiment, "space": self.space.to_dict(),
                **({"pushed": self.pushed.to_dict()} if self.pushed is not None else {})}


def tune(ws: Workspace, space_file: Path, *, objectives: str | Sequence[str] = "time", budget: int = 20,
         jobs: int = 1, strategy: str = "random", record: str | None = None, scheduler: str | None = None,
         seed: int = 0, push: str | None = None, registry: str | None = None, token: str | None = None,
         on_record: Callable[[dict[str, Any]], None] | None = None) -> TuneOutcome:
    """Try variants of a run (the space in ``space_file``) and keep the best trade-offs of
    ``objectives``; each point's record is saved in experiment ``record`` as it arrives and, with
    ``push``, sent to ``registry`` as experiment ``push`` (a point that cannot be sent is a
    warning: it is kept locally and the search goes on). ``on_record`` sees each point."""
    from ckpm.errors import CkpmError, UsageError
    from ckpm.pipeline.tuning import tune_project

    names = objective_names(objectives)
    pusher = pushed = None
    if push is not None:
        from ckpm.experiment.record import check_name
        from ckpm.sharing import Pusher, PushResult

        check_name(push)
        pusher = Pusher(registry, token=token, settings=ws.settings)
        pushed = PushResult(pusher.api, push, False)
    elif registry is not None:
        raise UsageError("--registry is for --push NAME")
    done = [0]

    def arrived(rec: dict[str, Any]) -> None:
        done[0] += 1
        if pusher is not None and pushed is not None:  # crowd-tuning: each point goes out as it arrives
            shared, _ = pusher.prepare([rec], ws.root, experiment=push)
            try:
                if shared:
                    pusher.send(shared, pushed)
            except CkpmError as e:  # the point is kept locally (record); the search goes on
                pushed.skipped.append(f"point {done[0]}: {e.message}")
                ws.settings.reporter.warning(f"point {done[0]} not pushed: {e.message}")
        if on_record is not None:
            on_record(rec)

    result, space = tune_project(ws, Path(space_file), objectives=names, budget=budget, jobs=jobs, strategy=strategy,
                                 record=record, scheduler=scheduler, seed=seed, on_record=arrived)
    return TuneOutcome(result, space, record, pushed)
