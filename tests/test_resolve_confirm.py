"""The complete search's assignment, checked directly (``resolve.confirm_assignment``), gives what
resolvelib's confirming pass gives: the same pins, root edges and edges; and an assignment that
breaks a requirement is not taken (the confirming pass decides then).

Graphs are the real index folders of ``test_resolve_engine.conflict_graph``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ckpm.index import open_index
from ckpm.model.targets import host_target
from ckpm.resolve import sat
from ckpm.resolve.factory import CandidateFactory
from ckpm.resolve.provider import Provider, ResolutionReporter
from ckpm.resolve.resolve import Budget, _search, confirm_assignment, resolve_target, root_requirements
from test_resolve_engine import check_valid, conflict_graph, deps_of, pins_of  # tests/ is on sys.path


def _assigned(index: Path, roots: list[str]) -> tuple[Provider, list[Any]]:
    """A confirming provider whose factory prefers the complete search's assignment."""
    host = host_target()
    f = CandidateFactory([open_index(str(index))], main_target=host, host_target=host)
    reqs = root_requirements(deps_of(roots), host, host, host)
    provider = Provider(f, root_idents={r.ident for r in reqs})
    answer = sat.solve(sat.collect(provider, reqs))
    assert answer.assignment is not None
    f.preferred = answer.assignment
    return Provider(f, root_idents=provider.root_idents, confirming=True), reqs


def _edges_of(root_edges: Any, edges: Any) -> tuple[list[Any], list[Any]]:
    """Comparable edges: (requirement text, child) at the roots; (parent, requirement text, child) below."""
    roots = sorted((r.key, r.req.spec.text, ident) for r, ident in root_edges)
    below = sorted((parent, r.key, r.req.spec.text, ident) for parent, kids in edges.items() for r, ident in kids)
    return roots, below


@pytest.mark.parametrize("seed", range(8))
def test_the_direct_check_gives_what_the_confirming_pass_gives(tmp_path: Path, seed: int) -> None:
    graph, roots = conflict_graph(tmp_path / "index", seed, n=40, window=0.4)
    provider, reqs = _assigned(tmp_path / "index", roots)
    direct = confirm_assignment(provider, reqs)
    assert direct is not None
    mapping, root_edges, edges = direct
    check_valid(graph, {k: c.version.text for k, c in mapping.items()}, roots)

    # resolvelib's confirming pass over the same assignment, as resolve_target ran it before
    from ckpm.resolve.engine import build_result

    state = _search(provider, ResolutionReporter(), reqs, Budget(), None, 2)
    result = build_result(state)
    assert {k: c for k, c in result.mapping.items()} == mapping
    assert all(result.mapping[k] is c for k, c in mapping.items())
    want_roots: list[Any] = []
    want_edges: dict[str, list[Any]] = {}
    for ident, crit in result.criteria.items():
        if ident not in result.mapping:
            continue
        for info in crit.information:
            if info.parent is None:
                want_roots.append((info.requirement, ident))
            elif info.parent.ident in result.mapping:
                want_edges.setdefault(info.parent.ident, []).append((info.requirement, ident))
    assert _edges_of(root_edges, edges) == _edges_of(want_roots, want_edges)


def test_an_assignment_that_breaks_a_requirement_is_not_taken(tmp_path: Path) -> None:
    graph, roots = conflict_graph(tmp_path / "index", 3, n=40, window=0.4)
    provider, reqs = _assigned(tmp_path / "index", roots)
    f = provider.factory
    # swap one reached key's candidate for one that a requirement on it does not admit
    mapping, _root_edges, edges = confirm_assignment(provider, reqs) or ({}, [], {})
    swapped = None
    for kids in edges.values():
        for r, ident in kids:
            bad = next((c for c in f.all_candidates(ident, [r]) if not f.satisfies(r, c)), None)
            if bad is not None:
                swapped = ident
                f.preferred = {**f.preferred, ident: bad}
                break
        if swapped:
            break
    assert swapped is not None
    assert confirm_assignment(provider, reqs) is None
    # a key the assignment leaves out is not taken either
    f.preferred = {k: c for k, c in f.preferred.items() if k != swapped}
    assert confirm_assignment(provider, reqs) is None


@pytest.mark.parametrize("seed", range(4))
def test_a_lock_through_the_complete_search_is_valid_and_the_same_twice(tmp_path: Path, seed: int) -> None:
    graph, roots = conflict_graph(tmp_path / "index", seed, n=40, window=0.4)
    host = host_target()
    runs = [resolve_target(deps_of(roots), host, [open_index(str(tmp_path / "index"))], host_target=host,
                           budget=Budget(complete_first=True)) for _ in range(2)]
    assert runs[0].method == "sat"
    check_valid(graph, pins_of(runs[0]), roots)
    assert pins_of(runs[0]) == pins_of(runs[1])
    assert runs[0].rounds == len(runs[0].mapping) + 1
