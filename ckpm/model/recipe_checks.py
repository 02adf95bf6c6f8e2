"""Checking an install recipe before anything of it runs.

A recipe comes from an index line or a component's manifest: data someone else wrote. It
is checked whole before the first step starts, so a bad recipe runs nothing: the shape
(types, field names, step kinds), sizes (string lengths, numbers of steps, arguments,
requirements), paths of copy steps (relative, no ``..``), pip requirements (plain
``name[extras] specifiers ; marker`` only: no URL, path or option a requirement could
smuggle into pip), hashes (64 hex digits), and exported variable names (none that would
replace what ckpm sets: ``PATH``, ``HOME``, ``PREFIX``, ``CC``, ``CKPM_*``, ``LD_*``…).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ckpm.model.envnames import RESERVED_ENV, RESERVED_ENV_PREFIXES, reserved_env  # noqa: F401  (re-exported)

STEP_KINDS = ("script", "make", "cmake", "pip", "copy")

#: fields of a recipe; ``sources`` is read by the fetcher, not here
RECIPE_KEYS = ("targets", "sources", "steps", "env")
#: fields of each kind of step (beside ``kind``)
STEP_KEYS: dict[str, tuple[str, ...]] = {
    "script": ("run",),
    "make": ("configure", "configure_args", "make_args", "install_args"),
    "cmake": ("args", "build_type"),
    "pip": ("requirements", "hashes"),
    "copy": ("from", "to"),
}

MAX_STEPS = 64
MAX_TARGETS = 64
MAX_SOURCES = 64
MAX_ARGS = 256  # items of one argument list
MAX_ARG = 4096  # characters of one argument or variable value
MAX_SCRIPT_LINES = 256
MAX_SCRIPT_LINE = 16384
MAX_ENV = 64
MAX_REQUIREMENTS = 1000
MAX_REQUIREMENT = 512
MAX_HASHES = 32  # per distribution
MAX_PATH = 1024
MAX_NAME = 128
MAX_BYTE_COUNT = 1 << 50  # a source's size or unpacked-size (as ckpm.model.entry.MAX_BYTE_COUNT)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: variables a recipe may not set: ckpm sets them, or they change how every program runs
#: (one list for recipes, programs' run environments and CK imports: ckpm/model/envnames.py)
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_SPEC = r"(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_]+(?:-[A-Za-z0-9.*+!_]+)*"
_REQUIREMENT = re.compile(
    rf"^(?P<name>{_NAME})\s*(?:\[\s*(?:{_NAME}(?:\s*,\s*{_NAME})*)?\s*\])?"
    rf"\s*(?:\(?\s*{_SPEC}(?:\s*,\s*{_SPEC})*\s*\)?)?"
    r"\s*(?:;[A-Za-z0-9_.\s'\"<>=!~(),*+]*)?$"
)
_SHA256 = re.compile(r"^(?:sha256:)?[0-9a-fA-F]{64}$")
_BUILD_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


def canonical_name(name: str) -> str:
    """A Python distribution name as pip compares it (PEP 503: lower case, runs of ``-_.`` → ``-``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str | None:
    """The distribution a requirement names (canonical), None if it is not an accepted requirement."""
    m = _REQUIREMENT.match(req.strip())
    return canonical_name(m.group("name")) if m else None


def env_problems(env: Any, where: str = "env") -> list[str]:
    """Problems with a recipe's exported variables ({NAME: value})."""
    if not isinstance(env, Mapping):
        return [f"{where}: must be a table of NAME = \"value\", not {_type(env)}"]
    if len(env) > MAX_ENV:
        return [f"{where}: {len(env)} variables, more than {MAX_ENV}"]
    out: list[str] = []
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name) or len(name) > MAX_NAME:
            out.append(f"{where}: {str(name)[:60]!r} is not a variable name (letters, digits, _)")
            continue
        if reserved_env(name):
            out.append(f"{where}.{name}: ckpm sets this variable itself (or it changes how every program runs); "
                       "a recipe may not set it")
        out.extend(_string_problems(value, f"{where}.{name}", MAX_ARG))
    return out


def check_recipe(recipe: Any) -> list[str]:
    """Every problem with an install recipe, one sentence each; ``[]`` when it may run."""
    if not isinstance(recipe, Mapping):
        return [f"a recipe must be a table (targets, sources, steps, env), not {_type(recipe)}"]
    out: list[str] = []
    for key in recipe:
        if key not in RECIPE_KEYS:
            out.append(f"unknown recipe field {str(key)[:60]!r} (known: {', '.join(RECIPE_KEYS)})")
    if "targets" in recipe:
        out.extend(_targets_problems(recipe["targets"]))
    if "sources" in recipe:
        src = recipe["sources"]
        if not isinstance(src, list):
            out.append(f"sources: must be a list, not {_type(src)}")
        elif len(src) > MAX_SOURCES:
            out.append(f"sources: {len(src)} sources, more than {MAX_SOURCES}")
        else:
            for i, s in enumerate(src):
                if not isinstance(s, Mapping):
                    out.append(f"sources[{i}]: must be a table (urls, sha256, size, unpacked-size), not {_type(s)}")
                    continue
                for key in ("size", "unpacked-size"):
                    v = s.get(key)
                    if v is not None and (type(v) is not int or not 0 <= v <= MAX_BYTE_COUNT):
                        out.append(f"sources[{i}].{key}: must be a byte count (an integer from 0 to "
                                   f"{MAX_BYTE_COUNT}), not {str(v)[:40]!r}")
    if "env" in recipe:
        out.extend(env_problems(recipe["env"]))
    steps = recipe.get("steps")
    if steps is None:
        out.append("steps: missing (a recipe needs at least one step)")
    elif not isinstance(steps, list):
        out.append(f"steps: must be a list, not {_type(steps)}")
    elif not steps:
        out.append("steps: empty (a recipe needs at least one step)")
    elif len(steps) > MAX_STEPS:
        out.append(f"steps: {len(steps)} steps, more than {MAX_STEPS}")
    else:
        for i, step in enumerate(steps):
            out.extend(_step_problems(step, f"steps[{i}]"))
    return out


def _step_problems(step: Any, where: str) -> list[str]:
    if not isinstance(step, Mapping):
        return [f"{where}: a step must be a table with a kind, not {_type(step)}"]
    kind = step.get("kind")
    if not isinstance(kind, str) or kind not in STEP_KINDS:
        shown = repr(kind)[:60] if kind is not None else "missing"
        return [f"{where}.kind: {shown} is not a step kind (one of {', '.join(STEP_KINDS)})"]
    where = f"{where} ({kind})"
    out: list[str] = []
    for key in step:
        if key != "kind" and key not in STEP_KEYS[kind]:
            out.append(f"{where}: unknown field {str(key)[:60]!r} (known: {', '.join(STEP_KEYS[kind])})")
    if kind == "script":
        run = step.get("run")
        if run is None:
            out.append(f"{where}.run: missing (the commands to run)")
        else:
            out.extend(_list_problems(run, f"{where}.run", MAX_SCRIPT_LINES, MAX_SCRIPT_LINE, nonempty=True))
    elif kind == "make":
        conf = step.get("configure", "auto")
        if not isinstance(conf, bool) and conf != "auto":
            out.append(f"{where}.configure: must be true, false or \"auto\", not {repr(conf)[:60]}")
        for key in ("configure_args", "make_args", "install_args"):
            if key in step:
                out.extend(_list_problems(step[key], f"{where}.{key}", MAX_ARGS, MAX_ARG))
    elif kind == "cmake":
        if "args" in step:
            out.extend(_list_problems(step["args"], f"{where}.args", MAX_ARGS, MAX_ARG))
        bt = step.get("build_type", "Release")
        if not isinstance(bt, str) or not _BUILD_TYPE.match(bt):
            out.append(f"{where}.build_type: must be a CMake build type such as Release, not {repr(bt)[:60]}")
    elif kind == "pip":
        out.extend(_pip_problems(step, where))
    elif kind == "copy":
        for key in ("from", "to"):
            if key in step:
                out.extend(_relpath_problems(step[key], f"{where}.{key}"))
    return out


def _pip_problems(step: Mapping[str, Any], where: str) -> list[str]:
    reqs = step.get("requirements")
    if reqs is None:
        return [f"{where}.requirements: missing (the Python packages to install)"]
    out = _list_problems(reqs, f"{where}.requirements", MAX_REQUIREMENTS, MAX_REQUIREMENT, nonempty=True)
    if out:
        return out
    for i, req in enumerate(reqs):
        if requirement_name(req) is None:
            out.append(f"{where}.requirements[{i}]: {req[:80]!r} is not a plain requirement "
                       "(name[extras] with version specifiers; no URL, path or pip option)")
    hashes = step.get("hashes")
    if hashes is None:
        return out
    if not isinstance(hashes, Mapping):
        return out + [f"{where}.hashes: must be a table of name = [sha256, ...], not {_type(hashes)}"]
    if len(hashes) > MAX_REQUIREMENTS:
        return out + [f"{where}.hashes: {len(hashes)} names, more than {MAX_REQUIREMENTS}"]
    hashed = set()
    for name, values in hashes.items():
        if not isinstance(name, str) or not re.fullmatch(_NAME, name) or len(name) > MAX_NAME:
            out.append(f"{where}.hashes: {str(name)[:60]!r} is not a distribution name")
            continue
        if not isinstance(values, list) or not values or len(values) > MAX_HASHES:
            out.append(f"{where}.hashes.{name}: must be a list of 1 to {MAX_HASHES} sha256 digests")
            continue
        for v in values:
            if not isinstance(v, str) or not _SHA256.match(v):
                out.append(f"{where}.hashes.{name}: {repr(v)[:80]} is not a sha256 digest (64 hex digits)")
        hashed.add(canonical_name(name))
    for req in reqs:
        name = requirement_name(req)
        if name and name not in hashed and not out:
            out.append(f"{where}.hashes: no digest for {name} (with hashes, pip checks every requirement)")
    return out


def _targets_problems(targets: Any) -> list[str]:
    from ckpm.model.targets import pattern_problem

    out = _list_problems(targets, "targets", MAX_TARGETS, MAX_NAME, nonempty=True)
    if out:
        return out
    for t in targets:
        problem = pattern_problem(t)
        if problem:
            out.append(f"targets: {problem}")
    return out


def _relpath_problems(value: Any, where: str) -> list[str]:
    out = _string_problems(value, where, MAX_PATH)
    if out:
        return out
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        return [f"{where}: {value[:80]!r} is an absolute path; give a path relative to the folder"]
    if ".." in re.split(r"[/\\]", value):
        return [f"{where}: {value[:80]!r} climbs out of its folder with '..'"]
    if not value:
        return [f"{where}: empty (use \".\" for the whole folder)"]
    return []


def _list_problems(value: Any, where: str, max_items: int, max_len: int, *, nonempty: bool = False) -> list[str]:
    if not isinstance(value, list):
        return [f"{where}: must be a list of strings, not {_type(value)}"]
    if nonempty and not value:
        return [f"{where}: empty"]
    if len(value) > max_items:
        return [f"{where}: {len(value)} items, more than {max_items}"]
    out: list[str] = []
    for i, item in enumerate(value):
        out.extend(_string_problems(item, f"{where}[{i}]", max_len))
    return out


def _string_problems(value: Any, where: str, max_len: int) -> list[str]:
    if not isinstance(value, str):
        return [f"{where}: must be a string, not {_type(value)}"]
    if len(value) > max_len:
        return [f"{where}: {len(value)} characters, more than {max_len}"]
    if "\x00" in value:
        return [f"{where}: contains a NUL character"]
    return []


def _type(value: Any) -> str:
    names = {dict: "a table", list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return "nothing" if value is None else names.get(type(value), type(value).__name__)
