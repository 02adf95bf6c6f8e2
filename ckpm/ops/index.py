"""``ckpm index reindex`` (``index update`` is ``ckpm.api.index_update``)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ckpm.report import Reporter


def reindex(path: Path, *, reporter: Reporter | None = None) -> int:
    """Rebuild ``path/summary.jsonl`` from the component files of an index folder; the count."""
    from ckpm.index.writer import reindex as _reindex

    return _reindex(Path(path), reporter=reporter)
