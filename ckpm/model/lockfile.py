"""``ckpm.lock``: the pinned result of a resolution (TOML, written deterministically).

Reading uses tomllib; writing uses a small emitter of our own so that the same
resolution always gives byte-identical files (sorted packages, fixed key order).
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ckpm.errors import LockError
from ckpm.model.program import Program, ProgramError, parse_program
from ckpm.model.recipe import (FetchSource, PipDist, Recipe, RecipeInvalid, all_sources, parse_fetch_source,
                               parse_pip_dist, parse_recipe)
from ckpm.model.source import ArchiveSource, LockTable, Source, source_from_lock

LOCK_VERSION = 1
LOCKFILE = "ckpm.lock"


@dataclass(frozen=True)
class LockedDep:
    """An edge: under ``key`` this package (or the project) uses ``name`` ``version``."""

    key: str
    name: str
    version: str
    targets: tuple[str, ...] | None = None  # None: on every target of the parent
    original: str | None = None  # for roots: what the user asked (range, tags, git)

    def to_toml_inline(self) -> str:
        items: list[tuple[str, Any]] = [("key", self.key), ("name", self.name), ("version", self.version)]
        if self.targets is not None:
            items.append(("targets", list(self.targets)))
        if self.original is not None:
            items.append(("original", self.original))
        return _inline(items)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LockedDep":
        t = d.get("targets")
        return cls(str(d["key"]), str(d["name"]), str(d["version"]), tuple(t) if t is not None else None,
                   d.get("original"))


@dataclass
class LockedPackage:
    """One pinned component (name, version, source) and what it depends on.

    ``sources`` and ``install`` are copied from the index line (its ``source`` when it has
    ``urls`` or ``git``, and its ``install`` recipes), so that ``ckpm sync --locked`` needs
    no index; a sha256 learnt on the first download (trust on first use) is written here.
    All of them are typed and checked when the lock is read (``model/recipe.py``).
    """

    name: str
    version: str
    kind: str
    source: Source
    targets: list[str]
    keys: list[str]
    dependencies: list[LockedDep] = field(default_factory=list)
    sources: list[FetchSource] = field(default_factory=list)  # [{urls, sha256?, size?} or {git, rev}]
    install: list[Recipe] = field(default_factory=list)  # recipes: [{targets, sources?, steps, env?}]
    pip: list[PipDist] = field(default_factory=list)  # python distributions installed: [{name, version, sha256}]
    run: Program | None = None  # a program's [run] table (ckpm/model/program.py)

    @property
    def source_kind(self) -> str:
        return self.source.kind

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.source.identity())

    def all_sources(self) -> list[FetchSource]:
        """The package's own sources, then those of each of its recipes."""
        return list(all_sources(self.sources, self.install))

    def map_sources(self, change: Callable[[FetchSource], FetchSource]) -> None:
        """Replace each of :meth:`all_sources` (in that order) with ``change(source)``."""
        self.sources, self.install = _map_sources(self.sources, self.install, change)


@dataclass
class Lock:
    """The whole lock file."""

    manifest_hash: str
    targets: list[str]
    roots: list[LockedDep]
    packages: list[LockedPackage]
    indexes: list[dict[str, Any]] = field(default_factory=list)
    ckpm_version: str = ""
    prerelease: bool = False
    lock_version: int = LOCK_VERSION

    def find(self, name: str) -> list[LockedPackage]:
        return [p for p in self.packages if p.name == name]

    def by_key(self, key: str) -> list[LockedPackage]:
        return [p for p in self.packages if key in p.keys]

    def package_for(self, dep: LockedDep) -> LockedPackage | None:
        for p in self.packages:
            if p.name == dep.name and p.version == dep.version:
                return p
        return None

    def carry_pins(self, old: "Lock | None") -> None:
        """Keep the sha256 (and size) that ``old`` learnt on a first download (trust on first
        use) for the same package and the same URLs, where this lock's source has none; and
        the python distributions a first ``pip`` install recorded (same package, same recipe)."""
        if old is None:
            return
        before = {p.ident: p for p in old.packages}
        for p in self.packages:
            q = before.get(p.ident)
            if q is None:
                continue
            if q.pip and not p.pip and q.install == p.install:
                p.pip = list(q.pip)
            learnt = {s.urls: s for s in q.all_sources() if isinstance(s, ArchiveSource) and s.sha256}

            def carry(s: FetchSource) -> FetchSource:
                got = learnt.get(s.urls) if isinstance(s, ArchiveSource) and not s.sha256 else None
                if got is None or got.sha256 is None or not isinstance(s, ArchiveSource):
                    return s
                return s.pinned(got.sha256, got.size if s.size is None else s.size)

            p.map_sources(carry)

    def dumps(self) -> str:
        """The lock as TOML text (deterministic)."""
        out = ["# ckpm.lock: written by ckpm; do not edit by hand.", ""]
        out.append("[metadata]")
        out.append(f"lock-version = {self.lock_version}")
        out.append(f"ckpm-version = {_s(self.ckpm_version)}")
        out.append(f"manifest-hash = {_s(self.manifest_hash)}")
        out.append(f"targets = {_v(sorted(self.targets))}")
        if self.prerelease:
            out.append("prerelease = true")
        for idx in self.indexes:
            out.append("")
            out.append("[[metadata.index]]")
            for k in ("name", "url", "revision"):
                if idx.get(k) is not None:
                    out.append(f"{k} = {_s(str(idx[k]))}")
        for r in sorted(self.roots, key=lambda d: (d.key, d.name, d.version, d.targets or ())):
            out.append("")
            out.append("[[root]]")
            out.append(f"key = {_s(r.key)}")
            out.append(f"original = {_s(r.original or '*')}")
            out.append(f"name = {_s(r.name)}")
            out.append(f"version = {_s(r.version)}")
            if r.targets is not None:
                out.append(f"targets = {_v(list(r.targets))}")
        for p in sorted(self.packages, key=lambda p: p.ident):
            out.append("")
            out.append("[[package]]")
            out.append(f"name = {_s(p.name)}")
            out.append(f"version = {_s(p.version)}")
            out.append(f"kind = {_s(p.kind)}")
            out.append(f"keys = {_v(sorted(p.keys))}")
            out.append(f"targets = {_v(sorted(p.targets))}")
            out.append(f"source = {_inline(sorted(p.source.to_lock().items()))}")
            if p.sources:
                out.append("sources = [")
                out.extend(f"    {_v(x)}," for x in p.sources)
                out.append("]")
            if p.install:
                out.append("install = [")
                out.extend(f"    {_v(x)}," for x in p.install)
                out.append("]")
            if p.run:
                out.append(f"run = {_v(p.run.raw if isinstance(p.run, Program) else p.run)}")
            if p.pip:
                out.append("pip = [")
                out.extend(f"    {_v(x)}," for x in sorted(p.pip, key=lambda x: str(x.get("name"))))
                out.append("]")
            deps = sorted(p.dependencies, key=lambda d: (d.key, d.name, d.version, d.targets or ()))
            if deps:
                out.append("dependencies = [")
                out.extend(f"    {d.to_toml_inline()}," for d in deps)
                out.append("]")
            else:
                out.append("dependencies = []")
        return "\n".join(out) + "\n"

    @classmethod
    def loads(cls, text: str, origin: str = LOCKFILE) -> "Lock":
        try:
            data = tomllib.loads(text)
        except RecursionError:
            raise LockError(f"{origin}: not a valid lock file (arrays or tables nested too deeply)",
                            hint="delete it and run `ckpm lock`") from None
        except tomllib.TOMLDecodeError as e:
            raise LockError(f"{origin}: not a valid lock file ({e})", hint="delete it and run `ckpm lock`") from None
        try:
            meta = data["metadata"]
            tables = data.get("package", [])
            if not isinstance(tables, list):
                raise TypeError("package: a list of tables expected")
            lv = int(meta.get("lock-version", 0))
            if lv != LOCK_VERSION:
                raise LockError(f"{origin}: lock-version {lv} is not supported (this ckpm reads {LOCK_VERSION})",
                                hint="run `ckpm lock` to rewrite it")
            return cls(
                manifest_hash=str(meta["manifest-hash"]),
                targets=_strs(meta.get("targets", [])),
                roots=[LockedDep.from_dict(r) for r in data.get("root", [])],
                packages=[_package(p, origin, text, k) for k, p in enumerate(tables)],
                indexes=[dict(i) for i in meta.get("index", [])],
                ckpm_version=str(meta.get("ckpm-version", "")),
                prerelease=bool(meta.get("prerelease", False)),
                lock_version=lv,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise LockError(f"{origin}: malformed lock file (missing or bad {e})",
                            hint="delete it and run `ckpm lock`") from None


MAX_LOCK_BYTES = 64 << 20


def read_lock(path: Path) -> Lock | None:
    """The lock at ``path``, or None when there is none; LockError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_LOCK_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise LockError(f"{path}: cannot read the lock file ({e.strerror or e})") from None
    if len(data) > MAX_LOCK_BYTES:
        raise LockError(f"{path}: not a valid lock file (larger than {MAX_LOCK_BYTES >> 20} MiB)",
                        hint="delete it and run `ckpm lock`")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LockError(f"{path}: not a valid lock file (not UTF-8: byte {e.start})",
                        hint="run `ckpm lock` to rewrite it") from None
    return Lock.loads(text, str(path))


def provisioning_of(entry: Any) -> tuple[list[FetchSource], list[Recipe]]:
    """What the lock keeps of an index line (an ``IndexEntry``) to provision it: its ``source``
    when that can be fetched (``urls``, or ``git`` with ``rev``), and its ``install`` recipes,
    as the line's typed accessors parse and check them (IndexDataError names the line)."""
    return list(entry.fetch_sources), list(entry.recipes)


def recipe_applies(recipe: Recipe, targets: list[str]) -> bool:
    """A recipe for one of ``targets``."""
    return any(recipe.applies(t) for t in targets)


def _package(p: Any, origin: str, text: str, k: int) -> LockedPackage:
    """The ``k``-th ``[[package]]`` table, typed; a LockError names the file, its line and the package."""
    if not isinstance(p, dict):
        raise TypeError("package: a table expected")
    name, version = str(p["name"]), str(p["version"])

    def bad(what: str, problem: str, hint: str) -> LockError:
        return LockError(f"{origin}:{_package_line(text, k)}: {name} {version}: {what}{problem}", hint=hint)

    damaged = "the lock was edited or damaged: restore it, or run `ckpm lock` to write it again"
    sources: list[FetchSource] = []
    for i, x in enumerate(_tables(p.get("sources", []), "sources", origin)):
        try:
            sources.append(parse_fetch_source(x))
        except RecipeInvalid as e:
            raise bad(f"sources[{i}]: ", str(e), damaged) from None
    install: list[Recipe] = []
    for i, x in enumerate(_tables(p.get("install", []), "install", origin)):
        try:
            install.append(parse_recipe(x))
        except RecipeInvalid as e:
            raise bad(f"install[{i}]: ", f"not a valid install recipe: {e}",
                      "the lock was edited, or copied a broken recipe from its index: run `ckpm lock`, and report "
                      "a broken recipe to the index's maintainers; nothing was run") from None
    pip: list[PipDist] = []
    for i, x in enumerate(_tables(p.get("pip", []), "pip", origin, limit=MAX_LOCK_PIP)):
        try:
            pip.append(parse_pip_dist(x))
        except RecipeInvalid as e:
            raise bad(f"pip[{i}]: ", str(e), damaged) from None
    run_table = _table(p.get("run", {}), "run", origin)
    run = None
    if run_table:
        try:
            run = parse_program(run_table, name=name, where=f"{name} {version} run")
        except ProgramError as e:
            raise LockError(f"{origin}:{_package_line(text, k)}: {e.message}", hint=damaged) from None
    return LockedPackage(
        name=name, version=version, kind=str(p.get("kind", "lib")),
        source=source_from_lock(p.get("source", {}), origin), targets=_strs(p.get("targets", [])),
        keys=_strs(p.get("keys", [p["name"]])),
        dependencies=[LockedDep.from_dict(d) for d in p.get("dependencies", [])],
        sources=sources, install=install, pip=pip, run=run,
    )


def _package_line(text: str, k: int) -> int:
    """The line (1-based) of the ``k``-th ``[[package]]`` header of ``text`` (0 if not found)."""
    seen = -1
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() == "[[package]]":
            seen += 1
            if seen == k:
                return n
    return 0


def _map_sources(sources: list[FetchSource], install: list[Recipe],
                 change: Callable[[FetchSource], FetchSource]) -> tuple[list[FetchSource], list[Recipe]]:
    """``sources`` and ``install`` with each source (the package's, then each recipe's) changed."""
    from dataclasses import replace

    return ([change(s) for s in sources],
            [replace(r, sources=tuple(change(s) for s in r.sources)) if r.sources else r for r in install])


def without_learnt(p: LockedPackage, sources: list[FetchSource],
                   install: list[Recipe]) -> tuple[list[FetchSource], list[Recipe]]:
    """``p``'s sources and recipes with a sha256/size dropped where ``sources``/``install``
    (the index's) have none: what the lock should equal when only trust on first use added."""
    from dataclasses import replace

    theirs = iter(all_sources(sources, install))

    def drop(a: FetchSource) -> FetchSource:
        b = next(theirs, None)
        if b is None or not isinstance(a, ArchiveSource):
            return a
        return replace(a, sha256=a.sha256 if b.get("sha256") is not None else None,
                       size=a.size if b.get("size") is not None else None)

    return _map_sources(p.sources, p.install, drop)


MAX_LOCK_TABLES = 64  #: sources or install recipes of one package


MAX_LOCK_PIP = 4096  #: python distributions recorded for one package


def _tables(v: Any, what: str, origin: str, limit: int = 0) -> list[dict[str, Any]]:
    """A package's ``sources`` or ``install``: a short list of tables (their fields are
    checked where they are used: by the fetcher and the recipe checker)."""
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise LockError(f"{origin}: a package's {what} must be a list of tables", hint="delete it and run `ckpm lock`")
    if len(v) > (limit or MAX_LOCK_TABLES):
        raise LockError(f"{origin}: a package has more than {limit or MAX_LOCK_TABLES} {what}")
    return [dict(x) for x in v]


def _table(v: Any, what: str, origin: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise LockError(f"{origin}: a package's {what} must be a table", hint="delete it and run `ckpm lock`")
    return dict(v)


def _strs(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise TypeError("a list of strings expected")
    return list(v)


_TOML_ESCAPE = re.compile("[\"\\\\\x00-\x1f\x7f\ud800-\udfff]")


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in '"\\':
        return "\\" + ch
    if 0xD800 <= ord(ch) <= 0xDFFF:
        raise LockError(f"cannot write {m.string!r} into a lock file (a lone surrogate is not text)")
    return f"\\u{ord(ch):04x}"


def _s(s: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped.

    A lone surrogate cannot be written in UTF-8 or TOML: refused with a LockError.
    """
    return '"' + _TOML_ESCAPE.sub(_escape_char, s) + '"'


def _v(v: Any) -> str:
    if isinstance(v, LockTable):
        v = v.to_lock()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and math.isfinite(v):
        return repr(v)
    if isinstance(v, str):
        return _s(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_v(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return _inline(sorted((k, x) for k, x in v.items() if x is not None))
    if v is None:
        return '""'
    return _s(str(v))


def _key(k: str) -> str:
    return k if k and k.isascii() and k.replace("-", "").replace("_", "").isalnum() else _s(k)


def _inline(items: Iterable[tuple[str, Any]]) -> str:
    return "{ " + ", ".join(f"{_key(k)} = {_v(v)}" for k, v in items if v is not None) + " }"
