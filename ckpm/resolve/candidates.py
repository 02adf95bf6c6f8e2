"""Requirements and candidates as the resolver sees them."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ckpm.model.entry import IndexEntry
from ckpm.model.requirement import Requirement
from ckpm.model.source import GitSource, HostSource, IndexSource, Source
from ckpm.model.version import Version

if TYPE_CHECKING:
    from ckpm.detect.record import Detected  # not at run time: ckpm.detect loads its rule checks


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


class Origin(str, Enum):
    """Where a candidate comes from. Members are compared by identity (``c.origin is Origin.HOST``);
    as ``str`` they sort and print as their value (``"git" < "host" < "index"``)."""

    INDEX = "index"  # a version line of an index
    GIT = "git"  # a tag of a git repository (a ``git = URL`` dependency)
    HOST = "host"  # software detected on this machine, or a host fact


# The members as plain globals, for the paths that compare an origin per candidate: reading
# ``Origin.INDEX`` goes through the enum's metaclass, seven times the cost of a global.
ORIGIN_INDEX, ORIGIN_GIT, ORIGIN_HOST = Origin.INDEX, Origin.GIT, Origin.HOST

_LABEL_SUFFIX = {ORIGIN_INDEX: "", ORIGIN_GIT: " (git)", ORIGIN_HOST: " (host)"}


@dataclass(eq=False, slots=True)
class Candidate:
    """One way to satisfy a key: a component version from an index, a git tag, or the host.

    Slotted: a resolution makes tens of thousands of these.
    """

    ident: str
    key: str
    name: str
    version: Version
    target: str
    origin: Origin
    entry: IndexEntry
    index_name: str | None = None
    index_url: str | None = None
    host: Detected | None = None  # what detection found, for Origin.HOST
    locked: bool = False
    _id: tuple[str, str, str] = field(default=("", "", ""), repr=False)
    _hash: int = field(default=0, repr=False)
    _source: Source | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # an index candidate's identity without building its IndexSource (IndexSource.identity
        # is "index:<name>"): a resolution makes thousands and the lock records a few hundred
        sid = f"index:{self.index_name}" if self.origin is ORIGIN_INDEX else self.source.identity()
        self._id = (self.name, self.version.text, sid)
        self._hash = hash((self._id, self.ident))

    @property
    def source(self) -> Source:
        """Where this candidate comes from (what the lock records); made once, when first asked."""
        s = self._source
        if s is None:
            s = self._source = self._make_source()
        return s

    def _make_source(self) -> Source:
        if self.origin is ORIGIN_GIT:
            s = self.entry.source
            return GitSource(str(s.get("git")), str(s.get("rev")), s.get("tag"), s.get("subdir") or None,
                             self.entry.cksum)
        if self.origin is ORIGIN_HOST:
            d = self.host
            if d is None:
                return HostSource("host", None, None, None, None, False)
            detector = d.detector or "host"
            fact = self.name if detector in ("fact", "override") else None
            return HostSource(detector, d.path, d.fingerprint or None, d.extra.get("rule_id"), fact,
                              bool(d.extra.get("local", False)))
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
        return f"{self.name} {self.version.text}{_LABEL_SUFFIX[self.origin]}"
