"""Index entries: one published version of one component (index format 1, DESIGN.md)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from ckpm.model.requirement import Requirement, requirement_from_index_dep
from ckpm.model.targets import matches
from ckpm.model.version import Version, parse_version

KINDS = ("program", "lib", "compiler", "tool", "model", "dataset", "script")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


@dataclass
class IndexEntry:
    """One JSON line of an index file. ``raw`` keeps the line's fields exactly."""

    name: str
    version_text: str
    kind: str = "lib"
    tags: tuple[str, ...] = ()
    description: str = ""
    targets: tuple[str, ...] = ("*",)
    deps_raw: tuple[Mapping[str, Any], ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)
    cksum: str | None = None
    detect: tuple[Mapping[str, Any], ...] = ()
    install: tuple[Mapping[str, Any], ...] = ()
    yanked: bool = False
    pubtime: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def version(self) -> Version:
        return parse_version(self.version_text)

    @cached_property
    def tag_set(self) -> frozenset[str]:
        return frozenset(self.tags)

    @cached_property
    def deps(self) -> tuple[Requirement, ...]:
        return tuple(requirement_from_index_dep(d) for d in self.deps_raw)

    def supports(self, target: str) -> bool:
        return matches(target, self.targets)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "IndexEntry":
        return cls(
            name=str(d["name"]),
            version_text=str(d["version"]),
            kind=str(d.get("kind") or "lib"),
            tags=tuple(str(t).lower() for t in d.get("tags") or ()),
            description=str(d.get("description") or ""),
            targets=tuple(d.get("targets") or ("*",)),
            deps_raw=tuple(d.get("deps") or ()),
            source=d.get("source") or {},
            cksum=d.get("cksum"),
            detect=tuple(d.get("detect") or ()),
            install=tuple(d.get("install") or ()),
            yanked=bool(d.get("yanked", False)),
            pubtime=d.get("pubtime"),
            raw=d,
        )

    @classmethod
    def from_line(cls, line: str) -> "IndexEntry":
        return cls.from_json(json.loads(line))

    def to_json(self) -> dict[str, Any]:
        if self.raw:
            d = dict(self.raw)
            d["yanked"] = self.yanked
            return d
        d = {
            "name": self.name,
            "version": self.version_text,
            "kind": self.kind,
            "tags": list(self.tags),
            "description": self.description,
            "targets": list(self.targets),
            "deps": [dict(x) for x in self.deps_raw],
            "source": dict(self.source),
            "cksum": self.cksum,
            "yanked": self.yanked,
        }
        if self.detect:
            d["detect"] = [dict(x) for x in self.detect]
        if self.install:
            d["install"] = [dict(x) for x in self.install]
        if self.pubtime:
            d["pubtime"] = self.pubtime
        return d

    def to_line(self) -> str:
        return json.dumps(self.to_json(), sort_keys=False, separators=(",", ":"))


@dataclass(frozen=True)
class ComponentSummary:
    """One component of an index as ``search`` sees it (a line of ``summary.jsonl``)."""

    name: str
    kind: str
    tags: frozenset[str]
    description: str
    versions: tuple[str, ...]

    @classmethod
    def from_entries(cls, entries: list[IndexEntry]) -> "ComponentSummary":
        last = entries[-1]
        tags: set[str] = set()
        for e in entries:
            tags.update(e.tags)
        return cls(last.name, last.kind, frozenset(tags), last.description, tuple(e.version_text for e in entries))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "tags": sorted(self.tags),
            "description": self.description,
            "versions": list(self.versions),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ComponentSummary":
        return cls(
            str(d["name"]), str(d.get("kind", "lib")), frozenset(d.get("tags") or ()),
            str(d.get("description") or ""), tuple(d.get("versions") or ()),
        )
