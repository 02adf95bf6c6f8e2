"""Plots of experiments: every record as a point (medians, min–max error bars), the Pareto frontier marked.

matplotlib is the optional extra ``plot`` and is imported inside the functions that draw,
so listing and comparing work without it. Figures are drawn on a ``Figure`` with the Agg
canvas, never through ``pyplot``: no display, no global figure registry, safe beside a
service's other threads. The PNG is rendered in memory and written atomically.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ckpm.errors import CkpmError
from ckpm.experiment.record import ExperimentError
from ckpm.experiment.results import better_of, load, metric, metric_names, pareto
from ckpm.fsutil import atomic_write
from ckpm.report import Reporter


class PlotUnavailable(CkpmError):
    """matplotlib (the ``plot`` extra) is not installed."""

    code = "plot-unavailable"

    def __init__(self) -> None:
        super().__init__("plots need matplotlib, which is not installed",
                         hint="pip install 'ckpm[plot]'")


def require_matplotlib() -> Any:
    """The ``matplotlib`` module, or :class:`PlotUnavailable`."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (the part we draw with)
    except ImportError:
        raise PlotUnavailable() from None
    return matplotlib


@dataclass
class Point:
    """One record in a plot: its experiment, id, and the (min, median, max) of the x and y metrics."""

    experiment: str
    id: str
    x: tuple[float, float, float]
    y: tuple[float, float, float]


def points_of(experiments: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], x: str, y: str,
              reporter: Reporter | None = None) -> list[Point]:
    """The points of every record that has both metrics; each record without them is a warning."""
    out = []
    for name, records in experiments:
        for r in records:
            sx, sy = metric(r, x), metric(r, y)
            if sx is None or sy is None:
                if reporter is not None:
                    missing = " and ".join(m for m, s in ((x, sx), (y, sy)) if s is None)
                    reporter.warning(f"{name}@{r.get('id')}: no {missing}; not plotted")
                continue
            out.append(Point(name, str(r.get("id")), (sx["min"], sx["median"], sx["max"]),
                             (sy["min"], sy["median"], sy["max"])))
    return out


def frontier_points(points: Sequence[Point], x_better: str, y_better: str) -> list[int]:
    """Indices of the points on the Pareto frontier of the medians, in each metric's direction."""
    sx = -1.0 if x_better == "higher" else 1.0
    sy = -1.0 if y_better == "higher" else 1.0
    return pareto([(sx * p.x[1], sy * p.y[1]) for p in points])


def _label(name: str, better: str) -> str:
    return f"{name} ({better} is better)"


def plot_points(experiments: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], x: str, y: str,
                reporter: Reporter | None = None) -> tuple[list[Point], str, str]:
    """The points to plot and the direction of each axis; ExperimentError when no record has both metrics."""
    all_records = [r for _, rs in experiments for r in rs]
    known = metric_names(all_records)
    for m in (x, y):
        if m not in known:
            raise ExperimentError(f"no record of {', '.join(n for n, _ in experiments)} has a metric {m!r}",
                                  hint=f"metrics: {', '.join(known) or 'none'}")
    points = points_of(experiments, x, y, reporter)
    if not points:
        raise ExperimentError(f"no record has both {x!r} and {y!r}", hint=f"metrics: {', '.join(known)}")
    x_better = next(better_of(r, x) for r in all_records if metric(r, x) is not None)
    y_better = next(better_of(r, y) for r in all_records if metric(r, y) is not None)
    return points, x_better, y_better


def render_png(experiments: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *, x: str, y: str,
               title: str | None = None, reporter: Reporter | None = None) -> bytes:
    """The scatter plot of ``experiments`` (name, records) as PNG bytes.

    One colour per experiment; each record at its medians with min–max error bars; the
    Pareto frontier of all points drawn as a step line through the frontier points, which are
    ringed. Raises ExperimentError when no record has both metrics.
    """
    points, x_better, y_better = plot_points(experiments, x, y, reporter)
    require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(experiments))]
    for (name, _), colour in zip(experiments, colours):
        mine = [p for p in points if p.experiment == name]
        if not mine:
            continue
        xs = [p.x[1] for p in mine]
        ys = [p.y[1] for p in mine]
        xerr = [[p.x[1] - p.x[0] for p in mine], [p.x[2] - p.x[1] for p in mine]]
        yerr = [[p.y[1] - p.y[0] for p in mine], [p.y[2] - p.y[1] for p in mine]]
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt="o", color=colour, ecolor=colour, alpha=0.85,
                    elinewidth=1, capsize=2, markersize=5, label=f"{name} ({len(mine)})")

    front = sorted((points[i] for i in frontier_points(points, x_better, y_better)), key=lambda p: p.x[1])
    fx, fy = [p.x[1] for p in front], [p.y[1] for p in front]
    # the boundary of the dominated region: across then down/up when lower x is better, else the other way
    ax.step(fx, fy, where="post" if x_better == "lower" else "pre", color="black", linewidth=1.2, alpha=0.7,
            zorder=3)
    ax.scatter(fx, fy, s=110, facecolors="none", edgecolors="black", linewidths=1.5, zorder=4,
               label=f"Pareto frontier ({len(front)})")
    ax.set_xlabel(_label(x, x_better))
    ax.set_ylabel(_label(y, y_better))
    ax.set_title(title or f"{y} against {x}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot(project: Path, names: list[str], *, x: str, y: str, out: Path,
         reporter: Reporter | None = None) -> Path:
    """Draw every record of experiments ``names`` (x median against y median) into the PNG ``out``."""
    if not names:
        raise ExperimentError("name at least one experiment to plot")
    experiments = [(n, load(project, n, reporter).records) for n in dict.fromkeys(names)]
    data = render_png(experiments, x=x, y=y, title=f"{y} against {x}: {', '.join(n for n, _ in experiments)}",
                      reporter=reporter)
    out = Path(out)
    atomic_write(out, data)
    return out
