"""Install recipes: the steps that turn unpacked sources into files under a staged prefix.

A recipe is data (an index line's or a manifest's ``install`` table), parsed and checked
once into a :class:`~ckpm.model.recipe.Recipe` of :class:`~ckpm.model.recipe.Step` values
where it enters (the lock's reader, an index line's ``recipes``); this module takes those::

    {"targets": ["linux-*"], "sources": [...], "env": {"CFLAGS": "-O2"},
     "steps": [{"kind": "make"}, {"kind": "copy", "from": "data", "to": "share/data"}]}

Step kinds (:data:`STEP_KINDS`):

- ``script``: ``{"run": ["cmd arg", ...]}``: each string runs with ``/bin/sh -e -c`` in the
  source folder. A script must install into ``"$DESTDIR$PREFIX"``: ``$PREFIX`` is the final
  prefix (to write into configuration files and rpaths), ``$DESTDIR`` the staging root.
- ``make``: ``{"configure": true | false | "auto", "configure_args": [...], "make_args":
  [...], "install_args": [...]}``: ``./configure --prefix=PREFIX [--host=TRIPLE] ARGS`` (with
  ``"auto"``, the default, only when the sources have a ``configure``), ``make -jN CC=… AR=…
  PREFIX=PREFIX ARGS``, ``make install DESTDIR=DESTDIR CC=… PREFIX=PREFIX ARGS``, in the
  source folder.
- ``cmake``: ``{"args": [...], "build_type": "Release"}``: ``cmake -S SOURCE -B BUILD
  -DCMAKE_INSTALL_PREFIX=PREFIX -DCMAKE_BUILD_TYPE=… [-DCMAKE_TOOLCHAIN_FILE=…] ARGS``,
  ``cmake --build BUILD -j N``, ``cmake --install BUILD`` with ``DESTDIR`` in the environment.
  The toolchain file is generated when cross-compiling (see ``Toolchain.cmake_toolchain_file``).
- ``pip``: ``{"requirements": ["numpy==1.26.4"], "hashes": {"numpy": ["<sha256>"]}}``: into
  the project's environment ``ctx.venv`` (made with ``python -m venv`` when missing) with
  ``python -m pip install --no-input --disable-pip-version-check --report R ctx.pip_args
  REQS``; with ``hashes``, through a requirements file with ``--hash=sha256:`` options and
  ``--require-hashes`` (pip then wants every distribution, dependencies too, pinned with
  ``==`` and hashed: pass the complete list a previous run recorded). The venv is the prefix:
  no DESTDIR. Only for the host target.
- ``copy``: ``{"from": "relative/in/source", "to": "relative/in/prefix"}`` (both default
  ``"."``): files (data sets, models) copied into ``DESTDIR/PREFIX``.

The environment every command runs with (:func:`build_env`), and nothing else of the
user's environment:

| variable | value |
| --- | --- |
| ``PATH`` | ``ctx.tool_paths``, the dependencies' ``bin`` (native builds), then ``/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`` |
| ``HOME``, ``TMPDIR`` | fresh folders in ``ctx.build_dir`` (``.ckpm-home``, ``.ckpm-tmp``) |
| ``LANG``, ``LC_ALL`` | ``C`` (messages and sorting the same everywhere) |
| ``PREFIX``, ``DESTDIR`` | the final prefix, the staging root (also as ``CKPM_PREFIX``, ``CKPM_DESTDIR``) |
| ``CKPM_SOURCE``, ``CKPM_BUILD_DIR``, ``CKPM_JOBS`` | the source folder, the scratch folder, the parallel jobs |
| ``CC``, ``CXX``, ``AR``, ``RANLIB``, ``CKPM_TARGET``, ``CKPM_HOST_TARGET``, ``CKPM_TRIPLE``, ``CKPM_EMULATOR`` | the toolchain's (``Toolchain.env``) |
| ``CPATH``, ``CPPFLAGS``, ``LIBRARY_PATH``, ``LDFLAGS``, ``PKG_CONFIG_PATH``, ``PKG_CONFIG_LIBDIR``, ``CMAKE_PREFIX_PATH``, ``<NAME>_ROOT`` | the dependencies' (:func:`ckpm.build.environment.deps_env`) |
| the recipe's ``env`` and ``ctx.env`` | as given (checked: no variable above may be replaced); ``CFLAGS``, ``CXXFLAGS``, ``CPPFLAGS``, ``LDFLAGS`` are appended to ckpm's. A caller passes e.g. ``SOURCE_DATE_EPOCH`` this way. |
| pip steps only | ``ctx.pip_env``: the user's own pip and network settings (``HOME``, proxies, CA bundles, ``PIP_*``), so pip reads its config and reaches the package index the way the user's pip does; with none given, ``PIP_CONFIG_FILE=/dev/null``. Always ``PIP_NO_INPUT=1``, ``PYTHONNOUSERSITE=1`` |

Every command is an argv list (only the script step uses a shell), runs in the source or
build folder with stdin closed, in its own process group (killed as a group on timeout or
Ctrl-C), with its command line and output appended to ``ctx.log``. ``ctx.timeout`` (default
:data:`DEFAULT_TIMEOUT`) bounds the whole recipe. A failure is a BuildError naming the step
and the command, with the last 20 lines of the log and its path.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ckpm.model.recipe import Recipe, RecipeInvalid, Step, parse_recipe
from ckpm.model.recipe_checks import STEP_KINDS, canonical_name, check_recipe, env_problems, requirement_name
from ckpm.build.environment import SYSTEM_PATH, deps_env
from ckpm.build.process import append_log, fail, run_command
from ckpm.build.toolchain import Toolchain, toolchain_record
from ckpm.errors import BuildError
from ckpm.fsutil import copy_tree

__all__ = ["STEP_KINDS", "BuildContext", "build_env", "check_recipe", "deps_env", "run_recipe", "DEFAULT_TIMEOUT"]

#: seconds a whole recipe may take when ``ctx.timeout`` is None
DEFAULT_TIMEOUT = 6 * 3600.0
#: largest pip report read back (bytes)
MAX_REPORT = 16 << 20
#: variables where the recipe's value is appended to ckpm's rather than replacing it
APPENDED_FLAGS = ("CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS")


@dataclass
class BuildContext:
    """Where one build happens and with what.

    ``source`` is a fresh folder of unpacked sources made for this build (never the store's
    or a component's own checkout); ``build_dir`` a scratch folder; ``prefix`` the FINAL
    install prefix; ``destdir`` the staging root (files land in ``destdir/prefix``); ``log``
    the build log, appended to. ``deps`` maps dependency names to their prefixes;
    ``tool_paths`` are host ``bin`` folders put first on PATH; ``env`` the recipe's exports.
    ``python``/``venv``/``pip_args`` serve pip steps; ``timeout`` bounds the whole recipe.
    """

    source: Path
    build_dir: Path
    prefix: Path
    destdir: Path
    toolchain: Toolchain
    log: Path
    deps: dict[str, Path] = field(default_factory=dict)
    tool_paths: list[str] = field(default_factory=list)
    jobs: int = 2
    env: dict[str, str] = field(default_factory=dict)
    python: str | None = None
    venv: Path | None = None
    pip_args: list[str] = field(default_factory=list)
    pip_env: dict[str, str] = field(default_factory=dict)  # the user's pip/network variables, for pip steps only
    timeout: float | None = None

    @property
    def stage(self) -> Path:
        """``destdir/prefix``: where the installed files must be when the recipe is done."""
        return staged_prefix(self.destdir, self.prefix)


def staged_prefix(destdir: Path, prefix: Path) -> Path:
    """``destdir`` joined with the absolute ``prefix`` (``/d`` + ``/opt/x`` → ``/d/opt/x``), as DESTDIR does."""
    prefix = Path(prefix)
    return Path(destdir) / prefix.relative_to(prefix.anchor)


def build_env(ctx: BuildContext) -> dict[str, str]:
    """The clean environment a recipe's commands run with (the table in the module docstring).

    Creates the ``HOME`` and ``TMPDIR`` folders in ``ctx.build_dir``.
    """
    home = Path(ctx.build_dir) / ".ckpm-home"
    tmp = Path(ctx.build_dir) / ".ckpm-tmp"
    home.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    env = deps_env(ctx.deps, toolchain=ctx.toolchain, base_path=SYSTEM_PATH)
    env["PATH"] = os.pathsep.join([*ctx.tool_paths, env["PATH"]])
    env.update(ctx.toolchain.env())
    env.update({
        "HOME": str(home), "TMPDIR": str(tmp), "LANG": "C", "LC_ALL": "C",
        "PREFIX": str(ctx.prefix), "DESTDIR": str(ctx.destdir),
        "CKPM_PREFIX": str(ctx.prefix), "CKPM_DESTDIR": str(ctx.destdir),
        "CKPM_SOURCE": str(ctx.source), "CKPM_BUILD_DIR": str(ctx.build_dir), "CKPM_JOBS": str(ctx.jobs),
    })
    for name, value in ctx.env.items():
        if name in APPENDED_FLAGS and env.get(name):
            env[name] = f"{env[name]} {value}"
        else:
            env[name] = value
    return env


def run_recipe(recipe: Recipe | Mapping[str, Any], ctx: BuildContext) -> dict[str, Any]:
    """Run the steps of ``recipe`` in order; return what a lock or store record keeps.

    The record has ``steps`` (the kinds run), ``toolchain`` (when something was built) and
    ``pip`` (for pip steps: ``[{"name", "version", "sha256", "url"}]`` of the distributions
    installed, read from pip's ``--report``; distributions already present in the venv are
    not listed). Nothing runs when the recipe or the context is invalid (BuildError). A recipe
    given as data (a table) is parsed and checked here first.
    """
    problems = []
    if not isinstance(recipe, Recipe):
        try:
            recipe = parse_recipe(recipe)
        except RecipeInvalid as e:
            problems = e.problems
    problems += env_problems(ctx.env, "the build's env")
    if problems or not isinstance(recipe, Recipe):
        shown = problems[:10] + ([f"… and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise BuildError("the install recipe is invalid: " + "; ".join(shown),
                         hint="fix the recipe in the index or manifest that provides it; nothing was run")
    from ckpm.model.targets import matches

    tc = ctx.toolchain
    targets = recipe.targets
    if targets and not matches(tc.target, list(targets)):
        raise BuildError(f"the install recipe is for {', '.join(targets)}, not for {tc.target}",
                         hint="choose a target the recipe supports, or a version that supports this one")
    for name, what in (("prefix", ctx.prefix), ("destdir", ctx.destdir), ("source", ctx.source),
                       ("build_dir", ctx.build_dir)):
        if not Path(what).is_absolute():
            raise BuildError(f"the build's {name} must be an absolute path, not {what}")
    if not Path(ctx.source).is_dir():
        raise BuildError(f"the sources to build are missing: {ctx.source} is not a folder")
    steps = recipe.steps
    if tc.cross and any(s.kind == "pip" for s in steps):
        raise BuildError(f"pip steps install into this host's Python and cannot build for {tc.target}",
                         hint="provision Python packages for the host target only")
    if tc.cc is None and any(s.kind in ("make", "cmake") for s in steps):
        raise BuildError(f"the recipe has make or cmake steps but the toolchain for {tc.target} has no C compiler",
                         hint="build with the toolchain that ckpm.build.toolchain.find_toolchain returns")
    ctx = _with_recipe_env(ctx, recipe.env_vars)
    installs = any(s.kind != "pip" for s in steps)
    for d in (ctx.build_dir, *((ctx.destdir, ctx.stage) if installs else ())):
        Path(d).mkdir(parents=True, exist_ok=True)
    Path(ctx.log).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (ctx.timeout if ctx.timeout is not None else DEFAULT_TIMEOUT)
    record: dict[str, Any] = {"steps": [s.kind for s in steps]}
    env = build_env(ctx)
    for i, step in enumerate(steps, 1):
        kind = step.kind
        label = f"step {i} of {len(steps)} ({kind})"
        append_log(ctx.log, f"\n## ckpm: {label}\n")
        if kind == "script":
            for line in step.run or ():
                run_command(["/bin/sh", "-e", "-c", line], cwd=ctx.source, env=env, log=ctx.log, step=label,
                            deadline=deadline)
        elif kind == "make":
            _make(step, ctx, env, label, deadline)
        elif kind == "cmake":
            _cmake(step, ctx, env, label, deadline, i)
        elif kind == "pip":
            record.setdefault("pip", []).extend(_pip(step, ctx, env, label, deadline, i))
        elif kind == "copy":
            _copy(step, ctx, label)
    if recipe.compiles:
        record["toolchain"] = toolchain_record(tc)
    if installs:
        _check_staged(ctx)
    return record


def _with_recipe_env(ctx: BuildContext, recipe_env: Mapping[str, str]) -> BuildContext:
    """``ctx`` with the recipe's exports under the caller's (the caller's win)."""
    from dataclasses import replace

    return replace(ctx, env={**dict(recipe_env), **ctx.env})


def _make(step: Step, ctx: BuildContext, env: dict[str, str], label: str, deadline: float) -> None:
    tc = ctx.toolchain
    conf = step.configure_mode
    script = Path(ctx.source) / "configure"
    if conf is True and not script.is_file():
        raise fail(label, "the recipe asks for ./configure but the sources have none", ctx.log,
                   hint="set configure = false (or \"auto\") in the recipe, or run autoreconf in a script step first")
    if conf is True or (conf == "auto" and script.is_file()):
        runner = ["./configure"] if os.access(script, os.X_OK) else ["/bin/sh", "./configure"]
        run_command([*runner, f"--prefix={ctx.prefix}", *tc.configure_args(), *(step.configure_args or ())],
                    cwd=ctx.source, env=env, log=ctx.log, step=label, deadline=deadline)
    variables = [*tc.make_vars(), f"PREFIX={ctx.prefix}"]
    run_command(["make", f"-j{max(1, ctx.jobs)}", *variables, *(step.make_args or ())],
                cwd=ctx.source, env=env, log=ctx.log, step=label, deadline=deadline)
    run_command(["make", "install", f"DESTDIR={ctx.destdir}", *variables, *(step.install_args or ())],
                cwd=ctx.source, env=env, log=ctx.log, step=label, deadline=deadline)


def _cmake(step: Step, ctx: BuildContext, env: dict[str, str], label: str, deadline: float,
           number: int) -> None:
    tc = ctx.toolchain
    build = Path(ctx.build_dir) / f"cmake-{number}"
    configure = ["cmake", "-S", str(ctx.source), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={ctx.prefix}",
                 f"-DCMAKE_BUILD_TYPE={step.cmake_build_type}"]
    if tc.cross:
        tfile = tc.cmake_toolchain_file(Path(ctx.build_dir) / f"toolchain-{number}.cmake",
                                        roots=[p for p in ctx.deps.values()])
        configure.append(f"-DCMAKE_TOOLCHAIN_FILE={tfile}")
    if ctx.deps:
        configure.append("-DCMAKE_PREFIX_PATH=" + ";".join(str(p) for p in ctx.deps.values()))
    run_command([*configure, *(step.args or ())], cwd=Path(ctx.build_dir), env=env, log=ctx.log, step=label,
                deadline=deadline)
    run_command(["cmake", "--build", str(build), "-j", str(max(1, ctx.jobs))], cwd=Path(ctx.build_dir), env=env,
                log=ctx.log, step=label, deadline=deadline)
    run_command(["cmake", "--install", str(build)], cwd=Path(ctx.build_dir), env=env, log=ctx.log, step=label,
                deadline=deadline)


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(step: Step, ctx: BuildContext, env: dict[str, str], label: str, deadline: float,
         number: int) -> list[dict[str, Any]]:
    if ctx.venv is None:
        raise fail(label, "a pip step needs the project's Python environment, and none was given", ctx.log)
    venv = Path(ctx.venv)
    pip_env = {**env, **(ctx.pip_env or {"PIP_CONFIG_FILE": os.devnull}), "PIP_NO_INPUT": "1",
               "PYTHONNOUSERSITE": "1"}
    if not (venv / "pyvenv.cfg").is_file():
        if venv.exists() and (not venv.is_dir() or any(venv.iterdir())):
            raise fail(label, f"{venv} exists and is not a Python virtual environment (no pyvenv.cfg)", ctx.log,
                       hint="move it away, or point the project at another environment folder")
        run_command([ctx.python or sys.executable, "-m", "venv", str(venv)], cwd=Path(ctx.build_dir), env=pip_env,
                    log=ctx.log, step=label, deadline=deadline)
    python = _venv_python(venv)
    report = Path(ctx.build_dir) / f"pip-report-{number}.json"
    report.unlink(missing_ok=True)
    argv = [str(python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
            "--report", str(report), *ctx.pip_args]
    reqs: list[str] = list(step.requirements or ())
    if step.hashes:
        by_name = {canonical_name(k): v for k, v in step.hashes}
        lines = []
        for req in reqs:
            digests: Sequence[str] = by_name.get(requirement_name(req) or "", ())
            opts = " ".join(f"--hash=sha256:{d.removeprefix('sha256:').lower()}" for d in digests)
            lines.append(f"{req} {opts}".rstrip())
        reqfile = Path(ctx.build_dir) / f"requirements-{number}.txt"
        reqfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
        argv += ["--require-hashes", "-r", str(reqfile)]
    else:
        argv += reqs
    run_command(argv, cwd=Path(ctx.build_dir), env=pip_env, log=ctx.log, step=label, deadline=deadline)
    return read_pip_report(report, label, ctx.log)


def read_pip_report(report: Path, label: str, log: Path) -> list[dict[str, Any]]:
    """The distributions a ``pip install --report`` installed: name, version, sha256 (None when pip
    did not install from an archive) and the URL, sorted by name."""
    try:
        if report.stat().st_size > MAX_REPORT:
            raise fail(label, f"pip's report {report} is larger than {MAX_REPORT} bytes", log)
        data = json.loads(report.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail(label, f"pip wrote no report ({report}); is the environment's pip older than 22.2?", log,
                   hint="upgrade pip in the project's environment") from None
    except (OSError, ValueError) as e:
        raise fail(label, f"cannot read pip's report {report}: {e}", log) from None
    out: list[dict[str, Any]] = []
    items = data.get("install") if isinstance(data, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        meta = item.get("metadata") or {}
        info = item.get("download_info") or {}
        archive = info.get("archive_info") if isinstance(info, dict) else None
        sha = None
        if isinstance(archive, dict):
            sha = (archive.get("hashes") or {}).get("sha256")
            h = archive.get("hash")
            if not sha and isinstance(h, str) and h.startswith("sha256="):
                sha = h.partition("=")[2]
        entry: dict[str, Any] = {"name": str(meta.get("name", "")), "version": str(meta.get("version", "")),
                                 "sha256": sha}
        if isinstance(info, dict) and info.get("url"):
            entry["url"] = str(info["url"])
        out.append(entry)
    return sorted(out, key=lambda e: canonical_name(e["name"]))


def _inside(root: Path, rel: str) -> Path:
    """``root/rel`` after checking it resolves (symlinks followed) inside ``root``."""
    target = (root / rel) if rel not in ("", ".") else root
    real_root = os.path.realpath(root)
    real = os.path.realpath(target)
    if os.path.commonpath([real_root, real]) != real_root:
        raise ValueError(f"{rel!r} leads outside {root}")
    return target


def _copy(step: Step, ctx: BuildContext, label: str) -> None:
    src_rel, dst_rel = step.copy_from, step.copy_to
    try:
        src = _inside(Path(ctx.source), src_rel)
        dst = _inside(ctx.stage, dst_rel)
    except ValueError as e:
        raise fail(label, f"refused to copy: {e}", ctx.log) from None
    append_log(ctx.log, f"\n# ckpm: copy {src} -> {dst}\n")
    try:
        if src.is_dir():
            copy_tree(src, dst, dirs_exist_ok=True)  # iterative: an unpacked tree may be deep
        elif src.is_file():
            if dst_rel in ("", ".") or dst_rel.endswith("/") or dst.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
                dst = dst / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        else:
            raise fail(label, f"nothing to copy: {src_rel!r} is not in the sources", ctx.log,
                       hint="check the copy step's \"from\" against the unpacked sources")
    except OSError as e:
        raise fail(label, f"copying {src_rel!r} to {dst_rel!r} failed: {e}", ctx.log) from None


def _check_staged(ctx: BuildContext) -> None:
    """The files went where they belong: something under ``destdir/prefix``, nothing beside it."""
    stage = ctx.stage
    strays: list[str] = []
    here = Path(ctx.destdir)
    for part in stage.relative_to(ctx.destdir).parts:
        strays += [str(p) for p in sorted(here.iterdir()) if p.name != part]
        here = here / part
    if strays:
        shown = ", ".join(strays[:5]) + (f" and {len(strays) - 5} more" if len(strays) > 5 else "")
        raise fail("install", f"the recipe installed files outside the prefix {ctx.prefix}: {shown}", ctx.log,
                   hint="the build must honour PREFIX and DESTDIR (install into \"$DESTDIR$PREFIX\")")
    if not any(stage.iterdir()):
        raise fail("install", f"the recipe installed nothing into {stage}", ctx.log,
                   hint="the build must install into \"$DESTDIR$PREFIX\" (make install DESTDIR=…, "
                        "cmake --install with DESTDIR set)")

