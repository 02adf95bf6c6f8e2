"""``ckpm import ck SRC``: a Collective Knowledge repository brought over as ckpm components.

Thin over :mod:`ckpm.ops.ck`: the report as tables (counts per CK module, then each
entry skipped and why, each entry imported with what could not be carried over), or the
``--json`` envelope.
"""
from __future__ import annotations

from pathlib import Path

import click

from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx


@click.group("import")
def import_group() -> None:
    """Bring components over from other systems (ckpm import ck SRC)."""


@import_group.command("ck")
@click.argument("src")
@click.option("--into", "into", type=click.Path(file_okay=False, path_type=Path), default=Path("ck-index"),
              show_default=True, help="The index folder to write (made when missing; may hold earlier imports).")
@click.option("--rev", help="The commit, tag or branch of a git repository (default: HEAD).")
@click.option("--module", "modules", multiple=True,
              help="Import only these CK modules (program, dataset, soft, package); repeatable.")
@click.option("--all", "show_all", is_flag=True, help="List every entry, not only the skipped ones.")
@json_option
@pass_ctx
@handle_errors
def import_ck_cmd(c: CliContext, src: str, into: Path, rev: str | None, modules: tuple[str, ...], show_all: bool,
                  as_json: bool) -> None:
    """Import a CK repository (a folder, a local git repository, or a git URL) into an index.

    Nothing of the repository runs: CK's customize.py and scripts are code and are
    reported, per entry, as not carried over."""
    from ckpm.cli.output import info, table
    from ckpm.ops import ck as ops_ck

    report = ops_ck.import_ck(src, into, rev=rev, settings=c.settings(as_json=as_json), modules=modules)
    if as_json:
        emit(c, report.to_dict())
        return
    rows = [[mod, n["entries"], n["imported"], n["skipped"]] for mod, n in report.counts().items()]
    table(["CK module", "entries", "imported", "skipped"], rows,
          title=f"{src}" + (f" at {report.rev[:12]}" if report.rev else "") + f" → {into}")
    skipped = ops_ck.skipped(report)
    other = ops_ck.unmapped_modules(report)
    if skipped or report.unreadable:
        table(["entry", "why it was skipped"],
              [[m.entry.where, m.skipped or ""] for m in skipped]
              + [[s.where, s.reason] for s in report.unreadable], title="skipped")
    if other:
        info(f"CK modules with no ckpm counterpart, not imported: {', '.join(other)}")
    shown = report.imported if show_all else [m for m in report.imported if m.not_carried]
    if shown:
        table(["component", "CK uid", "not carried over"],
              [[m.name, m.entry.uid or "", "; ".join(m.not_carried) or "-"] for m in shown],
              title="imported" + ("" if show_all else ", with parts not carried over"))
    n = len(report.imported)
    info(f"imported {n} of {len(report.items) + len(report.unreadable)} entries into {into}; to use them, name "
         f"it in ckpm.toml as an index (url = \"{into}\"), then: ckpm add NAME")
