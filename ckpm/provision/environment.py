"""``ckpm env``: the variables that make what a sync provisioned usable; nothing is built."""
from __future__ import annotations

from pathlib import Path

from ckpm.errors import CkpmError
from ckpm.model.lockfile import Lock
from ckpm.model.source import HostSource
from ckpm.provision.session import STATE_DIR, SyncOptions, SyncSession, is_pinned, needed, recipe_for, sources_of
from ckpm.workspace import Workspace


def env(ws: Workspace, lock: Lock, target: str | None = None) -> dict[str, str]:
    """The environment that makes the provisioned packages usable (PATH, CFLAGS, LDFLAGS,
    PKG_CONFIG_PATH, ``<NAME>_ROOT``…): only what is already provisioned, nothing is built."""
    from ckpm.build.recipes import deps_env

    run = SyncSession(ws, lock, SyncOptions(target=target))
    prefixes: dict[str, Path] = {}
    tc = None
    for p, t in needed(lock, run.target, run.host):
        if isinstance(p.source, HostSource):
            continue
        recipe = recipe_for(p, t)
        if recipe is None:
            continue
        if recipe.is_pip:
            venv = ws.root / STATE_DIR / "venv"
            if (venv / "bin").is_dir():
                prefixes[p.name] = venv
            continue
        sources = sources_of(p, recipe)
        if not all(is_pinned(s) for s in sources):
            continue  # never fetched: not provisioned
        key = run.key_of(p, t, recipe, sources)
        run.keys[(id(p), t)] = key
        entry = run.store.complete(key)
        if entry is not None and t == run.target:
            prefixes[p.name] = entry.path
    try:
        tc = run.toolchain(run.target)  # the compilers a build for the target would use: CC, CXX, AR, RANLIB
    except CkpmError:
        tc = None
    out = dict(deps_env(prefixes, toolchain=tc if tc is not None and tc.cross else None,
                        base_path=ws.settings.environ.get("PATH", "/usr/bin:/bin")))
    if tc is not None:
        out.update({k: v for k, v in tc.env().items() if k in ("CC", "CXX", "AR", "RANLIB")})
    return out
