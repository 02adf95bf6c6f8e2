"""Detection probes (issue 24, finding 2): an index rule `{"executable": "touch",
"version_args": ["version"]}` made `ckpm add` create `/version` (probes ran in `/`, as root);
`logger version` wrote to syslog; only a short deny list stood in the way of curl, ssh, kubectl.

Now an index rule may only run an executable that belongs to its component (its name carries
the component's stem), and every probe runs in a new, empty, private folder, removed after
it, with stdin from /dev/null and a scrubbed environment. A spy executable records what a
probe sees; `ckpm` runs as a real process.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sec_store_support import ckpm_env, make_index, make_project  # noqa: E402

from ckpm.detect import detect  # noqa: E402
from ckpm.detect.probe import PROBE_ENV_KEEP  # noqa: E402
from ckpm.detect.rules import rules_from_index, rules_of_entries  # noqa: E402
from ckpm.detect.trust import belongs_to, name_stem, validate_rule  # noqa: E402
from ckpm.model.entry import IndexEntry  # noqa: E402
from ckpm.report import Reporter

#: programs an attacker's index named for a component that is not theirs: each must be refused
FOREIGN = ("touch", "logger", "curl", "wget", "ssh", "scp", "kubectl", "nc", "sh", "bash", "env", "python3",
           "perl", "tee", "find", "xargs", "git", "docker", "aws", "gpg", "mail", "sendmail", "systemd-run",
           "*", "[a-z]*", "t*ch")


def _entry(name: str, rules: list[dict[str, object]]) -> dict[str, object]:
    return {"name": name, "version": "1.0", "kind": "tool", "tags": [], "targets": ["*"], "deps": [],
            "detect": rules}


@pytest.mark.parametrize("component", ["evil-tool", "tool-cmake", "compiler-gcc", "lib-zlib"])
def test_a_rule_naming_another_program_is_rejected_with_a_warning(component: str) -> None:
    escaped: list[str] = []
    for exe in FOREIGN:
        if belongs_to(exe, component):
            continue  # (git for a component named …git… would belong; none of these components is)
        e = IndexEntry.from_json(_entry(component, [{"executable": exe, "version_args": ["version"]}]))
        rep = Reporter()
        warnings = rep.warnings  # what the reporter was told, in order, once each
        if rules_of_entries([e], origin="index attacker", reporter=rep):
            escaped.append(exe)
        else:
            assert len(warnings) == 1 and "does not belong to the component" in warnings[0]
            assert warnings[0].startswith(f"index attacker: component {component}: detect rule 1: executable ")
    assert escaped == []


STEMS = [
    ("compiler-gcc", "gcc-[0-9]*", True), ("compiler-gcc", "gcc", True), ("compiler-gxx", "g++", True),
    ("compiler-gxx", "g++-[0-9]*", True), ("tool-make", "gmake", True), ("tool-ninja", "ninja-build", True),
    ("compiler-gcc-aarch64-linux-gnu", "aarch64-linux-gnu-gcc-[0-9]*", True), ("tool-python", "python3.[0-9]*", True),
    ("soft-compiler.gcc", "gcc", True), ("tool-r", "R", True), ("tool-r", "r-4*", True),
    ("evil-tool", "touch", False), ("tool-r", "curl", False), ("tool-cmake", "curl", False),
    ("compiler-gcc", "g++", False), ("tool-git", "kubectl", False), ("compiler-gcc-aarch64-linux-gnu", "gnutls-cli", False),
    ("lib-zlib", "*", False),
]


@pytest.mark.parametrize("component,exe,ok", STEMS)
def test_what_belongs_to_a_component(component: str, exe: str, ok: bool) -> None:
    assert belongs_to(exe, component) is ok, (name_stem(component), exe)
    clean, problems = validate_rule({"executable": exe}, origin="index x", component=component)
    assert (clean is not None) is ok, problems


def test_the_embedded_index_satisfies_the_rule() -> None:
    from ckpm.index import open_index

    rep = Reporter()
    warnings = rep.warnings  # what the reporter was told, in order, once each
    rules = rules_from_index(open_index(None), origin="index embedded", reporter=rep)
    assert warnings == []
    assert {"compiler-gcc", "compiler-gxx", "tool-make", "tool-cmake", "tool-python"} <= set(rules)


def test_the_users_own_rules_plugins_and_ckpms_own_stay_trusted() -> None:
    # the caller's own rules (detect() without owned=True), a plugin's kind, ckpm's toolchain rules
    assert validate_rule({"executable": "touch"}, component="evil-tool", owned=False)[0] is not None
    assert validate_rule({"conda_package": "x", "prefix": "/anything"}, component="evil-tool")[0] is not None
    res = detect({"toolchain-emulator": [{"executable": ["qemu-aarch64", "qemu-aarch64-static"]}]}, timeout=5)
    assert not any("does not belong" in w for w in res.warnings)
    res = detect({"toolchain-emulator": [{"executable": ["qemu-aarch64"]}]}, timeout=5, owned=True)
    assert any("does not belong" in w for w in res.warnings)


def _write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


SPY = """#!/bin/sh
# what a probe sees, recorded where the test reads it; then it acts like `touch version`
{{
  echo "cwd=$(pwd)"
  echo "entries=$(ls -A | wc -l)"
  echo "args=$*"
  echo "stdin=$(cat | wc -c)"
}} > {out}/seen.txt
env > {out}/env.txt
touch version
echo "tool-spy 1.2.3"
"""


def test_a_probe_runs_in_an_empty_private_folder_with_a_scrubbed_environment(tmp_path: Path) -> None:
    out = tmp_path / "record"
    out.mkdir()
    bindir = tmp_path / "bin"
    _write_exe(bindir / "tool-spy", SPY.format(out=out))
    index = make_index(tmp_path / "index", [_entry("tool-spy", [{"executable": "tool-spy",
                                                                 "version_args": ["version"]}])])
    proj = make_project(tmp_path / "proj", index, {})
    home = tmp_path / "home"
    home.mkdir()
    env = ckpm_env(tmp_path)
    env.update(PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", HOME=str(home), SECRET_TOKEN="s3cr3t",
               AWS_SECRET_ACCESS_KEY="k", SSH_AUTH_SOCK="/tmp/agent.sock", BASH_ENV=str(tmp_path / "evil.sh"),
               ENV=str(tmp_path / "evil.sh"), LD_PRELOAD="/nonexistent.so", http_proxy="http://127.0.0.1:9")
    before_root = set(os.listdir("/"))
    r = subprocess.run([sys.executable, "-m", "ckpm", "detect", "tool-spy", "--json", "--refresh"], cwd=proj,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)["data"]
    assert "1.2.3" in json.dumps(found)
    seen = dict(x.split("=", 1) for x in (out / "seen.txt").read_text().splitlines())
    cwd = Path(seen["cwd"])
    assert cwd != Path("/") and cwd != proj and not cwd.is_relative_to(proj)
    assert seen["entries"].strip() == "0"  # empty when the probe started
    assert seen["args"] == "version"
    assert seen["stdin"].strip() == "0"  # end of file at once
    assert not cwd.exists()  # removed, with the file the probe wrote in it
    assert not (proj / "version").exists() and not (home / "version").exists()
    assert ("version" in os.listdir("/")) == ("version" in before_root)
    seen_env = dict(x.split("=", 1) for x in (out / "env.txt").read_text().splitlines() if "=" in x)
    for secret in ("SECRET_TOKEN", "AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK", "BASH_ENV", "ENV", "LD_PRELOAD",
                   "http_proxy", "CKPM_CACHE_DIR", "CKPM_STORE"):
        assert secret not in seen_env, secret
    assert seen_env["LC_ALL"] == "C" and seen_env["PATH"].startswith(str(bindir))
    assert seen_env["HOME"] == str(home) and seen_env["TMPDIR"] == str(cwd)
    extra = set(seen_env) - PROBE_ENV_KEEP - {"LC_ALL", "LANG", "TMPDIR", "TMP", "TEMP", "PWD", "SHLVL", "_", "OLDPWD"}
    assert extra == set(), extra


def test_the_reproduction_touch_version_creates_nothing(tmp_path: Path) -> None:
    """`ckpm lock` of a project that depends on the attacker's `evil-tool`: the rule is refused,
    `touch` never runs, and no `version` file appears anywhere it could have (the project, HOME, /)."""
    index = make_index(tmp_path / "index", [
        {**_entry("evil-tool", [{"executable": "touch", "version_args": ["version"]},
                                {"executable": "logger", "version_args": ["version"]}]),
         "source": {"urls": ["https://example.invalid/evil.tgz"]}}])
    proj = make_project(tmp_path / "proj", index, {"evil-tool": ">=1"})
    home = tmp_path / "home"
    home.mkdir()
    env = {**ckpm_env(tmp_path), "HOME": str(home)}
    had_root_version = os.path.exists("/version")
    r = subprocess.run([sys.executable, "-m", "ckpm", "lock"], cwd=proj, env=env, capture_output=True, text=True,
                       timeout=300)
    assert "Traceback" not in r.stderr
    assert r.stderr.count("does not belong to the component") == 2, r.stderr
    assert "executable 'touch'" in r.stderr and "executable 'logger'" in r.stderr
    assert not (proj / "version").exists() and not (home / "version").exists()
    assert os.path.exists("/version") == had_root_version
