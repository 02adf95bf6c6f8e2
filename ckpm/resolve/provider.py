"""The resolvelib Provider: it only routes; the factory does the I/O."""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

from resolvelib import AbstractProvider
from resolvelib.reporters import BaseReporter

from ckpm.model.targets import matches
from ckpm.resolve.candidates import Candidate, Req, ident_for
from ckpm.resolve.factory import CandidateFactory
from ckpm.resolve.ranges import RangeView, RunsTable


class Provider(AbstractProvider):
    """Answers resolvelib's questions for one target."""

    def __init__(self, factory: CandidateFactory, *, root_idents: set[str], confirming: bool = False) -> None:
        self.factory = factory
        self.root_idents = root_idents
        # the pass that confirms the complete search's assignment: each key's candidates are
        # read lazily, the assigned one first, so the others are never checked unless the
        # assignment fails (it satisfies every requirement, so that pass never backtracks)
        self.confirming = confirming
        self.reqs_seen: dict[str, list[Req]] = {}
        self.lazy: set[str] = set()  # keys whose candidates are read one git tag at a time
        # the last find_matches per key: (requirements, incompatibilities, preferred, answer)
        self._last: dict[str, tuple[list[Req], set[Candidate], Candidate | None, list[Candidate]]] = {}
        self.is_satisfied_by = factory.satisfies  # type: ignore[method-assign]  # hot: skip one call layer
        self._views: dict[str, RangeView | None] = {}  # per key: its versions sorted (None: not usable)
        self.range_runs: RunsTable = {}  # bounds tables shared by views with the same versions (and by sat)

    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.ident

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> Any:
        """Causes of the last conflict first, then keys the lock pins, then the fewest candidates left.

        Fewest remaining candidates first is what pip and pdm do: a key with one candidate
        left is decided before the choices it constrains. Counting a git key's candidates
        would read every tag's manifest, so those count as many.
        """
        in_causes = any(c.requirement.ident == identifier or (c.parent is not None and c.parent.ident == identifier)
                        for c in backtrack_causes)
        pinned = identifier in self.factory.pins
        if self.confirming:
            left = 0  # every key has its answer: the order does not matter, counting would cost
        else:
            left = 1 << 30 if identifier in self.lazy else sum(1 for _ in candidates[identifier])
        return (not in_causes, not pinned, left, identifier not in self.root_idents, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Any:
        reqs = list(requirements[identifier])
        if not reqs:
            return []
        self.reqs_seen[identifier] = reqs
        bad = set(incompatibilities[identifier])
        f = self.factory
        first = f.preferred.get(identifier)
        git = any(r.req.git for r in reqs)
        if git or (self.confirming and first is not None):
            if git:
                self.lazy.add(identifier)

            def lazy() -> Iterator[Candidate]:
                if first is not None and first not in bad and all(f.satisfies(r, first) for r in reqs):
                    yield first
                found = f.all_candidates(identifier, reqs)
                for c in (found if git else f.ordered(found)):
                    if c != first and c not in bad and all(f.satisfies(r, c) for r in reqs):
                        yield c
            return lazy
        fast = self._by_ranges(identifier, reqs, bad, first)
        if fast is not None:
            self._last[identifier] = (reqs, bad, first, fast)
            return fast
        last = self._last.get(identifier)
        if (last is not None and len(reqs) > len(last[0]) and last[1] == bad and last[2] is first
                and all(a is b for a, b in zip(last[0], reqs))
                and all(r.req.index is None and r.req.prefer is None for r in reqs[len(last[0]):])):
            # resolvelib adds one requirement at a time: filter the previous answer by the new ones
            new = reqs[len(last[0]):]
            out = [c for c in last[3] if all(f.satisfies(r, c) for r in new)]
        else:
            out = [c for c in f.ordered(f.all_candidates(identifier, reqs))
                   if c not in bad and all(f.satisfies(r, c) for r in reqs)]
            if first is not None and out and out[0] != first and first in out:
                out.remove(first)
                out.insert(0, first)
        self._last[identifier] = (reqs, bad, first, out)
        return out

    def _by_ranges(self, identifier: str, reqs: list[Req], bad: set[Candidate],
                   first: Candidate | None) -> list[Candidate] | None:
        """The answer of find_matches from the key's sorted versions, when each requirement is a
        plain range (ckpm.resolve.ranges): the intersection of their runs, newest first. None
        when that cannot answer (the caller then checks every candidate against every
        requirement, which is what this computes)."""
        if any(r.req.git or r.req.tags or r.req.no_tags or r.req.index or r.req.prefer for r in reqs):
            return None
        view = self._views.get(identifier, _UNSEEN)
        if view is _UNSEEN:
            f = self.factory
            found = RangeView(list(f.all_candidates(identifier, reqs)), reqs[0].target, self.range_runs)
            # usable when newest first is the factory's order (for no candidates at all, the
            # factory notes the missing name at each call)
            usable = found.newest_first_is_preference(f.stored)
            view = self._views[identifier] = found if usable else None
        if view is None:
            return None
        lo, hi = 0, len(view.keys)
        for r in reqs:
            run = view.bounds(r.req.spec)
            if run is None:
                return None
            lo, hi = max(lo, run[0]), min(hi, run[1])
        out = view.newest_first(lo, hi)
        if bad:
            out = [c for c in out if c not in bad]
        if first is not None and out and out[0] != first and first in out:
            out.remove(first)
            out.insert(0, first)
        return out

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        return self.factory.satisfies(requirement, candidate)

    def get_dependencies(self, candidate: Candidate) -> Iterable[Req]:
        f = self.factory
        f.check_budget()
        out = []
        for dep in candidate.entry.deps:
            if dep.optional:
                continue
            if not matches(candidate.target, dep.targets):
                continue
            target = f.host_target if dep.kind == "build" else candidate.target
            out.append(Req(dep, target, ident_for(dep.key, target, f.main_target), parent=candidate))
        return out


_UNSEEN: Any = object()


class ResolutionReporter(BaseReporter):
    """Counts rounds and rejections so a stuck resolution can say where it was stuck.

    With ``progress`` (a :class:`ckpm.report.Reporter`), every 100th round updates the
    label of the operation in progress, so a person sees that a long search goes on.
    """

    def __init__(self, progress: Any = None, target: str = "") -> None:
        self.rounds = 0
        self.backtracks = 0
        self.rejections: dict[str, int] = {}
        self.pinned: list[str] = []
        self._progress = progress
        self.target = target

    def starting_round(self, index: int) -> None:
        self.rounds = index + 1
        if self._progress is not None and index % 100 == 0 and index:
            self._progress.update(f"resolving for {self.target}: round {index}, {len(self.pinned)} pinned")

    def rejecting_candidate(self, criterion: Any, candidate: Candidate) -> None:
        self.rejections[candidate.ident] = self.rejections.get(candidate.ident, 0) + 1

    def resolving_conflicts(self, causes: Any) -> None:
        self.backtracks += 1

    def pinning(self, candidate: Candidate) -> None:
        self.pinned.append(candidate.ident)

    def hot_spots(self, n: int = 5) -> list[tuple[str, int]]:
        return sorted(self.rejections.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
