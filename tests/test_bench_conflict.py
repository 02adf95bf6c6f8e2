"""bench/gen_conflict.py and the checker of bench/bench_conflict.py, on small real graphs (no network, no uv)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_conflict  # noqa: E402
import gen_conflict  # noqa: E402

N, M, C = 60, 6, 0.3
SEEDS = (1, 2, 3)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    base = tmp_path_factory.mktemp("conflict")
    out = {}
    for seed in SEEDS:
        d = base / f"seed-{seed}"
        gen_conflict.generate(d, N, M, C, seed, roots=4, wheels=True)
        out[seed] = d
    return out


def _meta(d: Path) -> dict:
    return json.loads((d / "meta.json").read_text(encoding="utf-8"))


def test_generator_is_deterministic(generated: dict[int, Path], tmp_path: Path) -> None:
    for seed, d in generated.items():
        again = tmp_path / f"again-{seed}"
        gen_conflict.generate(again, N, M, C, seed, roots=4, wheels=True)
        a, b = _files(d), _files(again)
        assert a.keys() == b.keys()
        # the project names its index by absolute path: the only difference allowed
        toml_a = a.pop("project/ckpm.toml").decode().replace(str(d.resolve()), "OUT")
        toml_b = b.pop("project/ckpm.toml").decode().replace(str(again.resolve()), "OUT")
        assert toml_a == toml_b
        assert a == b
    # another seed gives another graph
    assert _files(generated[1])["meta.json"] != _files(generated[2])["meta.json"]


def test_graph_shape(generated: dict[int, Path]) -> None:
    meta = _meta(generated[1])
    comps = meta["components"]
    names = sorted(comps)
    assert len(names) == N and names[0] == "pkg-0000"
    for i, name in enumerate(names):
        assert len(comps[name]["versions"]) == M
        for version, deps in comps[name]["deps"].items():
            assert (i == 0) == (not deps)
            assert len(deps) <= 5
            for dep, req in deps:
                assert names.index(dep) < i  # topological: only lower indices
                assert req.startswith(">=")
    assert [r[0] for r in meta["roots"]] == sorted(r[0] for r in meta["roots"])
    req_in = (generated[1] / "requirements.in").read_text().split()
    assert req_in == [f"{n}{r}" for n, r in meta["roots"]]
    # wheels: one per component version, with the same dependencies in METADATA
    import zipfile

    wheels = sorted((generated[1] / "wheels").glob("*.whl"))
    assert len(wheels) == N * M
    w = generated[1] / "wheels" / f"pkg_0059-{meta['versions'][-1]}-py3-none-any.whl"
    with zipfile.ZipFile(w) as zf:
        text = zf.read(f"pkg_0059-{meta['versions'][-1]}.dist-info/METADATA").decode()
        assert {i.date_time for i in zf.infolist()} == {gen_conflict.ZIP_DATE}
    requires = [ln.split(": ", 1)[1] for ln in text.splitlines() if ln.startswith("Requires-Dist: ")]
    assert requires == [f"{d}{r}" for d, r in comps["pkg-0059"]["deps"][meta["versions"][-1]]]


def test_summary_is_what_reindex_writes(generated: dict[int, Path], tmp_path: Path) -> None:
    from ckpm.index.writer import reindex

    copy = tmp_path / "index"
    shutil.copytree(generated[1] / "index", copy)
    reindex(copy)
    assert (copy / "summary.jsonl").read_bytes() == (generated[1] / "index" / "summary.jsonl").read_bytes()


def test_planted_assignment_validates(generated: dict[int, Path]) -> None:
    for d in generated.values():
        meta = _meta(d)
        closure = bench_conflict.check(meta, meta["planted_closure"].items())
        assert closure["valid"], closure["errors"]
        assert closure["unreachable"] == 0
        everything = bench_conflict.check(meta, meta["planted"].items())
        assert everything["valid"], everything["errors"]


def test_checker_rejects_bad_pins(generated: dict[int, Path]) -> None:
    meta = _meta(generated[1])
    pins = dict(meta["planted_closure"])
    root, root_req = meta["roots"][0]
    # a missing root, a missing dependency, a name pinned twice, an unknown version
    assert not bench_conflict.check(meta, [(k, v) for k, v in pins.items() if k != root])["valid"]
    dep_of_root = meta["components"][root]["deps"][pins[root]][0][0]
    missing = bench_conflict.check(meta, [(k, v) for k, v in pins.items() if k != dep_of_root])
    assert not missing["valid"] and any("not pinned" in e for e in missing["errors"])
    twice = [*pins.items(), (root, "1.0.0" if pins[root] != "1.0.0" else "1.1.0")]
    assert any("pinned twice" in e for e in bench_conflict.check(meta, twice)["errors"])
    assert not bench_conflict.check(meta, [*pins.items(), ("pkg-0000", "9.9.9")])["valid"]


def test_parsers_and_ranges() -> None:
    sat = bench_conflict.satisfies
    assert sat("1.2.0", ">=1.2.0,<1.3.0") and not sat("1.3.0", ">=1.2.0,<1.3.0")
    assert sat("2.0.0", ">=1.0") and sat("5.3.0", "*") and not sat("1.0.0", ">=1.1.0")
    text = "# header\npkg_0012==1.3.0\n    # via pkg-0040\nPKG-0007==2.0.0 ; python_version >= '3'\n\n"
    assert bench_conflict.pins_from_requirements(text) == [("pkg-0012", "1.3.0"), ("pkg-0007", "2.0.0")]
    meta = {"components": {"pkg-0000": {"versions": ["1.0.0", "1.1.0", "2.0.0"], "deps": {}}}}
    assert bench_conflict.passed_over(meta, {"pkg-0000": "1.0.0"}) == 2
    assert bench_conflict.passed_over(meta, {"pkg-0000": "2.0.0"}) == 0


def _ckpm_lock(project: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["CKPM_CACHE_DIR"] = str(tmp_path / "cache")
    return subprocess.run([sys.executable, "-m", "ckpm", "-C", str(project), "lock", "--no-host"],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)


def _break_one_pin(meta: dict, pins: dict[str, str]) -> tuple[str, str] | None:
    """A pinned package and a version of it that the range of some pinned dependent does not admit."""
    for name, version in sorted(pins.items()):
        for dep, req in meta["components"][name]["deps"][version]:
            for other in meta["components"][dep]["versions"]:
                if not bench_conflict.satisfies(other, req):
                    return dep, other
    return None


def test_ckpm_lock_is_valid_and_a_corrupted_lock_is_not(generated: dict[int, Path], tmp_path: Path) -> None:
    for seed, d in generated.items():
        project = tmp_path / f"project-{seed}"
        project.mkdir()
        shutil.copy2(d / "project" / "ckpm.toml", project / "ckpm.toml")
        proc = _ckpm_lock(project, tmp_path)
        assert proc.returncode == 0, proc.stderr
        lock = project / "ckpm.lock"
        meta = _meta(d)
        res = bench_conflict.check(meta, bench_conflict.pins_from_lock(lock))
        assert res["valid"], res["errors"]
        assert res["packages"] > len(meta["roots"])

        pins = dict(bench_conflict.pins_from_lock(lock))
        broken = _break_one_pin(meta, pins)
        assert broken is not None
        name, bad = broken
        text = lock.read_text(encoding="utf-8")
        pattern = re.compile(r'(\[\[package\]\]\nname = "' + re.escape(name) + r'"\nversion = ")[^"]*(")')
        assert pattern.search(text), f"no [[package]] block for {name}"
        corrupted = tmp_path / f"corrupted-{seed}.lock"
        corrupted.write_text(pattern.sub(lambda m: m.group(1) + bad + m.group(2), text, count=1), encoding="utf-8")
        res = bench_conflict.check(meta, bench_conflict.pins_from_lock(corrupted))
        assert not res["valid"]
        assert any(name in e for e in res["errors"])
