"""The range lookups of the complete search and the provider agree with the factory's per-candidate checks.

``ckpm.resolve.ranges.RangeView`` answers "which candidates does this range admit?" by bisection
over a key's sorted versions. These tests build real index folders and compare, for many
ranges, its answer with :meth:`CandidateFactory.admitted` (which checks every candidate),
including the cases where bisection must step aside (pre-releases, local versions, yanked
and target-restricted versions, wildcards, pins of a lock).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ckpm.index import open_index
from ckpm.index.writer import init_index, write_component
from ckpm.model.requirement import Requirement
from ckpm.model.version import parse_specifier
from ckpm.resolve.candidates import Req
from ckpm.resolve.factory import CandidateFactory, Pin
from ckpm.resolve.ranges import RangeView

TARGET = "linux-x86_64"

RANGES = [
    "*", ">=1.0", ">1.0", "<2", "<=2.0", ">=1.0.1,<1.2", ">1.1,<=3.0.0", ">=9", "<0.1", ">=1.0,<1.0",
    ">=2.0.0,<2.0.1", "==2.0", "!=2.0", "==1.*", "~=1.1", "^1.0", "~1.1.0", ">=1.0.0.post1", "<2.0rc1",
    ">=1.1,<3,!=2.0", "===1.1",
]


def _index(tmp_path: Path, versions: list[dict[str, Any]]) -> Any:
    root = tmp_path / "index"
    init_index(root, "t")
    entries = []
    for v in versions:
        e = {"name": "lib-a", "kind": "lib", "deps": [], "targets": ["*"], "source": {}, "yanked": False}
        e.update(v)
        entries.append(e)
    write_component(root, entries)
    return open_index(str(root))


def _compare(f: CandidateFactory, ranges: list[str]) -> list[str]:
    first = Req(Requirement("lib-a"), TARGET, "lib-a")
    cands = list(f.all_candidates("lib-a", [first]))
    view = RangeView(cands, TARGET)
    checked = []
    for text in ranges:
        r = Req(Requirement("lib-a", spec=parse_specifier(text)), TARGET, "lib-a")
        want = sorted(c.version.text for c in f.admitted(r, cands))
        got = view.admitted(r.req.spec)
        if got is not None:
            assert sorted(c.version.text for c in got) == want, text
            checked.append(text)
    return checked


def test_bisection_agrees_with_the_factory_on_plain_versions(tmp_path: Path) -> None:
    versions = ["1.0", "1.0.0.post1", "1.0.1", "1.1", "1.1.5", "1.2.0", "2.0", "2.0.0.post2", "2.0.1", "3.0.0",
                "10.0"]
    idx = _index(tmp_path, [{"version": v} for v in reversed(versions)])  # file order need not be sorted
    f = CandidateFactory([idx], main_target=TARGET, host_target=TARGET)
    checked = _compare(f, RANGES)
    # every range of >=, >, <, <= clauses took the bisection; the others stepped aside
    assert ">=1.0.1,<1.2" in checked and ">1.1,<=3.0.0" in checked and ">=1.0.0.post1" in checked
    assert "==2.0" not in checked and "~=1.1" not in checked and "==1.*" not in checked


def test_yanked_and_target_restricted_versions_are_left_out_by_the_view_too(tmp_path: Path) -> None:
    idx = _index(tmp_path, [{"version": "1.0"}, {"version": "1.1", "yanked": True},
                            {"version": "1.2", "targets": ["windows-*"]}, {"version": "1.3"}])
    f = CandidateFactory([idx], main_target=TARGET, host_target=TARGET)
    assert ">=1.0" in _compare(f, RANGES)


@pytest.mark.parametrize("odd", ["2.0rc1", "1.1+local.7"])
def test_a_pre_release_or_local_version_sends_the_key_to_the_factory(tmp_path: Path, odd: str) -> None:
    idx = _index(tmp_path, [{"version": v} for v in ["1.0", "1.1", odd, "2.0"]])
    f = CandidateFactory([idx], main_target=TARGET, host_target=TARGET)
    assert _compare(f, RANGES) == []  # never bisected


def test_a_locked_candidate_sends_the_key_to_the_factory(tmp_path: Path) -> None:
    idx = _index(tmp_path, [{"version": "1.0"}, {"version": "1.1", "yanked": True}, {"version": "2.0"}])
    f = CandidateFactory([idx], main_target=TARGET, host_target=TARGET,
                         pins={"lib-a": Pin("lib-a", "1.1", "index:t")})
    assert _compare(f, RANGES) == []  # a locked yanked version stays admitted: the factory decides


def test_an_index_candidate_keeps_its_source_identity(tmp_path: Path) -> None:
    idx = _index(tmp_path, [{"version": "1.0"}])
    f = CandidateFactory([idx], main_target=TARGET, host_target=TARGET)
    (c,) = f.all_candidates("lib-a", [Req(Requirement("lib-a"), TARGET, "lib-a")])
    assert c._id[2] == c.source.identity() == "index:t"


def _reference_greedy(p: Any) -> dict[str, int]:
    """The greedy pass asked the slow way: breadth first from the roots, each key tries its
    candidates in preference order with every earlier decision assumed; the first that
    leaves the formula satisfiable is its answer."""
    from collections import deque

    from pysat.solvers import Solver

    s = Solver(name="minisat22")
    for xs in p.by_ident.values():
        for i, a in enumerate(xs):
            for b in xs[i + 1:]:
                s.add_clause([-a, -b])
    for v, deps in p.deps.items():
        for _r, ms in deps:
            s.add_clause([-v, *ms])
    for _r, ms in p.roots:
        s.add_clause(list(ms))
    decided: dict[str, int] = {}
    seen: set[str] = set()
    todo: deque[str] = deque()

    def queue(edges: Any) -> None:
        for r, ms in edges:
            if ms and r.ident not in seen:
                seen.add(r.ident)
                todo.append(r.ident)

    queue(p.roots)
    while todo:
        ident = todo.popleft()
        for v in p.by_ident[ident]:
            if s.solve(assumptions=[*decided.values(), v]):
                decided[ident] = v
                queue(p.deps.get(v, ()))
                break
    s.delete()
    return decided


@pytest.mark.parametrize("seed", range(10))
def test_the_greedy_pass_gives_what_asking_key_by_key_gives(tmp_path: Path, seed: int) -> None:
    """On small conflict graphs: the frontier questions, cores and candidate scans of
    ckpm.resolve.sat end on the very assignment a plain key-by-key walk finds."""
    from ckpm.model.targets import host_target
    from ckpm.resolve import sat
    from ckpm.resolve.provider import Provider
    from ckpm.resolve.resolve import root_requirements
    from test_resolve_engine import conflict_graph, deps_of  # tests/ is on sys.path (pytest prepends it)

    _graph, roots = conflict_graph(tmp_path / "index", seed, n=40, window=0.5)
    host = host_target()
    f = CandidateFactory([open_index(str(tmp_path / "index"))], main_target=host, host_target=host)
    reqs = root_requirements(deps_of(roots), host, host, host)
    p = sat.collect(Provider(f, root_idents={r.ident for r in reqs}), reqs)
    want = _reference_greedy(p)
    answer = sat.solve(p)
    if not want:  # unsatisfiable: both say so
        assert answer.assignment is None
        return
    assert answer.assignment is not None
    assert answer.improved > 0  # some keys' first preference was impossible: the scan was exercised
    got = {ident: answer.assignment[ident] for ident in want}
    assert {k: p.cands[v - 1] for k, v in want.items()} == got


@pytest.mark.parametrize("seed", range(8))
def test_the_providers_range_answers_change_nothing_in_a_resolution(tmp_path: Path, seed: int,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """resolvelib's pass with find_matches answered by bisection makes the very same rounds,
    backtracks and pins as with every candidate checked against every requirement."""
    from ckpm.model.targets import host_target
    from ckpm.resolve.engine import IncrementalResolution
    from ckpm.resolve.provider import Provider, ResolutionReporter
    from ckpm.resolve.resolve import root_requirements
    from test_resolve_engine import conflict_graph, deps_of  # tests/ is on sys.path (pytest prepends it)

    _graph, roots = conflict_graph(tmp_path / "index", seed, n=30, window=0.3)
    host = host_target()
    runs = []
    for by_ranges in (True, False):
        if not by_ranges:
            monkeypatch.setattr(Provider, "_by_ranges", lambda self, *a: None)
        f = CandidateFactory([open_index(str(tmp_path / "index"))], main_target=host, host_target=host)
        reqs = root_requirements(deps_of(roots), host, host, host)
        provider = Provider(f, root_idents={r.ident for r in reqs})
        reporter = ResolutionReporter()
        try:
            state = IncrementalResolution(provider, reporter).resolve(reqs, max_rounds=20_000)
            outcome: Any = {k: c.version.text for k, c in state.mapping.items()}
        except Exception as e:  # both must fail the same way
            outcome = type(e).__name__
        runs.append((outcome, reporter.rounds, reporter.backtracks, sorted(reporter.rejections.items())))
        if by_ranges:
            assert any(v is not None for v in provider._views.values())  # the ranges answered
    assert runs[0] == runs[1]


def _collected(tmp_path: Path, seed: int, **factory: Any) -> tuple[Any, CandidateFactory]:
    """The complete search's closure of a small conflict graph, after a resolvelib pass that
    built some keys' views (as when resolvelib is stuck and hands over)."""
    from ckpm.model.targets import host_target
    from ckpm.resolve import sat
    from ckpm.resolve.engine import IncrementalResolution
    from ckpm.resolve.provider import Provider, ResolutionReporter
    from ckpm.resolve.resolve import root_requirements
    from test_resolve_engine import conflict_graph, deps_of  # tests/ is on sys.path (pytest prepends it)

    _graph, roots = conflict_graph(tmp_path / "index", seed, n=40, window=0.5)
    host = host_target()
    f = CandidateFactory([open_index(str(tmp_path / "index"))], main_target=host, host_target=host, **factory)
    reqs = root_requirements(deps_of(roots), host, host, host)
    provider = Provider(f, root_idents={r.ident for r in reqs})
    try:
        IncrementalResolution(provider, ResolutionReporter(), stuck_after=3).resolve(reqs, max_rounds=20_000)
    except Exception:  # stuck, or impossible: what matters is the views it left
        pass
    return sat.collect(provider, reqs), f


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("case", ["plain", "stored", "pinned"])
def test_the_closure_orders_each_key_as_the_factory_does(tmp_path: Path, seed: int, case: str) -> None:
    """collect takes a key's order from its sorted versions when newest first is the
    preference order; it must be the factory's own order in every case, including versions
    already in the store and pins of a lock (which come first)."""
    extra: dict[str, Any] = {}
    if case == "stored":
        extra["stored"] = frozenset((f"c{i:03d}", "1.1.0", TARGET) for i in range(0, 40, 3))
    elif case == "pinned":
        extra["pins"] = {f"c{i:03d}": Pin(f"c{i:03d}", "1.0.0", "index:gen") for i in range(0, 40, 4)}
    p, f = _collected(tmp_path, seed, **extra)
    assert p.size > 40
    for ident, vs in p.by_ident.items():
        got = [p.cands[v - 1] for v in vs]
        assert got == f.preference_order(got), ident
        if case == "pinned" and ident in extra["pins"] and any(c.locked for c in got):
            assert got[0].locked


def test_keys_with_the_same_versions_share_one_bounds_table(tmp_path: Path) -> None:
    """RangeViews over the same sorted versions (another key, or a copy for the complete
    search) answer from one table, and each answer is still the factory's."""
    from ckpm.resolve.ranges import RunsTable

    root = tmp_path / "index"
    init_index(root, "t")
    for name in ("lib-a", "lib-b"):
        write_component(root, [{"name": name, "version": v, "kind": "lib", "deps": [], "targets": ["*"],
                                "source": {}, "yanked": False} for v in ["1.0", "1.1", "2.0", "3.0"]])
    f = CandidateFactory([open_index(str(root))], main_target=TARGET, host_target=TARGET)
    shared: RunsTable = {}
    views = {}
    for name in ("lib-a", "lib-b"):
        cands = list(f.all_candidates(name, [Req(Requirement(name), TARGET, name)]))
        views[name] = RangeView(cands, TARGET, shared)
    assert views["lib-a"].runs is views["lib-b"].runs and len(shared) == 1
    copy = views["lib-a"].fresh()
    assert copy.runs is views["lib-a"].runs and copy.vars == [0] * 4 and copy.memo == {}
    for text in [">=1.1", "<2", ">=1.0,<3.0", ">9"]:
        spec = parse_specifier(text)
        for name, view in [*views.items(), ("lib-a", copy)]:
            r = Req(Requirement(name, spec=spec), TARGET, name)
            got = view.admitted(spec)
            assert got is not None
            assert [c.version.text for c in got] == sorted(c.version.text for c in f.admitted(r, view.cands))
