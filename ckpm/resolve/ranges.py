"""A key's candidates sorted by version, so that a version range is a run found by bisection.

The complete search (``sat.collect``) asks, for every requirement of every candidate of a
closure, which candidates of the required key it admits (150,000 pairs on a conflict
graph), and resolvelib's first pass asks the provider the same for every key it meets.
When a key's candidates are ordinary index versions, a range of ``>=``, ``>``, ``<`` and
``<=`` clauses admits exactly a run of them in version order: two bisections per clause
instead of a check of every candidate. Anything else answers None, and the caller checks
candidate by candidate (``CandidateFactory.admitted`` / ``satisfies``), which stays the
definition: ``tests/test_resolve_sat.py`` holds the two to the same answers.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import attrgetter
from typing import Any

from ckpm.resolve.candidates import ORIGIN_INDEX, Candidate
from ckpm.resolve.factory import ANY_TARGET

THRESHOLD_OPS = frozenset((">=", ">", "<", "<="))
_SORT_KEY = attrgetter("version.sort_key")  # ckpm.model.version.Version.sort_key
#: (simple, sorted version keys) → that list's bounds table (``RangeView.runs``)
RunsTable = dict[tuple[bool, tuple[Any, ...]], dict[int, tuple[Any, "tuple[int, int] | None"]]]


class RangeView:
    """One key's candidates for one target, with the versions sorted for range lookups.

    ``simple`` when every candidate is an ordinary index version (no pre-release, no local
    part, not locked, not from the host or git): then :meth:`bounds` answers. ``clean``
    when, besides, they all carry one name and no version twice: then the preference order
    (newest first) is the sorted order reversed, and :meth:`newest_first` gives a run in it.
    """

    __slots__ = ("cands", "simple", "clean", "keys", "sorted_cands", "vars", "memo", "runs")

    def __init__(self, cands: list[Candidate], target: str, shared: RunsTable | None = None) -> None:
        self.cands = cands
        self.memo: dict[int, tuple[Any, list[int]]] = {}  # id(spec) → (spec, variables it admits), for sat
        simple = all(c.origin is ORIGIN_INDEX and not c.locked and c.version.plain for c in cands)
        self.simple = simple
        self.clean = False
        self.keys: list[Any] = []
        self.sorted_cands: list[Candidate] = []
        if simple:
            ok = [c for c in cands
                  if (c.entry.targets == ANY_TARGET or c.entry.supports(target)) and not c.entry.yanked]
            ok.sort(key=_SORT_KEY)  # bisection compares what packaging compares, as tuples in C
            self.sorted_cands = ok
            self.keys = [c.version.sort_key for c in ok]
            self.clean = (len({c.name for c in cands}) <= 1
                          and len({c.version.text for c in cands}) == len({c.version for c in cands}) == len(cands))
        # id(spec) → (spec, bounds); the answer depends on the sorted versions only, so views with
        # the same versions (most keys of a generated or a real ecosystem share a few lists)
        # share one table through ``shared``
        self.runs: dict[int, tuple[Any, tuple[int, int] | None]] = (
            {} if shared is None else shared.setdefault((simple, tuple(self.keys)), {}))
        self.vars = [0] * len(self.sorted_cands)  # each sorted candidate's variable, 0 until it has one

    def fresh(self) -> "RangeView":
        """The same view with no variables and no answers of the complete search (cheap: the
        candidates, their order and the bounds table are shared)."""
        v = RangeView.__new__(RangeView)
        v.cands, v.simple, v.clean, v.keys, v.sorted_cands, v.runs = (
            self.cands, self.simple, self.clean, self.keys, self.sorted_cands, self.runs)
        v.memo = {}
        v.vars = [0] * len(self.sorted_cands)
        return v

    def newest_first_is_preference(self, stored: frozenset[tuple[str, str, str]]) -> bool:
        """Whether the factory's preference order of these candidates is newest first, so that
        :meth:`newest_first` gives it: ``clean``, some candidates, and none already built in
        the store (the factory prefers those; a host candidate makes the view not simple)."""
        return bool(self.clean and self.cands and not (
            stored and any((c.name, c.version.text, c.target) in stored for c in self.cands)))

    def admitted(self, spec: Any) -> list[Candidate] | None:
        """The candidates ``spec`` admits, oldest first; None when this view cannot tell by bisection."""
        run = self.bounds(spec)
        return None if run is None else self.sorted_cands[run[0]:run[1]]

    def newest_first(self, lo: int, hi: int) -> list[Candidate]:
        """``sorted_cands[lo:hi]``, newest first (the factory's preference order when ``clean``)."""
        return self.sorted_cands[lo:hi][::-1] if lo < hi else []

    def bounds(self, spec: Any) -> tuple[int, int] | None:
        """The run ``sorted_cands[lo:hi]`` that ``spec`` admits; None when bisection cannot tell."""
        hit = self.runs.get(id(spec))
        if hit is not None:
            return hit[1]
        run = self._bounds(spec)
        self.runs[id(spec)] = (spec, run)  # the spec kept alive with its id
        return run

    def _bounds(self, spec: Any) -> tuple[int, int] | None:
        if not self.simple:
            return None
        keys = self.keys
        lo, hi = 0, len(keys)
        for clause in spec.clauses:
            op = clause.op
            if op not in THRESHOLD_OPS or clause.wildcard:
                return None
            b = clause.version.sort_key
            if op == ">=":
                lo = max(lo, bisect_left(keys, b))
            elif op == ">":
                lo = max(lo, bisect_right(keys, b))
            elif op == "<":
                hi = min(hi, bisect_left(keys, b))
            else:
                hi = min(hi, bisect_right(keys, b))
        return (lo, hi) if lo < hi else (0, 0)
