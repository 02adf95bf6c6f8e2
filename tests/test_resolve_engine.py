"""The resolver's two engines on generated conflict graphs: resolvelib's loop kept incrementally,
and the complete (SAT) search behind it.

Graphs are real index folders. Component i depends only on components below it; every
component has a planted version whose ranges admit the planted versions of its
dependencies (so a solution exists), and other versions carry narrow windows that clash.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from resolvelib.resolvers import Resolution

from ckpm.errors import ResolutionError
from ckpm.index import open_index
from ckpm.index.writer import init_index, reindex, write_component
from ckpm.model.requirement import Requirement
from ckpm.model.targets import host_target
from ckpm.model.version import parse_specifier, parse_version
from ckpm.resolve.engine import IncrementalResolution
from ckpm.resolve.factory import CandidateFactory
from ckpm.resolve.provider import Provider, ResolutionReporter
from ckpm.resolve.resolve import Budget, resolve_target, root_requirements

VERSIONS = [f"{1 + i // 4}.{i % 4}.0" for i in range(8)]


def conflict_graph(root: Path, seed: int, n: int = 40, window: float = 0.4,
                   solvable: bool = True) -> tuple[dict[str, dict[str, list[tuple[str, str]]]], list[str]]:
    """Write an index of ``n`` components × 8 versions; returns (graph, root names)."""
    rng = random.Random(seed)
    m = len(VERSIONS)
    planted = [rng.randrange(m) for _ in range(n)]
    graph: dict[str, dict[str, list[tuple[str, str]]]] = {}
    init_index(root, "gen")
    for i in range(n):
        name = f"c{i:03d}"
        below = sorted({rng.randrange(i) for _ in range(min(i, 3))}) if i else []
        graph[name] = {}
        entries = []
        for vi, v in enumerate(VERSIONS):
            deps = []
            for d in below:
                if vi == planted[i] and solvable:
                    lo = rng.randrange(planted[d] + 1)
                    spec = f">={VERSIONS[lo]}"
                elif rng.random() < window:
                    a = rng.randrange(m - 1)
                    spec = f">={VERSIONS[a]},<{VERSIONS[min(m - 1, a + rng.randint(1, 2))]}"
                else:
                    spec = f">={VERSIONS[rng.randrange(m // 2)]}"
                deps.append((f"c{d:03d}", spec))
            graph[name][v] = deps
            entries.append({"name": name, "version": v, "kind": "lib", "tags": ["lib"], "targets": ["*"],
                            "deps": [{"name": d, "req": s} for d, s in deps], "yanked": False,
                            "source": {"urls": [f"https://example.org/{name}.tar.gz"]}})
        write_component(root, entries)
    reindex(root)
    return graph, [f"c{i:03d}" for i in range(n - 6, n)]


def check_valid(graph: dict[str, dict[str, list[tuple[str, str]]]], pins: dict[str, str], roots: list[str]) -> None:
    """Every root is pinned and every pinned version's dependencies are satisfied by the pins."""
    for r in roots:
        assert r in pins
    for name, version in pins.items():
        for dep, spec in graph[name][version]:
            assert dep in pins, f"{name} {version} needs {dep}"
            assert parse_specifier(spec).contains(parse_version(pins[dep])), \
                f"{name} {version} needs {dep} {spec}, got {pins[dep]}"


def deps_of(roots: list[str]) -> dict[str, Requirement]:
    return {r: Requirement(r) for r in roots}


def pins_of(res: Any) -> dict[str, str]:
    return {ident: c.version.text for ident, c in res.mapping.items()}


@pytest.mark.parametrize("seed", range(6))
def test_the_incremental_loop_pins_what_resolvelib_pins(tmp_path: Path, seed: int) -> None:
    graph, roots = conflict_graph(tmp_path / "index", seed, n=30, window=0.3)
    idx = open_index(str(tmp_path / "index"))
    host = host_target()
    results = []
    for cls in (Resolution, IncrementalResolution):
        factory = CandidateFactory([idx], main_target=host, host_target=host)
        reqs = root_requirements(deps_of(roots), host, host, host)
        provider = Provider(factory, root_idents={r.ident for r in reqs})
        reporter = ResolutionReporter()
        try:
            state = cls(provider, reporter).resolve(reqs, max_rounds=20_000)
            results.append(({k: c.version.text for k, c in state.mapping.items()}, reporter.backtracks))
        except Exception as e:  # both must fail the same way
            results.append((type(e).__name__, reporter.backtracks))
    assert results[0] == results[1]


@pytest.mark.parametrize("seed", range(8))
def test_every_generated_graph_locks_validly_and_deterministically(tmp_path: Path, seed: int) -> None:
    graph, roots = conflict_graph(tmp_path / "index", seed)
    idx = open_index(str(tmp_path / "index"))
    host = host_target()
    first = resolve_target(deps_of(roots), host, [idx], host_target=host, budget=Budget(stuck_after=5))
    check_valid(graph, pins_of(first), roots)
    again = resolve_target(deps_of(roots), host, [open_index(str(tmp_path / "index"))], host_target=host,
                           budget=Budget(stuck_after=5))
    assert pins_of(again) == pins_of(first) and again.method == first.method
    forced = resolve_target(deps_of(roots), host, [idx], host_target=host, budget=Budget(complete_first=True))
    check_valid(graph, pins_of(forced), roots)
    assert forced.method == "sat"


def test_the_complete_search_takes_over_when_backtracking_passes_the_budget(tmp_path: Path) -> None:
    host = host_target()
    taken = []
    for seed in range(12):
        graph, roots = conflict_graph(tmp_path / f"i{seed}", seed, window=0.5)
        idx = open_index(str(tmp_path / f"i{seed}"))
        res = resolve_target(deps_of(roots), host, [idx], host_target=host, budget=Budget(stuck_after=2))
        check_valid(graph, pins_of(res), roots)
        taken.append(res.method)
    assert "sat" in taken, taken  # some of these graphs backtrack more than twice


def test_a_large_state_is_stuck_after_fewer_backtracks(tmp_path: Path) -> None:
    """The backtrack budget is also counted in keys rechecked: the same graphs that resolvelib
    finishes with an unlimited count go to the complete search once keys × backtracks pass it."""
    host = host_target()
    for seed in range(12):
        graph, roots = conflict_graph(tmp_path / f"i{seed}", seed, window=0.5)
        idx = open_index(str(tmp_path / f"i{seed}"))
        plain = resolve_target(deps_of(roots), host, [idx], host_target=host,
                               budget=Budget(stuck_after=10_000, stuck_work=10**9))
        if plain.method == "sat" or plain.rounds == len(plain.mapping) + 1:
            continue  # resolvelib alone did not backtrack here
        small = resolve_target(deps_of(roots), host, [open_index(str(tmp_path / f"i{seed}"))],
                               host_target=host, budget=Budget(stuck_after=10_000, stuck_work=1))
        assert small.method == "sat"
        check_valid(graph, pins_of(small), roots)
        return
    pytest.fail("no generated graph backtracked")


def test_the_greedy_pass_keeps_roots_newest_where_possible(tmp_path: Path) -> None:
    """With no conflicts at all, the complete search picks the newest version of everything."""
    root = tmp_path / "index"
    init_index(root, "gen")
    for i in range(10):
        write_component(root, [{"name": f"c{i:03d}", "version": v, "kind": "lib", "tags": ["lib"], "targets": ["*"],
                                "deps": [{"name": f"c{i - 1:03d}", "req": ">=1.0.0"}] if i else [], "yanked": False,
                                "source": {"urls": ["https://example.org/x.tar.gz"]}} for v in VERSIONS])
    reindex(root)
    host = host_target()
    res = resolve_target({"c009": Requirement("c009")}, host, [open_index(str(root))], host_target=host,
                         budget=Budget(complete_first=True))
    assert set(pins_of(res).values()) == {VERSIONS[-1]} and len(res.mapping) == 10


def test_max_rounds_and_timeout_bound_the_complete_search_too(tmp_path: Path) -> None:
    graph, roots = conflict_graph(tmp_path / "index", 3, n=60, window=0.5)
    idx = open_index(str(tmp_path / "index"))
    host = host_target()
    with pytest.raises(ResolutionError, match="did not finish"):  # the confirming pass has no rounds left
        resolve_target(deps_of(roots), host, [idx], host_target=host, budget=Budget(max_rounds=3, complete_first=True))
    with pytest.raises(ResolutionError, match="did not finish"):
        resolve_target(deps_of(roots), host, [idx], host_target=host,
                       budget=Budget(seconds=0.0, complete_first=True))


def test_one_budget_spans_every_target(tmp_path: Path) -> None:
    graph, roots = conflict_graph(tmp_path / "index", 1, n=20, window=0.0)
    idx = open_index(str(tmp_path / "index"))
    probe = Budget()
    resolve_target(deps_of(roots), "linux-x86_64", [idx], host_target="linux-x86_64", budget=probe)
    one_target = probe.rounds_used
    budget = Budget(max_rounds=one_target + 2)  # enough for one target, not for two
    resolve_target(deps_of(roots), "linux-x86_64", [idx], host_target="linux-x86_64", budget=budget)
    with pytest.raises(ResolutionError, match="did not finish"):
        resolve_target(deps_of(roots), "linux-aarch64", [idx], host_target="linux-x86_64", budget=budget)


def test_unsatisfiable_generated_graph_is_explained_from_a_small_core(tmp_path: Path) -> None:
    graph, roots = conflict_graph(tmp_path / "index", 5, n=30, window=0.9, solvable=False)
    idx = open_index(str(tmp_path / "index"))
    host = host_target()
    extra = {**deps_of(roots), "c000": Requirement("c000", parse_specifier(">=99"))}
    with pytest.raises(ResolutionError) as info:
        resolve_target(extra, host, [idx], host_target=host)
    brief = info.value.render()
    assert "the project requires c000 >=99, which no version satisfies" in brief
    assert len(brief.splitlines()) < 20



def test_a_backjump_deeper_than_the_kept_states_hands_over_to_the_complete_search(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ckpm.resolve.resolve as rr

    monkeypatch.setattr(rr, "KEEP_STATES", 3)  # keep almost no history: deep backjumps cannot happen
    host = host_target()
    methods = []
    for seed in range(6):
        graph, roots = conflict_graph(tmp_path / f"i{seed}", seed, window=0.5)
        res = resolve_target(deps_of(roots), host, [open_index(str(tmp_path / f"i{seed}"))], host_target=host,
                             budget=Budget(stuck_after=None))
        check_valid(graph, pins_of(res), roots)
        methods.append(res.method)
    assert "sat" in methods, methods


def test_a_search_out_of_rounds_names_the_keys_it_was_stuck_on(tmp_path: Path) -> None:
    host = host_target()
    for seed in range(12):
        graph, roots = conflict_graph(tmp_path / f"i{seed}", seed, window=0.5)
        idx = open_index(str(tmp_path / f"i{seed}"))
        probe = resolve_target(deps_of(roots), host, [idx], host_target=host, budget=Budget(stuck_after=None))
        with pytest.raises(ResolutionError) as info:  # fewer rounds than pins: it cannot finish
            resolve_target(deps_of(roots), host, [idx], host_target=host,
                           budget=Budget(stuck_after=None, max_rounds=len(probe.mapping) - 1))
        err = info.value
        assert "did not finish" in err.message
        if not err.conflict:
            assert "the graph is large" in (err.hint or "")
            continue  # nothing was rejected before the budget ran out on this graph
        assert "the search was stuck on:" in err.details
        assert all(c["key"] in (err.hint or "") for c in err.conflict), err.render()
        return
    pytest.fail("no generated graph rejected a candidate")


def test_incompatibilities_stay_free_of_duplicates_across_backjumps(tmp_path: Path) -> None:
    """resolvelib doubles these lists at every backjump; on big graphs that cost minutes."""
    host = host_target()
    worst = 0
    for seed in range(6):
        graph, roots = conflict_graph(tmp_path / f"i{seed}", seed, window=0.5)
        idx = open_index(str(tmp_path / f"i{seed}"))
        factory = CandidateFactory([idx], main_target=host, host_target=host)
        reqs = root_requirements(deps_of(roots), host, host, host)
        resolution = IncrementalResolution(Provider(factory, root_idents={r.ident for r in reqs}), ResolutionReporter())
        try:
            resolution.resolve(reqs, max_rounds=20_000)
        except Exception:
            pass
        for state in resolution._states:
            for criterion in state.criteria.values():
                inc = list(criterion.incompatibilities)
                assert len(inc) == len(set(inc))
                worst = max(worst, len(inc))
    assert worst > 0  # some backjump did record incompatibilities


@pytest.mark.parametrize("prerelease", [False, True])
def test_admitted_agrees_with_reasons_against(tmp_path: Path, prerelease: bool) -> None:
    """The complete search filters candidates with the inline check; it must admit exactly
    what reasons_against admits (ranges, pre-releases, targets, yanked, tags, git)."""
    from ckpm.model.requirement import requirement_from_index_dep
    from ckpm.resolve.candidates import Req

    root = tmp_path / "index"
    init_index(root, "gen")
    lines = []
    for i, v in enumerate(["0.9", "1.0", "1.1rc1", "1.1", "1.5", "2.0", "2.1.dev1", "3.0"]):
        lines.append({"name": "lib-z", "version": v, "kind": "lib", "tags": ["fast"] if i % 2 else ["slow"],
                      "targets": ["*"] if i % 3 else ["linux-*"], "yanked": v == "1.5", "deps": []})
    write_component(root, lines)
    idx = open_index(str(root))
    host = host_target()
    sizes = set()
    for target in (host, "windows-x86_64"):
        factory = CandidateFactory([idx], main_target=target, host_target=host, prerelease=prerelease)
        for dep in [{"req": "*"}, {"req": ">=1.0,<2"}, {"req": ">=1.1rc1"}, {"req": "<2.1"}, {"req": "==1.5"},
                    {"req": ">=1", "tags": ["fast"]}, {"req": "*", "no_tags": ["fast"]}, {"req": ">3"}]:
            r = Req(requirement_from_index_dep({"name": "lib-z", **dep}), target, "lib-z")
            cands = list(factory.all_candidates("lib-z", [r]))
            got = factory.admitted(r, cands)
            assert got == [c for c in cands if factory.reasons_against(r, c) is None]
            sizes.add(len(got))
    assert len(sizes) > 4  # the cases admit different sets
