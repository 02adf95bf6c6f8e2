"""``ckpm tune``: search a space of run variants; every point recorded, the frontier printed.

The command parses options, calls :func:`ckpm.ops.tune.tune` (the pipeline's evaluation of each
point, here or on Dask; each point's record saved, and pushed with ``--push``, as it arrives, so
an interrupted tuning run keeps what it measured) and prints each point and the frontier.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx

STRATEGY_CHOICES = ("random", "evolution")  # ckpm.experiment.tune.STRATEGIES (not imported: --help stays fast)


@click.command("tune")
@click.option("--space", "space_file", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The search-space file (TOML; see ckpm/experiment/space.py).")
@click.option("--objectives", default="time", show_default=True,
              help="Metrics to optimise, comma-separated (time, size, max_rss, or the program's own).")
@click.option("--budget", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Number of points to evaluate.")
@click.option("--parallel", "jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Points evaluated at once on this machine (not -j: that is a build's jobs, as in sync).")
@click.option("--strategy", type=click.Choice(STRATEGY_CHOICES), default="random", show_default=True,
              help="random, or a small evolutionary search.")
@click.option("--record", help="Save each point's record in experiment NAME as it arrives.")
@click.option("--executor", "executor_kind", type=click.Choice(["local", "dask"]), default=None,
              help="Where points run (default: local; dask when --scheduler is given).")
@click.option("--scheduler", help="The Dask scheduler's address, tcp://HOST:PORT.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search.")
@click.option("--push", "push", metavar="NAME", help="Push each point to --registry as it arrives, as experiment NAME.")
@click.option("--registry", metavar="URL", help="The registry --push sends to (default: the one `ckpm login` keeps).")
@click.option("--token", metavar="T", help="The registry token (default: $CKPM_TOKEN, then `ckpm login`'s).")
@json_option
@pass_ctx
@handle_errors
def tune(c: CliContext, space_file: Path, objectives: str, budget: int, jobs: int, strategy: str, record: str | None,
         executor_kind: str | None, scheduler: str | None, seed: int, push: str | None, registry: str | None,
         token: str | None, as_json: bool) -> None:
    """Try variants of a run (flags, env, parameters) and report the best trade-offs."""
    from ckpm.errors import UsageError
    from ckpm.ops.tune import objective_names, tune as do_tune

    kind = executor_kind or ("dask" if scheduler else "local")
    if kind == "dask" and not scheduler:
        raise UsageError("--executor dask needs --scheduler tcp://HOST:PORT")
    if kind == "local" and scheduler:
        raise UsageError("--scheduler is for --executor dask")
    names = objective_names(objectives)
    # several points at once share the reporter: keep it quiet (no spinner), warnings printed after
    ws = c.workspace(as_json=as_json or jobs > 1 or kind == "dask")
    if not as_json:
        _info(f"tuning with {strategy} search: budget {budget}, "
              + (f"{jobs} at a time" if kind == "local" else f"Dask at {scheduler}")
              + (f"; recording as {record}" if record else ""))
    done = [0]

    def arrived(rec: dict[str, Any]) -> None:
        done[0] += 1
        if not as_json:
            _info(f"({done[0]}/{budget}) {_point_text(rec['point'])}: {_outcome_text(rec, names)}")

    try:
        out = do_tune(ws, space_file, objectives=names, budget=budget, jobs=jobs, strategy=strategy, record=record,
                      scheduler=scheduler if kind == "dask" else None, seed=seed, push=push, registry=registry,
                      token=token, on_record=arrived)
    finally:
        if not as_json:
            for w in c.warnings():
                click.echo(f"warning: {w}", err=True)
    if as_json:
        emit(c, out.to_dict())
        return
    if out.pushed is not None:
        _info(f"pushed {len(out.pushed.added) + len(out.pushed.existing)} point(s) to {out.pushed.registry} as {push}")
    _print_frontier(out.result, out.space.names, names)


def _info(msg: str) -> None:
    """A progress line on stderr, plain (point values are not markup)."""
    from ckpm.report import escape_control

    click.echo(escape_control(msg), err=True)


def _point_text(point: dict[str, str]) -> str:
    return " ".join(f"{k.split('.', 1)[-1]}={v if v else '-'}" for k, v in point.items())


def _value(rec: dict[str, Any], name: str) -> str:
    m = (rec.get("metrics") or {}).get(name) or {}
    v = m.get("median")
    if v is None:
        return "-"
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.4g}"


def _outcome_text(rec: dict[str, Any], objectives: list[str]) -> str:
    if rec.get("ok"):
        return ", ".join(f"{o} {_value(rec, o)}" for o in objectives)
    err = rec.get("error") or {}
    return "FAILED: " + str(err.get("error") or "validation failed")


def _print_frontier(result: Any, dims: list[str], objectives: list[str]) -> None:
    from ckpm.cli.output import info, table

    rows = [[*(_value(r, o) for o in objectives), *(r["point"].get(d) or "-" for d in dims)]
            for r in result.frontier]
    table([*objectives, *dims], rows, title=f"Pareto frontier ({len(result.frontier)} of {len(result.records)} points)")
    if result.failed:
        info(f"{len(result.failed)} point(s) failed (their records keep the error)")
