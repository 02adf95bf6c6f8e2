"""``ckpm container build`` and ``ckpm container file``: a project's OCI image (``ckpm.ops.container``)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx

DEFAULT_BASE = "localhost/debian:bookworm"


@click.group("container")
def container() -> None:
    """Build an OCI image of the project that runs it offline (podman or docker)."""


@container.command("build")
@click.option("--base", default=DEFAULT_BASE, show_default=True,
              help="The base image: it must have python3 (with venv) and the lock's host software.")
@click.option("--tag", help="The image's name (default: localhost/PROJECT:VERSION).")
@click.option("--target", "-t", help="Provision the store for TARGET (default: the lock's host target).")
@click.option("--engine", "engine_name", type=click.Choice(["podman", "docker"]),
              help="The container engine (default: podman, else docker, whichever is installed).")
@click.option("--allow-host-drift", is_flag=True,
              help="Build even when the base lacks host software the lock pins; record it as a label.")
@click.option("--context", "context_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the build context (default: .ckpm/container/context).")
@click.option("--no-cache", is_flag=True, help="Build every step anew (none from the engine's cache).")
@json_option
@pass_ctx
@handle_errors
def build_cmd(c: CliContext, base: str, tag: str | None, target: str | None, engine_name: str | None,
              allow_host_drift: bool, context_dir: Path | None, no_cache: bool, as_json: bool) -> None:
    """Build the image: base, then ckpm, then the store (synced offline), then the project."""
    from ckpm.ops.container import BaseHostDrift, build_image

    ws = c.workspace(as_json=as_json)
    if not as_json:
        click.echo(f"building an image of {ws.manifest.name} on {base} …", err=True)
    try:
        res = build_image(ws, base=base, tag=tag, target=target, engine_name=engine_name,
                          allow_host_drift=allow_host_drift, context_dir=context_dir, no_cache=no_cache)
    except BaseHostDrift as e:
        if not as_json:
            _drift_table(e.check, "error")
        raise
    if as_json:
        emit(c, res.to_dict())
        return
    for note in res.check.notes:
        click.echo(f"note: {note}", err=True)
    if res.check.drift:
        _drift_table(res.check, "warning" if res.check.errors else "note")
    click.echo(f"built {res.tag} ({res.image_id[:12]}, {res.size / 1e6:.0f} MB) with {res.engine} in "
               f"{res.seconds:.0f} s; {res.cached_steps} of {res.steps} steps from the cache", err=True)
    click.echo(res.tag)


def _drift_table(check: Any, word: str) -> None:
    from ckpm.cli.output import table

    click.echo(f"{word}: the lock's host pins, as the base image {check.base} has them:", err=True)
    sys.stdout.flush()
    table(["package", "expected", "found", "what to do"],
          [(d.name, d.expected, d.found, d.action) for d in check.drift])


@container.command("file")
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--base", default=DEFAULT_BASE, show_default=True, help="The base image of the FROM line.")
@click.option("--target", "-t", help="Provision the store for TARGET (default: the lock's host target).")
@json_option
@pass_ctx
@handle_errors
def file_cmd(c: CliContext, dest: Path | None, base: str, target: str | None, as_json: bool) -> None:
    """Write the Containerfile and its build context into DEST (default: container/ in the project); no build."""
    from ckpm.ops.container import write_file

    out = write_file(c.workspace(as_json=as_json), dest, base=base, target=target)
    if as_json:
        emit(c, out.to_dict())
        return
    click.echo(f"wrote {out.path}/Containerfile and its context: {len(out.wheels)} wheels, "
               f"{out.source_files} vendored sources, {out.project_files} project files", err=True)
    click.echo(f"build it with: podman build -t IMAGE {out.path}   (the host software the lock pins "
               "must be in the base; `ckpm container build` checks that)", err=True)
