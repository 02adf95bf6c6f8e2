"""``ckpm sync``, ``fetch``, ``vendor`` and ``env``: the lock made real, over ``ckpm.api``.

A command's ``timeout`` bounds the whole command (resolution, downloads and builds); without
one, resolution alone stops after ``RESOLVE_SECONDS``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ckpm.settings import RESOLVE_SECONDS

if TYPE_CHECKING:
    from ckpm.api import LockOutcome
    from ckpm.fetch.vendor import VendorResult
    from ckpm.provision import SyncResult
    from ckpm.workspace import LockOptions, Workspace


def _deadline(timeout: float | None) -> float | None:
    return time.monotonic() + timeout if timeout is not None else None


def _lock_options(*, locked: bool, timeout: float | None = None, allow_host_drift: bool = False) -> LockOptions:
    from ckpm.api import LockOptions

    return LockOptions(locked=locked, timeout=timeout if timeout is not None else RESOLVE_SECONDS,
                       allow_host_drift=allow_host_drift)


def sync(ws: Workspace, *, target: str | None = None, jobs: int = 0, mirrors: Sequence[Path] = (),
         timeout: float | None = None, locked: bool = False,
         allow_host_drift: bool = False) -> tuple[LockOutcome, SyncResult]:
    """Provision every locked package for ``target`` (default: the host): the lock (re-made when
    stale, unless ``locked``) and what each package became."""
    from ckpm import api
    from ckpm.provision import SyncOptions

    opts = SyncOptions(target=target, jobs=jobs, mirror_dirs=tuple(mirrors), deadline=_deadline(timeout))
    return api.sync(ws, opts, _lock_options(locked=locked, timeout=timeout, allow_host_drift=allow_host_drift))


def fetch(ws: Workspace, names: Sequence[str] = (), *, target: str | None = None, mirrors: Sequence[Path] = (),
          timeout: float | None = None, locked: bool = False) -> SyncResult:
    """Download and verify the sources of ``names`` (default: every locked package); build nothing."""
    from ckpm import api

    return api.fetch(ws, tuple(names), target=target, mirror_dirs=tuple(mirrors), deadline=_deadline(timeout),
                     lock_options=_lock_options(locked=locked, timeout=timeout))


def vendor(ws: Workspace, dest: Path, *, targets: Sequence[str] | None = None, mirrors: Sequence[Path] = (),
           locked: bool = False) -> VendorResult:
    """Write every source a sync of ``targets`` (default: the lock's) needs into ``dest``."""
    from ckpm import api

    return api.vendor(ws, Path(dest), mirror_dirs=tuple(mirrors), lock_options=_lock_options(locked=locked),
                      targets=list(targets) if targets else None)


def offline_rules(res: VendorResult, dest: Path) -> str:
    """The ``[mirrors]`` rules that serve a vendored folder, one per URL scheme its archives came from."""
    schemes = sorted({it.source.split("://", 1)[0] for it in res.items
                      if it.kind == "archive" and it.source.startswith(("http://", "https://"))}) or ["https"]
    return ", ".join(f"\"{s}://\" = [\"{dest}\"]" for s in schemes)


def environment(ws: Workspace, target: str | None = None) -> dict[str, str]:
    """The environment (PATH, CC, CFLAGS, PKG_CONFIG_PATH, *_ROOT…) that uses the synced packages."""
    from ckpm import api

    return api.environment(ws, target)
