"""The search space of ``ckpm tune``: which variants of a run to try.

A space file is TOML. Every table but ``[run]`` adds dimensions; a point picks one value
per dimension, and :meth:`Space.request` turns a point into a run request::

    [run]                          # defaults of every request (all optional)
    component = "program-image-corners"   # default: the project's own [run]
    command = "corners"            # a named command of the program
    input = "dataset-images-small" # the dependency key of the input
    target = "linux-x86_64"        # default: the host
    repeat = 3                     # repetitions per point (1 to 10,000)
    flags = "speed"                # a flag profile used when [flags] is not a dimension
    cflags = ["-g"]                # extra compiler flags of every point
    env = { GREETING = "hi" }      # environment of every point
    params = { n = "1000" }        # program parameters of every point

    [flags]                        # dimension "flags": one flag profile of the program
    choices = ["speed", "size"]    # "" means no profile

    [cflags.opt]                   # dimension "cflags.opt": one of these (a value may hold
    choices = ["-O1", "-O2", "-O3", "-Os"]  # several flags, "-O3 -march=native"; "" = none)

    [switches]                     # dimensions "switches.unroll", "switches.lto": "on" / "off"
    unroll = "-funroll-loops"
    lto = "-flto"

    [env]                          # dimension "env.OMP_NUM_THREADS"
    OMP_NUM_THREADS = ["1", "2"]

    [params]                       # dimension "params.threshold"
    threshold = ["20", "40", "60"]

A point is a dict from dimension name to value, all strings: ``{"flags": "speed",
"cflags.opt": "-O3", "switches.unroll": "on", "env.OMP_NUM_THREADS": "2", ...}``; records of
a tuning run keep it as their ``point``. Dimensions are ordered as above (flags, cflags groups,
switches, env, params; each in file order), and points are numbered in mixed radix over that
order, the last dimension fastest: :meth:`Space.points` and :meth:`Space.point_at` agree.

The file is someone's data: it is read bounded and checked whole (unknown tables and keys,
types, empty or repeated choices, names of variables and parameters, compiler flags that do not
start with ``-``), and every message names the file and the key. A space holds at most
:data:`MAX_POINTS` points. Nothing in it is run through a shell: flags become compiler
arguments and values become environment variables and parameters of the program.
"""
from __future__ import annotations

import random as _random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from ckpm.errors import CkpmError
from ckpm.fsutil import read_bounded

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_FILE_BYTES = 1 << 20
MAX_POINTS = 1_000_000
MAX_DIMENSIONS = 64
MAX_CHOICES = 256
MAX_VALUE_CHARS = 1024
MAX_REPEAT = 10_000
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
RUN_KEYS = {"component", "command", "input", "target", "repeat", "flags", "cflags", "env", "params"}
TABLES = ("run", "flags", "cflags", "switches", "env", "params")
ON, OFF = "on", "off"

Point = dict[str, str]


class SpaceError(CkpmError, ValueError):
    """A search-space file that cannot be used: the message names the file and the key."""

    code = "tune-space"


@dataclass(frozen=True)
class Dimension:
    """One coordinate of a point: its name (``cflags.opt``), its kind and its values."""

    name: str
    kind: str  # "flags", "cflags", "switch", "env", "params"
    values: tuple[str, ...]
    key: str  # the variable, parameter or group it sets
    flag: str = ""  # a switch's flags, added when "on"


@dataclass
class Space:
    """A checked search space: dimensions, in order, and the defaults of every request."""

    dimensions: list[Dimension]
    run: dict[str, Any] = field(default_factory=dict)
    path: str = "<space>"

    @property
    def size(self) -> int:
        """The number of points (at most :data:`MAX_POINTS`)."""
        n = 1
        for d in self.dimensions:
            n *= len(d.values)
        return n

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def point_at(self, index: int) -> Point:
        """Point number ``index`` (0 ≤ index < size) of the enumeration order."""
        if not 0 <= index < self.size:
            raise IndexError(f"point {index} of a space of {self.size}")
        out: list[tuple[str, str]] = []
        for d in reversed(self.dimensions):
            index, i = divmod(index, len(d.values))
            out.append((d.name, d.values[i]))
        return dict(reversed(out))

    def index_of(self, point: Mapping[str, str]) -> int:
        """The number of ``point`` in the enumeration order (SpaceError if it is not in the space)."""
        index = 0
        for d in self.dimensions:
            v = point.get(d.name)
            if v not in d.values:
                raise SpaceError(f"{self.path}: {d.name} = {v!r} is not one of {', '.join(map(repr, d.values))}")
            index = index * len(d.values) + d.values.index(v)
        extra = set(point) - set(self.names)
        if extra:
            raise SpaceError(f"{self.path}: the space has no dimension {', '.join(sorted(extra))}")
        return index

    def points(self) -> Iterator[Point]:
        """Every point, in the enumeration order (lazily: a space may hold a million)."""
        for i in range(self.size):
            yield self.point_at(i)

    def random(self, rng: _random.Random) -> Point:
        """A point drawn uniformly with ``rng`` (one draw per call: deterministic for a seed)."""
        return self.point_at(rng.randrange(self.size))

    def neighbours(self, point: Mapping[str, str]) -> list[Point]:
        """Every point that differs from ``point`` in exactly one coordinate, in dimension then
        value order."""
        out = []
        for d in self.dimensions:
            for v in d.values:
                if v != point[d.name]:
                    out.append({**point, d.name: v})
        return out

    def mutate(self, point: Mapping[str, str], rng: _random.Random, rate: float | None = None) -> Point:
        """``point`` with each coordinate redrawn (to another value) with probability ``rate``
        (default 1/dimensions), and at least one coordinate changed when the space allows it."""
        movable = [d for d in self.dimensions if len(d.values) > 1]
        if not movable:
            return dict(point)
        p = rate if rate is not None else 1.0 / len(movable)
        out = dict(point)
        changed = False
        for d in movable:
            if rng.random() < p:
                out[d.name] = rng.choice([v for v in d.values if v != point[d.name]])
                changed = True
        if not changed:
            d = rng.choice(movable)
            out[d.name] = rng.choice([v for v in d.values if v != point[d.name]])
        return out

    def crossover(self, a: Mapping[str, str], b: Mapping[str, str], rng: _random.Random) -> Point:
        """Each coordinate from ``a`` or ``b`` with even odds (uniform crossover)."""
        return {d.name: (a[d.name] if rng.random() < 0.5 else b[d.name]) for d in self.dimensions}

    def base_request(self, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The request every point starts from: ``base`` (the caller's), then ``[run]``."""
        req: dict[str, Any] = {"component": None, "command": None, "flags": None, "cflags": [], "env": {},
                               "params": {}, "input": None, "target": None, "repeat": 1}
        for src in (dict(base or {}), self.run):
            for k, v in src.items():
                if v is None:
                    continue
                if k in ("env", "params"):
                    req[k] = {**req[k], **v}
                elif k == "cflags":
                    req[k] = [*req[k], *(v.split() if isinstance(v, str) else v)]
                else:
                    req[k] = v
        return req

    def request(self, point: Mapping[str, str], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The run request of ``point`` (a plain dict, see ckpm/pipeline/run.py RunRequest)."""
        self.index_of(point)  # checks it
        req = self.base_request(base)
        cflags = list(req["cflags"])
        env = dict(req["env"])
        params = dict(req["params"])
        for d in self.dimensions:
            v = point[d.name]
            if d.kind == "flags":
                req["flags"] = v or None
            elif d.kind == "cflags":
                cflags.extend(v.split())
            elif d.kind == "switch":
                if v == ON:
                    cflags.extend(d.flag.split())
            elif d.kind == "env":
                env[d.key] = v
            else:
                params[d.key] = v
        req.update(cflags=cflags, env=env, params=params)
        return req

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "run": self.run,
                "dimensions": [{"name": d.name, "values": list(d.values)} for d in self.dimensions]}


# -- reading ----------------------------------------------------------------------------------

def load_space(path: Path | str) -> Space:
    """Read and check a space file (SpaceError names the file and the key)."""
    path = Path(path)
    try:
        data = read_bounded(path, MAX_FILE_BYTES)
    except OSError as e:
        raise SpaceError(f"{path}: cannot read the space file ({e.strerror or e})") from None
    if data is None:
        raise SpaceError(f"{path}: larger than {MAX_FILE_BYTES >> 10} KiB: not a search space")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpaceError(f"{path}: not UTF-8 text") from None
    return parse_space(text, str(path))


def parse_space(text: str, where: str = "<space>") -> Space:
    """A space from TOML text; ``where`` names it in messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpaceError(f"{where}: not valid TOML ({e})") from None
    return space_from_dict(doc, where)


def space_from_dict(doc: Mapping[str, Any], where: str = "<space>") -> Space:
    """A space from plain data (the parsed TOML, or ``ckpm.access``); checked whole."""
    if not isinstance(doc, Mapping):
        raise SpaceError(f"{where}: a search space is a table")
    unknown = sorted(set(doc) - set(TABLES))
    if unknown:
        raise SpaceError(f"{where}: unknown table [{unknown[0]}]", hint=f"a space has [{'], ['.join(TABLES)}]")
    dims: list[Dimension] = []

    def table(name: str) -> Mapping[str, Any]:
        t = doc.get(name, {})
        if not isinstance(t, Mapping):
            raise SpaceError(f"{where}: {name} must be a table ([{name}])")
        return t

    def values(key: str, v: Any, *, flags: bool = False, empty_ok: bool = False) -> tuple[str, ...]:
        if not isinstance(v, list) or not v:
            raise SpaceError(f"{where}: {key} must be a non-empty list of strings")
        if len(v) > MAX_CHOICES:
            raise SpaceError(f"{where}: {key} has {len(v)} values (at most {MAX_CHOICES})")
        out = []
        for x in v:
            if not isinstance(x, str):
                raise SpaceError(f"{where}: {key}: {x!r} is not a string")
            _check_value(where, key, x, flags=flags, empty_ok=empty_ok)
            if x in out:
                raise SpaceError(f"{where}: {key} lists {x!r} twice")
            out.append(x)
        return tuple(out)

    fl = table("flags")
    if fl:
        if set(fl) != {"choices"}:
            raise SpaceError(f"{where}: [flags] takes only choices = [profile names]")
        vals = values("flags.choices", fl["choices"], empty_ok=True)
        for x in vals:
            if x and not NAME_RE.fullmatch(x):
                raise SpaceError(f"{where}: flags.choices: {x!r} is not a flag profile name")
        dims.append(Dimension("flags", "flags", vals, "flags"))
    for group, t in table("cflags").items():
        key = f"cflags.{group}"
        if not GROUP_RE.fullmatch(group):
            raise SpaceError(f"{where}: [{key}]: a group name is letters, digits, _ and -")
        if not isinstance(t, Mapping) or set(t) != {"choices"}:
            raise SpaceError(f"{where}: [{key}] takes only choices = [compiler flags]",
                             hint=f'[{key}]\nchoices = ["-O2", "-O3"]')
        dims.append(Dimension(key, "cflags", values(f"{key}.choices", t["choices"], flags=True, empty_ok=True),
                              group))
    for name, flag in table("switches").items():
        key = f"switches.{name}"
        if not GROUP_RE.fullmatch(name):
            raise SpaceError(f"{where}: {key}: a switch name is letters, digits, _ and -")
        if not isinstance(flag, str):
            raise SpaceError(f"{where}: {key} must be a string of compiler flags (on or off)")
        _check_value(where, key, flag, flags=True, empty_ok=False)
        dims.append(Dimension(key, "switch", (OFF, ON), name, flag))
    for name, v in table("env").items():
        key = f"env.{name}"
        if not ENV_RE.fullmatch(name):
            raise SpaceError(f"{where}: {key}: not an environment variable name")
        dims.append(Dimension(key, "env", values(key, v, empty_ok=True), name))
    for name, v in table("params").items():
        key = f"params.{name}"
        if not NAME_RE.fullmatch(name):
            raise SpaceError(f"{where}: {key}: not a parameter name")
        dims.append(Dimension(key, "params", values(key, v, empty_ok=True), name))
    if not dims:
        raise SpaceError(f"{where}: the space has no dimension: nothing to tune",
                         hint="add [flags], [cflags.NAME], [switches], [env] or [params]")
    if len(dims) > MAX_DIMENSIONS:
        raise SpaceError(f"{where}: {len(dims)} dimensions (at most {MAX_DIMENSIONS})")
    space = Space(dims, _run_table(table("run"), where), where)
    size = 1
    for d in dims:
        size *= len(d.values)
        if size > MAX_POINTS:
            raise SpaceError(f"{where}: the space has more than {MAX_POINTS:,} points",
                             hint="fewer choices, or split it into several tuning runs")
    flag_dims = {"flags"} & set(space.names)
    if flag_dims and "flags" in space.run:
        raise SpaceError(f"{where}: run.flags and [flags] both choose the flag profile: keep one")
    return space


def _check_value(where: str, key: str, v: str, *, flags: bool, empty_ok: bool) -> None:
    if len(v) > MAX_VALUE_CHARS:
        raise SpaceError(f"{where}: {key}: a value longer than {MAX_VALUE_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in v) or "\0" in v:
        raise SpaceError(f"{where}: {key}: {v!r} holds a control character")
    if not v and not empty_ok:
        raise SpaceError(f"{where}: {key} is empty")
    if flags:
        bad = [t for t in v.split() if not t.startswith("-")]
        if bad:
            raise SpaceError(f"{where}: {key}: {bad[0]!r} is not a compiler flag (flags start with -)")


def _run_table(t: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(t) - RUN_KEYS)
    if unknown:
        raise SpaceError(f"{where}: run.{unknown[0]}: unknown key", hint=f"[run] takes {', '.join(sorted(RUN_KEYS))}")
    out: dict[str, Any] = {}
    for k in ("component", "command", "input", "target", "flags"):
        if k in t:
            if not isinstance(t[k], str) or not t[k]:
                raise SpaceError(f"{where}: run.{k} must be a non-empty string")
            _check_value(where, f"run.{k}", t[k], flags=False, empty_ok=False)
            out[k] = t[k]
    if "repeat" in t:
        r = t["repeat"]
        if not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= MAX_REPEAT:
            raise SpaceError(f"{where}: run.repeat must be a whole number from 1 to {MAX_REPEAT:,}")
        out["repeat"] = r
    if "cflags" in t:
        c = t["cflags"]
        if not isinstance(c, list) or not all(isinstance(x, str) for x in c):
            raise SpaceError(f"{where}: run.cflags must be a list of strings")
        for x in c:
            _check_value(where, "run.cflags", x, flags=True, empty_ok=False)
        out["cflags"] = [y for x in c for y in x.split()]
    for k, rx in (("env", ENV_RE), ("params", NAME_RE)):
        if k in t:
            m = t[k]
            if not isinstance(m, Mapping):
                raise SpaceError(f"{where}: run.{k} must be a table of strings")
            for name, v in m.items():
                if not rx.fullmatch(name):
                    raise SpaceError(f"{where}: run.{k}.{name}: not a valid name")
                if not isinstance(v, str):
                    raise SpaceError(f"{where}: run.{k}.{name} must be a string")
                _check_value(where, f"run.{k}.{name}", v, flags=False, empty_ok=True)
            out[k] = dict(m)
    return out
