"""Results over recorded experiments: listings, comparisons, frontiers, plots, the HTML report, the CLI.

Records are written as data with ``save_record`` (as ``ckpm run --record`` writes them):
several repetitions, a configuration, host facts and the lock text.

Whatever draws or decodes images runs in a child process (the CLI, or :func:`child`):
matplotlib in the test process would raise its peak RSS for the rest of the session, and
a forked child inherits that peak, which tests/test_transport_bounds.py measures.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ckpm.experiment.record import ExperimentError, save_record, summarise
from ckpm.experiment.results import compare, frontier, list_results, pareto, show
from ckpm.report import Reporter

LOCK = """version = 1
targets = ["linux-x86_64"]

[[package]]
name = "program-image-corners"
version = "0.1.0"

[[package]]
name = "dataset-images-small"
version = "1.0.0"
"""
HOST = {"__os": "linux", "__arch": "x86_64", "__libc": "glibc-2.36", "__cpu": "x86_64_v3"}
T0 = datetime(2026, 12, 2, 2, 30, tzinfo=timezone.utc)
CHROMIUM = Path("/usr/bin/chromium")


def record(*, times: list[float], sizes: list[float] | None = None, corners: list[float] | None = None,
           cflags: tuple[str, ...] = ("-O3",), env: dict[str, str] | None = None, flags: str = "speed",
           program: str = "program-image-corners", lock: str = LOCK, host: dict[str, str] | None = None,
           ok: bool = True, at: int = 0, compiler_version: str = "12.2.0") -> dict[str, Any]:
    """A record as ``ckpm run --repeat N --record`` writes it; ``at`` minutes after T0 (its id sorts by time)."""
    n = len(times)
    sizes = sizes or [18432.0] * n
    reps = []
    for i in range(n):
        m: dict[str, float] = {"time": times[i], "size": sizes[i], "max_rss": 3.1 + 0.01 * i}
        if corners is not None:
            m["corners"] = corners[i]
        reps.append({"metrics": m, "ok": ok})
    when = T0 + timedelta(minutes=at)
    return {
        "id": when.strftime("%Y%m%dT%H%M%S%fZ") + f"-{at:06x}",
        "created": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ckpm_version": "0.1.0",
        "ok": ok,
        "program": {"name": program, "command": "corners", "version": "0.1.0"},
        "target": "linux-x86_64",
        "config": {"flags": flags, "cflags": list(cflags), "ldflags": ["-lm"],
                   "env": dict(env if env is not None else {"OMP_NUM_THREADS": "1"}),
                   "params": {"threshold": "40"}, "input": "dataset-images-small", "repeat": n,
                   "compiler": {"name": "gcc", "version": compiler_version, "path": "/usr/bin/gcc"}},
        "lock": lock,
        "host": dict(host or HOST),
        "stages": {"run": {"ok": ok}},
        "command_lines": [["/p/.ckpm/runs/x/corners", "in.pgm", "out.pgm"]],
        "repetitions": reps,
        "metrics": summarise(reps, better={"corners": "higher"}),
        "validation": [{"check": "sha256 of result.pgm", "ok": ok, "detail": ""}],
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with experiments ``baseline`` (2 records) and ``tuned`` (1 record): tuned is faster beyond noise."""
    p = tmp_path / "proj"
    p.mkdir()
    (p / "ckpm.toml").write_text('[project]\nname = "demo"\n')
    save_record(p, "baseline", record(times=[0.30, 0.31, 0.29, 0.32, 0.30], corners=[410, 412, 412, 411, 412], at=0))
    save_record(p, "baseline", record(times=[0.20, 0.21, 0.19, 0.22, 0.20], corners=[410, 412, 412, 411, 412], at=1))
    save_record(p, "tuned", record(times=[0.10, 0.11, 0.10, 0.12, 0.10], sizes=[16000.0] * 5,
                                   corners=[420, 421, 420, 422, 420], cflags=("-O3", "-march=native"),
                                   env={"OMP_NUM_THREADS": "4"}, at=5))
    return p


def child(code: str, *args: str) -> Any:
    """Run ``code`` (which prints JSON) in a fresh interpreter with ``sys.argv[1:] = args``; its answer."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


#: decode a PNG fully (every pixel) and print its size and whether it is more than one colour
DECODE_PNG = """
import json, sys
from matplotlib.image import imread
image = imread(sys.argv[1])
print(json.dumps({"size": [image.shape[1], image.shape[0]], "drawn": bool(image.min() < image.max())}))
"""


def ids(p: Path, name: str) -> list[str]:
    return sorted(f.stem for f in (p / ".ckpm" / "experiments" / name).glob("*.json"))


# ---------------------------------------------------------------------------------------------
# listing and showing


def test_list_results(project: Path) -> None:
    rows = {r["name"]: r for r in list_results(project)}
    assert list(rows) == ["baseline", "tuned"]
    b = rows["baseline"]
    assert b["records"] == 2 and b["ok"] is True and b["program"] == "program-image-corners"
    assert b["latest"] == ids(project, "baseline")[-1] and b["created"] == "2026-12-02T02:31:00Z"
    assert b["metrics"]["time"] == pytest.approx(0.20)
    assert list(b["metrics"]) == ["time", "size", "max_rss", "corners"]
    assert rows["tuned"]["metrics"]["size"] == 16000.0 and b["problems"] == []


def test_list_results_without_experiments(tmp_path: Path) -> None:
    assert list_results(tmp_path) == []


def test_show_every_record_with_statistics(project: Path) -> None:
    data = show(project, "baseline")
    assert [r["id"] for r in data["records"]] == ids(project, "baseline")
    first = data["records"][0]
    assert first["metrics"]["time"] == {"min": 0.29, "median": 0.30, "max": 0.32, "n": 5, "better": "lower"}
    assert first["metrics"]["corners"]["better"] == "higher"
    assert first["config"]["env.OMP_NUM_THREADS"] == "1" and first["config"]["compiler.version"] == "12.2.0"
    assert "cflags=-O3" in first["summary"] and "compiler=gcc 12.2.0" in first["summary"]
    assert first["lock"].startswith("sha256:") and first["ok"] is True


def test_show_name_at_id_selects_one_record(project: Path) -> None:
    first = ids(project, "baseline")[0]
    data = show(project, f"baseline@{first}")
    assert [r["id"] for r in data["records"]] == [first]
    # a unique prefix is enough
    assert show(project, f"baseline@{first[:16]}")["records"][0]["id"] == first


def test_unknown_experiment_is_a_clear_error_with_near_names(project: Path) -> None:
    with pytest.raises(ExperimentError) as e:
        compare(project, "baseline", "tunde")
    assert "no experiment named 'tunde'" in e.value.message and "tuned" in (e.value.hint or "")


def test_unknown_and_ambiguous_record_ids(project: Path) -> None:
    with pytest.raises(ExperimentError) as e:
        compare(project, "baseline@nothing-like-this", "tuned")
    assert "has no record 'nothing-like-this'" in e.value.message
    with pytest.raises(ExperimentError) as e:
        show(project, "baseline@2026")  # both records start with it
    assert "ambiguous" in e.value.message and len(e.value.details) == 2
    with pytest.raises(ExperimentError, match="no record id after '@'"):
        show(project, "baseline@")


def test_damaged_record_is_reported_and_skipped(project: Path) -> None:
    folder = project / ".ckpm" / "experiments" / "baseline"
    (folder / "20261203T000000000000Z-bad.json").write_text('{"format": 1, "metrics": ')
    (folder / "20261203T000000000000Z-old.json").write_text('{"format": 99}')
    rep = Reporter()
    rows = {r["name"]: r for r in list_results(project, reporter=rep)}
    assert rows["baseline"]["records"] == 2 and len(rows["baseline"]["problems"]) == 2
    assert any("-bad.json: not a record" in w for w in rep.warnings)
    assert any("-old.json: not a format-1 experiment record" in w for w in rep.warnings)
    # the latest readable record is still the one compared
    assert compare(project, "baseline", "tuned")["a"] == f"baseline@{ids(project, 'baseline')[1]}"


# ---------------------------------------------------------------------------------------------
# comparing


def metrics_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in data["metrics"]}


def test_disjoint_ranges_are_a_change_with_the_right_ratio(project: Path) -> None:
    data = compare(project, "baseline", "tuned")
    m = metrics_of(data)
    assert m["time"]["verdict"] == "faster" and m["time"]["improved"] is True
    assert m["time"]["ratio"] == pytest.approx(0.10 / 0.20)
    assert m["size"]["verdict"] == "smaller" and m["size"]["ratio"] == pytest.approx(16000 / 18432)
    # the other way round
    back = metrics_of(compare(project, "tuned", "baseline"))
    assert back["time"]["verdict"] == "slower" and back["time"]["improved"] is False
    assert back["time"]["ratio"] == pytest.approx(2.0)
    assert back["size"]["verdict"] == "larger"


def test_overlapping_ranges_are_the_same_within_noise(tmp_path: Path) -> None:
    save_record(tmp_path, "a", record(times=[1.00, 1.10, 0.95, 1.05, 1.02], at=0))
    # median 8% lower, but the ranges overlap (b's max 0.97 > a's min 0.95)
    save_record(tmp_path, "b", record(times=[0.90, 0.93, 0.97, 0.92, 0.94], at=1))
    # ranges that only touch overlap too
    save_record(tmp_path, "c", record(times=[0.80, 0.85, 0.95, 0.85, 0.82], at=2))
    m = metrics_of(compare(tmp_path, "a", "b"))
    assert m["time"]["verdict"] == "same (within noise)" and m["time"]["improved"] is None
    assert m["time"]["ratio"] == pytest.approx(0.93 / 1.02)
    assert metrics_of(compare(tmp_path, "a", "c"))["time"]["verdict"] == "same (within noise)"
    assert m["size"]["verdict"] == "same (within noise)" and m["size"]["ratio"] == 1.0


def test_higher_is_better_metric(project: Path) -> None:
    m = metrics_of(compare(project, "baseline", "tuned"))
    assert m["corners"]["better"] == "higher"
    assert m["corners"]["verdict"] == "better" and m["corners"]["improved"] is True
    back = metrics_of(compare(project, "tuned", "baseline"))
    assert back["corners"]["verdict"] == "worse" and back["corners"]["improved"] is False


def test_configuration_differences_are_reported(project: Path) -> None:
    diffs = {d["what"]: d for d in compare(project, "baseline", "tuned")["differences"]}
    assert diffs["cflags"] == {"what": "cflags", "a": ["-O3"], "b": ["-O3", "-march=native"]}
    assert diffs["env.OMP_NUM_THREADS"] == {"what": "env.OMP_NUM_THREADS", "a": "1", "b": "4"}
    assert set(diffs) == {"cflags", "env.OMP_NUM_THREADS"}  # same lock, host, compiler, input
    # the two records of baseline differ in nothing but their results
    first, second = ids(project, "baseline")
    assert compare(project, f"baseline@{first}", f"baseline@{second}")["differences"] == []


def test_compiler_host_lock_and_added_env_differences(tmp_path: Path) -> None:
    save_record(tmp_path, "a", record(times=[1.0, 1.1], at=0))
    save_record(tmp_path, "b", record(times=[1.0, 1.1], at=1, compiler_version="13.1.0",
                                      env={"OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": "0"},
                                      host={**HOST, "__libc": "glibc-2.38"}, lock=LOCK.replace("1.0.0", "1.1.0")))
    diffs = {d["what"]: d for d in compare(tmp_path, "a", "b")["differences"]}
    assert diffs["compiler.version"]["a"] == "12.2.0" and diffs["compiler.version"]["b"] == "13.1.0"
    assert diffs["env.GOMP_SPINCOUNT"] == {"what": "env.GOMP_SPINCOUNT", "a": None, "b": "0"}
    assert diffs["host.__libc"]["b"] == "glibc-2.38"
    assert diffs["lock"]["a"] != diffs["lock"]["b"] and diffs["lock"]["a"].startswith("sha256:")


def test_compare_chosen_records_and_metrics(project: Path) -> None:
    first = ids(project, "baseline")[0]
    data = compare(project, f"baseline@{first}", "tuned", metrics=["time"])
    assert data["a"] == f"baseline@{first}" and [m["metric"] for m in data["metrics"]] == ["time"]
    assert data["metrics"][0]["ratio"] == pytest.approx(0.10 / 0.30)
    with pytest.raises(ExperimentError) as e:
        compare(project, "baseline", "tuned", metrics=["energy"])
    assert "no metric 'energy'" in e.value.message and "corners" in (e.value.hint or "")


# ---------------------------------------------------------------------------------------------
# Pareto frontiers


@pytest.mark.parametrize("points,front", [
    ([], []),
    ([(3.0, 4.0)], [0]),
    ([(1, 5), (2, 3), (3, 1), (3, 4), (2, 6)], [0, 1, 2]),  # (3,4) and (2,6) dominated
    ([(1, 2), (1, 2), (2, 1)], [0, 1, 2]),  # equal points do not dominate each other: both kept
    ([(1, 2), (1, 3), (2, 2)], [0]),  # equal in one objective, worse in the other: dominated
    ([(1, 1, 1), (0, 2, 2), (2, 0, 2), (2, 2, 0), (1, 1, 2), (2, 2, 2)], [0, 1, 2, 3]),  # 3 objectives
    ([(5,), (3,), (3,), (4,)], [1, 2]),  # one objective: the minima
    ([(float("nan"), 0), (1, 1)], [1]),
])
def test_pareto(points: list[tuple[float, ...]], front: list[int]) -> None:
    got = pareto(points)
    assert got == front
    # nothing on the frontier is dominated; everything off it is
    for i, p in enumerate(points):
        dominated = any(all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p)) for q in points)
        if i in got:
            assert not dominated
        elif all(x == x for x in p):
            assert dominated


def test_pareto_needs_equal_dimensions() -> None:
    with pytest.raises(ValueError):
        pareto([(1.0, 2.0), (1.0,)])


def test_frontier_uses_each_metrics_direction(tmp_path: Path) -> None:
    recs = [record(times=[t, t], corners=[c, c], at=i)
            for i, (t, c) in enumerate([(1.0, 400), (2.0, 500), (3.0, 450), (1.0, 390)])]
    on = frontier(recs, ["time", "corners"])
    # (3.0, 450) is slower with fewer corners than (2.0, 500); (1.0, 390) is as fast with fewer corners
    assert [r["id"] for r in on] == [recs[0]["id"], recs[1]["id"]]
    assert [r["id"] for r in frontier(recs, ["time"])] == [recs[0]["id"], recs[3]["id"]]
    assert frontier(recs, ["time", "energy"]) == []


# ---------------------------------------------------------------------------------------------
# plots and the report


def test_plot_writes_a_png_that_opens(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "plots" / "pareto.png"
    code = ("import sys; from pathlib import Path; from ckpm.experiment.plot import plot; "
            "plot(Path(sys.argv[1]), ['baseline', 'tuned'], x='time', y='size', out=Path(sys.argv[2])); print('{}')")
    child(code, str(project), str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert child(DECODE_PNG, str(out)) == {"size": [800, 550], "drawn": True}
    assert [f.name for f in out.parent.iterdir()] == ["pareto.png"]  # written atomically: no temporary file left


def test_plot_of_an_unknown_metric(project: Path, tmp_path: Path) -> None:
    from ckpm.experiment.plot import plot

    with pytest.raises(ExperimentError) as e:
        plot(project, ["baseline"], x="time", y="energy", out=tmp_path / "p.png")
    assert "'energy'" in e.value.message and "max_rss" in (e.value.hint or "")
    assert not (tmp_path / "p.png").exists()


def test_without_matplotlib(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ckpm.errors import CkpmError
    from ckpm.experiment.plot import plot
    from ckpm.experiment.htmlreport import report

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` finds when it is absent
    with pytest.raises(CkpmError) as e:
        plot(project, ["baseline"], x="time", y="size", out=tmp_path / "p.png")
    assert e.value.hint == "pip install 'ckpm[plot]'"
    text = report(project, tmp_path / "r.html").read_text()
    assert "No plot: plots need matplotlib" in text and "data:image/png" not in text


HOSTILE = '<script>alert("x")</script>'


def hostile_project(tmp_path: Path) -> Path:
    p = tmp_path / "hostile"
    p.mkdir()
    (p / "ckpm.toml").write_text('[project]\nname = "demo"\n')
    save_record(p, "baseline", record(times=[0.30, 0.31, 0.29], at=0))
    bad = record(times=[0.10, 0.11, 0.12], sizes=[900.0, 900.0, 900.0], program=HOSTILE,
                 env={"OMP_NUM_THREADS": '"><img src=x onerror=alert(1)>'}, lock=LOCK + f"# {HOSTILE}\n", at=1)
    bad["validation"] = [{"check": "output", "ok": False, "detail": "</td></tr></table><script>1</script>"}]
    save_record(p, "evil", bad)
    return p


def test_report_escapes_record_strings(tmp_path: Path) -> None:
    p = hostile_project(tmp_path)
    proc = ckpm(p, "results", "report", "-o", str(tmp_path / "report.html"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "report.html").read_text()
    assert "<script" not in text.lower() and "<img src=x" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;" in text
    # self-contained: one file, its plots inline, nothing fetched
    assert text.count("data:image/png;base64,") == 3  # all experiments, then each one's
    assert "http://" not in text and "https://" not in text and "<link" not in text
    for section in ("Summary", "Configuration of the latest record", "Against baseline", "Configuration differences"):
        assert section in text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (CI installs it)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    proc = ckpm(hostile_project(tmp_path), "results", "report", "-o", str(html))
    assert proc.returncode == 0, proc.stderr
    assert "data:image/png" in html.read_text()
    shot = tmp_path / "shot.png"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    proc = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                           "--window-size=1200,2000", f"--user-data-dir={home / 'profile'}",
                           html.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert shot.is_file() and shot.stat().st_size > 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert child(DECODE_PNG, str(shot)) == {"size": [1200, 2000], "drawn": True}


# ---------------------------------------------------------------------------------------------
# the command line


def ckpm(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m ckpm -C PROJECT ARGS``; until ``results`` is registered in ckpm.cli.main, with it added."""
    from ckpm.cli.main import cli

    if "results" in cli.commands:  # type: ignore[attr-defined]
        argv = [sys.executable, "-m", "ckpm"]
    else:
        boot = ("from ckpm.cli.main import cli, main; from ckpm.cli.results import results; "
                "cli.add_command(results); main()")
        argv = [sys.executable, "-c", boot]
    return subprocess.run([*argv, "-C", str(project), *args], capture_output=True, text=True, timeout=60,
                          cwd=project.parent)


def test_cli_compare_json(project: Path) -> None:
    proc = ckpm(project, "results", "compare", "baseline", "tuned", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True and out["command"] == "results compare" and out["warnings"] == []
    m = metrics_of(out["data"])
    assert m["time"]["verdict"] == "faster" and m["time"]["ratio"] == pytest.approx(0.5)
    assert {d["what"] for d in out["data"]["differences"]} == {"cflags", "env.OMP_NUM_THREADS"}


def test_cli_human_output_and_errors(project: Path, tmp_path: Path) -> None:
    (project / ".ckpm" / "experiments" / "tuned" / "20261203T000000000000Z-bad.json").write_text("{")
    proc = ckpm(project, "results", "ls")
    assert proc.returncode == 0, proc.stderr
    assert "baseline" in proc.stdout and "tuned" in proc.stdout and "0.2" in proc.stdout
    assert "warning: experiment tuned: left out" in proc.stderr
    proc = ckpm(project, "results", "compare", "baseline", "tuned", "--metric", "time")
    assert proc.returncode == 0, proc.stderr
    assert "faster" in proc.stdout and "0.500×" in proc.stdout and "env.OMP_NUM_THREADS" in proc.stdout
    proc = ckpm(project, "results", "show", "tunde", "--json")
    assert proc.returncode == 1
    err = json.loads(proc.stdout)
    assert err["ok"] is False and err["error"]["code"] == "experiment" and "tuned" in err["error"]["hint"]
    proc = ckpm(project, "results", "plot", "baseline", "tuned", "--x", "time", "--y", "size",
                "-o", str(tmp_path / "pareto.png"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"]["path"] == str(tmp_path / "pareto.png")
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    proc = ckpm(project, "results", "report", "-o", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_outside_a_project(tmp_path: Path) -> None:
    proc = ckpm(tmp_path, "results", "ls")
    assert proc.returncode == 1 and "no ckpm.toml" in proc.stderr
