"""``ckpm publish``, ``ckpm yank``, ``ckpm login``, ``ckpm logout``: a maintainer's commands.

Thin over :mod:`ckpm.ops.publish` (which is :mod:`ckpm.publishing`). ``--index`` is ckpm's
global option (it may stand after the command, and ``$CKPM_INDEX`` sets it too); here it names
the index to write.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx

registry_option = click.option("--registry", metavar="URL",
                               help="A registry service (its base URL, or the index URL it serves).")
token_option = click.option("--token", metavar="T", help="The registry token (default: $CKPM_TOKEN, then `ckpm login`'s).")


@click.command("publish")
@registry_option
@token_option
@click.option("--tag", help="Publish this tag (default: the version tag at HEAD).")
@click.option("--source-url", metavar="URL", help="The git URL users fetch the source from (default: remote origin).")
@click.option("--dry-run", is_flag=True, help="Check everything and print the line; write nothing.")
@json_option
@pass_ctx
@handle_errors
def publish_cmd(c: CliContext, registry: str | None, token: str | None, tag: str | None, source_url: str | None,
                dry_run: bool, as_json: bool) -> None:
    """Publish the tagged version of the component here (--index GIT_URL or --registry URL)."""
    from ckpm.cli.output import info
    from ckpm.ops.publish import publish
    from ckpm.report import escape_control

    s = c.settings(as_json=as_json)
    res = publish(c.project, index=c.index, registry=registry, token=token, tag=tag, source_url=source_url,
                  dry_run=dry_run, settings=s)
    if as_json:
        emit(c, res.to_dict())
        return
    r = res.release
    what = escape_control(f"{r.name} {r.version}")
    if dry_run:
        import json

        click.echo(json.dumps(r.line, indent=2, ensure_ascii=False))
        info(f"dry run: {what} (tag {escape_control(r.tag)}, {r.commit[:12]}) can be published to "
             f"{escape_control(res.target.describe())}; nothing written")
        return
    tries = f" after {res.attempts} tries" if res.attempts and res.attempts > 1 else ""
    info(f"published {what} (tag {escape_control(r.tag)}, {r.commit[:12]}, {r.line['cksum'][:19]}…) to "
         f"{escape_control(res.target.describe())}" + (f" in commit {res.commit[:12]}" if res.commit else "") + tries)


@click.command("yank")
@click.argument("spec", metavar="NAME@VERSION")
@click.option("--undo", is_flag=True, help="Unyank: let new resolutions choose it again.")
@registry_option
@token_option
@json_option
@pass_ctx
@handle_errors
def yank_cmd(c: CliContext, spec: str, undo: bool, registry: str | None, token: str | None, as_json: bool) -> None:
    """Yank a published version: new resolutions skip it; existing locks keep it."""
    from ckpm.cli.output import info
    from ckpm.ops.publish import yank
    from ckpm.report import escape_control

    res = yank(spec, undo=undo, index=c.index, registry=registry, token=token, settings=c.settings(as_json=as_json))
    if as_json:
        emit(c, res.to_dict())
        return
    state = "yanked" if res.yanked else "not yanked"
    info(f"{escape_control(res.name)} {escape_control(res.version)} is {state} in "
         f"{escape_control(res.target.describe())}" + ("" if res.changed else " (it already was)"))


@click.command("login")
@click.option("--registry", metavar="URL", required=True, help="The registry service.")
@click.option("--token", metavar="T", help="The token (default: read from stdin, or asked for on a terminal).")
@json_option
@pass_ctx
@handle_errors
def login_cmd(c: CliContext, registry: str, token: str | None, as_json: bool) -> None:
    """Check a registry token and keep it in the user config (mode 0600)."""
    from ckpm.cli.output import info
    from ckpm.errors import UsageError
    from ckpm.ops.publish import login

    s = c.settings(as_json=as_json)
    if token is None:
        if sys.stdin.isatty():
            token = click.prompt("token", hide_input=True, err=True)
        else:
            token = sys.stdin.readline(8192).strip()
    if not token:
        raise UsageError("no token given (--token, stdin, or the prompt)")
    res = login(registry, token, settings=s)
    if as_json:
        emit(c, res.to_dict())
        return
    info(f"logged in to {res.registry} as {res.user}; the token is kept in {Path(res.config)}")


@click.command("logout")
@click.option("--registry", metavar="URL", help="Forget this registry's token (default: every registry's).")
@json_option
@pass_ctx
@handle_errors
def logout_cmd(c: CliContext, registry: str | None, as_json: bool) -> None:
    """Forget registry tokens kept by `ckpm login`."""
    from ckpm.cli.output import info
    from ckpm.ops.publish import logout

    gone = logout(registry, settings=c.settings(as_json=as_json))
    if as_json:
        emit(c, {"forgotten": gone})
        return
    info("forgot the token of " + ", ".join(gone) if gone else "no token to forget")
