"""Run environments (issue 24, finding 10): a program's `env` from a `[run]` table had no
reserved-name check, and `GCONV_PATH` and `NODE_OPTIONS` were carried over from a CK import.

One list (ckpm/model/envnames.py) now serves recipes, programs' run environments (the table's
`env` and each command's) and the CK import, which drops such variables with a reason.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ckpm.model.recipe_checks import check_recipe
from ckpm.ck import import_ck
from ckpm.index.layout import entry_path
from ckpm.model.envnames import reserved_env
from ckpm.model.program import ProgramError, parse_program
from ckpm.settings import Settings

#: what an attacker's [run] env tried: the loader's, interpreters' and shells' start-up hooks
HOSTILE = ("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "GCONV_PATH", "NODE_OPTIONS",
           "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PERL5OPT", "PERL5LIB", "BASH_ENV", "ENV", "RUBYOPT",
           "RUBYLIB", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "GLIBC_TUNABLES", "IFS", "PATH", "HOME", "SHELL",
           "BASH_FUNC_echo%%", "PROMPT_COMMAND", "PS4", "GIT_SSH_COMMAND", "GIT_CONFIG_GLOBAL", "LUA_INIT",
           "OPENSSL_CONF", "CKPM_STORE", "LC_ALL", "PIP_INDEX_URL", "HTTPS_PROXY", "NPM_CONFIG_SCRIPT_SHELL")
ORDINARY = ("OMP_NUM_THREADS", "CK_SCALE", "MY_SETTING", "CFLAGS", "DATA_DIR")

BASE: dict[str, Any] = {"sources": ["main.c"], "commands": {"go": {"args": ["{out}"]}}}


@pytest.mark.parametrize("where", ["env", "command env"])
def test_a_program_may_not_set_a_reserved_variable(where: str) -> None:
    escaped = []
    for name in HOSTILE:
        if where == "env":
            data = {**BASE, "env": {name: "x"}}
        else:
            data = {**BASE, "commands": {"go": {"args": [], "env": {name: "x"}}}}
        try:
            parse_program(data, name="evil", where="evil 1.0 run")
        except ProgramError as e:
            assert "may not set it" in e.message or "a variable needs a name" in e.message, e.message
            continue
        escaped.append(name)
    assert escaped == []
    for name in ORDINARY:
        assert parse_program({**BASE, "env": {name: "1"}}, name="ok").env == {name: "1"}


def test_recipes_programs_and_ck_share_one_list() -> None:
    for name in HOSTILE:
        if not name.isidentifier():
            continue
        assert reserved_env(name), name
        assert check_recipe({"steps": [{"kind": "copy"}], "env": {name: "x"}}), name
    assert check_recipe({"steps": [{"kind": "copy"}], "env": {"OMP_NUM_THREADS": "2"}}) == []


def test_ckpm_run_refuses_a_run_table_that_sets_gconv_path(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    marker = tmp_path / "compiled"
    (proj / "main.c").write_text("int main(void){return 0;}\n")
    (proj / "ckpm.toml").write_text(
        '[project]\nname = "p"\n\n[run]\nsources = ["main.c"]\n\n[run.env]\n'
        f'GCONV_PATH = "{tmp_path}"\nNODE_OPTIONS = "--require {marker}"\n\n'
        '[run.commands.go]\nargs = []\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CKPM_CACHE_DIR": str(tmp_path / "cache"),
           "CKPM_STORE": str(tmp_path / "store"), "CKPM_CONFIG": str(tmp_path / "none.toml")}
    r = subprocess.run([sys.executable, "-m", "ckpm", "run"], cwd=proj, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "GCONV_PATH" in r.stderr and "may not set it" in r.stderr
    assert not (proj / ".ckpm" / "build").exists()  # nothing was compiled, nothing ran


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if isinstance(data, (dict, list)) else data)


def test_ck_import_drops_reserved_run_vars_with_a_reason(tmp_path: Path) -> None:
    repo = tmp_path / "ck"
    _write(repo / ".ckr.json", {"data_alias": "ck", "data_uid": "0123456789abcdef", "dict": {}})
    d = repo / "program" / "hello"
    uid = "1111111111111111"
    _write(d / ".cm" / "info.json", {"backup_data_uid": uid, "data_name": "hello"})
    _write(d / ".cm" / "desc.json", {})
    _write(repo / "program" / ".cm" / "alias-a-hello", uid + "\n")
    _write(repo / "program" / ".cm" / f"alias-u-{uid}", "hello\n")
    _write(d / "hello.c", "int main(void){return 0;}\n")
    hostile = {n: "x" for n in HOSTILE if n.isidentifier()}
    _write(d / ".cm" / "meta.json", {
        "main_language": "c", "source_files": ["hello.c"], "tags": ["program"],
        "run_vars": {**hostile, "CK_SCALE": 2},
        "run_cmds": {"default": {"run_time": {"run_cmd_main": "$#BIN_FILE#$",
                                              "run_vars": {**hostile, "OMP_NUM_THREADS": 1}}}},
    })
    index = tmp_path / "index"
    report = import_ck(repo, index, settings=Settings(cache_dir=tmp_path / "cache"))
    (m,) = [m for m in report.items if m.entry.alias == "hello"]
    assert m.line is not None, m.skipped
    line = json.loads((index / entry_path(m.name)).read_text().splitlines()[-1])
    assert line["run"]["env"] == {"CK_SCALE": "2"}
    assert line["run"]["commands"]["default"]["env"] == {"OMP_NUM_THREADS": "1"}
    notes = "\n".join(m.not_carried)
    for name in hostile:
        assert f"run_vars {name}: reserved" in notes and f"default.run_vars {name}: reserved" in notes, name
