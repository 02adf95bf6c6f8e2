"""The complete search behind resolvelib: the candidate closure as boolean satisfiability.

When resolvelib's backtracking passes its budget (or says the problem is impossible),
:func:`collect` gathers every candidate reachable from the roots — every version of every
key that some reachable candidate may need, with its requirements on each target — and
:func:`solve` encodes it for a CDCL solver:

* one variable per candidate;
* at most one candidate per key (a native cardinality constraint of the solver);
* a chosen candidate implies one of the candidates that match each of its requirements
  (a requirement nothing matches, such as a name no index has, forbids the candidate);
* each root requirement is satisfied.

The solver is Minicard through PySAT (``python-sat``, prebuilt wheels): MiniSat 2.2
(MIT licence) extended with native at-most-k constraints, incremental, with assumptions,
phases and unsatisfiable cores. It replaced CaDiCaL 1.9.5 because the greedy pass below
makes a few hundred small incremental calls, and on these formulas each of them (and the
first model) came two to four times sooner: one at-most-one constraint per key instead of
a sequential-counter encoding leaves half the clauses and no auxiliary variables to assign.
The preference order is the resolver's (lock pins, then the host, then the newest version):
the first choice of each key gets a positive phase and the others a negative one, then
a greedy pass walks the solution from the roots and gives each key, in breadth-first
order, the most preferred candidate that the keys decided before it leave possible
(:class:`_Greedy`). The assignment is then checked requirement by requirement from the roots
(``resolve.confirm_assignment``, with the checks resolvelib asks); only when one does not hold
does it go back to resolvelib as its first preference, for a confirming pass that decides.

When the formula is unsatisfiable, :func:`explain` re-encodes it with one selector per
requirement group (the project's requirement on a key, or a component's requirement on
another key, shared by the versions that carry it), takes the solver's unsatisfiable
core over the selectors, shrinks it by deletion, and returns the groups: the few
requirements that cannot hold together.

Everything is deterministic: keys and candidates are numbered in a fixed order, the
greedy pass's answer depends on the formula and the preference order only, and the solver
makes no random choices.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterable, Sequence

from ckpm.errors import ResolutionError, UnknownComponent
from ckpm.model.targets import matches as target_matches
from ckpm.resolve.candidates import Candidate, Req
from ckpm.resolve.ranges import RangeView, RunsTable

SOLVER = "minicard"
MAX_CANDIDATES = 500_000  # a closure larger than this is refused rather than encoded
MAX_CORE_SHRINK = 200  # solver calls spent shrinking an unsatisfiable core


class OutOfTime(ResolutionError):
    code = "resolution-budget"


@dataclass
class Group:
    """One requirement text on one key, from the project or from the versions of one key that carry it."""

    parent_ident: str | None  # None: the project
    ident: str  # the key required
    reqs: list[tuple[int, Req]] = field(default_factory=list)  # (parent variable or 0, requirement)
    matches: set[int] = field(default_factory=set)


@dataclass
class Problem:
    """The candidate closure, numbered: variable v is ``cands[v - 1]``."""

    cands: list[Candidate] = field(default_factory=list)
    by_ident: dict[str, list[int]] = field(default_factory=dict)  # preference order after collect()
    deps: dict[int, list[tuple[Req, list[int]]]] = field(default_factory=dict)
    roots: list[tuple[Req, list[int]]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.cands)


def collect(provider: Any, roots: Sequence[Req], *, max_candidates: int = MAX_CANDIDATES,
            detailed: bool = False) -> Problem:
    """Every candidate reachable from ``roots`` with its requirements (raises on the time budget).

    The solver needs, per candidate, only the variables that each of its requirements
    admits; one :class:`Req` per distinct requirement text on a key stands for all the
    candidates that carry it, so ``deps`` holds that representative. ``detailed`` makes one
    Req per candidate and requirement (with its own parent), as an explanation of an
    unsatisfiable closure needs.

    A plain requirement (a range, nothing else) is answered from its key's sorted versions
    (:class:`RangeView`), built once per key, or copied from the one resolvelib's pass
    already built; so is each key's preference order when it is newest first.
    """
    f = provider.factory
    p = Problem()
    queue: deque[tuple[Candidate, int]] = deque()
    plain_views: dict[str, RangeView] = {}  # ident → the view of its plain requirements
    views: dict[tuple[Any, ...], RangeView] = {}  # the others: per what selects their candidates
    sole: dict[str, RangeView | None] = {}  # ident → its only view (None: more than one)
    seen_views: dict[str, Any] = getattr(provider, "_views", {})
    shared: RunsTable = getattr(provider, "range_runs", {})
    var: dict[int, int] = {}  # id(candidate) → its variable (the candidates stay alive in p.cands)
    cands = p.cands
    by_ident = p.by_ident

    def var_of(c: Candidate) -> int:
        v = var.get(id(c))
        if v is None:
            cands.append(c)
            v = var[id(c)] = len(cands)
            by_ident.setdefault(c.ident, []).append(v)
            queue.append((c, v))
            if len(cands) > max_candidates:
                raise ResolutionError(f"the candidate closure has more than {max_candidates} candidates",
                                      hint="narrow the version ranges of the project's dependencies")
        return v

    def new_view(r: Req, reuse: bool) -> RangeView:
        old = seen_views.get(r.ident) if reuse else None
        if old is not None:  # resolvelib's pass built it from the very same candidates
            view = old.fresh()
        else:
            try:
                found = list(f.all_candidates(r.ident, [r]))  # ordered once per key, below
            except UnknownComponent:
                if r.parent is None:
                    raise
                found = []
            view = RangeView(found, r.target, shared)
        sole[r.ident] = view if r.ident not in sole else None
        return view

    def matches(r: Req) -> list[int]:
        q = r.req
        plain = not (q.git or q.tags or q.no_tags)
        if plain and q.index is None and q.prefer is None:
            view = plain_views.get(r.ident)
            if view is None:
                view = plain_views[r.ident] = new_view(r, True)
        else:
            where = (r.ident, q.key, q.git, q.subdir, q.index, q.tags, q.prefer)
            view = views.get(where)
            if view is None:
                view = views[where] = new_view(r, False)
        # keyed by the range (or the whole requirement when tags or git take part), kept alive with its id
        mkey = id(q.spec) if plain else id(q)
        hit = view.memo.get(mkey)
        if hit is not None:
            return hit[1]
        run = view.bounds(q.spec) if plain else None
        if run is not None:  # a run of the sorted versions: their variables, assigned once per view
            lo, hi = run
            known = view.vars
            vs = known[lo:hi]
            if 0 in vs:
                sc = view.sorted_cands
                for i in range(lo, hi):
                    if known[i] == 0:
                        known[i] = var_of(sc[i])
                vs = known[lo:hi]
        else:
            vs = [var_of(c) for c in f.admitted(r, view.cands)]
        view.memo[mkey] = (q.spec if plain else q, vs)
        return vs

    for r in roots:
        p.roots.append((r, matches(r)))
    host_target, main_target = f.host_target, f.main_target
    deps_out = p.deps
    # id(dep) → (Req, variables) of a dependency that applies as it is (not optional, on every
    # target, resolved for the main target) to a candidate for the main target
    memo_main: dict[int, tuple[Req, list[int]]] = {}
    main_get = memo_main.get
    memo: dict[tuple[str, int], tuple[Req, list[int]]] = {}  # (ident, id(dep)) → for the others
    # id(entry.deps) → the edges of a candidate for the main target with that tuple (the tuples
    # stay alive with their entries in p.cands)
    by_deps: dict[int, list[tuple[Req, list[int]]]] = {}
    by_deps_get = by_deps.get
    while queue:
        c, v = queue.popleft()
        f.check_budget()
        if detailed:
            deps_out[v] = [(r, matches(r)) for r in provider.get_dependencies(c)]
            continue
        target = c.target
        deps = c.entry.deps
        if target == main_target:  # the usual case: every dependency seen before, on this target
            hit_all = by_deps_get(id(deps))  # versions of a component often share their tuple
            if hit_all is not None:
                deps_out[v] = hit_all
                continue
            seen = [main_get(id(dep)) for dep in deps]
            if None not in seen:
                deps_out[v] = by_deps[id(deps)] = seen  # type: ignore[assignment]  # (no None in it)
                continue
        out = []
        for dep in deps:
            if dep.optional or (dep.targets and not target_matches(target, dep.targets)):
                continue
            t = host_target if dep.kind == "build" else target
            if t == target == main_target and not dep.targets:  # applies as it is: the fast path's
                hit = main_get(id(dep))
                if hit is None:
                    r = Req.of(dep, t, dep.key, c)
                    hit = memo_main[id(dep)] = (r, matches(r))
            else:
                ident = dep.key if t == main_target else f"{dep.key}@{t}"
                sig = (ident, id(dep))
                hit = memo.get(sig)
                if hit is None:
                    r = Req.of(dep, t, ident, c)
                    hit = memo[sig] = (r, matches(r))
            out.append(hit)
        deps_out[v] = out
        if target == main_target:
            by_deps[id(deps)] = out
    stored = f.stored
    for ident, vs in by_ident.items():  # preference order (the factory's, not memoised: asked once per key)
        view = sole.get(ident)
        if (view is not None and len(vs) == len(view.vars) - view.vars.count(0)
                and view.newest_first_is_preference(stored)):
            vs[:] = [x for x in reversed(view.vars) if x]  # every variable of the key is in this view
            continue
        order = {id(c): i for i, c in enumerate(f.preference_order(cands[v - 1] for v in vs))}
        vs.sort(key=lambda v: order[id(cands[v - 1])])
    return p


class _Formula:
    """Clauses over the problem's variables and one at-most-one constraint per key (native
    cardinality constraints of the solver), plus variables above the candidates' (selectors,
    activation literals)."""

    def __init__(self, p: Problem) -> None:
        self.top = p.size
        self.clauses: list[list[int]] = []
        self.atmost = [p.by_ident[ident] for ident in sorted(p.by_ident) if len(p.by_ident[ident]) > 1]

    def new(self) -> int:
        self.top += 1
        return self.top


class _Minicard:
    """The calls of PySAT's Minicard backend that this module makes, straight on PySAT's C
    extension (``pysolvers``), as the backend makes them: importing ``pysat.solvers`` (8,000
    lines, with ``pysat.formula`` and what they import) cost 63 million instructions, about a
    tenth of a stuck lock's start-up, where ``pysolvers`` costs 11 million."""

    def __init__(self, ps: Any) -> None:
        self._ps = ps
        self.minicard: Any = ps.minicard_new()  # the handle add_clauses hands to minicard_add_cl
        self.status: bool | None = None

    def add_atmost(self, lits: list[int], k: int) -> None:
        if self._ps.minicard_add_am(self.minicard, lits, k) is False:
            self.status = False

    def add_clause(self, clause: list[int]) -> None:
        if self._ps.minicard_add_cl(self.minicard, clause) is False:
            self.status = False

    def solve(self, assumptions: list[int]) -> bool | None:
        self.status = self._ps.minicard_solve(self.minicard, assumptions, int(_main_thread()))
        return self.status

    def solve_limited(self, assumptions: list[int], expect_interrupt: bool = False) -> bool | None:
        self.status = self._ps.minicard_solve_lim(self.minicard, assumptions, int(_main_thread()),
                                                  int(expect_interrupt))
        return self.status

    def get_model(self) -> list[int] | None:
        return self._ps.minicard_model(self.minicard) if self.minicard and self.status is True else None

    def get_core(self) -> list[int] | None:
        return self._ps.minicard_core(self.minicard) if self.minicard and self.status is False else None

    def set_phases(self, literals: list[int]) -> None:
        self._ps.minicard_setphases(self.minicard, literals)

    def interrupt(self) -> None:
        if self.minicard:
            self._ps.minicard_interrupt(self.minicard)

    def delete(self) -> None:
        if self.minicard:
            self._ps.minicard_del(self.minicard)
            self.minicard = None

    @property
    def solver(self) -> "_Minicard":
        """Itself, where add_clauses looks for a PySAT Solver's backend."""
        return self


def _main_thread() -> bool:
    """Whether this is the main thread (PySAT's C side installs its SIGINT handler only there)."""
    return threading.current_thread() is threading.main_thread()


def _new_solver() -> Any:
    """A Minicard solver: on PySAT's C extension when it has every function used, else PySAT's ``Solver``."""
    try:
        import pysolvers  # type: ignore[import-not-found]  # PySAT's C extension

        if all(hasattr(pysolvers, f"minicard_{f}") for f in (
                "new", "add_am", "add_cl", "solve", "solve_lim", "model", "core", "setphases", "interrupt", "del")):
            return _Minicard(pysolvers)
    except ImportError:  # pragma: no cover - PySAT without its bundled solvers
        pass
    from pysat.solvers import Solver  # pragma: no cover

    return Solver(name=SOLVER)  # pragma: no cover


class _Solver:
    """A PySAT solver whose calls all stop at a deadline (one timer thread interrupts it)."""

    def __init__(self, formula: _Formula, deadline: float | None) -> None:
        self.s = _new_solver()
        for xs in formula.atmost:
            self.s.add_atmost(xs, 1)
        add_clauses(self.s, formula.clauses)
        self.deadline = deadline
        self.calls = 0
        self._timer: threading.Timer | None = None
        if deadline is not None:
            self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self.s.interrupt)
            self._timer.daemon = True
            self._timer.start()

    def solve(self, assumptions: Iterable[int] = ()) -> bool:
        self.calls += 1
        if self.deadline is None:
            return bool(self.s.solve(assumptions=list(assumptions)))
        if time.monotonic() >= self.deadline:
            raise OutOfTime("resolution ran past its time budget")
        res = self.s.solve_limited(assumptions=list(assumptions), expect_interrupt=True)
        if res is None:
            raise OutOfTime("resolution ran past its time budget")
        return bool(res)

    def model(self) -> list[int]:
        """The assignment: ``model[v - 1] > 0`` when variable v is true."""
        return self.s.get_model() or []

    def core(self, assumptions: list[int]) -> set[int]:
        """The assumptions of the last unsatisfiable call that its core holds."""
        return set(self.s.get_core() or assumptions)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.s.delete()


def _raw_add(solver: Any) -> Any:
    """A function that adds one clause to ``solver``: Minicard's C function on its handle when
    this PySAT has it (see :func:`add_clauses`), else the solver's ``add_clause``."""
    handle = getattr(getattr(solver, "solver", None), "minicard", None)
    if handle is not None:
        try:
            import pysolvers  # type: ignore[import-not-found]  # PySAT's C extension

            raw = getattr(pysolvers, "minicard_add_cl", None)
        except ImportError:  # pragma: no cover - PySAT without its bundled solvers
            raw = None
        if raw is not None:
            return partial(raw, handle)
    return solver.add_clause


def add_clauses(solver: Any, clauses: Iterable[list[int]]) -> None:
    """Add ``clauses`` to a PySAT ``Solver``: straight to Minicard's C function when this PySAT
    has it, else through ``add_clause``. A conflict graph's closure has some 25,000 clauses,
    and ``add_clause`` passes each through two Python layers (``Solver`` and its backend),
    which took more time than the C side. The C function's answer (False for a clause that
    makes the formula unsatisfiable at once) is what the backend would only store: the next
    ``solve`` finds the same."""
    backend = getattr(solver, "solver", None)
    handle = getattr(backend, "minicard", None)
    raw = None
    if handle is not None:
        try:
            import pysolvers  # type: ignore[import-not-found]  # PySAT's C extension

            raw = getattr(pysolvers, "minicard_add_cl", None)
        except ImportError:  # pragma: no cover - PySAT without its bundled solvers
            raw = None
    if raw is None:
        add = solver.add_clause
        for c in clauses:
            add(c)
        return
    for c in clauses:
        raw(handle, c)


@dataclass
class Answer:
    """A satisfying assignment (ident → candidate) or, when there is none, ``None``."""

    assignment: dict[str, Candidate] | None
    solver_calls: int = 0
    improved: int = 0  # keys whose first preference was impossible and which took a later one
    stopped_early: bool = False  # the greedy pass ran out of time (the assignment is still valid)


def solve(p: Problem, *, deadline: float | None = None) -> Answer:
    """A satisfying assignment, as preferred as a greedy pass makes it; ``assignment=None`` if none."""
    solver = _Solver(_Formula(p), deadline)
    try:
        # the clauses go to the solver as they are made (25,000 on a conflict graph's closure)
        add = _raw_add(solver.s)
        for v, edges in p.deps.items():
            for _r, ms in edges:
                add([-v, *ms])
        for _r, ms in p.roots:
            add(list(ms))
        phases = []
        for ident in sorted(p.by_ident):
            vs = p.by_ident[ident]
            phases.append(vs[0])
            phases.extend(-v for v in vs[1:])
        solver.s.set_phases(phases)
        if not solver.solve():
            return Answer(None, solver.calls)
        answer = Answer({}, 0)
        state = _Greedy(p, solver, solver.model())
        try:
            state.run(answer)
        except OutOfTime:
            answer.stopped_early = True
        answer.assignment = _assignment(p, state.model)
        answer.solver_calls = solver.calls
        return answer
    finally:
        solver.close()


class _Greedy:
    """Walk the solution from the roots, breadth first, and give each key its most preferred
    candidate that the keys decided before it leave possible.

    That is a key-by-key greedy pass, asked in as few *satisfiable* solver calls as it can:
    a satisfiable call must assign every variable (about 0.3 ms on a conflict graph's closure
    of 8,000 candidates), while an unsatisfiable one under assumptions usually stops at the
    first propagation (a few µs). So:

    * the keys waiting in the queue are asked together: one call assumes the first preference
      of each. When that holds, all of them are decided at once, as the key-by-key walk would
      have decided them (each first preference is possible given the ones before it);
    * when it does not, the walk would stop at the first key of the queue whose first
      preference is impossible after those before it. The unsatisfiable core's last key is an
      upper bound; for that key, its candidates are tried in preference order, each assumed
      together with the first preferences before it. The first satisfiable one is its answer
      (and proves the prefix possible). An unsatisfiable try whose core leaves the candidate
      out shows that the prefix alone is impossible: the bound moves down to that core's last
      key and the tries start again there.

    A decided key is fixed with a unit clause and its dependencies join the queue. The
    answer depends only on the preference order and the formula, not on the models met on
    the way (so not on the solver). On four conflict graphs this made 1 satisfiable call per
    key whose first preference is impossible, and 0.06-0.11 s in all where asking "is
    anything better?" key by key took 0.14-0.27 s.
    """

    def __init__(self, p: Problem, solver: _Solver, model: list[int]) -> None:
        self.p = p
        self.solver = solver
        self.model = model
        self.seen: set[str] = set()
        self.todo: deque[str] = deque()

    def queue_deps(self, edges: Any) -> None:
        for r, ms in edges:
            if ms and r.ident not in self.seen:
                self.seen.add(r.ident)
                self.todo.append(r.ident)

    def decide(self, v: int) -> None:
        self.solver.s.add_clause([v])  # decided: never retracted
        self.queue_deps(self.p.deps.get(v, ()))

    def run(self, answer: Answer) -> None:
        by_ident, solver, todo = self.p.by_ident, self.solver, self.todo
        self.queue_deps(self.p.roots)
        while todo:
            batch = list(todo)
            firsts = [by_ident[k][0] for k in batch]
            n = 0  # firsts[:n] hold in the current model
            while n < len(firsts) and self.model[firsts[n] - 1] > 0:
                n += 1
            if n == len(firsts) or solver.solve(firsts):
                if n < len(firsts):
                    self.model = solver.model()
                for v in firsts:
                    todo.popleft()
                    self.decide(v)
                continue
            core = solver.core(firsts)
            i = max(j for j, a in enumerate(firsts) if a in core)
            i, found = self._first_possible(batch, firsts, n, i)
            for v in firsts[:i]:
                todo.popleft()
                self.decide(v)
            todo.popleft()
            self.decide(found)
            answer.improved += 1

    def _first_possible(self, batch: list[str], firsts: list[int], n: int, i: int) -> tuple[int, int]:
        """The position of the first key of ``batch`` whose first preference is impossible after
        the ones before it (at most ``i``, at least ``n``) and its most preferred possible candidate."""
        solver = self.solver
        while True:
            i = max(i, n)  # firsts[:n] hold together (the current model), and firsts[:i + 1] do not
            prefix = firsts[:i]
            lowered = False
            for c in self.p.by_ident[batch[i]][1:]:
                trial = [*prefix, c]
                if solver.solve(trial):
                    self.model = solver.model()
                    return i, c
                core = solver.core(trial)
                if c not in core:  # the prefix alone cannot hold: the walk stops before key i
                    i = max(j for j, a in enumerate(prefix) if a in core)
                    lowered = True
                    break
            if not lowered:
                # no candidate of key i fits after the prefix, so the prefix cannot hold either
                # (a model of it would choose one); its core says where the walk stops
                if i == n or solver.solve(prefix):  # pragma: no cover - the formula says otherwise
                    raise ResolutionError("the complete search lost its way (please report this)")
                core = solver.core(prefix)
                i = max(j for j, a in enumerate(prefix) if a in core)


def _assignment(p: Problem, model: list[int]) -> dict[str, Candidate]:
    out: dict[str, Candidate] = {}
    for ident, vs in p.by_ident.items():
        for v in vs:
            if model[v - 1] > 0:
                out[ident] = p.cands[v - 1]
                break
    return out


def explain(p: Problem, *, deadline: float | None = None) -> list[Group]:
    """A small set of requirement groups that cannot all hold (from an unsatisfiable core)."""
    formula = _Formula(p)
    groups: dict[tuple[str | None, str, Any], Group] = {}
    order: list[tuple[str | None, str, Any]] = []

    def group(parent_ident: str | None, r: Req) -> Group:
        k = (parent_ident, r.ident, r.req)
        g = groups.get(k)
        if g is None:
            g = groups[k] = Group(parent_ident, r.ident)
            order.append(k)
        return g

    clause_groups: list[tuple[Group, list[int]]] = []
    for r, ms in p.roots:
        g = group(None, r)
        g.reqs.append((0, r))
        g.matches.update(ms)
        clause_groups.append((g, list(ms)))
    for v in range(1, p.size + 1):
        c = p.cands[v - 1]
        for r, ms in p.deps.get(v, ()):
            g = group(c.ident, r)
            g.reqs.append((v, r))
            g.matches.update(ms)
            clause_groups.append((g, [-v, *ms]))
    selector: dict[int, Group] = {}
    sel_of: dict[int, int] = {}
    for k in order:
        g = groups[k]
        s = formula.new()
        selector[s] = g
        sel_of[id(g)] = s
    for g, clause in clause_groups:
        formula.clauses.append([-sel_of[id(g)], *clause])
    solver = _Solver(formula, deadline)
    try:
        assumptions = sorted(selector)
        if solver.solve(assumptions):
            return []  # satisfiable: nothing to explain
        core = sorted(set(solver.s.get_core() or assumptions))
        # shrink by deletion: drop a selector when the rest is still unsatisfiable
        i = 0
        while i < len(core) and solver.calls < MAX_CORE_SHRINK:
            trial = core[:i] + core[i + 1:]
            try:
                sat = solver.solve(trial)
            except OutOfTime:
                break
            if sat:
                i += 1
            else:
                smaller = set(solver.s.get_core() or trial)
                core = [s for s in trial if s in smaller]
        return [selector[s] for s in core]
    finally:
        solver.close()

