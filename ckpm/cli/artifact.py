"""``ckpm artifact pack|inspect|evaluate``: one verified file that carries a project to an
evaluator, and its evaluation there (ckpm/artifact/)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx


@click.group("artifact")
def artifact_group() -> None:
    """Pack a project into one verified file; inspect it; evaluate it on this machine."""


@artifact_group.command("pack")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", "-t", "targets", multiple=True, help="A target the bundle is for (default: the lock's).")
@click.option("--no-experiments", is_flag=True, help="Leave the experiment records out.")
@json_option
@pass_ctx
@handle_errors
def pack_cmd(c: CliContext, file: Path, targets: tuple[str, ...], no_experiments: bool, as_json: bool) -> None:
    """Write the project (tracked files, lock, vendored sources, experiment records) to FILE."""
    from ckpm.ops.artifact import pack

    res = pack(c.workspace(as_json=as_json), file, targets=targets, experiments=not no_experiments)
    if as_json:
        emit(c, res.to_dict())
        return
    from ckpm.cli.output import info

    t = res.manifest["totals"]
    info(f"wrote {res.path}: {res.size / (1 << 20):.2f} MiB, {t['members']} members "
         f"({t['project_files']} project files, {t['sources']} vendored sources, {t['records']} experiment records)")
    info(f"sha256 {res.sha256}; targets {', '.join(res.manifest['targets'])}")
    for s in res.skipped:
        info(f"left out: {s}", style="yellow")


@artifact_group.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@json_option
@pass_ctx
@handle_errors
def inspect_cmd(c: CliContext, file: Path, as_json: bool) -> None:
    """Show what FILE holds and what this machine must already have; nothing runs."""
    from ckpm.ops.artifact import inspect

    c.offline = True
    data = inspect(file, c.settings(as_json=as_json))
    if as_json:
        emit(c, data)
        return
    from ckpm.cli.output import info, table
    from ckpm.report import escape_control

    p = data["project"]
    info(f"{escape_control(str(p.get('name')))} {escape_control(str(p.get('version') or ''))}"
         + (f" (git {p['git'][:12]})" if p.get("git") else "")
         + f", packed by ckpm {data['ckpm_version']}; every member verified")
    info(f"targets: {', '.join(data['targets'])}; this machine is {data['host_target']}"
         + ("" if data["runs_here"] else " (not one of them: it cannot be evaluated here)"))
    table(["content", "files", "bytes"], [(k, str(v["files"]), f"{v['bytes']:,}") for k, v in data["contents"].items()])
    if data["experiments"]:
        info("experiments: " + ", ".join(f"{k} ({n} records)" for k, n in data["experiments"].items()))
    if data["host_pins"]:
        info("host software the lock expects, against this machine:")
        table(["name", "the lock pins", "this machine", "status"],
              [(r["name"], escape_control(r["expected"]), escape_control(str(r["found"])), r["status"])
               for r in data["host_pins"]])
    else:
        info("the lock pins no host software")


@artifact_group.command("evaluate")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--into", type=click.Path(file_okay=False, path_type=Path),
              help="Unpack here and keep it (a new or empty folder; default: a temporary one).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write report.html and report.json here (default: ./<FILE's name>-report).")
@json_option
@pass_ctx
@handle_errors
def evaluate_cmd(c: CliContext, file: Path, into: Path | None, report_dir: Path | None, as_json: bool) -> None:
    """Verify FILE, provision it offline, replay its experiments: available, functional, reproduced.

    Exit 0: reproduced; 9: functional, not reproduced; 8: available, not functional;
    7: not available (damaged or incomplete)."""
    from ckpm.ops.artifact import evaluate

    c.offline = True
    ev = evaluate(file, into=into, report_dir=report_dir, settings=c.settings(as_json=as_json))
    if as_json:
        emit(c, ev.to_dict())
    else:
        _print(ev)
    code = ev.exit_code
    if code:
        if c.reporter is not None:
            c.reporter.finish()
        sys.exit(code)


def _print(ev: Any) -> None:
    from ckpm.cli.output import info
    from ckpm.report import escape_control

    styles = {"yes": "green", "with-differences": "yellow", "no": "red", "not-assessed": "dim"}
    for v in ev.verdicts.values():
        info(v.label(), style=styles[v.status])
        for x in v.evidence:
            info(f"  {escape_control(x)}")
        for x in v.differences:
            info(f"  differs: {escape_control(x)}", style="yellow")
    info(f"report: {ev.report_dir}/report.html (and report.json); {ev.seconds:.1f} s")
