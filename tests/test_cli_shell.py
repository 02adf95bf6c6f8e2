"""What a user's shell does to ckpm's arguments: real `sh` running real `ckpm` processes."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from ckpm import api


def sh(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one command line through /bin/sh, as a user pasting it would."""
    ckpm = f"{shlex.quote(sys.executable)} -m ckpm.cli.main"
    return subprocess.run(["/bin/sh", "-c", line.replace("ckpm ", ckpm + " ", 1)], cwd=cwd, text=True,
                          capture_output=True, timeout=300, env={**os.environ, "CKPM_INDEX": str(cwd / "nowhere")})


def test_an_unquoted_range_is_a_redirection_and_the_hint_says_so(tmp_path: Path) -> None:
    proj = api.init_project(tmp_path / "p", "p").parent
    before = (proj / "ckpm.toml").read_bytes()
    r = sh("ckpm add lib-tensorflow@>=1.13", proj)
    assert (proj / "=1.13").exists()  # the shell made it, before ckpm ran
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "empty version range after '@'" in r.stderr
    assert "redirection" in r.stderr and "'=1.13'" in r.stderr and "quote" in r.stderr
    assert (proj / "ckpm.toml").read_bytes() == before


def test_an_empty_range_without_a_redirection_asks_for_a_quoted_range(tmp_path: Path) -> None:
    proj = api.init_project(tmp_path / "p", "p").parent
    r = sh("ckpm add 'lib-tensorflow@'", proj)
    assert r.returncode != 0 and "empty version range after '@'" in r.stderr
    assert "redirection" not in r.stderr and "quoted" in r.stderr
