"""``ckpm cache ls`` and ``ckpm cache clean``: what the cache folder holds, and emptying it.

The library side is :mod:`ckpm.fetch.cache` (through ``ckpm.ops.store`` and ``ckpm.provision``): cleaning takes the
locks a sync takes and skips whatever a running command uses.
"""
from __future__ import annotations


import click

from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx


def human(n: int) -> str:
    """A byte count for people: ``1.5 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@click.group("cache")
def cache() -> None:
    """The cache folder: downloads, exported git trees, index copies (ls, clean)."""


@cache.command("ls")
@json_option
@pass_ctx
@handle_errors
def cache_ls(c: CliContext, as_json: bool) -> None:
    """Show what the cache folder holds, area by area, with sizes."""
    from ckpm.ops.store import cache_ls

    data = cache_ls(c.settings(as_json=as_json))
    if as_json:
        emit(c, data)
        return
    from ckpm.cli.output import info, table

    table(["area", "entries", "size", "what"],
          [(a["name"], a["entries"], human(a["size"]), a["what"]) for a in data["areas"]], title=data["cache_dir"])
    info(f"{human(data['total'])} in all")


@cache.command("clean")
@click.option("--downloads", "downloads_only", is_flag=True,
              help="Only downloads (verified and partial files), not exported git trees.")
@click.option("--older-than", "older_than", type=float, metavar="DAYS",
              help="Only what no sync used for DAYS days.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
@pass_ctx
@handle_errors
def cache_clean(c: CliContext, downloads_only: bool, older_than: float | None, dry_run: bool, as_json: bool) -> None:
    """Remove cached downloads and exported git trees; what a running command uses is kept."""
    from ckpm.ops.store import cache_clean, clean_dict

    res = cache_clean(c.settings(as_json=as_json), downloads_only=downloads_only, older_than_days=older_than,
                      dry_run=dry_run)
    if as_json:
        emit(c, clean_dict(res, dry_run=dry_run))
        return
    from ckpm.cli.output import info

    for i in res.in_use:
        info(f"kept {i.path} (in use by a running command)")
    verb = "would free" if dry_run else "freed"
    info(f"{len(res.removed)} entries {'to remove' if dry_run else 'removed'}, {verb} {human(res.freed)}"
         + (f"; {len(res.in_use)} in use, kept" if res.in_use else ""))
