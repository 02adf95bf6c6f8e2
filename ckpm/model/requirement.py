"""Requirements: what a project or a component asks for under one dependency key.

A key names a component (``lib-tensorflow``) or, when no component has that name
and ``tags`` are given, a capability (``compiler`` with tags ``compiler,lang-c``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ckpm.errors import SpecifierError, unknown_key_message
from ckpm.model.version import Specifier, parse_specifier

DEP_KINDS = ("run", "build")
PREFER = ("host", "build")


def split_tags(value: Any) -> frozenset[str]:
    """Tags from ``"a,b"`` or ``["a", "b"]`` (lower case, blanks dropped)."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items = value.split(",")
    else:
        items = [str(v) for v in value]
    return frozenset(t.strip().lower() for t in items if t.strip())


@dataclass(frozen=True)
class Requirement:
    """One dependency edge: a key, a version range and filters."""

    key: str
    spec: Specifier = field(default_factory=lambda: parse_specifier("*"))
    tags: frozenset[str] = frozenset()
    no_tags: frozenset[str] = frozenset()
    targets: tuple[str, ...] | None = None
    kind: str = "run"
    optional: bool = False
    git: str | None = None
    subdir: str | None = None
    prefer: str | None = None
    index: str | None = None

    def describe(self) -> str:
        """A short human form: ``compiler >=9 [tags compiler,lang-c]``."""
        out = self.key
        if self.spec.text != "*":
            out += f" {self.spec.text}"
        extra = []
        if self.tags:
            extra.append("tags " + ",".join(sorted(self.tags)))
        if self.no_tags:
            extra.append("no-tags " + ",".join(sorted(self.no_tags)))
        if self.targets:
            extra.append("targets " + ",".join(self.targets))
        if self.git:
            extra.append(f"git {self.git}")
        if self.kind != "run":
            extra.append(self.kind)
        return out + (f" [{'; '.join(extra)}]" if extra else "")

    def to_index_dep(self) -> dict[str, Any]:
        """The index-format form of this requirement (the ``deps`` of an index line, docs/formats.md)."""
        d: dict[str, Any] = {"name": self.key, "req": self.spec.text}
        if self.tags:
            d["tags"] = sorted(self.tags)
        if self.no_tags:
            d["no_tags"] = sorted(self.no_tags)
        if self.kind != "run":
            d["kind"] = self.kind
        if self.targets:
            d["targets"] = list(self.targets)
        if self.optional:
            d["optional"] = True
        if self.git:
            d["git"] = self.git
        if self.subdir:
            d["subdir"] = self.subdir
        return d


_NO_TAGS: frozenset[str] = frozenset()
#: the fields of a Requirement with only a key and a range, in field order (for :func:`plain_requirement`)
_PLAIN_FIELDS: dict[str, Any] = {"key": "", "spec": None, "tags": _NO_TAGS, "no_tags": _NO_TAGS, "targets": None,
                                 "kind": "run", "optional": False, "git": None, "subdir": None, "prefer": None,
                                 "index": None}


def plain_requirement(key: str, spec: Specifier) -> Requirement:
    """``Requirement(key=key, spec=spec)``, every other field at its default, built without
    the frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field: ~2 µs, 10x
    this). A cold read of an index builds one per dependency of every version it reads."""
    r = _new(Requirement)
    fields = r.__dict__
    fields.update(_PLAIN_FIELDS)
    fields["key"] = key
    fields["spec"] = spec
    return r


_new = object.__new__


def requirement_from_index_dep(d: Mapping[str, Any]) -> Requirement:
    """Build a Requirement from an index ``deps`` item."""
    if len(d) == 2 and "name" in d and "req" in d:  # the usual {"name": ..., "req": ...}
        return plain_requirement(str(d["name"]).lower(), parse_specifier(str(d["req"] or "*")))
    targets = d.get("targets")
    return Requirement(
        key=str(d["name"]).lower(),
        spec=parse_specifier(str(d.get("req") or "*")),
        tags=split_tags(d.get("tags")),
        no_tags=split_tags(d.get("no_tags")),
        targets=tuple(targets) if targets else None,
        kind=str(d.get("kind") or "run"),
        optional=bool(d.get("optional", False)),
        git=d.get("git"),
        subdir=d.get("subdir"),
        prefer=d.get("prefer"),
    )


DEP_TABLE_KEYS = (
    "version", "tags", "no-tags", "targets", "kind", "optional", "git", "subdir", "prefer", "index",
)


def requirement_from_manifest(key: str, value: Any) -> Requirement:
    """Build a Requirement from a ``[dependencies]`` entry (string or inline table).

    Raises ValueError / SpecifierError with a message suitable for a manifest error;
    the caller adds the file and line.
    """
    if isinstance(value, str):
        return Requirement(key=key.lower(), spec=parse_specifier(value))
    if not isinstance(value, Mapping):
        raise ValueError(f"dependency {key!r} must be a version string or a table, not {type(value).__name__}")
    for k in value:
        if k not in DEP_TABLE_KEYS:
            raise ValueError(unknown_key_message(k, DEP_TABLE_KEYS, f"dependency {key!r}"))
    for k, v in value.items():  # someone else's manifest: every field has its type
        if k in ("tags", "no-tags", "targets"):
            ok = isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            want = "a string or a list of strings"
        elif k == "optional":
            ok, want = isinstance(v, bool), "true or false"
        else:
            ok, want = isinstance(v, str), "a string"
        if not ok:
            raise ValueError(f"dependency {key!r}: {k} must be {want}, not {type(v).__name__}")
    kind = str(value.get("kind", "run"))
    if kind not in DEP_KINDS:
        raise ValueError(f"dependency {key!r}: kind must be one of {', '.join(DEP_KINDS)}, not {kind!r}")
    prefer = value.get("prefer")
    if prefer is not None and prefer not in PREFER:
        raise ValueError(f"dependency {key!r}: prefer must be one of {', '.join(PREFER)}, not {prefer!r}")
    targets = value.get("targets")
    if targets is not None:
        if isinstance(targets, str):
            targets = [targets]
        targets = tuple(str(t) for t in targets)
    return Requirement(
        key=key.lower(),
        spec=parse_specifier(str(value.get("version", "*"))),
        tags=split_tags(value.get("tags")),
        no_tags=split_tags(value.get("no-tags")),
        targets=targets,
        kind=kind,
        optional=bool(value.get("optional", False)),
        git=value.get("git"),
        subdir=value.get("subdir"),
        prefer=prefer,
        index=value.get("index"),
    )


__all__ = [
    "Requirement",
    "plain_requirement",
    "requirement_from_index_dep",
    "requirement_from_manifest",
    "split_tags",
    "SpecifierError",
]
