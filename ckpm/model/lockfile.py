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
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ckpm.errors import LockError
from ckpm.model.source import Source, source_from_lock
from ckpm.model.targets import matches

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
    """

    name: str
    version: str
    kind: str
    source: Source
    targets: list[str]
    keys: list[str]
    dependencies: list[LockedDep] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # [{urls, sha256?, size?} or {git, rev}]
    install: list[dict[str, Any]] = field(default_factory=list)  # recipes: [{targets, sources?, steps, env?}]
    pip: list[dict[str, Any]] = field(default_factory=list)  # python distributions installed: [{name, version, sha256}]
    run: dict[str, Any] = field(default_factory=dict)  # a program's [run] table (ckpm/model/program.py), as data

    @property
    def source_kind(self) -> str:
        return self.source.kind

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.source.identity())


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
                p.pip = [dict(x) for x in q.pip]
            learnt = {_urls_key(s): s for s in _all_sources(q) if s.get("sha256")}
            for s in _all_sources(p):
                got = learnt.get(_urls_key(s))
                if got is not None and not s.get("sha256"):
                    s["sha256"] = got["sha256"]
                    if got.get("size") is not None and s.get("size") is None:
                        s["size"] = got["size"]

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
                out.append(f"run = {_v(p.run)}")
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
            lv = int(meta.get("lock-version", 0))
            if lv != LOCK_VERSION:
                raise LockError(f"{origin}: lock-version {lv} is not supported (this ckpm reads {LOCK_VERSION})",
                                hint="run `ckpm lock` to rewrite it")
            return cls(
                manifest_hash=str(meta["manifest-hash"]),
                targets=_strs(meta.get("targets", [])),
                roots=[LockedDep.from_dict(r) for r in data.get("root", [])],
                packages=[
                    LockedPackage(
                        name=str(p["name"]), version=str(p["version"]), kind=str(p.get("kind", "lib")),
                        source=source_from_lock(p.get("source", {}), origin), targets=_strs(p.get("targets", [])),
                        keys=_strs(p.get("keys", [p["name"]])),
                        dependencies=[LockedDep.from_dict(d) for d in p.get("dependencies", [])],
                        sources=_tables(p.get("sources", []), "sources", origin),
                        install=_tables(p.get("install", []), "install", origin),
                        pip=_tables(p.get("pip", []), "pip", origin, limit=MAX_LOCK_PIP),
                        run=_table(p.get("run", {}), "run", origin),
                    )
                    for p in data.get("package", [])
                ],
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


def provisioning_of(entry: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the lock keeps of an index line to provision it: its ``source`` when that can be
    fetched (``urls``, or ``git`` with ``rev``), and its ``install`` recipes, copied as data."""
    src = dict(entry.source or {})
    sources: list[dict[str, Any]] = []
    if src.get("urls"):
        sources.append({k: src[k] for k in ("urls", "sha256", "size", "unpacked-size") if src.get(k) is not None})
    elif src.get("git") and src.get("rev"):
        # the tag it was published from rides along, so that sync can tell when it moved
        sources.append({k: src[k] for k in ("git", "rev", "subdir", "tag") if src.get(k) is not None})
    return sources, [_plain(r) for r in entry.install or ()]


def recipe_applies(recipe: dict[str, Any], targets: list[str]) -> bool:
    """A recipe for one of ``targets`` (malformed ``targets`` are kept, for sync to report)."""
    ts = recipe.get("targets")
    if not isinstance(ts, list) or not all(isinstance(t, str) for t in ts):
        return True
    return any(matches(t, ts) for t in targets)


def _plain(v: Any) -> Any:
    """JSON data as plain dicts and lists (nulls dropped from tables: TOML has none)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _all_sources(p: LockedPackage) -> list[dict[str, Any]]:
    """The package's own sources and those of its recipes (the tables themselves, to update)."""
    out = list(p.sources)
    for r in p.install:
        srcs = r.get("sources")
        if isinstance(srcs, list):
            out.extend(x for x in srcs if isinstance(x, dict))
    return out


def _urls_key(s: Mapping[str, Any]) -> tuple[str, ...]:
    urls = s.get("urls")
    return tuple(str(u) for u in urls) if isinstance(urls, list) else ()


def without_learnt(p: LockedPackage, sources: list[dict[str, Any]],
                   install: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``p``'s sources and recipes with a sha256/size dropped where ``sources``/``install``
    (the index's) have none: what the lock should equal when only trust on first use added."""
    import copy

    mine = copy.deepcopy((p.sources, p.install))
    theirs = LockedPackage(p.name, p.version, p.kind, p.source, [], [], [], sources, install)
    for a, b in zip(_all_sources(LockedPackage(p.name, p.version, p.kind, p.source, [], [], [], *mine)),
                    _all_sources(theirs)):
        for k in ("sha256", "size"):
            if k in a and k not in b:
                del a[k]
    return mine


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
