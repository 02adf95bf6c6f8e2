"""Requirements and candidates as the resolver sees them."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ckpm.model.entry import IndexEntry
from ckpm.model.requirement import Requirement
from ckpm.model.source import GitSource, HostSource, IndexSource, Source
from ckpm.model.version import Version


_new = object.__new__


def ident_for(key: str, target: str, main_target: str) -> str:
    """The resolvelib identifier: the key, plus ``@target`` for build deps resolved for another platform."""
    return key if target == main_target else f"{key}@{target}"


@dataclass(frozen=True, eq=False)
class Req:
    """A Requirement in context: the target it is resolved for and who asked."""

    req: Requirement
    target: str
    ident: str
    parent: "Candidate | None" = None
    memo: dict["Candidate", bool] = field(default_factory=dict, repr=False)  # candidate → satisfies?

    @staticmethod
    def of(req: Requirement, target: str, ident: str, parent: "Candidate | None") -> "Req":
        """``Req(req, target, ident, parent)`` without the frozen dataclass's ``__init__`` (one
        ``object.__setattr__`` per field): the complete search makes one per distinct requirement
        of a closure, 8,000 on a conflict graph."""
        r = _new(Req)
        r.__dict__.update(req=req, target=target, ident=ident, parent=parent, memo={})
        return r

    @property
    def key(self) -> str:
        return self.req.key

    def who(self) -> str:
        return "the project" if self.parent is None else self.parent.label()

    def describe(self) -> str:
        return f"{self.who()} requires {self.req.describe()}"


@dataclass(eq=False)
class Candidate:
    """One way to satisfy a key: a component version from an index, a git tag, or the host."""

    ident: str
    key: str
    name: str
    version: Version
    target: str
    origin: str  # "index" | "git" | "host"
    entry: IndexEntry
    index_name: str | None = None
    index_url: str | None = None
    host: dict[str, Any] | None = None  # detection record for origin == "host"
    locked: bool = False
    _id: tuple[str, str, str] = field(default=("", "", ""), repr=False)

    _hash: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        # an index candidate's identity without building its IndexSource (IndexSource.identity
        # is "index:<name>"): a resolution makes thousands and the lock records a few hundred
        sid = f"index:{self.index_name}" if self.origin == "index" else self.source.identity()
        self._id = (self.name, self.version.text, sid)
        self._hash = hash((self._id, self.ident))

    @cached_property
    def source(self) -> Source:
        """Where this candidate comes from (what the lock records)."""
        if self.origin == "git":
            s = self.entry.source
            return GitSource(str(s.get("git")), str(s.get("rev")), s.get("tag"), s.get("subdir") or None,
                             self.entry.cksum)
        if self.origin == "host":
            h = self.host or {}
            detector = str(h.get("detector") or "host")
            extra = h.get("extra") or {}
            fact = self.name if detector in ("fact", "override") else None
            return HostSource(detector, h.get("path"), h.get("fingerprint") or None, extra.get("rule_id"), fact,
                              bool(extra.get("local", False)))
        return IndexSource(str(self.index_name), self.index_url, self.entry.cksum)

    def source_id(self) -> str:
        return self.source.identity()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Candidate) and self._id == other._id and self.ident == other.ident

    def __hash__(self) -> int:
        return self._hash

    @property
    def tags(self) -> frozenset[str]:
        return self.entry.tag_set

    def label(self) -> str:
        where = {"git": " (git)", "host": " (host)"}.get(self.origin, "")
        return f"{self.name} {self.version.text}{where}"
