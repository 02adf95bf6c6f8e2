"""Run one resolution per target and merge the results into a Lock."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

from ckpm.report import Reporter
from ckpm.settings import RESOLVE_MAX_ROUNDS, RESOLVE_SECONDS
from ckpm.index.base import Index
from ckpm.errors import CkpmError
from ckpm.model.lockfile import Lock, LockedDep, LockedPackage, provisioning_of, recipe_applies
from ckpm.model.source import IndexSource
from ckpm.model.requirement import Requirement
from ckpm.model.targets import matches
from ckpm.resolve import explain
from ckpm.resolve.candidates import Candidate, Origin, Req, ident_for
from ckpm.resolve.engine import IncrementalResolution, Stuck, build_result
from ckpm.resolve.factory import BudgetExceeded, CandidateFactory, HostLookup, Pin
from ckpm.resolve.provider import Provider, ResolutionReporter

# Backtracks resolvelib may spend before the complete (SAT) search takes over. Counted,
# never timed, so the switch (and so the lock) does not depend on the machine's speed.
# On the conflict graphs of bench/bench_conflict.py resolvelib either finishes within a
# few dozen backtracks (6-23 on 24 seeds, one 84) or thrashes for hundreds; a backtrack
# costs 2-5 ms there, so 30 wastes half as much as the earlier 60 on a stuck graph. The
# easy 10,000-component graph of bench/bench_lock.py takes 45 and now goes to the
# complete search at 30: as fast either way (0.42-0.56 s against 0.45-0.53 s in process),
# since its closure is already read and the greedy pass asks whole frontiers at once.
STUCK_AFTER = 30
# ...or sooner on a large graph: each backtrack rewrites the state and rechecks every key
# resolvelib knows, so the budget is also counted in keys rechecked (the sum, over the
# backtracks, of the keys known then): 30,000 is 30 backtracks up to 1,000 keys, 10 at 3,000.
# On the conflict graphs of bench/bench_conflict.py the largest sum at the switch was 3,625
# (40 seeds, C = 0.3) and 4,909 (C = 0.15), so only STUCK_AFTER decides there; the
# 3,063-package closure of bench/bench_scale.py, stuck either way, spent about a third of its
# first lock's CPU in the first pass with 100,000 and now switches after 10 backtracks (the
# same lock: the complete search's answer depends only on the closure and the preference order).
STUCK_WORK = 30_000
# States resolvelib keeps for backjumping (it copies the whole state at every pin, so
# keeping all of them costs O(n²) memory: 690 MB for a 2,900-package lock). A backjump
# deeper than this hands over to the complete search.
KEEP_STATES = 256


@dataclass
class Budget:
    """Limits for a whole command: rounds and seconds over every target and both searches.

    The deadline starts with the first resolution that uses the budget; rounds are
    counted across resolvelib passes (the first search and, after the complete search,
    the confirming pass).
    """

    max_rounds: int = RESOLVE_MAX_ROUNDS
    seconds: float = RESOLVE_SECONDS
    stuck_after: int | None = STUCK_AFTER  # None: resolvelib alone, however long it backtracks
    stuck_work: int = STUCK_WORK
    complete_first: bool = False  # skip the first resolvelib pass (tests and debugging)
    deadline: float | None = None
    rounds_used: int = 0

    def start(self) -> float:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.seconds
        return self.deadline

    def rounds_left(self) -> int:
        return max(0, self.max_rounds - self.rounds_used)


@dataclass
class TargetResult:
    """The resolution for one target: chosen candidates and the edges between them."""

    target: str
    mapping: dict[str, Candidate]
    roots: list[tuple[Req, str]]  # (root requirement, ident it resolved to)
    edges: dict[str, list[tuple[Req, str]]] = field(default_factory=dict)  # parent ident → (req, child ident)
    rounds: int = 0
    method: str = "resolvelib"  # or "sat": the complete search proposed, resolvelib confirmed


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
    host: HostLookup | None = None,
    budget: Budget | None = None,
    extra: Sequence[Requirement] = (),
    reporter: Reporter | None = None,
    stored: frozenset[tuple[str, str, str]] = frozenset(),
) -> TargetResult:
    """Resolve ``deps`` (the project's dependencies) for one target; raises ResolutionError.

    resolvelib searches first. When it backtracks more than ``budget.stuck_after`` times
    or finds no solution, the complete search (ckpm.resolve.sat) takes the candidate
    closure to a SAT solver: its assignment is checked requirement by requirement from the
    roots (:func:`confirm_assignment`), or, when one does not hold, becomes resolvelib's first
    preference for a second, confirming pass; an unsatisfiable closure is explained from the
    solver's core.
    """
    budget = budget or Budget()
    reporter = reporter if reporter is not None else Reporter()
    deadline = budget.start()
    factory = CandidateFactory(
        indexes, main_target=target, host_target=host_target, pins=pins, prerelease=prerelease,
        git_source=git_source, host=host, deadline=deadline, reporter=reporter, stored=stored,
    )
    roots = root_requirements(deps, target, target, host_target)
    for r in extra:
        roots.append(Req(r, target, ident_for(r.key, target, target)))
    root_idents = {r.ident for r in roots}
    provider = Provider(factory, root_idents=root_idents)
    rep = ResolutionReporter(progress=reporter, target=target)
    method = "resolvelib"
    try:
        if budget.complete_first:
            raise Stuck(0, 0)
        state = _search(provider, rep, roots, budget, budget.stuck_after, KEEP_STATES)
    except (Stuck, ResolutionImpossible) as e:
        first_causes = e.causes if isinstance(e, ResolutionImpossible) else None
        provider, rep = _complete(provider, rep, roots, budget, target, first_causes, reporter)
        checked = confirm_assignment(provider, roots)
        if checked is not None:  # every requirement of the assignment holds: what resolvelib would pin
            rounds = len(checked[0]) + 1  # the confirming pass's: one per pin, and the one that finds all pinned
            if rounds > budget.rounds_left():
                rep.rounds = budget.rounds_left()
                budget.rounds_used = budget.max_rounds
                raise explain.too_deep(rep, target, f"more than {budget.max_rounds} rounds")
            budget.rounds_used += rounds
            return TargetResult(target, *checked, rounds, "sat")
        try:
            try:  # the assignment satisfies every requirement: no backjump, so no state history
                state = _search(provider, rep, roots, budget, None, 2)
            except Stuck:  # should not happen; a full search with its whole history is the safety net
                state = _search(provider, ResolutionReporter(progress=reporter, target=target), roots, budget, None, None)
        except ResolutionImpossible as e2:
            raise explain.impossible(provider, target, e2.causes) from None
        method = "sat"
    result = build_result(state)
    edges: dict[str, list[tuple[Req, str]]] = {}
    root_edges: list[tuple[Req, str]] = []
    for ident, crit in result.criteria.items():
        if ident not in result.mapping:
            continue
        for info in crit.information:
            if info.parent is None:
                root_edges.append((info.requirement, ident))
            elif info.parent.ident in result.mapping:
                edges.setdefault(info.parent.ident, []).append((info.requirement, ident))
    return TargetResult(target, dict(result.mapping), root_edges, edges, rep.rounds, method)


Edges = dict[str, list[tuple[Req, str]]]


def confirm_assignment(provider: Provider, roots: list[Req]) -> tuple[dict[str, Candidate], list[tuple[Req, str]],
                                                                      Edges] | None:
    """The complete search's assignment (``factory.preferred``) checked requirement by requirement
    from the roots, as the mapping, root edges and edges that resolvelib's confirming pass would
    return; None when some requirement does not hold (that pass then decides, and explains).

    The confirming pass pins each key's assigned candidate first, so when every requirement of
    every reached candidate admits the assignment, it pins exactly the assignment's keys that the
    roots reach, never backtracks, and records these edges: the same lock. This walk asks only
    ``satisfies`` (what resolvelib's checks ask) and ``get_dependencies``, without resolvelib's
    state copies, criteria and candidate lists (about a tenth of a conflict graph's lock).
    """
    f = provider.factory
    chosen = f.preferred
    satisfies = f.satisfies
    mapping: dict[str, Candidate] = {}
    root_edges: list[tuple[Req, str]] = []
    edges: Edges = {}
    todo: list[Candidate] = []

    def reach(r: Req) -> bool:
        c = chosen.get(r.ident)
        if c is None or not satisfies(r, c):
            return False
        if r.ident not in mapping:
            mapping[r.ident] = c
            todo.append(c)
        return mapping[r.ident] is c

    for r in roots:
        if not reach(r):
            return None
        root_edges.append((r, r.ident))
    while todo:
        parent = todo.pop()
        out = []
        for r in provider.get_dependencies(parent):
            if not reach(r):
                return None
            out.append((r, r.ident))
        if out:
            edges[parent.ident] = out
    return mapping, root_edges, edges


def _search(provider: Provider, rep: ResolutionReporter, roots: list[Req], budget: Budget, stuck_after: int | None,
            keep_states: int | None) -> Any:
    """One resolvelib pass within the budget's rounds and deadline; returns the final state."""
    target = rep.target
    resolution = IncrementalResolution(provider, rep, stuck_after=stuck_after, keep_states=keep_states,
                                       stuck_work=budget.stuck_work if stuck_after is not None else None)
    left = budget.rounds_left()
    try:
        return resolution.resolve(roots, max_rounds=left)
    except ResolutionTooDeep:
        raise explain.too_deep(rep, target, f"more than {budget.max_rounds} rounds") from None
    except BudgetExceeded:
        raise explain.too_deep(rep, target, f"more than {budget.seconds:g} s") from None
    finally:
        budget.rounds_used += rep.rounds


def _complete(provider: Provider, rep: ResolutionReporter, roots: list[Req], budget: Budget, target: str,
              causes: Any, progress: Reporter) -> tuple[Provider, ResolutionReporter]:
    """The complete search; returns a provider that prefers its assignment, or raises the explanation."""
    from ckpm.resolve import sat

    factory = provider.factory
    progress.update(f"resolving for {target}: complete search")
    try:
        problem = sat.collect(provider, roots)
        answer = sat.solve(problem, deadline=budget.deadline)
    except (BudgetExceeded, sat.OutOfTime):
        raise explain.too_deep(rep, target, f"more than {budget.seconds:g} s", "the complete search") from None
    if answer.assignment is None:
        try:
            # one requirement per candidate, with its own parent, for the explanation
            problem = sat.collect(provider, roots, detailed=True)
            groups = sat.explain(problem, deadline=budget.deadline)
        except (BudgetExceeded, sat.OutOfTime):
            groups = []
        if groups:
            raise explain.from_core(provider, problem, groups, target)
        if causes is not None:
            raise explain.impossible(provider, target, causes)
        raise explain.too_deep(rep, target, f"more than {budget.seconds:g} s", "the explanation of a conflict")
    if answer.stopped_early:
        progress.warning(f"resolving for {target}: the time budget ran out while looking for newer versions; "
                         "the lock is valid but may not hold the newest versions (raise --timeout)")
    factory.preferred = answer.assignment
    confirm = Provider(factory, root_idents=provider.root_idents, confirming=True)
    confirm.reqs_seen = provider.reqs_seen
    return confirm, ResolutionReporter(progress=progress, target=target)


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
                if c.origin is not Origin.HOST:
                    try:
                        p.sources, p.install = provisioning_of(c.entry)
                        p.run = c.entry.program
                    except CkpmError as e:  # a broken recipe, source or program: named with its index
                        where = f"index {c.source.index}" if isinstance(c.source, IndexSource) else c.source.identity()
                        e.message = f"{where}: {e.message}"
                        e.args = (e.message,)
                        raise
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
        p.install = [r for r in p.install if recipe_applies(r, p.targets)]
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
