"""The build step of a sync: a recipe run into a staged prefix (``build_prefix``), or python
distributions installed into the project's environment (``install_python``). The sources
are fetched and verified before (``fetchers.py``); the steps themselves are ``ckpm/build/``.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ckpm.errors import BuildError
from ckpm.fsutil import atomic_write, remove_tree
from ckpm.model.lockfile import LockedPackage
from ckpm.model.recipe import FetchSource, PipDist, Recipe, RecipeInvalid, parse_pip_dist
from ckpm.provision.fetchers import expand_all
from ckpm.provision.session import PIP_MARKER, STATE_DIR, Provisioned, recipe_for, safe_name

if TYPE_CHECKING:
    from ckpm.provision.session import SyncSession


def build_prefix(run: "SyncSession", p: LockedPackage, t: str, recipe: Recipe,
                 files: Sequence[tuple[Path, FetchSource]], destdir: Path, prefix: Path) -> dict[str, Any]:
    """Expand the fetched ``files`` into a fresh source folder beside ``destdir`` and run
    ``recipe`` there for target ``t`` (the store's ``install`` calls this under the prefix's lock)."""
    from ckpm.build.recipes import BuildContext, run_recipe
    from ckpm.build.toolchain import host_only

    logs = run.ws.root / STATE_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{safe_name(p.name)}-{safe_name(p.version)}-{t}.log"
    log.write_text("", encoding="utf-8")
    import tempfile  # here, not at the top: a warm run builds nothing (tempfile imports shutil, bz2, lzma)

    work = Path(tempfile.mkdtemp(prefix=f"build-{safe_name(p.name)}-", dir=destdir.parent))
    try:
        src = work / "src"
        expand_all(run, files, src)
        deps: dict[str, Path] = {}
        tools: list[str] = []
        for d, child_t in run.children(p, t):
            pre = run.prefixes.get((id(d), child_t))
            if pre is None:
                continue
            if child_t == t:
                deps[d.name] = pre
            if (pre / "bin").is_dir() and (child_t == run.host):
                tools.append(str(pre / "bin"))
        ctx = BuildContext(source=src, build_dir=work / "build", prefix=prefix, destdir=destdir,
                           toolchain=run.toolchain(t) if recipe.compiles else host_only(t, run.host),
                           log=log, deps=deps, tool_paths=tools,
                           jobs=run.options.jobs or os.cpu_count() or 1,
                           env=recipe.env_vars, timeout=run.time_left())
        (work / "build").mkdir(exist_ok=True)
        with run.ws.reporter.progress(f"building {p.name} {p.version} for {t}"):
            return run_recipe(recipe, ctx) or {}
    finally:
        with contextlib.suppress(OSError):
            remove_tree(work)  # iterative: an unpacked tree may be deep


def install_python(run: "SyncSession", p: LockedPackage, t: str, recipe: Recipe) -> Provisioned:
    """Python packages into the project's environment. The first install records every
    distribution pip installed (name, version, sha256) in the lock; later installs take
    exactly those, hashes required, dependencies not re-resolved (``--no-deps``)."""
    from ckpm.build.recipes import BuildContext, run_recipe
    from ckpm.build.toolchain import host_only
    from ckpm.provision.mirrors import pip_env

    ws = run.ws
    if t != run.host:
        raise BuildError(f"{p.name} {p.version}: python packages are installed for this host only, not for {t}",
                         hint="sync python packages without --target")
    venv = ws.root / STATE_DIR / "venv"
    marker = venv / PIP_MARKER
    want = _want(p, recipe)
    done = _read_json(marker)
    if done.get(p.name, {}).get("want") == want and (venv / "pyvenv.cfg").is_file():
        return Provisioned(p.name, p.version, t, "venv", str(venv), detail="already installed")
    args = run.pip_fetcher.install_args(p.pip)
    todo: Recipe | dict[str, Any] = recipe
    if p.pip:  # the locked distributions, each with its hash (checked as the recipe's own step would be)
        step = {"kind": "pip", "requirements": [f"{d.name}=={d.version}" for d in p.pip],
                "hashes": {d.name: [d.sha256] for d in p.pip if d.sha256}}
        todo = {**{k: v for k, v in recipe.to_lock().items() if k != "steps"}, "steps": [step]}
        args = [*args, "--no-deps"]
    logs = ws.root / STATE_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{safe_name(p.name)}-{safe_name(p.version)}-pip.log"
    log.write_text("", encoding="utf-8")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ckpm-pip-") as tmp:
        ctx = BuildContext(source=Path(tmp), build_dir=Path(tmp), prefix=venv, destdir=Path(tmp),
                           toolchain=host_only(t, run.host), log=log, python=run.interpreter(),
                           venv=venv, pip_args=args, pip_env=pip_env(ws.settings),
                           timeout=run.time_left())
        with ws.reporter.progress(f"installing {p.name} {p.version} into {venv}"):
            info = run_recipe(todo, ctx) or {}
    installed: list[PipDist] = []
    for d in info.get("pip", []):
        try:
            installed.append(parse_pip_dist({k: d[k] for k in ("name", "version", "sha256") if d.get(k)}))
        except RecipeInvalid as e:
            raise BuildError(f"{p.name} {p.version}: pip installed what the lock cannot record: {e}") from None
    if not p.pip and installed:
        run.learnt_pip.append((p, installed))
        p.pip = installed
        want = _want(p, recipe_for(p, t))
    done = _read_json(marker)
    done[p.name] = {"want": want, "installed": [d.to_lock() for d in installed]}
    atomic_write(marker, json.dumps(done, indent=1, sort_keys=True) + "\n")
    return Provisioned(p.name, p.version, t, "venv", str(venv), detail=", ".join(f"{x.name} {x.version}"
                                                                                for x in installed))


def _want(p: LockedPackage, recipe: Recipe | None) -> str:
    """What the environment's marker records of an install: the package, its recipe and pip list."""
    return json.dumps({"name": p.name, "version": p.version, "recipe": recipe.to_lock() if recipe else None,
                       "pip": [d.to_lock() for d in p.pip]}, sort_keys=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(1 << 20))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
