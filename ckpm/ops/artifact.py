"""``ckpm artifact pack``, ``inspect`` and ``evaluate`` (``ckpm.artifact``): one verified file
that carries a project to an evaluator, and its evaluation there (always offline)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from ckpm.artifact.bundle import PackResult
    from ckpm.artifact.evaluate import Evaluation
    from ckpm.settings import Settings
    from ckpm.workspace import Workspace


def pack(ws: Workspace, file: Path, *, targets: Sequence[str] | None = None, experiments: bool = True) -> PackResult:
    """Write the project (tracked files, lock, vendored sources, experiment records) to ``file``."""
    from ckpm.artifact import pack as _pack

    return _pack(ws, Path(file), targets=list(targets) if targets else None, experiments=experiments)


def inspect(file: Path, settings: Settings) -> dict[str, Any]:
    """What ``file`` holds and what this machine must already have; nothing runs."""
    from ckpm.artifact.evaluate import inspect as _inspect

    return _inspect(Path(file), settings)


def evaluate(file: Path, *, into: Path | None = None, report_dir: Path | None = None,
             settings: Settings) -> Evaluation:
    """Verify ``file``, provision it offline, replay its experiments: available, functional, reproduced."""
    from ckpm.artifact.evaluate import evaluate as _evaluate

    return _evaluate(Path(file), into=into, report_dir=report_dir, settings=settings)
