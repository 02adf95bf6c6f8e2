"""The build context of a project's image, and its Containerfile.

A context folder holds::

    Containerfile        the image: base → ckpm → store → project (this order keeps rebuilds cheap)
    ckpm.Containerfile   its first steps only (base + ckpm): the image the host check runs in
    wheels/              ckpm and its dependencies (``wheels.py``), installed with no network
    lock/                ckpm.toml without its [run] table, and ckpm.lock: what the store step needs
    cache/               the cached copies of the project's HTTP and git indexes (read offline)
    sources/             the vendored sources of the lock (``ckpm vendor``), the store's only mirror
    project/             the project's tracked files, ckpm.lock and experiment records

The store step runs ``ckpm sync --locked --offline --mirror sources``; it depends on the
lock, the index caches, the vendored sources and the parts of ckpm.toml a lock depends on, so editing a program,
a flag of ``[run]`` or a data file rebuilds the project step only. Every file's time is set to
one fixed value, and the wheels are packed reproducibly, so the same project gives the same
context and the engine's cache hits.

:func:`write_project_payload` is the one place that decides what of the project goes in:
the project's artifact bundle (``ckpm artifact pack``: its tracked files, lock, experiment
records and vendored sources), unpacked verified into ``project/`` and ``sources/``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ckpm import __version__
from ckpm.errors import StaleLock
from ckpm.workspace import Workspace

PROJECT_DIR = "/project"
CKPM_HOME = "/opt/ckpm"
VENV = f"{CKPM_HOME}/venv"
IMAGE_PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FIXED_MTIME = 315532800  # 1980-01-01, the oldest time a zip member can carry
LABEL_MAX = 16_384  # characters of one label's value (the host-drift list is cut there)


@dataclass
class ContextSummary:
    """What went into a context folder."""

    path: Path
    base: str
    lock_sha256: str
    project_files: int
    source_files: int
    wheels: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"context": str(self.path), "base": self.base, "lock_sha256": self.lock_sha256,
                "project_files": self.project_files, "source_files": self.source_files, "wheels": self.wheels,
                "labels": self.labels, "targets": self.targets}


def lock_sha256(ws: Workspace) -> str:
    return hashlib.sha256(ws.lock_path.read_bytes()).hexdigest()


def require_lock(ws: Workspace) -> None:
    """The lock must exist and hold on this machine (host software aside: the base's counts)."""
    from ckpm import api

    if ws.read_lock() is None:
        raise StaleLock(f"no {ws.lock_path.name} in {ws.root}", hint="run `ckpm lock` first")
    res = api.check(ws, allow_host_drift=True, verify_published_tags=False)
    res.raise_for_status(ws, locked=True)


def write_project_payload(ws: Workspace, ctx: Path, *, exclude: Sequence[Path] = ()) -> tuple[int, int]:
    """Write the project's part of a context: ``project/`` and ``sources/`` from the project's
    artifact bundle (``ckpm artifact pack``: tracked files, lock, experiment records and the
    vendored sources, packed and unpacked verified), then ``lock/`` and ``cache/``.

    Returns the number of project files and of vendored source files. ``exclude``: folders
    that are not the project's (the context itself, when it is inside a project git does not
    track).
    """
    import tempfile

    from ckpm.artifact.bundle import pack, unpack_verified

    with tempfile.TemporaryDirectory(prefix="ckpm-container-") as tmp:
        bundle = Path(tmp) / "project.ckpm-artifact"
        packed = pack(ws, bundle, check=False)  # the caller checked the lock (host drift is the base's)
        unpacked = unpack_verified(bundle, Path(tmp) / "unpacked")
        unpacked.project.rename(ctx / "project")
        if unpacked.sources.exists():
            unpacked.sources.rename(ctx / "sources")
        else:
            (ctx / "sources").mkdir()
    for folder in exclude:  # a context folder inside an untracked project was packed with it
        try:
            rel = Path(folder).resolve().relative_to(ws.root.resolve())
        except ValueError:
            continue
        shutil.rmtree(ctx / "project" / rel, ignore_errors=True)
    lock_dir = ctx / "lock"
    lock_dir.mkdir()
    (lock_dir / "ckpm.toml").write_text(_manifest_for_store(ctx / "project" / "ckpm.toml"))
    shutil.copyfile(ctx / "project" / ws.lock_path.name, lock_dir / ws.lock_path.name)
    cache = ctx / "cache"
    cache.mkdir()
    root = ws.settings.cache_root.resolve()
    for src in index_caches(ws):
        dst = cache / src.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
        else:
            shutil.copy2(src, dst)
    totals = packed.manifest["totals"]
    return int(totals["project_files"]), int(totals["sources"])


def index_caches(ws: Workspace) -> list[Path]:
    """The copies of the project's indexes kept in ckpm's cache (an HTTP index's files, a git
    index's clone and its summary): carried into the image, they let ckpm read the index there
    with no network (the lock's host pins name the index rules that check them). A folder
    index is read where it is: inside the project it is in the image's project files."""
    root = ws.settings.cache_root.resolve()
    out: list[Path] = []
    for idx in ws.indexes:
        summary = getattr(idx, "summary_cache", None)
        for p in (getattr(idx, "path", None), summary[0] if isinstance(summary, tuple) and summary else None):
            if isinstance(p, Path) and p.exists() and p.resolve().is_relative_to(root) and p.resolve() != root:
                out.append(p.resolve())
    return sorted(set(out))


def _manifest_for_store(path: Path) -> str:
    """ckpm.toml without ``[run]``: what the store step depends on (dependencies, indexes,
    targets, mirrors), so that a change to how the program runs keeps the store's layer."""
    import tomlkit

    doc = tomlkit.parse(path.read_text())
    doc.pop("run", None)
    return tomlkit.dumps(doc)


def containerfile(*, base: str, ckpm_version: str, target: str | None, labels: dict[str, str],
                  head_only: bool = False, allow_host_drift: bool = False) -> str:
    """The Containerfile's text (``head_only``: base and ckpm, the steps the host check needs)."""
    q = json.dumps
    lines = [
        "# Written by `ckpm container file` / `ckpm container build`: base → ckpm → store → project.",
        f"FROM {base}",
        "# 1. ckpm and its dependencies, from the wheels in the context (no network)",
        f"COPY wheels/ {CKPM_HOME}/wheels/",
        # SOURCE_DATE_EPOCH: byte code that does not depend on when the files were unpacked
        f"RUN export SOURCE_DATE_EPOCH={FIXED_MTIME} && python3 -m venv {VENV} && "
        f"{VENV}/bin/python -m pip install --no-index --no-cache-dir "
        f"--disable-pip-version-check -q --find-links {CKPM_HOME}/wheels ckpm=={ckpm_version}",
        f"ENV PATH={IMAGE_PATH} CKPM_STORE={CKPM_HOME}/store CKPM_CACHE_DIR={CKPM_HOME}/cache CKPM_OFFLINE=1",
    ]
    if head_only:
        return "\n".join(lines) + "\n"
    sync = ["ckpm", "--offline", "sync", "--locked", "--mirror", f"{CKPM_HOME}/sources"]
    if target:
        sync += ["--target", target]
    if allow_host_drift:  # the base lacks host software the lock pins (recorded in a label)
        sync.append("--allow-host-drift")
    lines += [
        "# 2. the store: the lock and its vendored sources, provisioned offline",
        f"COPY lock/ {PROJECT_DIR}/",
        f"COPY cache/ {CKPM_HOME}/cache/",
        f"COPY sources/ {CKPM_HOME}/sources/",
        f"WORKDIR {PROJECT_DIR}",
        f"RUN {q(sync)}",
        "# 3. the project's tracked files",
        f"COPY project/ {PROJECT_DIR}/",
    ]
    if labels:
        lines.append("LABEL " + " \\\n      ".join(f"{k}={q(v[:LABEL_MAX])}" for k, v in sorted(labels.items())))
    lines += ['ENTRYPOINT ["ckpm"]', 'CMD ["run"]']
    return "\n".join(lines) + "\n"


def base_labels(ws: Workspace, sha: str, targets: Sequence[str]) -> dict[str, str]:
    m = ws.manifest
    out = {"org.opencontainers.image.title": m.name, "io.ckpm.version": __version__, "io.ckpm.lock.sha256": sha,
           "io.ckpm.targets": ",".join(targets)}
    if m.version:
        out["org.opencontainers.image.version"] = m.version
    if m.description:
        out["org.opencontainers.image.description"] = m.description
    return out


def write_context(ws: Workspace, dest: Path, *, base: str, target: str | None = None,
                  extra_labels: dict[str, str] | None = None) -> ContextSummary:
    """Write a complete context into ``dest`` (made anew: what was there is replaced)."""
    from ckpm.container.wheels import pack_wheels

    require_lock(ws)
    dest = Path(dest)
    staging = dest.with_name(f".{dest.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # the project first: when the context is inside a folder git does not track, it is packed
    # with the project, and must be empty then
    n_files, n_sources = write_project_payload(ws, staging, exclude=[dest, staging])
    wheels = pack_wheels(staging / "wheels", cache_dir=ws.settings.cache_root / "container-wheels")
    sha = lock_sha256(ws)
    lk = ws.read_lock()
    targets = [target] if target else (list(lk.targets) if lk else [])
    labels = {**base_labels(ws, sha, targets), **(extra_labels or {})}
    (staging / "Containerfile").write_text(containerfile(base=base, ckpm_version=__version__, target=target,
                                                        labels=labels))
    (staging / "ckpm.Containerfile").write_text(containerfile(base=base, ckpm_version=__version__, target=target,
                                                             labels={}, head_only=True))
    _fix_times(staging)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return ContextSummary(dest, base, sha, n_files, n_sources, [w.file for w in wheels], labels, targets)


def allow_drift(ctx: Path, *, base: str, target: str | None, labels: dict[str, str]) -> None:
    """Rewrite the Containerfile for a base that lacks host pins: the store step allows the
    drift, and the labels record it."""
    (ctx / "Containerfile").write_text(containerfile(base=base, ckpm_version=__version__, target=target,
                                                    labels=labels, allow_host_drift=True))
    os.utime(ctx / "Containerfile", (FIXED_MTIME, FIXED_MTIME))


def _fix_times(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for n in [*filenames, *dirnames]:
            os.utime(Path(dirpath) / n, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    os.utime(root, (FIXED_MTIME, FIXED_MTIME))
