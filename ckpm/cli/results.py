"""``ckpm results``: list, show, compare, plot and report recorded experiments.

Each command finds the project (``-C`` or the current folder and its parents), calls one
function of ``ckpm.ops.results`` and prints its answer: a table for people (verdicts
coloured on a terminal), or the ``--json`` envelope. Damaged record files are warnings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import click

from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx



def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A rich table on a terminal (cells as plain text, never markup; (text, style) cells coloured)."""
    from ckpm.cli.output import is_tty, table
    from ckpm.report import escape_control

    if not is_tty():
        table(headers, [[c[0] if isinstance(c, tuple) else c for c in r] for r in rows], title=title)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(title=escape_control(title) if title else None, header_style="bold")
    for h in headers:
        t.add_column(h)
    for r in rows:
        t.add_row(*(Text(escape_control(str(c[0])), style=c[1]) if isinstance(c, tuple)
                    else Text(escape_control(str(c))) for c in r))
    Console().print(t)


def _range(s: dict[str, Any] | None) -> str:
    from ckpm.ops.results import fmt_number

    if not s:
        return ""
    n = f" n={s['n']}" if s.get("n") is not None else ""
    return f"{fmt_number(s['median'])} [{fmt_number(s['min'])}–{fmt_number(s['max'])}]{n}"


def _ok(ok: Any) -> tuple[str, str]:
    return ("ok", "green") if ok is True else ("failed", "red bold")


def _verdict(m: dict[str, Any]) -> tuple[str, str]:
    style = "dim" if m["improved"] is None else "green bold" if m["improved"] else "red bold"
    return m["verdict"], style


def _text(v: Any) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, (list, tuple)):
        return " ".join(map(str, v))
    return str(v)


@click.group()
def results() -> None:
    """Recorded experiments: list, show, compare, plot, report."""


@results.command("ls")
@json_option
@pass_ctx
@handle_errors
def results_ls(c: CliContext, as_json: bool) -> None:
    """List the experiments with their latest record's metrics (medians)."""
    from ckpm.cli.output import info
    from ckpm.ops import results as ops_results
    from ckpm.ops.results import fmt_number

    rows = ops_results.ls(c.project_root(as_json=as_json), reporter=c.reporter)
    if as_json:
        emit(c, rows)
        return
    if not rows:
        info("no experiments yet: record one with `ckpm run --record NAME`")
        return
    names: list[str] = []
    for r in rows:
        names += [m for m in r["metrics"] if m not in names]
    _table(["experiment", "records", "latest", "program", "result", *names],
           [[r["name"], str(r["records"]), r["latest"] or "", r["program"] or "",
             _ok(r["ok"]) if r["latest"] else "", *(fmt_number(r["metrics"].get(m)) for m in names)] for r in rows])


@results.command("show")
@click.argument("name")
@json_option
@pass_ctx
@handle_errors
def results_show(c: CliContext, name: str, as_json: bool) -> None:
    """Every record of experiment NAME (or the record NAME@ID): configuration and metrics."""
    from ckpm.ops.results import show

    data = show(c.project_root(as_json=as_json), name, reporter=c.reporter)
    if as_json:
        emit(c, data)
        return
    names = data["metrics"]
    _table(["record", "result", "configuration", *names],
           [[r["id"], _ok(r["ok"]), r["summary"], *(_range(r["metrics"].get(m)) for m in names)]
            for r in data["records"]],
           title=f"{data['name']}: {len(data['records'])} record{'' if len(data['records']) == 1 else 's'}"
                 " (median [min–max] n)")


@results.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--metric", "metrics", multiple=True, help="Compare only this metric (repeatable).")
@json_option
@pass_ctx
@handle_errors
def results_compare(c: CliContext, a: str, b: str, metrics: tuple[str, ...], as_json: bool) -> None:
    """Compare B against A (NAME: the latest record; NAME@ID: that record).

    A change is named only when the ranges of the repetitions do not overlap.
    """
    from ckpm.cli.output import info
    from ckpm.ops.results import compare

    data = compare(c.project_root(as_json=as_json), a, b, metrics=metrics, reporter=c.reporter)
    if as_json:
        emit(c, data)
        return
    _table(["metric", "a", "b", "b/a", "verdict"],
           [[m["metric"], _range(m["a"]), _range(m["b"]), "" if m["ratio"] is None else f"{m['ratio']:.3f}×",
             _verdict(m)] for m in data["metrics"]],
           title=f"{data['b']} against {data['a']}")
    for side in ("a", "b"):
        if not data[f"{side}_ok"]:
            info(f"{data[side]} is a failed run", lead="note:", style="red")
    if data["only_a"] or data["only_b"]:
        info("metrics in one record only: " + ", ".join(data["only_a"] + data["only_b"]))
    if data["differences"]:
        _table(["configuration", "a", "b"], [[d["what"], _text(d["a"]), _text(d["b"])] for d in data["differences"]],
               title="configuration differences")
    else:
        info("same configuration")


@results.command("plot")
@click.argument("names", nargs=-1, required=True)
@click.option("--x", "x", default="time", show_default=True, help="Metric on the x axis.")
@click.option("--y", "y", default="size", show_default=True, help="Metric on the y axis.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("pareto.png"),
              show_default=True, help="PNG file to write.")
@json_option
@pass_ctx
@handle_errors
def results_plot(c: CliContext, names: tuple[str, ...], x: str, y: str, out: Path, as_json: bool) -> None:
    """Plot every record of experiments NAMES (x against y, medians with min–max) and the Pareto frontier."""
    from ckpm.cli.output import info
    from ckpm.ops.results import plot

    path = plot(c.project_root(as_json=as_json), names, x=x, y=y, out=out, reporter=c.reporter)
    if as_json:
        emit(c, {"path": str(path), "x": x, "y": y, "names": list(names)})
        return
    info(f"wrote {path}")


@results.command("report")
@click.argument("names", nargs=-1)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write.")
@json_option
@pass_ctx
@handle_errors
def results_report(c: CliContext, names: tuple[str, ...], out: Path, as_json: bool) -> None:
    """Write one static HTML page with experiments NAMES (default: all), their configuration and plots."""
    from ckpm.cli.output import info
    from ckpm.ops.results import report

    path = report(c.project_root(as_json=as_json), out, names=names, reporter=c.reporter)
    if as_json:
        emit(c, {"path": str(path), "names": list(names)})
        return
    info(f"wrote {path}")


@results.command("export")
@click.argument("name")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The JSON file to write.")
@json_option
@pass_ctx
@handle_errors
def results_export(c: CliContext, name: str, out: Path, as_json: bool) -> None:
    """Write experiment NAME (every record, with its lock and configuration) as one JSON file."""
    from ckpm.cli.output import info
    from ckpm.ops.results import export

    res = export(c.project_root(as_json=as_json), name, out)
    if as_json:
        emit(c, res)
        return
    from ckpm.cli.output import plural

    info(f"wrote {plural(res['records'], 'record')} of {name} to {out}")


@results.command("import")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--as", "name", help="Add the records to this experiment (default: the exported name).")
@json_option
@pass_ctx
@handle_errors
def results_import(c: CliContext, path: Path, name: str | None, as_json: bool) -> None:
    """Add the records of a file written by `ckpm results export` to this project's experiments."""
    from ckpm.cli.output import info
    from ckpm.ops.results import import_

    res = import_(c.project_root(as_json=as_json), path, name=name)
    if as_json:
        emit(c, res)
        return
    from ckpm.cli.output import plural

    known = f" ({plural(res['known'], 'record')} already there)" if res["known"] else ""
    info(f"added {plural(res['added'], 'record')} to {res['experiment']}{known}")


def _register_sharing() -> None:
    from ckpm.cli.share import pull_cmd, push_cmd

    results.add_command(push_cmd)
    results.add_command(pull_cmd)


_register_sharing()
