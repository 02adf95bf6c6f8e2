"""Install recipes, their steps, their sources and the python distributions a lock records, typed.

An ``[[install]]`` recipe is data someone else wrote (an index line, a component's
``ckpm.toml``, a lock copied from them). It is parsed and checked whole ONCE, where it enters:
when the lock is read (:meth:`ckpm.model.lockfile.Lock.loads`) and when an index line's
recipe is first used (``IndexEntry.recipes``). From there on the build and the fetchers
take these values and check nothing again.

| type | lock table | checked by |
| --- | --- | --- |
| :class:`Recipe` | ``{targets?, sources?, steps, env?}`` | :func:`~ckpm.model.recipe_checks.check_recipe` (shape, sizes, paths, requirements, variables) |
| :class:`Step` | ``{kind, …}`` (script, make, cmake, pip, copy) | the same |
| ``ArchiveSource`` / ``GitSource`` (``model/source.py``) | ``{urls, sha256?, size?, unpacked-size?}`` / ``{git, rev, tag?, subdir?}`` | :func:`parse_fetch_source` (URL counts and lengths, 64-hex sha256, byte counts, a 40-hex commit) |
| :class:`PipDist` | ``{name, version, sha256?}`` | :func:`parse_pip_dist` |

Each value is also a read-only mapping over its lock table (as a ``Source`` is) and equals
that table, so that the lock writer emits the same bytes it read, and the lock's check
describes a difference key by key. A field that was absent stays absent (None), so a
recipe round-trips exactly (``{"kind": "make"}`` is not rewritten with its defaults).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Sequence, Union

from ckpm.model.recipe_checks import MAX_BYTE_COUNT, STEP_KINDS, check_recipe
from ckpm.model.source import ArchiveSource, GitSource, LockTable
from ckpm.model.targets import matches

if TYPE_CHECKING:
    from ckpm.model.program import Program

#: a file to fetch for a build: downloaded from URLs, or the tree of a git commit
FetchSource = Union[ArchiveSource, GitSource]

MAX_URLS = 64
MAX_URL = 2048
_SHA256_RE = re.compile(r"(?:sha256:)?[0-9a-fA-F]{64}")
_REV_RE = re.compile(r"[0-9a-f]{40}")
_DIST_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,200}[A-Za-z0-9])?")
_DIST_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,100}")


class RecipeInvalid(ValueError):
    """A recipe, source or distribution record that may not be used; ``problems`` says why
    (one sentence each, the first is the message). The caller names the file or the line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems) or ["invalid"]
        super().__init__(self.problems[0])


class _Table(LockTable):
    """A frozen dataclass whose lock table is its fields that are not None (keys spelt as given)."""

    _KEYS: ClassVar[dict[str, str]] = {}

    def to_lock(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is not None:
                out[self._KEYS.get(f.name, f.name)] = _plain(v)
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, LockTable):
        return v.to_lock()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


@dataclass(frozen=True, eq=False)
class Step(_Table):
    """One step of a recipe (``ckpm/build/recipes.py`` says what each kind runs). A field the
    data did not give is None; the properties give the value the build uses."""

    kind: str
    run: tuple[str, ...] | None = None  # script
    configure: bool | str | None = None  # make: true, false or "auto"
    configure_args: tuple[str, ...] | None = None
    make_args: tuple[str, ...] | None = None
    install_args: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None  # cmake
    build_type: str | None = None
    requirements: tuple[str, ...] | None = None  # pip
    hashes: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    from_: str | None = None  # copy
    to: str | None = None

    _KEYS: ClassVar[dict[str, str]] = {"from_": "from"}

    def to_lock(self) -> dict[str, Any]:
        out = super().to_lock()
        if self.hashes is not None:
            out["hashes"] = {name: list(values) for name, values in self.hashes}
        return out

    @property
    def configure_mode(self) -> bool | str:
        return "auto" if self.configure is None else self.configure

    @property
    def cmake_build_type(self) -> str:
        return self.build_type or "Release"

    @property
    def copy_from(self) -> str:
        return "." if self.from_ is None else self.from_

    @property
    def copy_to(self) -> str:
        return "." if self.to is None else self.to

    @property
    def compiles(self) -> bool:
        """A step that may run a compiler (script, make, cmake): it gets the target's toolchain."""
        return self.kind in ("script", "make", "cmake")


@dataclass(frozen=True, eq=False)
class Recipe(_Table):
    """A checked ``[[install]]`` recipe."""

    steps: tuple[Step, ...]
    targets: tuple[str, ...] | None = None
    sources: tuple[FetchSource, ...] | None = None
    env: tuple[tuple[str, str], ...] | None = None

    def to_lock(self) -> dict[str, Any]:
        out = super().to_lock()
        if self.env is not None:
            out["env"] = dict(self.env)
        return out

    def applies(self, target: str) -> bool:
        """Whether the recipe is for ``target`` (no ``targets``: for every target)."""
        return self.targets is None or matches(target, list(self.targets))

    @property
    def env_vars(self) -> dict[str, str]:
        return dict(self.env or ())

    @property
    def is_pip(self) -> bool:
        """A recipe that installs python packages into the project's environment (not the store)."""
        return any(s.kind == "pip" for s in self.steps)

    @property
    def compiles(self) -> bool:
        """A recipe with a step that may run a compiler: it gets the target's toolchain."""
        return any(s.compiles for s in self.steps)


@dataclass(frozen=True, eq=False)
class PipDist(_Table):
    """A python distribution a first ``pip`` install recorded in the lock."""

    name: str
    version: str
    sha256: str | None = None

    @property
    def digest(self) -> str:
        """The sha256 as 64 lower-case hex digits ('' when none was recorded)."""
        return (self.sha256 or "").removeprefix("sha256:").lower()


# -- parsing ------------------------------------------------------------------------------------

def parse_recipe(data: Any) -> Recipe:
    """The typed recipe of ``data``; RecipeInvalid with every problem when it may not run."""
    problems = check_recipe(data)
    if problems:
        raise RecipeInvalid(problems)
    sources: tuple[FetchSource, ...] | None = None
    if "sources" in data:
        got = []
        for i, s in enumerate(data["sources"]):
            try:
                got.append(parse_fetch_source(s))
            except RecipeInvalid as e:
                raise RecipeInvalid([f"sources[{i}]: {p}" for p in e.problems]) from None
        sources = tuple(got)
    env = data.get("env")
    return Recipe(
        steps=tuple(_step(s) for s in data["steps"]),
        targets=tuple(data["targets"]) if "targets" in data else None,
        sources=sources,
        env=tuple((str(k), v) for k, v in env.items()) if env is not None else None,
    )


def _step(d: Mapping[str, Any]) -> Step:
    def strs(key: str) -> tuple[str, ...] | None:
        return tuple(d[key]) if key in d else None

    hashes = d.get("hashes")
    return Step(
        kind=d["kind"], run=strs("run"), configure=d.get("configure"), configure_args=strs("configure_args"),
        make_args=strs("make_args"), install_args=strs("install_args"), args=strs("args"),
        build_type=d.get("build_type"), requirements=strs("requirements"),
        hashes=tuple((str(n), tuple(v)) for n, v in hashes.items()) if hashes is not None else None,
        from_=d.get("from"), to=d.get("to"),
    )


def parse_fetch_source(d: Any) -> FetchSource:
    """A source to fetch (a package's ``sources`` item, a recipe's): an archive by URLs or a git
    commit; RecipeInvalid says what is wrong (fields it does not know are left out)."""
    if not isinstance(d, Mapping):
        raise RecipeInvalid(["a source must be a table (urls, sha256, size, unpacked-size; or git, rev)"])
    if "git" in d:
        url, rev, subdir, tag = d.get("git"), d.get("rev"), d.get("subdir"), d.get("tag")
        if not isinstance(url, str) or not isinstance(rev, str) or not _REV_RE.fullmatch(rev) or (
                subdir is not None and not isinstance(subdir, str)) or (tag is not None and not isinstance(tag, str)):
            raise RecipeInvalid(["a git source needs a URL and a full 40-hex commit"])
        return GitSource(url, rev, tag, subdir)
    urls = d.get("urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise RecipeInvalid(["a source has no list of URLs (and no git repository)"])
    if len(urls) > MAX_URLS or any(len(u) > MAX_URL for u in urls):
        raise RecipeInvalid(["a source has too many or too long URLs"])
    sha = d.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256_RE.fullmatch(sha)):
        raise RecipeInvalid([f"the sha256 for {urls[0]} is not 64 hex digits"])
    sizes = {}
    for key in ("size", "unpacked-size"):
        v = d.get(key)
        if v is not None and (type(v) is not int or not 0 <= v <= MAX_BYTE_COUNT):
            raise RecipeInvalid([f"the {key} for {urls[0]} is not a byte count (an integer from 0 to "
                                 f"{MAX_BYTE_COUNT})"])
        sizes[key] = v
    return ArchiveSource(tuple(urls), sha, sizes["size"], sizes["unpacked-size"])


def parse_pip_dist(d: Any) -> PipDist:
    """One recorded python distribution: a plain name and version, and its sha256 if pip gave one."""
    if not isinstance(d, Mapping):
        raise RecipeInvalid(["a python distribution must be a table (name, version, sha256)"])
    name, version, sha = d.get("name"), d.get("version"), d.get("sha256")
    if not (isinstance(name, str) and _DIST_NAME_RE.fullmatch(name) and isinstance(version, str)
            and _DIST_VERSION_RE.fullmatch(version)):
        raise RecipeInvalid(["a python distribution has no valid name and version"])
    if sha is not None and not (isinstance(sha, str) and _SHA256_RE.fullmatch(sha)):
        raise RecipeInvalid([f"python {name} {version}: its sha256 is not 64 hex digits"])
    return PipDist(name, version, sha)


def plain_data(v: Any) -> Any:
    """JSON data as plain dicts and lists (nulls dropped from tables: TOML has none): what the
    lock copies of an index line."""
    if isinstance(v, dict):
        return {str(k): plain_data(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [plain_data(x) for x in v]
    return v


# -- an index line's recipes, sources and program (``IndexEntry.recipes`` and the others) -----------

def line_recipes(entry: Any) -> tuple[Recipe, ...]:
    """The ``install`` recipes of an index line (an ``IndexEntry``), parsed and checked;
    IndexDataError names the line and the recipe."""
    out = []
    for i, r in enumerate(entry.install or ()):
        try:
            out.append(parse_recipe(plain_data(r)))
        except RecipeInvalid as e:
            raise _line_error(entry, f"install[{i}]: not a valid install recipe: {e}") from None
    return tuple(out)


def line_sources(entry: Any) -> tuple[FetchSource, ...]:
    """What a lock keeps of an index line's ``source`` to fetch it: the archive when it has
    ``urls``, the tree when it has ``git`` and ``rev`` (with the tag it was published from, so
    that sync can tell when it moved); nothing for a line whose source cannot be fetched."""
    src = entry.source or {}
    if src.get("urls"):
        table = {k: src[k] for k in ("urls", "sha256", "size", "unpacked-size") if src.get(k) is not None}
    elif src.get("git") and src.get("rev"):
        table = {k: src[k] for k in ("git", "rev", "subdir", "tag") if src.get(k) is not None}
    else:
        return ()
    try:
        return (parse_fetch_source(plain_data(table)),)
    except RecipeInvalid as e:
        raise _line_error(entry, f"source: {e}") from None


def line_program(entry: Any) -> "Program | None":
    """The program an index line's ``run`` table describes (a ``Program``), None without one;
    ProgramError names the line."""
    from ckpm.model.program import parse_program

    run = (entry.raw or {}).get("run")
    table = plain_data(run) if isinstance(run, dict) else {}
    if not table:
        return None
    return parse_program(table, name=entry.name, where=f"{entry.name} {entry.version_text} run")


def _line_error(entry: Any, message: str) -> Exception:
    from ckpm.model.entry import IndexDataError

    return IndexDataError(f"{entry.name} {entry.version_text}: {message}",
                          hint="the index holds a broken line: report it to the index's maintainers; nothing was run")


def recipe_for(recipes: Sequence[Recipe], target: str) -> Recipe | None:
    """The first of ``recipes`` for ``target``."""
    return next((r for r in recipes if r.applies(target)), None)


def all_sources(sources: Sequence[FetchSource], recipes: Sequence[Recipe]) -> Iterator[FetchSource]:
    """A package's own sources, then those of each recipe."""
    yield from sources
    for r in recipes:
        yield from r.sources or ()


__all__ = ["FetchSource", "PipDist", "Recipe", "RecipeInvalid", "STEP_KINDS", "Step", "all_sources", "line_program",
           "line_recipes", "line_sources", "parse_fetch_source", "parse_pip_dist", "parse_recipe", "plain_data",
           "recipe_for"]
