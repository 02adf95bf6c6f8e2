"""The pipeline's parts one by one: the measuring launcher (ckpm/pipeline/measure.py), the
compile's folder renamed into place or kept as ``-failed``, and the stages called as a notebook
would, with the frozen context and typed results the record is made from. Real compiler,
real processes."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from ckpm.errors import BuildError
from ckpm.settings import Settings
from ckpm.workspace import Workspace

PROGRAM = r"""
#include <stdio.h>
int main(void) {
    FILE *f = fopen("out/answer.txt", "w");
    if (!f) return 3;
    fprintf(f, "42\n");
    fclose(f);
    printf("answer: 42\n");
    return 0;
}
"""

MANIFEST = """\
[project]
name = "answer"

[run]
sources = ["src/answer.c"]
binary = "answer"

[run.commands.go]
args = []

[run.validate]
exists = ["answer.txt"]
stdout = ["answer: 42"]

[run.metrics]
answer = { regex = "answer: ([0-9]+)" }
"""


def _project(tmp_path: Path, source: str = PROGRAM) -> Path:
    proj = tmp_path / "answer"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "answer.c").write_text(source)
    (proj / "ckpm.toml").write_text(MANIFEST)
    return proj


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_the_launcher_is_built_once_whole_and_replaces_a_broken_folder(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from ckpm.pipeline.measure import launcher_for

    monkeypatch.setenv("CKPM_CACHE_DIR", str(tmp_path / "cache"))
    settings = Settings()
    host = settings.host_target()
    path = launcher_for(settings, host)
    assert path is not None and os.access(path, os.X_OK)
    folder = Path(path).parent
    assert sorted(p.name for p in folder.iterdir()) == ["ckpm-launch", "launch.c"]
    assert _temporaries(folder.parent) == []
    mtime = Path(path).stat().st_mtime_ns
    assert launcher_for(settings, host) == path and Path(path).stat().st_mtime_ns == mtime  # reused, not rebuilt
    # what an older ckpm left after a failed compile: the source without the launcher
    Path(path).unlink()
    assert launcher_for(settings, host) == path and os.access(path, os.X_OK)
    assert _temporaries(folder.parent) == []


def test_a_failed_compile_keeps_its_log_and_a_good_one_is_renamed_into_place(tmp_path: Path) -> None:
    from ckpm.pipeline.run import RunRequest, run

    proj = _project(tmp_path, PROGRAM.replace("return 0;", "return 0"))
    ws = Workspace(proj, Settings())
    with pytest.raises(BuildError) as e:
        run(ws, RunRequest())
    build = proj / ".ckpm" / "build"
    (failed,) = [p for p in build.iterdir() if p.is_dir()]
    assert failed.name.endswith("-failed") and e.value.log == str(failed / "compile.log")
    assert "error" in (failed / "compile.log").read_text() and not (failed / "ok.json").exists()
    assert _temporaries(build) == []
    (proj / "src" / "answer.c").write_text(PROGRAM)
    rec = run(ws, RunRequest())
    assert rec["ok"] and rec["stages"]["compile"]["reused"] is False
    binary = Path(rec["stages"]["compile"]["binary"])
    assert binary.is_file() and (binary.parent / "ok.json").is_file() and binary.parent.parent == build
    assert _temporaries(build) == []
    assert run(ws, RunRequest())["stages"]["compile"]["reused"] is True


def test_the_stages_one_by_one_give_the_record(tmp_path: Path) -> None:
    """A notebook calls the stages in turn; the context is frozen, each result typed, and the
    record holds their plain data (what ``run`` writes)."""
    from ckpm.pipeline.run import (RunContext, RunRequest, StageResults, compile_stage, program_of,
                                   provision_stage, record_stage, run_stage, validate_stage)

    proj = _project(tmp_path)
    ws = Workspace(proj, Settings())
    request = RunRequest(repeat=2, record="steps")
    provisioned = provision_stage(ws, request)
    program, folder = program_of(ws, request, provisioned)
    assert program.name == "answer" and folder == proj
    ctx = RunContext.after(request, ws.host_target, provisioned, program, folder)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.target = "linux-aarch64"  # type: ignore[misc]
    compiled = compile_stage(ws, ctx)
    ran = run_stage(ws, ctx, compiled)
    assert [r.n for r in ran.repetitions] == [1, 2] and all(r.exit == 0 for r in ran.repetitions)
    assert all("answer: 42" in r.stdout_text for r in ran.repetitions)
    validated = validate_stage(ws, ctx, ran)
    assert validated.ok and len(validated.checks) == 4  # exists and stdout, per repetition
    stages = StageResults(provisioned, compiled, ran, validated)
    record = record_stage(ws, ctx, stages)
    assert record["ok"] and record["metrics"]["answer"]["median"] == 42
    assert record["stages"] == json.loads(json.dumps(stages.to_dict()))
    assert set(record["stages"]["run"]["repetitions"][0]) == {"n", "exit", "metrics", "out", "stdout", "stderr",
                                                              "stderr_tail", "metric_problems"}
    assert record["repetitions"] == record["stages"]["run"]["repetitions"]
    assert record["validation"] == record["stages"]["validate"]["checks"]
    assert record["command_lines"] == [list(compiled.command), list(ran.argv)]
    saved = json.loads(Path(record["path"]).read_text())
    assert saved["stages"] == record["stages"] and saved["experiment"] == "steps"
