"""Small helpers that turn the readable tables of this folder into index lines.

Everything here is deterministic: the same tables give the same dicts, in the
same key order, every time (the build script relies on it).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence, TypeVar

from packaging.version import Version

T = TypeVar("T")

# Key order of a line, as written to the index (docs/formats.md, "Index, format 1").
LINE_KEYS = (
    "name", "version", "kind", "tags", "description", "targets", "deps",
    "source", "detect", "install", "run", "yanked", "pubtime",
)


def versions(table: str) -> list[tuple[str, str | None]]:
    """Parse a table of ``VERSION [YYYY-MM-DD]`` lines (``#`` starts a comment).

    Several versions may share a line when none of them has a date:
    ``1.2.0 1.2.1 1.2.2`` is shorthand for three lines without a date.
    """
    out: list[tuple[str, str | None]] = []
    for raw in table.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 2 and parts[1].count("-") == 2:
            out.append((parts[0], parts[1]))
        else:
            out.extend((p, None) for p in parts)
    return out


def series(prefix: str, first: int, last: int) -> str:
    """``series("3.16.", 0, 9)`` -> ``"3.16.0 3.16.1 ... 3.16.9"`` (no dates)."""
    return " ".join(f"{prefix}{i}" for i in range(first, last + 1))


def pick(version: str, table: Sequence[tuple[str, T]]) -> T:
    """The value of the last row whose lower bound is <= ``version``.

    ``table`` is ``[(lower_bound, value), ...]`` sorted by bound; the first
    bound must cover every version the caller passes.
    """
    v = Version(version)
    hit: Any = _MISSING
    for bound, value in table:
        if Version(bound) <= v:
            hit = value
        else:
            break
    if hit is _MISSING:
        raise ValueError(f"no row of the table covers version {version}")
    return hit


_MISSING = object()


def dep(
    name: str,
    req: str = "*",
    *,
    tags: Iterable[str] | None = None,
    no_tags: Iterable[str] | None = None,
    kind: str | None = None,
    targets: Iterable[str] | None = None,
    optional: bool = False,
) -> dict[str, Any]:
    """One ``deps`` item in index form; only the fields that are set."""
    d: dict[str, Any] = {"name": name, "req": req}
    if tags:
        d["tags"] = list(tags)
    if no_tags:
        d["no_tags"] = list(no_tags)
    if kind and kind != "run":
        d["kind"] = kind
    if targets:
        d["targets"] = list(targets)
    if optional:
        d["optional"] = True
    return d


def executable(
    names: Sequence[str],
    version_args: Sequence[str],
    version_regex: str,
    *,
    compiler: str | None = None,
    languages: Sequence[str] | None = None,
    target: str | None = None,
    exclude: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A detect rule that runs an executable found on PATH."""
    d: dict[str, Any] = {
        "executable": list(names),
        "version_args": list(version_args),
        "version_regex": version_regex,
    }
    if compiler:
        d["compiler"] = compiler
    if languages:
        d["languages"] = list(languages)
    if target:
        d["target"] = target
    if exclude:
        d["exclude"] = list(exclude)
    return d


def urls(*items: str) -> dict[str, Any]:
    """A source made of download URLs (first the canonical one, then mirrors).

    No ``sha256``: the embedded index is written without downloading the
    archives, and a made-up hash is worse than none (see index/schema.json).
    """
    return {"urls": list(items)}


def entry(
    name: str,
    version: str,
    *,
    kind: str,
    tags: Sequence[str],
    description: str,
    targets: Sequence[str],
    deps: Iterable[Mapping[str, Any]] = (),
    source: Mapping[str, Any] | None = None,
    detect: Iterable[Mapping[str, Any]] = (),
    install: Iterable[Mapping[str, Any]] = (),
    run: Mapping[str, Any] | None = None,
    yanked: bool = False,
    pubtime: str | None = None,
) -> dict[str, Any]:
    """One index line as a dict, keys in :data:`LINE_KEYS` order."""
    d: dict[str, Any] = {
        "name": name,
        "version": version,
        "kind": kind,
        "tags": list(tags),
        "description": description,
        "targets": list(targets),
        "deps": [dict(x) for x in deps],
    }
    if source:
        d["source"] = dict(source)
    det = [dict(x) for x in detect]
    if det:
        d["detect"] = det
    inst = [dict(x) for x in install]
    if inst:
        d["install"] = inst
    if run:
        d["run"] = dict(run)
    d["yanked"] = bool(yanked)
    if pubtime:
        d["pubtime"] = pubtime
    return d


def sort_by_version(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries in ascending version order (how the embedded files are written)."""
    return sorted(entries, key=lambda e: Version(e["version"]))
