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
from typing import Any

from ckpm.resolve.candidates import Candidate
from ckpm.resolve.factory import ANY_TARGET
THRESHOLD_OPS = frozenset((">=", ">", "<", "<="))


def order_key(pv: Any) -> Any:
    """What ``packaging.version.Version`` compares (its ``_key`` tuple), so that sorting and
    bisection compare tuples in C instead of calling ``Version.__lt__`` (73,000 calls on a
    conflict graph's closure); the Version itself if a packaging release has no such tuple."""
    k = getattr(pv, "_key", None)
    return k if type(k) is tuple else pv


class RangeView:
    """One key's candidates for one target, with the versions sorted for range lookups.

    ``simple`` when every candidate is an ordinary index version (no pre-release, no local
    part, not locked, not from the host or git): then :meth:`bounds` answers. ``clean``
    when, besides, they all carry one name and no version twice: then the preference order
    (newest first) is the sorted order reversed, and :meth:`newest_first` gives a run in it.
    """

    __slots__ = ("cands", "simple", "clean", "keys", "sorted_cands", "vars", "memo", "runs")

    def __init__(self, cands: list[Candidate], target: str) -> None:
        self.cands = cands
        self.memo: dict[int, tuple[Any, list[int]]] = {}  # id(spec) → (spec, variables it admits), for sat
        self.runs: dict[int, tuple[Any, tuple[int, int] | None]] = {}  # id(spec) → (spec, bounds)
        simple = all(c.origin == "index" and not c.locked and not c.version.key.is_prerelease
                     and c.version.key.local is None for c in cands)
        self.simple = simple
        self.clean = False
        self.keys: list[Any] = []
        self.sorted_cands: list[Candidate] = []
        if simple:
            ok = [c for c in cands
                  if (c.entry.targets == ANY_TARGET or c.entry.supports(target)) and not c.entry.yanked]
            ok.sort(key=lambda c: order_key(c.version.key))
            self.sorted_cands = ok
            self.keys = [order_key(c.version.key) for c in ok]
            self.clean = (len({c.name for c in cands}) <= 1
                          and len({c.version.text for c in cands}) == len({c.version for c in cands}) == len(cands))
        self.vars = [0] * len(self.sorted_cands)  # each sorted candidate's variable, 0 until it has one

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
            b = order_key(clause.version.key)
            if op == ">=":
                lo = max(lo, bisect_left(keys, b))
            elif op == ">":
                lo = max(lo, bisect_right(keys, b))
            elif op == "<":
                hi = min(hi, bisect_left(keys, b))
            else:
                hi = min(hi, bisect_right(keys, b))
        return (lo, hi) if lo < hi else (0, 0)
