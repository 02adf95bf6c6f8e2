"""Detection records: what a detector found, and the result of one detection run.

A :class:`Detected` is immutable and hashable (its ``extra`` is a :class:`FrozenDict`),
and round-trips through JSON, so a lockfile can pin it and ``recheck`` can re-probe it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


def freeze(value: Any) -> Any:
    """A hashable copy of a JSON-like value: lists become tuples, dicts FrozenDicts."""
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return tuple(freeze(v) for v in items)
    return value


def thaw(value: Any) -> Any:
    """The JSON form of a frozen value: tuples become lists, FrozenDicts dicts."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


class FrozenDict(dict):  # type: ignore[type-arg]
    """A read-only, hashable dict (values are frozen on construction)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        for k, v in dict(*args, **kwargs).items():
            dict.__setitem__(self, str(k), freeze(v))

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("FrozenDict is read-only")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


@dataclass(frozen=True)
class Detected:
    """One thing found on the host: a fact (``__libc``) or an installed component."""

    name: str
    version: str
    path: str | None
    detector: str
    fingerprint: str
    extra: Mapping[str, Any] = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        if not isinstance(self.extra, FrozenDict):
            object.__setattr__(self, "extra", FrozenDict(self.extra or {}))

    def to_json(self) -> dict[str, Any]:
        """A plain JSON-able dict (what a lockfile or the host profile stores)."""
        return {
            "name": self.name,
            "version": self.version,
            "path": self.path,
            "detector": self.detector,
            "fingerprint": self.fingerprint,
            "extra": thaw(self.extra),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Detected":
        """The inverse of :meth:`to_json`; raises KeyError/TypeError on a malformed dict."""
        return cls(
            name=str(d["name"]),
            version=str(d["version"]),
            path=None if d.get("path") is None else str(d["path"]),
            detector=str(d["detector"]),
            fingerprint=str(d.get("fingerprint") or ""),
            extra=FrozenDict(d.get("extra") or {}),
        )

    def replace(self, **changes: Any) -> "Detected":
        """A copy with some fields changed."""
        d = {f: getattr(self, f) for f in ("name", "version", "path", "detector", "fingerprint", "extra")}
        d.update(changes)
        return Detected(**d)


@dataclass
class DetectionResult:
    """What :func:`ckpm.detect.detect` found: all matches per name, host facts, warnings.

    ``probes_run`` counts subprocesses actually started; ``cache_hits``/``cache_misses``
    count memoised probe groups reused or recomputed (a warm run has no misses).
    """

    found: dict[str, list[Detected]] = field(default_factory=dict)
    facts: dict[str, Detected] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    probes_run: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_path: str | None = None

    def best(self, name: str) -> Detected | None:
        """The preferred match for ``name`` (first of ``found[name]``), or None."""
        recs = self.found.get(name) or []
        return recs[0] if recs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "found": {n: [d.to_json() for d in recs] for n, recs in self.found.items()},
            "facts": {n: d.to_json() for n, d in self.facts.items()},
            "warnings": list(self.warnings),
            "probes_run": self.probes_run,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_path": self.cache_path,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "DetectionResult":
        return cls(
            found={n: [Detected.from_json(x) for x in recs] for n, recs in (d.get("found") or {}).items()},
            facts={n: Detected.from_json(x) for n, x in (d.get("facts") or {}).items()},
            warnings=[str(w) for w in d.get("warnings") or ()],
            probes_run=int(d.get("probes_run") or 0),
            cache_hits=int(d.get("cache_hits") or 0),
            cache_misses=int(d.get("cache_misses") or 0),
            cache_path=d.get("cache_path"),
        )


_NUM = re.compile(r"\d+")
_HEAD = re.compile(r"^[vV]?(\d+(?:\.\d+)*)")


def version_sort_key(text: str) -> tuple[tuple[int, ...], int, str]:
    """A cheap ordering key for version strings (no ``packaging`` import on the warm path).

    Numeric release first; then a release without a suffix sorts above one with a
    pre-release-looking suffix (``12.0`` > ``12.0rc1``); then the text.
    """
    m = _HEAD.match(text.strip())
    if not m:
        return ((), 0, text)
    release = tuple(int(x) for x in _NUM.findall(m.group(1)))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    rest = text.strip()[m.end():].lower()
    pre = 0 if re.match(r"^[-._]?(a|alpha|b|beta|rc|pre|dev)\d*", rest) else 1
    return (release, pre, rest)


def rank(records: Iterable[Detected]) -> list[Detected]:
    """Order matches best first: native before cross, then newest; ties keep discovery order
    (PATH precedence, rule order), which is deterministic for a given environment."""
    out = sorted(records, key=lambda d: version_sort_key(d.version), reverse=True)
    out.sort(key=lambda d: bool(d.extra.get("cross", False)))
    return out
