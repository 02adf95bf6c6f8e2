"""``ckpm tune`` as a library call: the search of ckpm.experiment.tune over this project's runs.

The evaluation of a point is the pipeline (``ckpm.pipeline.run``): on this machine
``request_evaluator`` (``jobs`` points at once), on a Dask cluster ``packed_evaluator`` (the
project packed once and scattered; each worker provisions from the shipped lock). Each
point's record is saved as it arrives, so an interrupted tuning run keeps what it measured.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ckpm.errors import UsageError
from ckpm.workspace import Workspace

if TYPE_CHECKING:
    from ckpm.experiment.executor import DaskExecutor
    from ckpm.experiment.space import Space
    from ckpm.experiment.tune import TuneResult


def tune_project(ws: Workspace, space_file: Path, *, objectives: list[str], budget: int = 20, jobs: int = 1,
                 strategy: str = "random", record: str | None = None, scheduler: str | None = None, seed: int = 0,
                 on_record: Callable[[dict[str, Any]], None] | None = None) -> tuple[TuneResult, Space]:
    """Run the search; returns (TuneResult, Space). Raises TuneError when every point failed."""
    from ckpm.experiment.record import check_name, save_record
    from ckpm.experiment.space import load_space
    from ckpm.experiment.tune import TuneError, tune

    if record is not None:
        check_name(record)
    if not objectives:
        raise UsageError("name at least one objective (time, size, max_rss, or one of the program's metrics)")
    space = load_space(Path(space_file))
    _check_objectives(ws, space.base_request().get("component"), objectives)
    project = ws.root
    executor: DaskExecutor | None = None
    evaluate = None
    if scheduler:
        from ckpm.api import lock
        from ckpm.experiment.executor import DaskExecutor
        from ckpm.pipeline.run import packed_evaluator

        lock(ws)  # the workers get a lock that holds, with the project's files and vendored sources
        fn, fixed = packed_evaluator(ws, check=False)
        executor = DaskExecutor(scheduler, fn, *fixed)
    else:
        from ckpm.pipeline.run import request_evaluator

        evaluate = request_evaluator(project, ws.settings)

    def arrived(rec: dict[str, Any]) -> None:
        if record is not None:
            save_record(project, record, rec)
        if on_record is not None:
            on_record(rec)

    try:
        result = tune(space, evaluate, objectives=objectives, budget=budget, strategy=strategy, jobs=jobs,
                      executor=executor, seed=seed, on_record=arrived)
    finally:
        if executor is not None:
            executor.close()
    if not any(r.get("ok") for r in result.records):
        first = next((r.get("error") for r in result.records if r.get("error")), None)
        raise TuneError(f"all {len(result.records)} points failed"
                        + (f"; the first: {first['error']}" if first else ""),
                        hint=f"their records are in experiment {record}" if record else None)
    return result, space


#: what every run records, whatever the program (ckpm/pipeline/run.py, the run stage)
MEASURED = ("time", "size", "max_rss")


def _check_objectives(ws: Workspace, component: str | None, objectives: list[str]) -> None:
    """Refuse an objective the program cannot report before any point runs: the measured ones and
    the program's own ``[run.metrics]`` are known from its description (a misspelt objective
    would otherwise cost a first compile and run)."""
    from difflib import get_close_matches

    from ckpm.experiment.tune import TuneError
    from ckpm.model.program import parse_program

    if component is None:
        data = ws.manifest.data.get("run")
        where, name = f"{ws.manifest_path} [run]", ws.manifest.name
    else:
        lock = ws.read_lock()
        pkg = next((p for p in (lock.packages if lock else []) if p.name == component.lower()
                    or component.lower() in p.keys), None)
        data, where, name = (pkg.run.raw if pkg and pkg.run else None), f"{component} run", component
    if not data:
        return  # the run itself says what is missing, with its own hint
    prog = parse_program(data, name=name, where=where)
    known = [*MEASURED, *(m.name for m in prog.metrics)]
    for o in objectives:
        if o not in known:
            near = get_close_matches(o, known, n=1)
            raise TuneError(f"{name} measures no {o}: it reports {', '.join(known)}",
                            hint=f"did you mean {near[0]!r}?" if near else "see [run.metrics] in docs/formats.md")
