"""What the warm commands import: a warm ``ckpm run``, ``lock --check`` and a no-op ``lock`` pay
for every module they load (issue 27: a warm run's overhead is mostly imports), so the modules
that only other work needs (HTTP, temporary folders, the resolver's engine, other commands'
modules) must stay out of them. Real processes over a real C program and the embedded index."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROGRAM = r"""
#include <stdio.h>
int main(void) { printf("sum: 3\n"); return 0; }
"""

MANIFEST = """\
[project]
name = "lean"

[dependencies]
compiler = { tags = "compiler,lang-c", version = ">=9", kind = "build" }

[run]
sources = ["sum.c"]
binary = "sum"

[run.validate]
stdout = ["sum: 3"]
"""

#: runs the command line as ``python -m ckpm`` does, then writes the names of the modules it imported
SCRIPT = """
import json, runpy, sys
out = sys.argv[1]
sys.argv = ["ckpm", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("ckpm", run_name="__main__")
except SystemExit as e:
    code = e.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

#: modules no warm command needs: HTTP and its e-mail parsing, temporary folders (with shutil's
#: compressors), the resolver's engine, downloads, other commands' modules, the heavy libraries
HEAVY = ("urllib.request", "http.client", "email", "ssl", "tempfile", "bz2", "lzma", "requests", "pygit2",
         "resolvelib", "pysat", "rich", "archspec", "ckpm.resolve.engine", "ckpm.resolve.provider",
         "ckpm.fetch.download", "ckpm.publishing", "ckpm.artifact", "ckpm.cli.results", "ckpm.cli.tune",
         "ckpm.cli.ck", "ckpm.cli.container", "ckpm.cli.registry", "ckpm.cli.artifact", "ckpm.cli.cache")


def _imported(proj: Path, tmp_path: Path, *args: str) -> list[str]:
    out = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", SCRIPT, str(out), "-C", str(proj), *args], cwd=tmp_path,
                   capture_output=True, text=True, timeout=300, env=os.environ.copy())
    got = json.loads(out.read_text())
    assert got["code"] in (0, None), (args, got["code"])
    return got["modules"]


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m in HEAVY or m.startswith(tuple(f"{h}." for h in HEAVY))]


def test_warm_run_lock_check_and_no_op_lock_are_lean(tmp_path: Path) -> None:
    proj = tmp_path / "lean"
    proj.mkdir()
    (proj / "sum.c").write_text(PROGRAM)
    (proj / "ckpm.toml").write_text(MANIFEST)
    cold = subprocess.run([sys.executable, "-m", "ckpm", "-C", str(proj), "run", "--json"], capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())
    assert cold.returncode == 0, cold.stderr
    assert json.loads(cold.stdout)["data"]["stages"]["compile"]["reused"] is False
    warm = _imported(proj, tmp_path, "run")
    assert "ckpm.pipeline.run" in warm  # it did run
    assert _heavy(warm) == [], f"imported on the warm run path: {_heavy(warm)}"
    for args in (["lock", "--check"], ["lock"]):
        mods = _imported(proj, tmp_path, *args)
        assert "ckpm.resolve.verify" in mods  # the lock was verified
        assert _heavy(mods) + [m for m in ("subprocess",) if m in mods] == [], (args, _heavy(mods))
