"""``ckpm import ck SRC``: a Collective Knowledge repository brought over as ckpm components
(``ckpm.ck``), and what its report says was left behind."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from ckpm.ck.importer import ImportReport
    from ckpm.ck.mapping import Mapped
    from ckpm.settings import Settings


def import_ck(src: str | Path, into: Path, *, rev: str | None = None, settings: Settings | None = None,
              modules: Sequence[str] | None = None) -> ImportReport:
    """Import the CK repository ``src`` (a folder, a local git repository or a git URL) into the
    index folder ``into``; nothing of the repository runs."""
    from ckpm.ck import import_ck as _import_ck

    return _import_ck(src, Path(into), rev=rev, settings=settings, modules=tuple(modules) if modules else None)


def skipped(report: ImportReport) -> list[Mapped]:
    """The entries of a module ckpm maps (program, dataset, soft, package) that were not imported."""
    from ckpm.ck.mapping import MAPPERS

    return [m for m in report.items if m.line is None and m.entry.module in MAPPERS]


def unmapped_modules(report: ImportReport) -> list[str]:
    """The CK modules of the repository that have no ckpm counterpart (not imported)."""
    from ckpm.ck.mapping import MAPPERS

    return sorted({m.entry.module for m in report.items if m.entry.module not in MAPPERS})
