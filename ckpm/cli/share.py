"""``ckpm results push`` and ``ckpm results pull``: experiments to and from a registry.

Thin over :mod:`ckpm.ops.results` (and so :mod:`ckpm.sharing`); registered on the ``results``
group (``cli/results.py``).
"""
from __future__ import annotations

import json

import click

from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx
from ckpm.cli.registry import token_option

registry_option = click.option("--registry", metavar="URL",
                               help="The registry (default: the only one `ckpm login` keeps).")


@click.command("push")
@click.argument("name")
@registry_option
@token_option
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing.")
@json_option
@pass_ctx
@handle_errors
def push_cmd(c: CliContext, name: str, registry: str | None, token: str | None, dry_run: bool, as_json: bool) -> None:
    """Push the records of experiment NAME to a registry (what ran, the lock's hash and versions,
    the machine, the metrics with every repetition, the validation; nothing else)."""
    from ckpm.cli.output import info
    from ckpm.report import escape_control
    from ckpm.ops.results import push

    project = c.project_root(as_json=as_json)
    res = push(project, name, registry=registry, token=token, dry_run=dry_run, settings=c.settings(as_json=as_json))
    if as_json:
        emit(c, res.to_dict())
        return
    if dry_run:
        click.echo(json.dumps({"records": res.records}, indent=1, ensure_ascii=False, sort_keys=True))
        info(f"dry run: {len(res.records)} record(s) of {name} would be sent to {escape_control(res.registry)}; "
             "nothing sent")
        return
    info(f"pushed {len(res.records)} record(s) of {name} to {escape_control(res.registry)} as "
         f"{escape_control(res.user or '?')}: {len(res.added)} added, {len(res.existing)} already there")


@click.command("pull")
@click.argument("program")
@registry_option
@click.option("--into", metavar="NAME", help="The local experiment to write (default: PROGRAM-pulled).")
@click.option("--user", metavar="U", help="Only the records this user pushed.")
@click.option("--target", metavar="T", help="Only the records of this target.")
@json_option
@pass_ctx
@handle_errors
def pull_cmd(c: CliContext, program: str, registry: str | None, into: str | None, user: str | None, target: str | None,
             as_json: bool) -> None:
    """Pull others' records of PROGRAM into a local experiment (`results ls/show/compare` read it)."""
    from ckpm.cli.output import info
    from ckpm.report import escape_control
    from ckpm.ops.results import pull

    project = c.project_root(as_json=as_json)
    res = pull(project, program, registry=registry, into=into, user=user, target=target,
               settings=c.settings(as_json=as_json))
    if as_json:
        emit(c, res.to_dict())
        return
    info(f"pulled {res.records} record(s) of {escape_control(program)} by {escape_control(', '.join(res.users))} "
         f"into experiment {res.experiment} ({res.new} new)")
