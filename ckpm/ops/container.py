"""``ckpm container build`` and ``ckpm container file``: a project's OCI image (``ckpm.container``)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ckpm.container.build import BaseHostDrift, build_image

if TYPE_CHECKING:
    from ckpm.container.context import ContextSummary
    from ckpm.workspace import Workspace

__all__ = ["BaseHostDrift", "build_image", "write_file"]


def write_file(ws: Workspace, dest: Path | None = None, *, base: str, target: str | None = None) -> ContextSummary:
    """Write the Containerfile and its build context into ``dest`` (default: ``container/`` in
    the project); nothing is built."""
    from ckpm.container.context import write_context

    return write_context(ws, Path(dest) if dest is not None else ws.root / "container", base=base, target=target)
