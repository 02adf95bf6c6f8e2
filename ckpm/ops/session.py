"""What every command starts from: its settings (made once, checked), its project and its indexes."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ckpm.index import Index
    from ckpm.model.manifest import ProjectManifest
    from ckpm.report import Reporter
    from ckpm.settings import Settings
    from ckpm.workspace import Workspace


def make_settings(*, index_url: str | None = None, cache_dir: Path | None = None, offline: bool = False,
                  reporter: Reporter | None = None, **kw: Any) -> Settings:
    """The settings of one command (global flags and the environment, read once), checked."""
    from ckpm.workspace import Settings, check_settings

    if reporter is not None:
        kw["reporter"] = reporter
    return check_settings(Settings(index_url=index_url, cache_dir=cache_dir, offline=offline, **kw))


def open_workspace(project: Path | str | None, settings: Settings) -> Workspace:
    """The project in ``project`` or its nearest parent with a ckpm.toml (default: the current folder)."""
    from ckpm.workspace import Workspace

    return Workspace(project, settings)


def manifest_or_none(project: Path | str | None, settings: Settings) -> ProjectManifest | None:
    """The manifest of the project in ``project`` (or a parent folder), or None outside a project
    (``ckpm detect`` reads a project's dependency keys when there is one)."""
    from ckpm.errors import NoProject

    try:
        return open_workspace(project, settings).manifest
    except NoProject:
        return None


def project_root(project: Path | str | None) -> Path:
    """The folder of the nearest ckpm.toml from ``project`` (default: the current folder); the
    manifest is not read (the results commands need only the folder)."""
    from ckpm.model.manifest import find_project

    return find_project(Path(project or ".")).parent


def indexes(settings: Settings, project: Path | str | None, *, look_for_project: bool = True,
            timeout: float | None = None) -> list[Index]:
    """The project's indexes when there is a project (and no index given by ``--index``), else
    the given or embedded index; with ``timeout``, every read of theirs ends within that many
    seconds from now."""
    from ckpm.errors import NoProject
    from ckpm.workspace import bound_indexes, make_indexes

    found: list[Index]
    if settings.effective_index_url() or not look_for_project:
        found = list(make_indexes(None, settings))
    else:
        try:
            found = list(open_workspace(project, settings).indexes)
        except NoProject:
            found = list(make_indexes(None, settings))
    if timeout is not None:
        bound_indexes(found, time.monotonic() + timeout)
    return found
