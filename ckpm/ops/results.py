"""``ckpm results``: list, show, compare, plot, report, export and import recorded experiments,
and push or pull them to and from a registry (``ckpm.experiment``, ``ckpm.sharing``).

Every function takes the project's folder (:func:`ckpm.ops.session.project_root`) and a
reporter for the warnings (damaged record files are left out with a warning).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from ckpm.report import Reporter
    from ckpm.settings import Settings
    from ckpm.sharing import PullResult, PushResult


def fmt_number(v: float | int | None) -> str:
    """A number for people: integers as they are, large values rounded, others to 4 significant digits."""
    from ckpm.experiment.results import fmt_number as _fmt

    return _fmt(v)


def ls(project: Path, *, reporter: Reporter | None = None) -> list[dict[str, Any]]:
    """One row per experiment: its record count, latest record, program, result and metric medians."""
    from ckpm.experiment.results import list_results

    return list_results(project, reporter=reporter)


def show(project: Path, name: str, *, reporter: Reporter | None = None) -> dict[str, Any]:
    """Every record of experiment ``name`` (or the one record ``NAME@ID``)."""
    from ckpm.experiment.results import show as _show

    return _show(project, name, reporter=reporter)


def compare(project: Path, a: str, b: str, *, metrics: Sequence[str] | None = None,
            reporter: Reporter | None = None) -> dict[str, Any]:
    """``b`` against ``a`` (``NAME``: its latest record; ``NAME@ID``: that record)."""
    from ckpm.experiment.results import compare as _compare

    return _compare(project, a, b, metrics=list(metrics) if metrics else None, reporter=reporter)


def plot(project: Path, names: Sequence[str], *, x: str = "time", y: str = "size", out: Path = Path("pareto.png"),
         reporter: Reporter | None = None) -> Path:
    """Every record of experiments ``names`` (x against y) and the Pareto frontier, as a PNG."""
    from ckpm.experiment.plot import plot as _plot

    return _plot(project, list(names), x=x, y=y, out=Path(out), reporter=reporter)


def report(project: Path, out: Path = Path("report.html"), *, names: Sequence[str] | None = None,
           reporter: Reporter | None = None) -> Path:
    """One static HTML page with experiments ``names`` (default: all), their configuration and plots."""
    # the one import of the report module in the adapters' path (the CLI's and access()'s report)
    from ckpm.experiment.htmlreport import report as _report

    return _report(project, Path(out), names=list(names) if names else None, reporter=reporter)


def export(project: Path, name: str, out: Path) -> dict[str, Any]:
    """Experiment ``name`` (every record, with its lock and configuration) as one JSON file."""
    from ckpm.experiment.record import export_experiment

    return export_experiment(project, name, Path(out))


def import_(project: Path, path: Path, *, name: str | None = None) -> dict[str, Any]:
    """Add the records of a file written by :func:`export` to experiment ``name`` (default: its own)."""
    from ckpm.experiment.record import import_experiment

    return import_experiment(project, Path(path), name=name)


def push(project: Path, name: str, *, registry: str | None = None, token: str | None = None,
         dry_run: bool = False, settings: Settings | None = None) -> PushResult:
    """Push the records of experiment ``name`` to a registry (``dry_run``: say what would be sent);
    each record left out is a warning."""
    from ckpm.sharing import push as _push

    res = _push(project, name, registry=registry, token=token, dry_run=dry_run, settings=settings)
    if settings is not None:
        for why in res.skipped:
            settings.reporter.warning(f"not pushed: {why}")
    return res


def pull(project: Path, program: str, *, registry: str | None = None, into: str | None = None,
         user: str | None = None, target: str | None = None, settings: Settings | None = None) -> PullResult:
    """Others' records of ``program`` from a registry into experiment ``into`` (default ``PROGRAM-pulled``)."""
    from ckpm.sharing import pull as _pull

    return _pull(project, program, registry=registry, into=into, user=user, target=target, settings=settings)
