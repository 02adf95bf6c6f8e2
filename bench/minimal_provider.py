#!/usr/bin/env python3
"""Baseline: a minimal, straightforward resolvelib provider over a format-1 index folder.

    python bench/minimal_provider.py INDEX_DIR ROOT [ROOT...]

A ROOT is ``name`` or ``name<range>`` (``leaf-00001``, ``leaf-00001>=2.0``).
Reads component files at their layout paths (one JSON line per version),
parses versions with ``packaging.version`` and ranges with
``packaging.specifiers``, offers candidates newest first, resolves, and prints
the pins as ``name==version`` (sorted) on stdout. On stderr: rounds, pins,
rejected candidates and backtracks, counted by a reporter, and the time spent.

It deliberately knows nothing of ckpm (no tags, targets, host detection, or
lock): it is what ``ckpm lock`` is compared against in bench/bench_lock.py.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible


def entry_path(name: str) -> str:
    """Index format 1 layout (docs/formats.md, "Index, format 1")."""
    if len(name) == 1:
        return f"1/{name}"
    if len(name) == 2:
        return f"2/{name}"
    if len(name) == 3:
        return f"3/{name[0]}/{name}"
    return f"{name[:2]}/{name[2:4]}/{name}"


def spec(text: str) -> SpecifierSet:
    text = (text or "").strip()
    return SpecifierSet("" if text == "*" else text)


class Requirement:
    __slots__ = ("name", "spec")

    def __init__(self, name: str, req: str) -> None:
        self.name = name
        self.spec = spec(req)

    def __repr__(self) -> str:
        return f"{self.name}{self.spec or ''}"


class Candidate:
    __slots__ = ("name", "version", "raw_deps")

    def __init__(self, name: str, version: Version, raw_deps: list[dict[str, Any]]) -> None:
        self.name = name
        self.version = version
        self.raw_deps = raw_deps

    def __repr__(self) -> str:
        return f"{self.name}=={self.version}"


class Provider(AbstractProvider):
    def __init__(self, root: Path, roots: Iterable[str] = ()) -> None:
        self.root = root
        self.roots = frozenset(roots)
        self._cache: dict[str, list[Candidate]] = {}

    def candidates(self, name: str) -> list[Candidate]:
        hit = self._cache.get(name)
        if hit is None:
            try:
                text = (self.root / entry_path(name)).read_text(encoding="utf-8")
            except FileNotFoundError:
                text = ""
            hit = []
            for line in text.splitlines():
                if line.strip():
                    d = json.loads(line)
                    if not d.get("yanked"):
                        hit.append(Candidate(name, Version(d["version"]), d.get("deps") or []))
            hit.sort(key=lambda c: c.version, reverse=True)  # newest first
            self._cache[name] = hit
        return hit

    def identify(self, requirement_or_candidate: Requirement | Candidate) -> str:
        return requirement_or_candidate.name

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> Any:
        causes = {c.requirement.name for c in backtrack_causes} | {
            c.parent.name for c in backtrack_causes if c.parent is not None
        }
        # pip's order, reduced to its core: what caused the last conflict, then the
        # project's own requirements, then by name (deterministic).
        return (identifier not in causes, identifier not in self.roots, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Requirement]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Iterable[Candidate]:
        reqs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        return [
            c for c in self.candidates(identifier)
            if c.version not in bad and all(r.spec.contains(c.version, prereleases=True) for r in reqs)
        ]

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool:
        return requirement.spec.contains(candidate.version, prereleases=True)

    def get_dependencies(self, candidate: Candidate) -> Iterable[Requirement]:
        return [Requirement(d["name"], d.get("req") or "*") for d in candidate.raw_deps if not d.get("optional")]


class CountingReporter(BaseReporter):
    def __init__(self) -> None:
        self.rounds = 0
        self.pins = 0
        self.rejected = 0
        self.backtracks = 0

    def starting_round(self, index: int) -> None:
        self.rounds = index + 1

    def pinning(self, candidate: Any) -> None:
        self.pins += 1

    def rejecting_candidate(self, criterion: Any, candidate: Any) -> None:
        self.rejected += 1

    def resolving_conflicts(self, causes: Any) -> None:
        self.backtracks += 1


_ROOT = re.compile(r"^([a-z0-9][a-z0-9._-]*)\s*(.*)$")


def parse_root(text: str) -> Requirement:
    m = _ROOT.match(text.strip().lower())
    if not m:
        raise SystemExit(f"not a requirement: {text!r}")
    return Requirement(m.group(1), m.group(2) or "*")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root = Path(args[0])
    if not (root / "config.json").is_file():
        print(f"{root}: not an index (no config.json)", file=sys.stderr)
        return 2
    roots = [parse_root(a) for a in args[1:]]
    reporter = CountingReporter()
    t0 = time.perf_counter()
    try:
        result = Resolver(Provider(root, (r.name for r in roots)), reporter).resolve(roots, max_rounds=1_000_000)
    except ResolutionImpossible as e:
        print("resolution impossible:", file=sys.stderr)
        for cause in e.causes:
            print(f"  {cause.requirement} (from {cause.parent})", file=sys.stderr)
        return 1
    dt = time.perf_counter() - t0
    for name in sorted(result.mapping):
        print(f"{name}=={result.mapping[name].version}")
    print(
        f"resolved {len(result.mapping)} packages in {dt:.3f} s: "
        f"rounds={reporter.rounds} pins={reporter.pins} rejected={reporter.rejected} backtracks={reporter.backtracks}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
