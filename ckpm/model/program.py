"""A program's description: how ``ckpm run`` compiles it, runs it, checks and measures it.

It is the ``[run]`` table of a project's ``ckpm.toml`` (the project's own program) or of a
component's (``run`` in its index line, copied into the lock like ``install``)::

    [run]
    sources = ["programs/image-corners/corners.c"]   # relative to the program's folder
    language = "c"                    # c (the default) or c++
    binary = "corners"                # the executable's name (default: the program's name)
    compiler = "compiler"             # the dependency key whose host pin is the compiler (default)
    cflags = ["-O2", "-Wall"]
    ldflags = ["-lm"]
    input = "dataset-hello-images"    # the dependency key of the default input (a data set)
    command = "corners"               # the default command (default: the first one)
    timeout = 600                     # seconds per run of the program

    [run.flags]                       # profiles chosen with --flags NAME: added to cflags
    speed = ["-O3"]
    size = ["-Os"]
    debug = ["-O0", "-g"]

    [run.env]                         # environment of every command
    OMP_NUM_THREADS = "1"

    [run.params]                      # parameters: defaults, changed with --param NAME=VALUE
    threshold = "40"

    [run.commands.corners]            # named commands (as CK's run_cmds); args follow the binary
    args = ["{input}/images", "{out}", "{param.threshold}"]
    env = { }

    [run.validate]                    # every check must hold, or the run fails (exit non-zero)
    exists = ["metrics.json"]                                   # files in {out}
    files = [{ path = "metrics.json", sha256 = "…" }]          # exact content
    stdout = ["corners: 1234"]                                  # lines the output must contain
    metrics = [{ name = "corners", equals = 1234, tolerance = 0 }]   # relative tolerance

    [run.metrics]                     # values parsed from the program's output
    corners = { regex = "corners: ([0-9]+)" }                   # from stdout (first group)
    checksum = { json = "checksum", file = "metrics.json" }     # from a JSON file in {out}
    score = { regex = "score: ([0-9.]+)", better = "higher" }

    [run.tolerance]                   # how close a replay must come (ckpm artifact evaluate)
    time = 0.5                                                  # ±50% (relative); 0 is exact

Placeholders in ``args`` and ``env`` values: ``{out}`` (the run's output folder), ``{input}``
(the input data set's prefix), ``{dep.KEY}`` (a dependency's prefix), ``{param.NAME}``,
``{src}`` (the program's folder), ``{bin}`` (the compiled binary). No shell runs: the binary
is executed with ``args`` as its arguments. Wall time (``time``), the binary's size
(``size``) and the peak memory (``max_rss``, MiB) are always measured.

Everything here is data someone else may have written; it is checked whole (types, names,
sizes, relative paths without ``..``) before anything runs, and only ``ckpm run`` (the user
asking to run that program) compiles and runs it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Mapping

from ckpm.errors import CkpmError
from ckpm.model.envnames import reserved_env

RUN_KEYS = ("sources", "language", "binary", "compiler", "cflags", "ldflags", "input", "command", "timeout",
            "flags", "env", "params", "commands", "validate", "metrics", "tolerance")
COMMAND_KEYS = ("args", "env")
VALIDATE_KEYS = ("exists", "files", "stdout", "metrics")
LANGUAGES = ("c", "c++")
MAX_ITEMS = 256
MAX_TEXT = 4096
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
PLACEHOLDER_RE = re.compile(r"\{([a-z]+)(?:\.([A-Za-z0-9_.-]+))?\}")
PLACEHOLDERS = ("out", "input", "dep", "param", "src", "bin")


class ProgramError(CkpmError):
    """A ``[run]`` description that cannot be used: says where and what."""

    code = "program"


class UnknownCommand(ProgramError):
    """``--cmd NAME`` that the program does not have."""

    code = "unknown-command"


class UnknownFlags(ProgramError):
    """``--flags NAME``: a flag profile the program does not declare."""

    code = "unknown-flags"


class UnknownParameter(ProgramError):
    """``--param NAME=…``: a parameter the program does not declare."""

    code = "unknown-parameter"


@dataclass(frozen=True)
class Metric:
    name: str
    regex: str | None = None
    json: str | None = None
    file: str | None = None
    better: str = "lower"


@dataclass(frozen=True)
class Program:
    """A checked ``[run]`` table."""

    name: str
    sources: tuple[str, ...]
    language: str = "c"
    binary: str = ""
    compiler: str = "compiler"
    cflags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    input: str | None = None
    command: str | None = None
    timeout: float = 600.0
    flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    commands: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    validate: Mapping[str, Any] = field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    tolerance: Mapping[str, float] = field(default_factory=dict)  # metric → relative fraction (0: exact)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def command_named(self, name: str | None) -> tuple[str, Mapping[str, Any]]:
        """The command ``name`` (default: ``command``, else the first); ProgramError with the known names."""
        if not self.commands:
            return "default", {"args": [], "env": {}}
        want = name or self.command or next(iter(self.commands))
        if want not in self.commands:
            from difflib import get_close_matches

            near = get_close_matches(want, list(self.commands), n=1)
            raise UnknownCommand(f"{self.name} has no command {want!r} (it has {', '.join(self.commands)})",
                                 hint=f"did you mean {near[0]!r}?" if near else None)
        return want, self.commands[want]


def _strs(v: Any, where: str, *, paths: bool = False) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or len(v) > MAX_ITEMS or not all(isinstance(x, str) and len(x) <= MAX_TEXT for x in v):
        raise ProgramError(f"{where} must be a list of at most {MAX_ITEMS} strings")
    if any("\0" in x for x in v):
        raise ProgramError(f"{where}: a NUL character")
    if paths:
        for x in v:
            _relpath(x, where)
    return tuple(v)


def _relpath(x: str, where: str) -> str:
    p = PurePosixPath(x)
    if not x or x.startswith(("/", "\\")) or ".." in p.parts or re.match(r"^[A-Za-z]:", x) or "\\" in x:
        raise ProgramError(f"{where}: {x!r} must be a relative path inside the program's folder")
    return x


def _table(v: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise ProgramError(f"{where} must be a table")
    if len(v) > MAX_ITEMS:
        raise ProgramError(f"{where} has more than {MAX_ITEMS} entries")
    return v


def _env(v: Any, where: str) -> dict[str, str]:
    out = {}
    for k, x in _table(v, where).items():
        if not ENV_RE.fullmatch(str(k)) or not isinstance(x, str) or len(x) > MAX_TEXT or "\0" in x:
            raise ProgramError(f"{where}.{k}: a variable needs a name like NAME_1 and a string value")
        if reserved_env(str(k)):
            raise ProgramError(f"{where}.{k}: ckpm sets this variable itself, or it changes how every program "
                               "runs (the loader's, an interpreter's or a shell's start-up); a program may not "
                               "set it", hint="see docs/formats.md, \"Programs: [run]\"")
        _placeholders(x, f"{where}.{k}")
        out[str(k)] = x
    return out


def _placeholders(text: str, where: str) -> None:
    for m in PLACEHOLDER_RE.finditer(text):
        if m.group(1) not in PLACEHOLDERS:
            raise ProgramError(f"{where}: unknown placeholder {{{m.group(1)}}} "
                               f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")


def _unknown(d: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for k in d:
        if k not in known:
            from ckpm.errors import unknown_key_message

            raise ProgramError(unknown_key_message(str(k), known, where))


def parse_program(data: Any, *, name: str, where: str = "[run]") -> Program:
    """Check a ``[run]`` table (from TOML or an index line's JSON) and return the Program."""
    d = _table(data, where)
    _unknown(d, RUN_KEYS, where)
    sources = _strs(d.get("sources", []), f"{where}.sources", paths=True)
    if not sources:
        raise ProgramError(f"{where}.sources: name at least one source file")
    language = d.get("language", "c")
    if language not in LANGUAGES:
        raise ProgramError(f"{where}.language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    binary = d.get("binary", name)
    if not isinstance(binary, str) or not NAME_RE.fullmatch(binary):
        raise ProgramError(f"{where}.binary must be a file name (letters, digits, . _ -)")
    compiler = d.get("compiler", "compiler")
    for k in ("compiler", "input", "command"):
        v = d.get(k)
        if v is not None and (not isinstance(v, str) or not NAME_RE.fullmatch(v)):
            raise ProgramError(f"{where}.{k} must be a name")
    timeout = d.get("timeout", 600)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 7 * 86400:
        raise ProgramError(f"{where}.timeout must be a number of seconds (at most a week)")
    flags = {str(k): _strs(v, f"{where}.flags.{k}") for k, v in _table(d.get("flags", {}), f"{where}.flags").items()}
    for k in flags:
        if not NAME_RE.fullmatch(k):
            raise ProgramError(f"{where}.flags: {k!r} is not a profile name")
    params = {}
    for k, v in _table(d.get("params", {}), f"{where}.params").items():
        if not NAME_RE.fullmatch(str(k)) or not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise ProgramError(f"{where}.params.{k}: a parameter has a name and a string or number default")
        params[str(k)] = str(v)
    commands: dict[str, Mapping[str, Any]] = {}
    for k, v in _table(d.get("commands", {}), f"{where}.commands").items():
        cw = f"{where}.commands.{k}"
        if not NAME_RE.fullmatch(str(k)):
            raise ProgramError(f"{cw}: not a command name")
        c = _table(v, cw)
        _unknown(c, COMMAND_KEYS, cw)
        args = _strs(c.get("args", []), f"{cw}.args")
        for a in args:
            _placeholders(a, f"{cw}.args")
        commands[str(k)] = {"args": list(args), "env": _env(c.get("env", {}), f"{cw}.env")}
    command = d.get("command")
    if command is not None and commands and command not in commands:
        raise ProgramError(f"{where}.command: {command!r} is not one of the commands ({', '.join(commands)})")
    validate = dict(_table(d.get("validate", {}), f"{where}.validate"))
    _unknown(validate, VALIDATE_KEYS, f"{where}.validate")
    vw = f"{where}.validate"
    _strs(validate.get("exists", []), f"{vw}.exists", paths=True)
    _strs(validate.get("stdout", []), f"{vw}.stdout")
    files = validate.get("files", [])
    if not isinstance(files, list) or len(files) > MAX_ITEMS:
        raise ProgramError(f"{vw}.files must be a list of tables")
    for i, f in enumerate(files):
        t = _table(f, f"{vw}.files[{i}]")
        _unknown(t, ("path", "sha256"), f"{vw}.files[{i}]")
        if not isinstance(t.get("path"), str) or not re.fullmatch(r"[0-9a-fA-F]{64}", str(t.get("sha256", ""))):
            raise ProgramError(f"{vw}.files[{i}] needs path and a 64-hex sha256")
        _relpath(t["path"], f"{vw}.files[{i}].path")
    checks = validate.get("metrics", [])
    if not isinstance(checks, list) or len(checks) > MAX_ITEMS:
        raise ProgramError(f"{vw}.metrics must be a list of tables")
    for i, c in enumerate(checks):
        t = _table(c, f"{vw}.metrics[{i}]")
        _unknown(t, ("name", "equals", "tolerance", "min", "max"), f"{vw}.metrics[{i}]")
        if not isinstance(t.get("name"), str):
            raise ProgramError(f"{vw}.metrics[{i}] needs the metric's name")
        for k in ("equals", "tolerance", "min", "max"):
            if k in t and (not isinstance(t[k], (int, float)) or isinstance(t[k], bool)):
                raise ProgramError(f"{vw}.metrics[{i}].{k} must be a number")
    metrics = []
    for k, v in _table(d.get("metrics", {}), f"{where}.metrics").items():
        mw = f"{where}.metrics.{k}"
        if not NAME_RE.fullmatch(str(k)) or k in ("time", "size", "max_rss"):
            raise ProgramError(f"{mw}: not a metric name (time, size and max_rss are measured by ckpm)")
        t = _table(v, mw)
        _unknown(t, ("regex", "json", "file", "better"), mw)
        regex, key, file, better = t.get("regex"), t.get("json"), t.get("file"), t.get("better", "lower")
        if (regex is None) == (key is None):
            raise ProgramError(f"{mw}: give either regex (over stdout) or json (a key of a JSON file)")
        if regex is not None:
            if not isinstance(regex, str) or len(regex) > 512:
                raise ProgramError(f"{mw}.regex must be a string of at most 512 characters")
            try:
                if re.compile(regex).groups < 1:
                    raise ProgramError(f"{mw}.regex needs one group: the value")
            except re.error as e:
                raise ProgramError(f"{mw}.regex is not a regular expression ({e})") from None
        if key is not None and (not isinstance(key, str) or not key):
            raise ProgramError(f"{mw}.json must be a key")
        if file is not None:
            if not isinstance(file, str):
                raise ProgramError(f"{mw}.file must be a path")
            _relpath(file, f"{mw}.file")
        if better not in ("lower", "higher"):
            raise ProgramError(f"{mw}.better must be lower or higher")
        metrics.append(Metric(str(k), regex, key, file if key is not None else None, better))
    tolerance: dict[str, float] = {}
    for k, v in _table(d.get("tolerance", {}), f"{where}.tolerance").items():
        if not NAME_RE.fullmatch(str(k)):
            raise ProgramError(f"{where}.tolerance.{k}: not a metric name")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 100:
            raise ProgramError(f"{where}.tolerance.{k} must be a fraction from 0 (exact) to 100")
        tolerance[str(k)] = float(v)
    return Program(
        name=name, sources=sources, language=language, binary=binary, compiler=compiler,
        cflags=_strs(d.get("cflags", []), f"{where}.cflags"), ldflags=_strs(d.get("ldflags", []), f"{where}.ldflags"),
        input=d.get("input"), command=command, timeout=float(timeout), flags=flags,
        env=_env(d.get("env", {}), f"{where}.env"), params=params, commands=commands, validate=validate,
        metrics=tuple(metrics), tolerance=tolerance, raw=dict(d),
    )
