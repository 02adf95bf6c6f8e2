"""`ckpm run` and `ckpm replay` end to end: a real C program, the machine's compiler, real
processes, records on disk; and the cross-compiled run under qemu-aarch64."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ckpm
from ckpm.experiment.record import load_experiment

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000, s = 0;
    for (long i = 0; i < n; i++) s += i % 7;
    const char *wrong = getenv("MAKE_IT_WRONG");
    if (wrong && *wrong) s += 1;
    printf("sum: %ld\n", s);
    FILE *f = fopen(argc > 2 ? argv[2] : "result.txt", "w");
    if (!f) return 3;
    fprintf(f, "%ld\n", s);
    fclose(f);
    return 0;
}
"""

MANIFEST = """\
[project]
name = "summer"

[dependencies]
compiler = {{ tags = "compiler,lang-c", version = ">=9", kind = "build" }}

[run]
sources = ["src/sum.c"]
binary = "sum"
cflags = ["-O1"]
{extra}
[run.flags]
speed = ["-O3"]
size = ["-Os"]

[run.env]
GREETING = "hi"

[run.params]
n = "100000"

[run.commands.sum]
args = ["{{param.n}}", "{{out}}/result.txt"]

[run.validate]
exists = ["result.txt"]
metrics = [{{ name = "sum", equals = 299995, tolerance = 0 }}]

[run.metrics]
sum = {{ regex = "sum: ([0-9]+)" }}
"""


def _project(tmp_path: Path, extra: str = "") -> Path:
    proj = tmp_path / "summer"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "sum.c").write_text(PROGRAM)
    (proj / "ckpm.toml").write_text(MANIFEST.format(extra=extra))
    return proj


def ckpm_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=os.environ.copy())


def test_run_records_and_replays(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    r = ckpm_cli("run", "--repeat", "3", "--record", "base", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)["data"]
    assert rec["ok"] and rec["program"]["name"] == "summer" and rec["target"]
    assert rec["metrics"]["sum"]["median"] == 299995 and rec["metrics"]["time"]["n"] == 3
    assert 0 < rec["metrics"]["max_rss"]["median"] < 20  # the program's own peak, not Python's
    assert rec["config"]["cflags"] == ["-O1"] and rec["config"]["compiler"]["version"]
    assert set(rec["stages"]) == {"provision", "compile", "run", "validate"}
    exp = load_experiment(proj, "base")
    assert len(exp.records) == 1 and "[[package]]" in exp.records[0]["lock"]
    # the binary is reused when nothing changed; a new flag profile compiles again
    r2 = ckpm_cli("run", "--json", cwd=proj)
    assert json.loads(r2.stdout)["data"]["stages"]["compile"]["reused"] is True
    r3 = ckpm_cli("run", "--flags", "speed", "--json", cwd=proj)
    assert json.loads(r3.stdout)["data"]["stages"]["compile"]["reused"] is False
    # an identical configuration replays cleanly (a wide tolerance: a loaded machine's clock is no regression)
    r = ckpm_cli("replay", "base", "--tolerance", "100", "--json", cwd=proj)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["data"]["differences"] == []
    # the program's flags and env changed in ckpm.toml: replay reports both and fails
    text = (proj / "ckpm.toml").read_text().replace('cflags = ["-O1"]', 'cflags = ["-O2"]').replace(
        'GREETING = "hi"', 'GREETING = "hello"')
    (proj / "ckpm.toml").write_text(text)
    r = ckpm_cli("replay", "base", "--json", cwd=proj)
    assert r.returncode == 6
    whats = {d["what"] for d in json.loads(r.stdout)["data"]["differences"]}
    assert {"cflags", "env.GREETING"} <= whats
    r = ckpm_cli("replay", "base", cwd=proj)
    assert r.returncode == 6 and "configuration difference" in r.stderr


def test_wrong_output_fails_validation_and_names_it(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    r = ckpm_cli("run", "--env", "MAKE_IT_WRONG=1", "--record", "bad", cwd=proj)
    assert r.returncode == 5, r.stderr
    assert "sum is 299996, expected 299995" in r.stderr and "Traceback" not in r.stderr
    (rec,) = load_experiment(proj, "bad").records
    assert rec["ok"] is False  # recorded as a failed run, never a silent success


def test_run_errors_are_one_clear_line(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    for args, words in ((["--flags", "sped"], "no flag profile 'sped'"), (["--cmd", "sun"], "did you mean 'sum'"),
                        (["--param", "m=1"], "no parameter m"), (["nosuch"], "not in ckpm.lock")):
        r = ckpm_cli("run", *args, cwd=proj)
        assert r.returncode != 0 and words in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    for args, code in ((["--flags", "sped"], "unknown-flags"), (["--cmd", "sun"], "unknown-command"),
                       (["--param", "m=1"], "unknown-parameter")):
        r = ckpm_cli("run", *args, "--json", cwd=proj)
        assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == code, (args, r.stdout)
    (proj / "ckpm.toml").write_text(MANIFEST.format(extra='timeout = "soon"\n'))
    r = ckpm_cli("run", cwd=proj)
    assert r.returncode != 0 and "timeout must be a number" in r.stderr


def test_access_runs_in_process(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    out = ckpm.access({"action": "run", "project": str(proj), "params": {"n": "70"}, "record": "small"})
    assert out["return"] == 5 and out["code"] == "validation", out  # 210 fails the check for 299995
    assert out["record"]["metrics"]["sum"]["median"] == 210 and out["record"]["ok"] is False
    out = ckpm.access({"action": "run", "project": str(proj), "record": "good", "repeat": 2})
    assert out["return"] == 0 and out["ok"] is True and out["metrics"]["time"]["n"] == 2
    out = ckpm.access({"action": "replay", "project": str(proj), "name": "good", "tolerance": 100})
    assert out["return"] == 0 and out["differences"] == [] and out["ok"] is True
    out = ckpm.access({"action": "replay", "project": str(proj), "name": "small"})
    assert out["return"] == 5  # the recorded configuration fails its validation again
    out = ckpm.access({"action": "run", "project": str(proj), "repeat": "many"})
    assert out["return"] == 1 and "repeat" in out["error"]


@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="no aarch64-linux-gnu-gcc or qemu-aarch64 (Debian gcc-aarch64-linux-gnu, qemu-user)")
def test_cross_compiled_run_under_qemu(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    r = ckpm_cli("run", "--target", "linux-aarch64", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)["data"]
    assert rec["target"] == "linux-aarch64" and rec["ok"]
    binary = Path(rec["stages"]["compile"]["binary"])
    head = binary.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183  # EM_AARCH64
    assert "qemu-aarch64" in rec["stages"]["run"]["argv"][0]
    assert rec["metrics"]["sum"]["median"] == 299995


def test_replay_verdicts_are_noise_aware() -> None:
    from ckpm.pipeline.replay import metric_changes

    def rec(**metrics: tuple[float, float, float, str]) -> dict:
        return {"metrics": {k: {"min": a, "median": b, "max": c, "n": 3, "better": better}
                            for k, (a, b, c, better) in metrics.items()}}

    old = rec(time=(0.100, 0.110, 0.120, "lower"), score=(90, 95, 100, "higher"), size=(1000, 1000, 1000, "lower"))
    same = rec(time=(0.110, 0.125, 0.130, "lower"), score=(88, 92, 99, "higher"), size=(1000, 1000, 1000, "lower"))
    worse = rec(time=(0.190, 0.200, 0.210, "lower"), score=(60, 70, 75, "higher"), size=(1200, 1200, 1200, "lower"))
    better = rec(time=(0.040, 0.050, 0.060, "lower"), score=(150, 160, 170, "higher"), size=(800, 800, 800, "lower"))
    verdict = lambda new: {m["metric"]: m["verdict"] for m in metric_changes(old, new, 0.10)}  # noqa: E731
    assert verdict(same) == {"time": "same", "score": "same", "size": "same"}
    assert verdict(worse) == {"time": "regression", "score": "regression", "size": "regression"}
    assert verdict(better) == {"time": "improvement", "score": "improvement", "size": "improvement"}


def test_parallel_runs_of_one_configuration_compile_once(tmp_path: Path) -> None:
    """Tuning points that differ only in env or params share a build key: they must not
    trample each other's compile (one compiles, the others wait and reuse it)."""
    from concurrent.futures import ThreadPoolExecutor

    proj = _project(tmp_path)
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: ckpm.access({"action": "run", "project": str(proj),
                                                    "env": {"POINT": str(i)}}), range(4)))
    assert all(o["return"] == 0 and o["ok"] for o in outs), [o.get("error") for o in outs]
    assert sum(not o["stages"]["compile"]["reused"] for o in outs) == 1
    assert len({o["stages"]["compile"]["binary"] for o in outs}) == 1


def test_access_results_after_runs(tmp_path: Path) -> None:
    """The results actions of ckpm.access over real records: list, show, compare, report."""
    proj = _project(tmp_path)
    for name, flags in (("o1", None), ("o3", "speed")):
        out = ckpm.access({"action": "run", "project": str(proj), "record": name, "flags": flags, "repeat": 2})
        assert out["return"] == 0, out
    out = ckpm.access({"action": "results", "project": str(proj)})
    assert out["return"] == 0 and [e["name"] for e in out["experiments"]] == ["o1", "o3"]
    out = ckpm.access({"action": "results", "op": "compare", "project": str(proj), "a": "o1", "b": "o3"})
    assert out["return"] == 0, out
    assert {"flags", "cflags"} <= {d["what"] for d in out["differences"]}
    out = ckpm.access({"action": "results", "op": "report", "project": str(proj), "out": str(tmp_path / "r.html")})
    assert out["return"] == 0 and (tmp_path / "r.html").read_text().lstrip().lower().startswith("<!doctype html")
    out = ckpm.access({"action": "results", "op": "nope", "project": str(proj)})
    assert out["return"] == 1 and "unknown op" in out["error"]


def test_an_experiment_exports_as_one_file_and_imports_elsewhere(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    assert ckpm_cli("run", "--repeat", "2", "--record", "base", cwd=proj).returncode == 0
    out = tmp_path / "base.json"
    r = ckpm_cli("results", "export", "base", "-o", str(out), cwd=proj)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["experiment"] == "base" and len(doc["records"]) == 1 and "[[package]]" in doc["records"][0]["lock"]
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "ckpm.toml").write_text('[project]\nname = "elsewhere"\n')
    r = ckpm_cli("results", "import", str(out), "--as", "theirs", cwd=other)
    assert r.returncode == 0, r.stderr
    assert "added 1 record to theirs" in r.stderr + r.stdout
    assert load_experiment(other, "theirs").records[0]["id"] == doc["records"][0]["id"]
    r = ckpm_cli("results", "import", str(out), "--as", "theirs", cwd=other)  # the same file again
    assert r.returncode == 0 and "added 0 records to theirs (1 record already there)" in r.stderr + r.stdout
    assert len(load_experiment(other, "theirs").records) == 1
    (tmp_path / "bad.json").write_text('{"kind": "ckpm-experiment", "records": [{"format": 9}]}')
    r = ckpm_cli("results", "import", str(tmp_path / "bad.json"), "--as", "x", cwd=other)
    assert r.returncode == 1 and "not a format-1 experiment record" in r.stderr
