"""Where a locked package comes from: one typed ``Source`` per kind, with one identity.

| kind | lock table | identity |
| --- | --- | --- |
| index | ``{index, url, cksum?}`` | ``index:<index name>`` |
| git | ``{git, tag, rev, subdir?, cksum?}`` | ``git:<url>#<subdir>@<rev>`` |
| host | ``{host, path?, fingerprint?, rule-id?, fact?, local?}`` | ``host:<path or fact name>`` |
| archive | ``{urls, sha256?}`` | ``archive:<sha256 or first url>`` |
| store | ``{store}`` | ``store:<prefix key>`` |

The identity distinguishes two packages of the same name and version that come from
different places; the resolver's candidates, the lock's packages and the pins that a
re-lock keeps all compute it here, so they can never disagree. A source is also a
read-only mapping over its lock table (``src["rev"]``), which is what the lock writes.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Iterator

from ckpm.errors import LockError


class LockTable(Mapping[str, Any]):
    """A frozen dataclass that reads as its lock table (``src["rev"]``) and equals it: two
    values of one type compare field by field; a value and a plain table, by the table."""

    def to_lock(self) -> dict[str, Any]:
        raise NotImplementedError

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._values() == other._values()  # type: ignore[attr-defined]
        if isinstance(other, Mapping) and not isinstance(other, LockTable):
            return self.to_lock() == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    # -- Mapping over the lock table ----------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.to_lock()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_lock())

    def __len__(self) -> int:
        return len(self.to_lock())


class Source(LockTable):
    """Base of the source kinds: a frozen dataclass that reads as its lock table."""

    kind: ClassVar[str] = ""

    def identity(self) -> str:
        raise NotImplementedError

    def to_lock(self) -> dict[str, Any]:
        """The ``source`` table in ckpm.lock (keys in lock spelling, None values dropped)."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None or v is False or v == ():
                continue
            out[f.name.replace("_", "-")] = list(v) if isinstance(v, tuple) else v
        return out


@dataclass(frozen=True)
class IndexSource(Source):
    """A version published in a registry index."""

    index: str
    url: str | None = None
    cksum: str | None = None
    kind: ClassVar[str] = "index"

    def identity(self) -> str:
        return f"index:{self.index}"


@dataclass(frozen=True, eq=False)
class GitSource(Source):
    """A tag of a git repository, pinned to its full commit (also a package's ``sources``
    item or a recipe's: the tree to build from)."""

    git: str
    rev: str
    tag: str | None = None
    subdir: str | None = None
    cksum: str | None = None
    kind: ClassVar[str] = "git"

    def identity(self) -> str:
        return f"git:{self.git}#{self.subdir or ''}@{self.rev}"


@dataclass(frozen=True)
class HostSource(Source):
    """Software found on this machine (or a host fact such as ``__libc``).

    ``rule_id`` names the index's detect rule that found it: ``lock --check`` looks the rule
    up again in the index by this id and never takes a command, path or argument from the
    lock. ``local`` marks a path inside the project (its virtual environment), kept
    relative to the project folder.
    """

    host: str  # the detector kind (``executable``, ``compiler``, ``fact``…)
    path: str | None = None
    fingerprint: str | None = None
    rule_id: str | None = None
    fact: str | None = None
    local: bool = False
    kind: ClassVar[str] = "host"

    def identity(self) -> str:
        return f"host:{self.path or self.fact or ''}"


@dataclass(frozen=True, eq=False)
class ArchiveSource(Source):
    """Files downloaded from URLs (mirrors in order), verified against ``sha256``; as a
    package's ``sources`` item (or a recipe's) also its ``size`` and ``unpacked-size``."""

    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    unpacked_size: int | None = None
    kind: ClassVar[str] = "archive"

    @property
    def digest(self) -> str | None:
        """The sha256 without its ``sha256:`` prefix (None when the lock has none yet)."""
        return self.sha256.removeprefix("sha256:") if self.sha256 else None

    def pinned(self, sha256: str, size: int | None) -> "ArchiveSource":
        """This source with what a first download learnt (trust on first use)."""
        from dataclasses import replace

        return replace(self, sha256=sha256, size=size)

    def identity(self) -> str:
        return f"archive:{self.sha256 or (self.urls[0] if self.urls else '')}"


@dataclass(frozen=True)
class StoreSource(Source):
    """A prefix of the content-addressed store, named by its key."""

    store: str
    kind: ClassVar[str] = "store"

    def identity(self) -> str:
        return f"store:{self.store}"


_STR_FIELDS = {
    "index": ("index", "url", "cksum"),
    "git": ("git", "rev", "tag", "subdir", "cksum"),
    "host": ("host", "path", "fingerprint", "rule-id", "fact"),
}


def source_from_lock(d: Mapping[str, Any], origin: str = "ckpm.lock") -> Source:
    """The typed source of a lock's ``source`` table; a LockError names what is wrong."""
    if not isinstance(d, Mapping):
        raise LockError(f"{origin}: a package's source is not a table")
    if "git" in d:
        kind = "git"
    elif "host" in d:
        kind = "host"
    elif "index" in d:
        kind = "index"
    elif "urls" in d:
        urls = d.get("urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise LockError(f"{origin}: an archive source's urls must be a list of strings")
        sha = d.get("sha256")
        if sha is not None and not isinstance(sha, str):
            raise LockError(f"{origin}: an archive source's sha256 must be a string")
        return ArchiveSource(tuple(urls), sha)
    elif "store" in d:
        if not isinstance(d["store"], str):
            raise LockError(f"{origin}: a store source's key must be a string")
        return StoreSource(d["store"])
    else:
        raise LockError(f"{origin}: a package's source has none of git, host, index, urls, store")
    for k in _STR_FIELDS[kind]:
        if d.get(k) is not None and not isinstance(d[k], str):
            raise LockError(f"{origin}: source field {k!r} must be a string")
    if kind == "git":
        if not d.get("rev"):
            raise LockError(f"{origin}: a git source needs rev (the full commit)")
        return GitSource(d["git"], d["rev"], d.get("tag"), d.get("subdir"), d.get("cksum"))
    if kind == "host":
        return HostSource(d["host"], d.get("path"), d.get("fingerprint"), d.get("rule-id"), d.get("fact"),
                          bool(d.get("local", False)))
    return IndexSource(d["index"], d.get("url"), d.get("cksum"))


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_DRIVE_RE = re.compile(r"^[A-Za-z]:[\\/]")


def is_local_url(url: str) -> bool:
    """Whether ``url`` names a local file: a ``file:`` URL, or a path (no scheme)."""
    m = _SCHEME_RE.match(url)
    return m is None or m.group(1).lower() == "file" or _DRIVE_RE.match(url) is not None


def local_file_sources(line: Mapping[str, Any]) -> list[str]:
    """The fields of an index line whose URLs name local files (``source.urls[0]: '/etc/passwd'``):
    what ``publish`` and the registry refuse, since nobody else can read them."""
    out: list[str] = []

    def scan(src: Any, field: str) -> None:
        urls = src.get("urls") if isinstance(src, Mapping) else None
        for k, u in enumerate(urls if isinstance(urls, list) else ()):
            if isinstance(u, str) and is_local_url(u):
                out.append(f"{field}.urls[{k}]: {u[:120]!r}")

    scan(line.get("source"), "source")
    install = line.get("install")
    for i, r in enumerate(install if isinstance(install, list) else ()):
        srcs = r.get("sources") if isinstance(r, Mapping) else None
        for j, src in enumerate(srcs if isinstance(srcs, list) else ()):
            scan(src, f"install[{i}].sources[{j}]")
    return out
