"""Run one resolution per target and merge the results into a Lock."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from resolvelib import Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

from ckpm.index.base import Index
from ckpm.model.lockfile import Lock, LockedDep, LockedPackage
from ckpm.model.requirement import Requirement
from ckpm.model.targets import matches
from ckpm.resolve import explain
from ckpm.resolve.candidates import Candidate, Req, ident_for
from ckpm.resolve.factory import BudgetExceeded, CandidateFactory, HostSource, Pin
from ckpm.resolve.provider import Provider, Reporter


@dataclass
class Budget:
    """Limits that stop a runaway search with an explanation."""

    max_rounds: int = 50_000
    seconds: float = 120.0


@dataclass
class TargetResult:
    """The resolution for one target: chosen candidates and the edges between them."""

    target: str
    mapping: dict[str, Candidate]
    roots: list[tuple[Req, str]]  # (root requirement, ident it resolved to)
    edges: dict[str, list[tuple[Req, str]]] = field(default_factory=dict)  # parent ident → (req, child ident)
    rounds: int = 0


def root_requirements(deps: dict[str, Requirement], target: str, main_target: str, host_target: str) -> list[Req]:
    out = []
    for key in sorted(deps):
        r = deps[key]
        if r.optional or not matches(target, r.targets):
            continue
        t = host_target if r.kind == "build" else target
        out.append(Req(r, t, ident_for(key, t, main_target)))
    return out


def resolve_target(
    deps: dict[str, Requirement],
    target: str,
    indexes: Sequence[Index],
    *,
    host_target: str,
    pins: dict[str, Pin] | None = None,
    prerelease: bool = False,
    git_source: Callable[[str, str | None], Any] | None = None,
    host: HostSource | None = None,
    budget: Budget | None = None,
    extra: Sequence[Requirement] = (),
    reporter: Any = None,
) -> TargetResult:
    """Resolve ``deps`` (the project's dependencies) for one target; raises ResolutionError."""
    budget = budget or Budget()
    factory = CandidateFactory(
        indexes, main_target=target, host_target=host_target, pins=pins, prerelease=prerelease,
        git_source=git_source, host=host, deadline=time.monotonic() + budget.seconds, reporter=reporter,
    )
    roots = root_requirements(deps, target, target, host_target)
    for r in extra:
        roots.append(Req(r, target, ident_for(r.key, target, target)))
    provider = Provider(factory, root_idents={r.ident for r in roots})
    reporter = Reporter(progress=reporter, target=target)
    resolver: Resolver = Resolver(provider, reporter)
    try:
        result = resolver.resolve(roots, max_rounds=budget.max_rounds)
    except ResolutionImpossible as e:
        raise explain.impossible(provider, target, e.causes) from None
    except ResolutionTooDeep:
        raise explain.too_deep(reporter, target, f"more than {budget.max_rounds} rounds") from None
    except BudgetExceeded:
        raise explain.too_deep(reporter, target, f"more than {budget.seconds:g} s") from None
    edges: dict[str, list[tuple[Req, str]]] = {}
    root_edges: list[tuple[Req, str]] = []
    for ident, crit in result.criteria.items():
        if ident not in result.mapping:
            continue
        for info in crit.information:
            if info.parent is None:
                root_edges.append((info.requirement, ident))
            else:
                edges.setdefault(info.parent.ident, []).append((info.requirement, ident))
    return TargetResult(target, dict(result.mapping), root_edges, edges, reporter.rounds)


def build_lock(
    results: Sequence[TargetResult],
    *,
    manifest_hash: str,
    indexes: Sequence[dict[str, Any]],
    ckpm_version: str,
    prerelease: bool,
) -> Lock:
    """Merge per-target results into one Lock: one package per (name, version, source)."""
    all_targets = sorted(r.target for r in results)
    packages: dict[tuple[str, str, str], LockedPackage] = {}
    pkg_targets: dict[tuple[str, str, str], set[str]] = {}
    dep_targets: dict[tuple[str, str, str], dict[tuple[str, str, str], set[str]]] = {}
    root_targets: dict[tuple[str, str, str, str], set[str]] = {}
    for res in results:
        for ident, c in res.mapping.items():
            pid = c._id
            p = packages.get(pid)
            if p is None:
                p = packages[pid] = LockedPackage(c.name, c.version.text, c.entry.kind, c.source, [], [])
            if c.key not in p.keys:
                p.keys.append(c.key)
            pkg_targets.setdefault(pid, set()).add(c.target)
        for parent_ident, kids in res.edges.items():
            parent = res.mapping[parent_ident]
            for req, child_ident in kids:
                child = res.mapping[child_ident]
                dk = (req.key, child.name, child.version.text)
                dep_targets.setdefault(parent._id, {}).setdefault(dk, set()).add(res.target)
        for req, ident in res.roots:
            c = res.mapping[ident]
            rk = (req.key, c.name, c.version.text, original_of(req.req))
            root_targets.setdefault(rk, set()).add(res.target)
    for pid, p in packages.items():
        p.targets = sorted(pkg_targets[pid])
        deps = []
        for (key, name, version), ts in dep_targets.get(pid, {}).items():
            deps.append(LockedDep(key, name, version, None if ts >= set(p.targets) else tuple(sorted(ts))))
        p.dependencies = deps
    roots = [
        LockedDep(key, name, version, None if ts >= set(all_targets) else tuple(sorted(ts)), original)
        for (key, name, version, original), ts in root_targets.items()
    ]
    return Lock(
        manifest_hash=manifest_hash, targets=all_targets, roots=roots, packages=list(packages.values()),
        indexes=list(indexes), ckpm_version=ckpm_version, prerelease=prerelease,
    )


def original_of(r: Requirement) -> str:
    """What the user asked for, as one string (range, tags, git)."""
    parts = [r.spec.text]
    if r.tags:
        parts.append("tags=" + ",".join(sorted(r.tags)))
    if r.no_tags:
        parts.append("no-tags=" + ",".join(sorted(r.no_tags)))
    if r.git:
        parts.append(f"git={r.git}")
    return " ".join(parts)
