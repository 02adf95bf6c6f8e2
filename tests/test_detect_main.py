"""``python -m ckpm.detect``: a whole process, JSON out, warm runs probe nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ckpm.detect.testing import tool_script, write_exe

ROOT = Path(__file__).resolve().parent.parent


def run_main(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "ckpm.detect", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, **kw)


def test_json_output_and_warm_run(tmp_path):
    write_exe(tmp_path / "bin" / "tool", tool_script("tool 1.2.3"))
    write_exe(tmp_path / "bin" / "tool-bad", tool_script(stderr="boom", exit_code=4))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"tool": [{"executable": ["tool", "tool-*"]}]}))
    env = {**os.environ, "PATH": str(tmp_path / "bin")}
    args = [str(rules), "--json", "--cache-dir", str(tmp_path / "cache")]
    cold = run_main(args, env, check=True)
    data = json.loads(cold.stdout)
    assert [d["version"] for d in data["found"]["tool"]] == ["1.2.3"]
    assert data["facts"]["__python"]["version"]
    assert data["probes_run"] == 2
    assert "warning: tool: " in cold.stderr and "boom" in cold.stderr
    warm = json.loads(run_main(args, env, check=True).stdout)
    assert warm["probes_run"] == 0 and warm["found"] == data["found"]


def test_table_output_and_bad_input(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "CKPM_CACHE_DIR": str(tmp_path / "cache")}
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"absent": [{"executable": ["ckpm-no-such-tool"]}]}))
    out = run_main([str(rules)], env, check=True).stdout
    assert "__libc" in out and "absent" in out and "not found" in out
    rules.write_text("[1, 2]")
    bad = run_main([str(rules)], env)
    assert bad.returncode == 2 and "cannot read rules" in bad.stderr


def test_rules_from_the_embedded_index(tmp_path):
    from ckpm.detect.rules import rules_from_index
    from ckpm.index import open_index

    rules = rules_from_index(open_index(None))
    assert rules, "the embedded index declares detect rules"
    env = {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    data = json.loads(run_main(["--index", "embedded", "--json"], env, check=True, timeout=60).stdout)
    assert set(data["found"]) == set(rules)
    gcc = [n for n, r in rules.items() if any(x.get("compiler") == "gcc" and "c" in x.get("languages", ())
                                             and not x.get("target") for x in r)]
    assert gcc and any(d["path"] == "/usr/bin/gcc" for n in gcc for d in data["found"][n])
