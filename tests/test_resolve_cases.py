"""Resolver cases written as data (tests/cases/resolve/*.toml), positive and negative side by side.

Each case builds a real index folder, resolves the case's [dependencies] per target,
and checks the pins or the words of the error.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ckpm.errors import CkpmError
from ckpm.index import open_index
from ckpm.index.writer import init_index, reindex, write_component
from ckpm.model.manifest import _parse_dependencies
from ckpm.model.targets import host_target
from ckpm.resolve.resolve import Budget, resolve_target

CASES = sorted((Path(__file__).parent / "cases" / "resolve").glob("*.toml"))


def build_index(root: Path, components: list[dict[str, Any]]) -> None:
    init_index(root, "cases")
    for comp in components:
        base = {k: v for k, v in comp.items() if k not in ("versions", "version")}
        versions = [{"version": v} for v in comp.get("versions", [])] + list(comp.get("version", []))
        entries = []
        for v in versions:
            e = {"name": comp["name"], "kind": "lib", "tags": ["lib"], "targets": ["*"], "deps": [],
                 "source": {"urls": [f"https://example.org/{comp['name']}.tar.gz"]}, "yanked": False}
            e.update(base)
            e.update(v)
            entries.append(e)
        write_component(root, entries)
    reindex(root)


@pytest.mark.parametrize("complete_first", [False, True], ids=["resolvelib", "complete"])
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_resolve_case(case: Path, tmp_path: Path, complete_first: bool) -> None:
    """Each case twice: as ckpm runs it, and with the complete (SAT) search proposing the answer."""
    data = tomllib.loads(case.read_text())
    build_index(tmp_path / "index", data["component"])
    idx = open_index(str(tmp_path / "index"))
    deps = _parse_dependencies("", str(case), data["dependencies"])
    host = data.get("host", host_target())
    targets = data.get("targets", [host])
    expect = data["expect"]

    def budget() -> Budget:
        return Budget(complete_first=complete_first, stuck_after=data.get("stuck-after", 200))
    if "error" in expect:
        with pytest.raises(CkpmError) as info:
            for t in targets:
                resolve_target(deps, t, [idx], host_target=host, budget=budget())
        text = info.value.render(verbose=True)
        for needle in expect["error"]:
            assert needle in text, f"{needle!r} not in:\n{text}"
        brief = info.value.render()  # what a user sees without -v
        for needle in expect.get("brief", []):
            assert needle in brief, f"{needle!r} not in:\n{brief}"
        if "max-lines" in expect:
            assert len(brief.splitlines()) <= expect["max-lines"], brief
            assert max(len(line) for line in brief.splitlines()) <= 250, brief
        return
    per_target = expect.get("per-target", {})
    for t in targets:
        res = resolve_target(deps, t, [idx], host_target=host, budget=budget())
        if "method" in expect and not complete_first:
            assert res.method == expect["method"]
        got = {ident: f"{c.name} {c.version.text}" for ident, c in res.mapping.items()}
        want = dict(expect["pins"])
        want.update(per_target.get(t, {}))
        for key, pin in want.items():
            if key == "dataset-images" and not t.startswith("linux"):
                assert key not in got
                continue
            assert got.get(key) == pin, f"{t}: {key}: {got}"
