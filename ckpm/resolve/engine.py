"""resolvelib's resolution loop, with the set of unsatisfied keys kept incrementally.

resolvelib's ``Resolution.resolve`` starts every round by asking, for every key it
knows, whether the current pin still satisfies every requirement on it, and then
takes the minimum preference over all unsatisfied keys. Both are linear in the number
of keys, so a closure of n packages costs O(n²) checks: 10.8 million
``_is_current_pin_satisfying`` calls and 2.4 million preference calls for a
2,900-package lock (cProfile: 66 of 73 s).

:class:`IncrementalResolution` runs the same algorithm with the same pins, the same
backjumping (optimistic included) and the same reporter calls, but it knows which
keys a round can change: a successful pin only adds requirements to the keys its
candidate depends on, so only those (and the pinned key) are checked again, and the
preferences of unpinned keys live in a heap that is updated for those keys only.
After anything that rewrites the state wholesale (a backjump, a rollback, removed
information) it recomputes everything, as resolvelib does every round.

It reuses resolvelib's own steps (``_attempt_to_pin_criterion``, ``_backjump``,
``_patch_criteria``…), which are private: ``pyproject.toml`` pins resolvelib to the
minor release this was written against, and ``tests/test_resolve_engine.py`` compares
this loop with resolvelib's on graphs with backtracking.
"""
from __future__ import annotations

import heapq
import operator
from typing import Any, Iterable

from resolvelib.resolvers import Criterion, RequirementsConflicted, ResolutionImpossible, ResolutionTooDeep
from resolvelib.resolvers import Result
from resolvelib.resolvers.resolution import Resolution, State
from resolvelib.structs import DirectedGraph, IteratorMapping, build_iter_view


class Stuck(Exception):
    """The search passed its backtrack budget: time for the complete solver."""

    def __init__(self, rounds: int, backtracks: int) -> None:
        super().__init__(f"{backtracks} backtracks in {rounds} rounds")
        self.rounds = rounds
        self.backtracks = backtracks


class IncrementalResolution(Resolution):  # type: ignore[type-arg]
    """resolvelib's Resolution with an incremental unsatisfied set (see the module docstring)."""

    def __init__(self, provider: Any, reporter: Any, *, stuck_after: int | None = None,
                 keep_states: int | None = None, stuck_work: int | None = None) -> None:
        super().__init__(provider, reporter)
        self.stuck_after = stuck_after
        # each backjump rewrites the state and rechecks every key: its cost grows with the
        # closure, so a large graph is also stuck after fewer backtracks (keys × backtracks)
        self.stuck_work = stuck_work
        self.work = 0
        self.keep_states = keep_states
        self.forgot = False  # older states were dropped: a backjump past them means Stuck
        self.backtracks = 0
        self._touched: list[Any] = []
        self._unsat: set[Any] = set()
        self._pref: dict[Any, Any] = {}
        self._heap: list[tuple[Any, Any]] = []

    # -- bookkeeping ----------------------------------------------------------------------
    def _push_new_state(self) -> None:
        """resolvelib keeps one full copy of the state per pin: O(n²) memory for n pins.

        With ``keep_states``, only that many recent states are kept; a backjump that
        would need an older one raises Stuck instead (the complete search is the answer
        to a search that deep), and never a false ResolutionImpossible.
        """
        super()._push_new_state()
        if self.keep_states is not None and len(self._states) > self.keep_states:
            del self._states[0]
            self.forgot = True

    def _patch_criteria(self, incompatibilities_from_broken: list[tuple[Any, list[Any]]]) -> bool:
        """resolvelib's step, with each key's incompatibilities kept free of duplicates.

        resolvelib appends a key's known incompatibilities to those carried over from the
        broken state at every backjump, so the lists double again and again: on a
        2,000-component graph, 201 backjumps left lists of 80,000 entries for keys with 20
        candidates, and 675 million hash calls. A candidate is incompatible or not, so each
        appears once here.
        """
        for k, incompatibilities in incompatibilities_from_broken:
            if not incompatibilities:
                continue
            try:
                criterion = self.state.criteria[k]
            except KeyError:
                continue
            merged = list(dict.fromkeys([*incompatibilities, *criterion.incompatibilities]))
            matches = self._p.find_matches(
                identifier=k,
                requirements=IteratorMapping(self.state.criteria, operator.methodcaller("iter_requirement")),
                incompatibilities=IteratorMapping(
                    self.state.criteria, operator.attrgetter("incompatibilities"), {k: incompatibilities}),
            )
            candidates = build_iter_view(matches)
            if not candidates:
                return False
            self.state.criteria[k] = Criterion(candidates=candidates, information=list(criterion.information),
                                               incompatibilities=merged)
        return True

    def _backjump(self, causes: Any) -> bool:
        try:
            ok = super()._backjump(causes)
        except ResolutionImpossible:
            if self.forgot:
                raise Stuck(0, self.backtracks) from None
            raise
        if not ok and self.forgot:
            raise Stuck(0, self.backtracks)
        return bool(ok)

    def _get_updated_criteria(self, candidate: Any) -> dict[Any, Criterion]:  # type: ignore[type-arg]
        criteria = self.state.criteria.copy()
        touched = []
        for requirement in self._p.get_dependencies(candidate=candidate):
            self._add_to_criteria(criteria, requirement, parent=candidate)
            touched.append(self._p.identify(requirement_or_candidate=requirement))
        self._touched = touched
        return criteria

    def _is_current_pin_satisfying(self, name: Any, criterion: Any) -> bool:
        """resolvelib's check, without a generator and keyword arguments per requirement: it runs
        for every key after every backjump (66,000 requirement checks on a conflict graph)."""
        pin = self.state.mapping.get(name)
        if pin is None:
            return False
        satisfied = self._p.is_satisfied_by
        for info in criterion.information:
            if not satisfied(info.requirement, pin):
                return False
        return True

    def _recheck(self, name: Any) -> None:
        criteria = self.state.criteria
        if self._is_current_pin_satisfying(name, criteria[name]):
            self._unsat.discard(name)
            self._pref.pop(name, None)
            return
        self._unsat.add(name)
        pref = self._get_preference(name)
        if self._pref.get(name) != pref:
            self._pref[name] = pref
            heapq.heappush(self._heap, (pref, name))

    def _recompute(self) -> None:
        criteria = self.state.criteria
        self._unsat = {k for k, c in criteria.items() if not self._is_current_pin_satisfying(k, c)}
        self._pref = {k: self._get_preference(k) for k in self._unsat}
        self._heap = [(p, k) for k, p in self._pref.items()]
        heapq.heapify(self._heap)

    def _best(self) -> Any:
        heap = self._heap
        while heap:
            pref, name = heap[0]
            if name in self._unsat and self._pref.get(name) == pref:
                return name
            heapq.heappop(heap)
        # every heap entry was stale: rebuild from the set (does not happen in practice)
        self._recompute()
        return heap[0][1]

    # -- the loop -------------------------------------------------------------------------
    def resolve(self, requirements: Iterable[Any], max_rounds: int) -> State:  # type: ignore[type-arg]
        if self._states:
            raise RuntimeError("already resolved")
        self._r.starting()
        # a plain dict, not resolvelib's OrderedDict: popitem() is LIFO all the same, and a
        # copy per pin costs a third as much (a 3,000-package lock copies it 3,000 times)
        self._states = [State(mapping={}, criteria={}, backtrack_causes=[])]
        for r in requirements:
            try:
                self._add_to_criteria(self.state.criteria, r, parent=None)
            except RequirementsConflicted as e:
                raise ResolutionImpossible(e.criterion.information) from e
        self._push_new_state()
        self._recompute()

        optimistic_rounds_cutoff: int | None = None
        optimistic_start: int | None = None
        for round_index in range(max_rounds):
            self._r.starting_round(index=round_index)
            if self._optimistic_backjumping_ratio and self._save_states is not None:
                if optimistic_start is None:
                    optimistic_start = round_index
                    optimistic_rounds_cutoff = int((max_rounds - round_index) * self._optimistic_backjumping_ratio)
                    if optimistic_rounds_cutoff <= 0:
                        self._rollback_states()
                        self._recompute()
                        continue
                elif optimistic_rounds_cutoff is not None and round_index - optimistic_start >= optimistic_rounds_cutoff:
                    self._rollback_states()
                    self._recompute()
                    continue

            if not self._unsat:
                self._r.ending(state=self.state)
                return self.state

            name = self._best()
            failure_criterion = self._attempt_to_pin_criterion(name)
            if failure_criterion:
                causes = self._extract_causes(failure_criterion)
                self._r.resolving_conflicts(causes=causes)
                self.backtracks += 1
                self.work += len(self.state.criteria)
                if ((self.stuck_after is not None and self.backtracks > self.stuck_after)
                        or (self.stuck_work is not None and self.work > self.stuck_work)):
                    raise Stuck(round_index + 1, self.backtracks)
                try:
                    success = self._backjump(causes)
                except ResolutionImpossible:
                    if self._optimistic_backjumping_ratio and self._save_states:
                        failed_optimistic = True
                    else:
                        raise
                else:
                    failed_optimistic = bool(not success and self._optimistic_backjumping_ratio and self._save_states)
                if failed_optimistic and self._save_states:
                    self._rollback_states()
                else:
                    self.state.backtrack_causes[:] = causes
                    if not success:
                        raise ResolutionImpossible(self.state.backtrack_causes)
                self._recompute()
            else:
                criteria = self.state.criteria
                changed = [k for k in dict.fromkeys(self._touched) if k != name]
                newly_unsatisfied = {
                    k for k in changed
                    if k not in self._unsat and k in self.state.mapping
                    and not self._is_current_pin_satisfying(k, criteria[k])
                }
                if newly_unsatisfied:
                    self._remove_information_from_criteria(criteria, newly_unsatisfied)
                    self._push_new_state()
                    self._recompute()
                else:
                    self._push_new_state()
                    self._recheck(name)
                    for k in changed:
                        self._recheck(k)
            self._r.ending_round(index=round_index, state=self.state)
        raise ResolutionTooDeep(max_rounds)


def build_result(state: State) -> Result:  # type: ignore[type-arg]
    """resolvelib's result (mapping, graph, criteria) of a finished state, without recursion.

    Keeps only the keys that a chain of pinned parents connects to the roots, as
    resolvelib does; walking the chain iteratively keeps deep graphs (thousands of
    levels) clear of Python's recursion limit.
    """
    mapping = state.mapping
    key_of: dict[int, Any] = {id(v): k for k, v in mapping.items()}
    children: dict[Any, list[Any]] = {}
    for key, criterion in state.criteria.items():
        for p in criterion.iter_parent():
            pkey = None if p is None else key_of.get(id(p), _UNPINNED)
            if pkey is not _UNPINNED:
                children.setdefault(pkey, []).append(key)
    connected: set[Any] = {None}
    todo = [None]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in connected:
                connected.add(child)
                todo.append(child)
    graph: DirectedGraph = DirectedGraph()  # type: ignore[type-arg]
    graph.add(None)
    for parent in sorted(connected, key=lambda k: (k is not None, str(k))):
        for child in children.get(parent, ()):
            if child in connected:
                if child not in graph:
                    graph.add(child)
                if parent not in graph:
                    graph.add(parent)
                graph.connect(parent, child)
    return Result(mapping={k: v for k, v in mapping.items() if k in connected}, graph=graph, criteria=state.criteria)


_UNPINNED = object()
