"""``ckpm tune``: search a space of run variants for the best trade-offs between objectives.

The search only proposes points; evaluating one is someone else's function
(``evaluate(request) -> record``, ckpm/pipeline/run.py on this machine, or a Dask executor),
so this module knows nothing of compilers or programs. Strategies:

- ``random``: ``budget`` distinct points drawn without replacement, one batch.
- ``evolution``: a small elitist evolutionary search. A first generation of random points;
  then each generation's parents are the best points measured so far (Pareto rank first,
  then the sum of each objective's rank), children are made by uniform crossover of two
  parents chosen by tournament, then mutated (each coordinate with probability
  1/dimensions, at least one); a child already tried is drawn again, and after a few tries
  replaced by a random point not yet tried.

Both never evaluate a point twice and stop after ``budget`` evaluations (or when the space is
exhausted). Proposals are made in batches whose content depends only on the seed and on the
results of earlier batches, gathered in proposal order — never on which evaluation finished
first — so a run is deterministic for a seed when the evaluations are, whatever ``jobs`` or
the executor. A point whose evaluation raised a CkpmError is recorded as failed (``ok``
false, the error kept) and the search goes on; an ok record that lacks an objective stops the
search with a clear error (a misspelt ``--objectives`` should not cost a whole budget).

The frontier is the set of ok points not dominated over the objectives' medians, each
objective minimised or maximised as its record says (``metrics[NAME]["better"]``).
"""
from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ckpm.experiment import results
from ckpm.errors import CkpmError
from ckpm.experiment.executor import Evaluate, Executor, LocalExecutor, Outcome, Record
from ckpm.experiment.space import Point, Space

STRATEGIES = ("random", "evolution")
MAX_BUDGET = 10_000
RECORD_FORMAT = 1


class TuneError(CkpmError):
    """A tuning run that cannot start or go on (bad options, a missing objective)."""

    code = "tune"


@dataclass
class TuneResult:
    """Every point tried (its record, in proposal order) and the Pareto frontier."""

    objectives: list[str]
    strategy: str
    seed: int
    budget: int
    space_size: int
    records: list[Record] = field(default_factory=list)
    frontier: list[Record] = field(default_factory=list)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if not r.get("ok")]

    def to_dict(self, slim: bool = True) -> dict[str, Any]:
        """Plain data for ``--json``; ``slim`` leaves out each record's lock and stages."""
        def s(r: Record) -> Record:
            return {k: v for k, v in r.items() if k not in ("lock", "stages")} if slim else r

        return {"objectives": self.objectives, "strategy": self.strategy, "seed": self.seed, "budget": self.budget,
                "space_size": self.space_size, "evaluated": len(self.records), "failed": len(self.failed),
                "frontier": [s(r) for r in self.frontier], "records": [s(r) for r in self.records]}


# -- objectives and the frontier ----------------------------------------------------------------

def objective_vector(record: Mapping[str, Any], objectives: Sequence[str]) -> tuple[float, ...] | None:
    """The record's medians of ``objectives``, negated where higher is better (so that smaller
    is better throughout); None when the record failed or lacks one of them (NaN included)."""
    if not record.get("ok"):
        return None
    v = results.objective_vector(record, objectives)
    return None if v is None or any(math.isnan(x) for x in v) else v


dominates = results.dominates


def non_dominated(items: Sequence[tuple[tuple[float, ...], Any]]) -> list[tuple[tuple[float, ...], Any]]:
    """The items whose vectors no other item's vector dominates (results.pareto), sorted by
    vector (stable)."""
    keep = set(results.pareto([v for v, _ in items]))
    return [items[i] for i in sorted(keep, key=lambda i: (items[i][0], i))]


def pareto_frontier(records: Sequence[Record], objectives: Sequence[str]) -> list[Record]:
    """The ok records not dominated over ``objectives`` (records without them left out)."""
    items = [(v, r) for r in records if (v := objective_vector(r, objectives)) is not None]
    return [r for _, r in non_dominated(items)]


def _ranked(entries: Sequence[tuple[tuple[float, ...], int]], k: int) -> list[int]:
    """The best ``k`` entries (vector, point index): front by front; within a front by the sum
    of each objective's rank among all entries, then by index (deterministic)."""
    if not entries:
        return []
    n_obj = len(entries[0][0])
    rank_sum: dict[int, int] = {idx: 0 for _, idx in entries}
    for j in range(n_obj):
        for pos, (_, idx) in enumerate(sorted(entries, key=lambda e: (e[0][j], e[1]))):
            rank_sum[idx] += pos
    left = list(entries)
    out: list[int] = []
    while left and len(out) < k:
        front = non_dominated(left)
        ids = {idx for _, idx in front}
        out.extend(sorted(ids, key=lambda i: (rank_sum[i], i)))
        left = [e for e in left if e[1] not in ids]
    return out[:k]


# -- the search -------------------------------------------------------------------------------

class _Search:
    """The state of one tuning run: what was proposed, what each point gave."""

    def __init__(self, space: Space, executor: Executor, objectives: list[str], base: Mapping[str, Any] | None,
                 meta: dict[str, Any], on_record: Callable[[Record], None] | None) -> None:
        self.space = space
        self.executor = executor
        self.objectives = objectives
        self.base = base
        self.meta = meta
        self.on_record = on_record
        self.seen: set[int] = set()
        self.records: list[Record] = []
        self.scored: list[tuple[tuple[float, ...], int]] = []  # (objective vector, point index) of ok points

    def evaluate(self, indices: Sequence[int], generation: int) -> None:
        """Evaluate a batch of new points; records kept in proposal order."""
        points = [self.space.point_at(i) for i in indices]
        for i in indices:
            assert i not in self.seen, "a point proposed twice"
            self.seen.add(i)
        requests = [self.space.request(p, self.base) for p in points]
        slots: list[Record | None] = [None] * len(points)
        first = len(self.records)
        try:
            with contextlib.closing(self.executor.run(requests)) as outcomes:  # type: ignore[type-var]
                for out in outcomes:
                    rec = self._record(out, points[out.index], requests[out.index],
                                       {**self.meta, "n": first + out.index + 1, "generation": generation})
                    slots[out.index] = rec
                    if self.on_record is not None:
                        self.on_record(rec)
                    if rec.get("ok"):
                        self._check_objectives(rec)
        finally:  # what was measured is kept, also when the batch stopped early
            for i, got in zip(indices, slots):
                if got is None:
                    continue
                self.records.append(got)
                v = objective_vector(got, self.objectives)
                if v is not None:
                    self.scored.append((v, i))

    def _record(self, out: Outcome, point: Point, request: dict[str, Any], meta: dict[str, Any]) -> Record:
        rec: Record = dict(out.record or {})
        if out.error is not None or not out.record:
            rec.setdefault("format", RECORD_FORMAT)
            rec.setdefault("metrics", {})
            rec.setdefault("repetitions", [])
            rec.setdefault("request", request)
            rec["ok"] = False
            if out.error is not None:
                rec["error"] = out.error.to_dict()
        rec["point"] = dict(point)
        rec["tune"] = meta
        return rec

    def _check_objectives(self, rec: Record) -> None:
        metrics = rec.get("metrics") or {}
        missing = [m for m in self.objectives if not isinstance(metrics.get(m), Mapping)
                   or not isinstance(metrics[m].get("median"), (int, float))]
        if missing:
            raise TuneError(f"the program measures no {', '.join(missing)}: it cannot be an objective",
                            hint="its metrics: " + (", ".join(sorted(metrics)) or "none"))

    def unseen_random(self, rng: random.Random, taken: set[int]) -> int | None:
        """A random index not tried nor taken, or None when none is left."""
        size = self.space.size
        used = len(self.seen) + len(taken)
        if used >= size:
            return None
        if used < size // 2:
            while True:
                i = rng.randrange(size)
                if i not in self.seen and i not in taken:
                    return i
        left = [i for i in range(size) if i not in self.seen and i not in taken]
        return rng.choice(left)


def tune(space: Space, evaluate: Evaluate | None, *, objectives: Sequence[str], budget: int,
         strategy: str = "random", jobs: int = 1, executor: Executor | None = None, seed: int = 0,
         on_record: Callable[[Record], None] | None = None, base: Mapping[str, Any] | None = None,
         population: int | None = None) -> TuneResult:
    """Search ``space`` for ``budget`` evaluations; every record, and the frontier.

    ``evaluate(request) -> record`` runs a point on this machine, ``jobs`` at a time; or give an
    ``executor`` (a :class:`~ckpm.experiment.executor.DaskExecutor`), which then evaluates
    instead. ``on_record`` is called with each record as it arrives, in this thread (the CLI
    saves it there). ``base`` is the request each point starts from, before the space's
    ``[run]``. ``population`` is the evolutionary search's generation size (default: a fifth of
    the budget, from 4 to 32); it never depends on ``jobs``, so results do not either.
    """
    objectives = list(objectives)
    if not objectives or len(set(objectives)) != len(objectives) or not all(isinstance(o, str) and o
                                                                           for o in objectives):
        raise TuneError(f"objectives must be distinct metric names (got {', '.join(map(str, objectives)) or 'none'})")
    if strategy not in STRATEGIES:
        raise TuneError(f"no tuning strategy {strategy!r}", hint=f"strategies: {', '.join(STRATEGIES)}")
    if not isinstance(budget, int) or isinstance(budget, bool) or not 1 <= budget <= MAX_BUDGET:
        raise TuneError(f"the budget must be a whole number of evaluations from 1 to {MAX_BUDGET:,}")
    if executor is None:
        if evaluate is None:
            raise TuneError("nothing to evaluate the points with: give evaluate or an executor")
        executor = LocalExecutor(evaluate, jobs)
    rng = random.Random(seed)
    result = TuneResult(objectives, strategy, seed, budget, space.size)
    meta = {"strategy": strategy, "seed": seed, "objectives": objectives}
    search = _Search(space, executor, objectives, base, meta, on_record)
    try:
        if strategy == "random":
            search.evaluate(rng.sample(range(space.size), min(budget, space.size)), 0)
        else:
            _evolution(search, rng, budget, population)
    finally:
        result.records = search.records
        result.frontier = pareto_frontier(search.records, objectives)
    return result


def _evolution(search: _Search, rng: random.Random, budget: int, population: int | None) -> None:
    space = search.space
    size = space.size
    pop = population if population is not None else min(32, max(4, budget // 5))
    if not isinstance(pop, int) or pop < 2:
        raise TuneError("the population must be at least 2")
    search.evaluate(rng.sample(range(size), min(pop, budget, size)), 0)
    generation = 0
    while len(search.records) < budget and len(search.seen) < size:
        generation += 1
        n = min(pop, budget - len(search.records), size - len(search.seen))
        parents = [space.point_at(i) for i in _ranked(search.scored, max(2, pop // 2))]
        taken: set[int] = set()
        batch: list[int] = []
        while len(batch) < n:
            child: int | None = None
            if parents:
                for _ in range(20):
                    a = parents[min(rng.randrange(len(parents)), rng.randrange(len(parents)))]
                    b = parents[min(rng.randrange(len(parents)), rng.randrange(len(parents)))]
                    i = space.index_of(space.mutate(space.crossover(a, b, rng), rng))
                    if i not in search.seen and i not in taken:
                        child = i
                        break
            if child is None:
                child = search.unseen_random(rng, taken)
                if child is None:
                    break
            taken.add(child)
            batch.append(child)
        if not batch:
            break
        search.evaluate(batch, generation)
