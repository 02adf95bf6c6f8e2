"""Detect rules come from indexes (data written by someone else): they are declarations,
validated before use. Hostile rules run nothing, read nothing outside the roots, and say why.

Real index folders, real shell scripts as fake executables, real subprocesses; every attack
test checks that its marker file was never created.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ckpm.detect import detect, match_recorded, recheck, rule_id, validate_rule
from ckpm.detect.probe import OUTPUT_LIMIT, run_probe
from ckpm.detect.rules import rule_by_id, rules_from_index, rules_of_entries
from ckpm.detect.testing import tool_script, write_exe
from ckpm.detect.trust import VERSION_ARGS, Roots
from ckpm.index.writer import init_index, write_component
from ckpm.testing import entry
from ckpm.report import Reporter

ROOT = Path(__file__).resolve().parent.parent
SECRET_VERSION = "7.7.7"  # what the fake private key holds: it must never reach a result


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


@pytest.fixture
def env(tmp_path: Path, marker: Path) -> dict[str, str]:
    """PATH with a bin folder of fake tools first, a fake HOME with a private key."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(f"{SECRET_VERSION}\n-----BEGIN OPENSSH PRIVATE KEY-----\n")
    bindir = tmp_path / "bin"
    # a fake pkg-config that would leave the marker if it were ever given --foo
    write_exe(bindir / "pkg-config", f'for a in "$@"; do [ "$a" = "--foo" ] && touch {marker}; done\necho 1.0')
    # a program an index would like to run as "the interpreter"
    write_exe(bindir / "evil-python", f"touch {marker}\necho '{{}}'")
    return {**os.environ, "HOME": str(home), "PATH": f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "CKPM_CACHE_DIR": str(tmp_path / "cache")}


def hostile_rules(tmp_path: Path, marker: Path) -> dict[str, list[dict[str, object]]]:
    return {
        "evil-tool": [{"executable": "/bin/sh", "version_args": ["-c", f"id > {marker}; echo 1.0"]}],
        "evil-args": [{"executable": "sh", "version_args": ["-c", f"touch {marker}; echo 1.0"]}],
        "evil-python": [{"python_package": "pytest", "python": str(tmp_path / "bin" / "evil-python")}],
        "evil-pkg": [{"pkg_config": "--foo"}],
        "evil-lib": [{"library": "-lfoo", "header": "x.h"}],
        "evil-ssh": [{"path": "~/.ssh/id_*", "version_file": "id_rsa"}],
        "evil-ssh-name": [{"path": "~/.ssh/*", "version_from": "name", "version_regex": "(.*)"}],
        "evil-content": [{"path": "/usr/bin/*", "version_regex": "(.*)"}],
    }


EXPECTED = {
    "evil-tool": "detect rule 1: executable '/bin/sh' must be a bare name",
    "evil-args": "detect rule 1: version_args ['-c', ",
    "evil-python": "detect rule 1: python: an index may not choose the interpreter",
    "evil-pkg": "detect rule 1: pkg_config '--foo' must be a bare name",
    "evil-lib": "detect rule 1: library '-lfoo' must be a bare name",
    "evil-ssh": "detect rule 1: path '~/.ssh/id_*' is outside the folders detection may look in",
    "evil-ssh-name": "detect rule 1: path '~/.ssh/*' is outside the folders detection may look in",
    "evil-content": "detect rule 1: version_regex over the matched file is not allowed",
}


def test_hostile_rules_run_nothing_and_say_why(tmp_path: Path, marker: Path, env: dict[str, str]) -> None:
    rules = hostile_rules(tmp_path, marker)
    result = detect(rules, env=env, cache_dir=tmp_path / "cache", origin="index lab")
    assert not marker.exists()
    assert all(result.found[name] == [] for name in rules)
    for name, text in EXPECTED.items():
        assert any(w.startswith(f"index lab: component {name}: {text}") for w in result.warnings), (name, result.warnings)
    assert SECRET_VERSION not in json.dumps(result.to_json())


def test_hostile_index_through_rules_from_index(tmp_path: Path, marker: Path, env: dict[str, str]) -> None:
    from ckpm.index import open_index

    idx = tmp_path / "idx"
    init_index(idx, "lab")
    for name, rules in hostile_rules(tmp_path, marker).items():
        write_component(idx, [entry(name, "1.0", kind="tool", detect=rules)])
    write_component(idx, [entry("tool-ok", "1.0", kind="tool", detect=[{"executable": ["ok"]}])])
    rep = Reporter()
    warnings = rep.warnings  # what the reporter was told, in order, once each
    got = rules_from_index(open_index(str(idx)), origin="index lab", reporter=rep)
    # a component whose rules are all rejected has none left; path roots are checked at detection
    assert list(got) == ["evil-ssh", "evil-ssh-name", "tool-ok"]
    for name, text in EXPECTED.items():
        if "outside the folders" in text:
            continue  # roots are checked at detection time, after expansion
        assert f"index lab: component {name}: {text}" in "\n".join(warnings)
    assert not marker.exists()
    # without origin the rules come back unchanged (detection validates them anyway)
    assert len(rules_from_index(open_index(str(idx)))) == len(EXPECTED) + 1


def test_hostile_index_through_the_cli(tmp_path: Path, marker: Path, env: dict[str, str]) -> None:
    idx = tmp_path / "idx"
    init_index(idx, "lab")
    for name, rules in hostile_rules(tmp_path, marker).items():
        write_component(idx, [entry(name, "1.0", kind="tool", detect=rules)])
    r = subprocess.run([sys.executable, "-m", "ckpm.cli.main", "--index", str(idx), "detect", "--json"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert not marker.exists()
    data = json.loads(r.stdout)["data"] | {"warnings": json.loads(r.stdout)["warnings"]}
    assert all(data["found"].get(name, []) == [] for name in EXPECTED)
    assert SECRET_VERSION not in r.stdout + r.stderr
    warnings = "\n".join(data.get("warnings") or [])
    assert "component evil-tool: detect rule 1: executable '/bin/sh' must be a bare name" in warnings
    # the table output: no traceback either
    r = subprocess.run([sys.executable, "-m", "ckpm", "-v", "--index", str(idx), "detect"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("rule, field", [
    ({"executable": "/usr/bin/gcc"}, "executable '/usr/bin/gcc' must be a bare name"),
    ({"executable": ["ok", "../sh"]}, "executable '../sh' must be a bare name"),
    ({"executable": "-rf"}, "executable '-rf' must be a bare name"),
    ({"executable": "~/bin/x"}, "executable '~/bin/x' must be a bare name"),
    ({"executable": "a\\b"}, "must be a bare name"),
    ({"executable": "gcc\x00"}, "contains a control character"),
    ({"executable": "g" * 200}, "must be a bare name of 1 to 128 characters"),
    ({"executable": "tool", "version_args": ["--version", "--help"]}, "version_args"),
    ({"executable": "tool", "version_args": "-c"}, "version_args '-c' must be one of"),
    ({"executable": "tool", "exit_codes": [0, 999]}, "exit_codes"),
    ({"executable": "tool", "exit_codes": [True]}, "exit_codes"),
    ({"executable": "tool", "version_regex": "("}, "does not compile"),
    ({"executable": "tool", "version_regex": "(a+)+$"}, "repeats a repetition"),
    ({"executable": "tool", "version_regex": r"(\w+\s?)*$"}, "repeats a repetition"),
    ({"executable": "tool", "version_regex": "x" * 600}, "version_regex must be a string of 1 to 512"),
    ({"executable": "tool", "search_paths": ["/usr/../home"]}, "must not contain '..'"),
    ({"executable": "tool", "shell": True}, "unknown key(s) 'shell' for a executable rule"),
    ({"compiler": "gcc", "executable": "/tmp/gcc"}, "executable '/tmp/gcc' must be a bare name"),
    ({"compiler": "gcc", "version_args": ["-o", "/tmp/x"]}, "version_args"),
    ({"compiler": "g/cc"}, "compiler 'g/cc' must be a short bare name"),
    ({"python_package": "numpy", "python": "/usr/bin/python3"}, "python: an index may not choose"),
    ({"python_package": "--upgrade"}, "is not a distribution name"),
    ({"pkg_config": "a/b"}, "pkg_config 'a/b' must be a bare name"),
    ({"library": "z", "header": "../../etc/passwd"}, "header '../../etc/passwd' must be a relative path"),
    ({"library": "z", "header": "/etc/passwd"}, "header '/etc/passwd' must be a relative path"),
    ({"path": "/opt/x", "version_file": "../VERSION"}, "version_file '../VERSION' must be a relative path"),
    ({"path": "/opt/x", "version_file": "/etc/hostname"}, "version_file '/etc/hostname' must be a relative path"),
    ({"path": "/opt/../home/*"}, "must not contain '..'"),
    ({"path": "/opt/x", "version_from": "content"}, "version_from 'content' must be \"name\""),
    ({"path": "/opt/x", "version": "1" * 100}, "must be a version of at most 64 characters"),
    ({"detector": "executable", "executable": "/bin/sh"}, "executable '/bin/sh' must be a bare name"),
])
def test_limits(rule: dict[str, object], field: str) -> None:
    clean, warnings = validate_rule(rule, origin="index default", component="c", number=2)
    assert clean is None
    (w,) = warnings
    assert w.startswith("index default: component c: detect rule 2: ")
    assert field in w and w.endswith("; rule ignored")


@pytest.mark.parametrize("args", sorted(VERSION_ARGS) + [[], ["-dumpfullversion"], "--version"])
def test_version_args_in_the_fixed_set(args: object) -> None:
    clean, warnings = validate_rule({"executable": "tool", "version_args": args})
    assert warnings == [] and clean is not None


def test_every_rule_of_the_embedded_index_is_valid() -> None:
    from ckpm.index import open_index

    rep = Reporter()
    warnings = rep.warnings  # what the reporter was told, in order, once each
    rules = rules_from_index(open_index(None), origin="index default", reporter=rep)
    assert warnings == []
    assert len(rules) > 10 and any("gcc-[0-9]*" in json.dumps(r) for rs in rules.values() for r in rs)


def test_plugin_rules_are_data_for_the_plugin() -> None:
    rule = {"conda_package": "openblas", "prefix": "/anywhere/../at/all", "anything": [1, 2]}
    clean, warnings = validate_rule(rule, origin="index x")
    assert clean == rule and warnings == []
    assert validate_rule({"detector": "a/b"})[0] is None


def test_rule_id_is_stable_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rule = {"executable": ["okt"], "version_regex": r"okt (\S+)"}
    same = {"version_regex": r"okt (\S+)", "executable": ["okt"]}
    rid = rule_id(rule)
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", rid)
    assert rule_id(same) == rid and rule_id(validate_rule(rule)[0] or {}) == rid
    assert rule_id({**rule, "version_args": []}) != rid
    write_exe(tmp_path / "bin" / "okt", tool_script("okt 1.2"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (d,) = detect({"ok": [rule]}, cache_dir=tmp_path / "cache").found["ok"]
    assert d.extra["rule_id"] == rid
    assert rule_by_id([{"executable": "other"}, same], rid) == same
    assert rule_by_id([], rid) is None


def test_rules_of_entries_numbers_rules_in_their_entry() -> None:
    from ckpm.model.entry import IndexEntry

    e = IndexEntry.from_json(entry("tool-ok", "1.0", detect=[{"executable": "ok"}, {"executable": "/bin/sh"}]))
    rep = Reporter()
    warnings = rep.warnings  # what the reporter was told, in order, once each
    assert rules_of_entries([e], origin="index lab", reporter=rep) == [{"executable": "ok"}]
    assert warnings == ["index lab: component tool-ok: detect rule 2: executable '/bin/sh' must be a bare name "
                        "(no path, no leading '-', '.' or '~'); it is searched on PATH; rule ignored"]


# -- roots ---------------------------------------------------------------------------------------

def test_path_glob_outside_the_roots_reads_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    rules = {"key": [{"path": str(Path(env["HOME"]) / ".ssh" / "id_*"), "version_from": "name",
                      "version_regex": r"id_(\w+)"}]}
    result = detect(rules, env=env, cache_dir=tmp_path / "cache")
    assert result.found["key"] == []
    assert any("is outside the folders detection may look in" in w for w in result.warnings)
    # the same rule once the user lists the folder: allowed (the name is not a version, though)
    allowed = detect(rules, env=env, cache_dir=tmp_path / "cache", path_roots=[Path(env["HOME"]) / ".ssh"])
    assert not any("outside the folders" in w for w in allowed.warnings)


def test_symlink_inside_a_root_pointing_outside(tmp_path: Path, env: dict[str, str]) -> None:
    data = tmp_path / "data"
    (data / "ds").mkdir(parents=True)
    os.symlink(Path(env["HOME"]) / ".ssh", data / "keys")            # a folder leading out
    os.symlink(Path(env["HOME"]) / ".ssh" / "id_rsa", data / "ds" / "VERSION")  # a version file leading out
    rules = {"via-dir": [{"path": str(data / "keys" / "id_*"), "version_from": "name", "version_regex": "(.*)"}],
             "via-file": [{"path": str(data / "ds"), "version_file": "VERSION"}],
             "via-glob": [{"path": str(data / "*" / "id_rsa")}]}
    result = detect(rules, env=env, cache_dir=tmp_path / "cache", path_roots=[str(data)])
    assert result.found == {"via-dir": [], "via-file": [], "via-glob": []}
    assert sum("leads outside the folders detection may look in" in w for w in result.warnings) == 3
    assert SECRET_VERSION not in json.dumps(result.to_json())


def test_search_paths_outside_the_roots(tmp_path: Path, env: dict[str, str], marker: Path) -> None:
    write_exe(tmp_path / "elsewhere" / "okt", f"touch {marker}\necho okt 1.0")
    rules = {"t": [{"executable": "okt", "search_paths": [str(tmp_path / "elsewhere")]}]}
    result = detect(rules, env=env, cache_dir=tmp_path / "cache")
    assert result.found["t"] == [] and not marker.exists()
    assert any("search_paths" in w and "outside the folders" in w for w in result.warnings)
    # a symlink inside an allowed root that points to it is not followed either
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(tmp_path / "elsewhere", root / "bin")
    result = detect({"t": [{"executable": "okt", "search_paths": [str(root / "bin")]}]}, env=env,
                    cache_dir=tmp_path / "cache", path_roots=[str(root)])
    assert result.found["t"] == [] and not marker.exists()


def test_roots() -> None:
    roots = Roots.build(["/data/sets"], ["/srv/tools"], {"HOME": "/home/u"})
    assert roots.allows_pattern("/usr/local/cuda*/bin") and roots.allows_pattern("/data/sets/imagenet-*")
    assert roots.allows_pattern("/srv/tools/bin")
    assert not roots.allows_pattern("/home/u/.ssh/*") and not roots.allows_pattern("/*/x")
    assert not roots.allows_pattern("/usrx/lib")


# -- versions read from files -------------------------------------------------------------------

def test_version_file_beyond_64_kib_is_not_read(tmp_path: Path, env: dict[str, str]) -> None:
    ds = tmp_path / "data" / "ds"
    ds.mkdir(parents=True)
    (ds / "VERSION").write_text("#\n" * 40_000 + "version 9.9.9\n")  # 80 KB of padding first
    rules = {"ds": [{"path": str(ds), "version_file": "VERSION", "version_regex": r"version (\S+)"}]}
    result = detect(rules, env=env, cache_dir=tmp_path / "cache", path_roots=[str(tmp_path / "data")])
    assert result.found["ds"] == []
    assert any("no version in the first 64 KiB" in w for w in result.warnings)
    (ds / "VERSION").write_text("version 9.9.9\n" + "#\n" * 40_000)
    result = detect(rules, env=env, cache_dir=tmp_path / "cache", path_roots=[str(tmp_path / "data")])
    assert [d.version for d in result.found["ds"]] == ["9.9.9"]


def test_a_100_character_version_is_rejected(tmp_path: Path, env: dict[str, str]) -> None:
    long = "1." + "0." * 48 + "12"
    assert len(long) == 100
    ds = tmp_path / "data" / "ds"
    ds.mkdir(parents=True)
    (ds / "VERSION").write_text(long + "\n")
    write_exe(tmp_path / "bin" / "longv", tool_script(f"longv {long}"))
    rules = {"ds": [{"path": str(ds), "version_file": "VERSION"}],
             "exe": [{"executable": "longv", "version_regex": r"longv (\S+)"}]}
    result = detect(rules, env=env, cache_dir=tmp_path / "cache", path_roots=[str(tmp_path / "data")])
    assert result.found == {"ds": [], "exe": []}
    assert sum("longer than 64 characters" in w for w in result.warnings) == 2
    (ds / "VERSION").write_text("not-a-version\n")
    result = detect(rules, env=env, cache_dir=tmp_path / "cache", path_roots=[str(tmp_path / "data")])
    assert result.found["ds"] == [] and any("(not a version)" in w for w in result.warnings)


# -- probe output ---------------------------------------------------------------------------------

def test_a_probe_printing_5_mib_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    five = 5 * 1024 * 1024
    script = (f"echo 'loud 1.2.3'\nhead -c {five} /dev/zero | tr '\\0' x\n"
              f"head -c {five} /dev/zero | tr '\\0' y >&2\necho 'the end'")
    exe = write_exe(tmp_path / "bin" / "loud", script)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    out = run_probe([str(exe), "--version"], timeout=30, env=dict(os.environ))
    assert not out.timed_out and out.returncode == 0, "the child was drained, not blocked"
    assert out.truncated
    assert len(out.stdout) == OUTPUT_LIMIT and len(out.stderr) == OUTPUT_LIMIT
    assert out.stdout.startswith("loud 1.2.3\nxxx") and "the end" not in out.stdout
    result = detect({"loud": [{"executable": "loud", "version_regex": r"loud (\d+\.\d+\.\d+)"}]},
                    cache_dir=tmp_path / "cache", timeout=30)
    assert [d.version for d in result.found["loud"]] == ["1.2.3"]


def test_small_output_is_whole(tmp_path: Path) -> None:
    exe = write_exe(tmp_path / "quiet", "echo out; echo err >&2; exit 3")
    out = run_probe([str(exe)], timeout=10)
    assert (out.stdout, out.stderr, out.returncode, out.truncated) == ("out\n", "err\n", 3, False)


# -- recheck -------------------------------------------------------------------------------------

def test_recheck_runs_the_index_rule_not_the_lock(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_exe(tmp_path / "bin" / "okt", tool_script("okt 1.0"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    rule = {"executable": "okt", "version_regex": r"okt (\S+)"}
    # the lock says the package is /bin/sh: that path is compared, never run
    found = recheck("okt", rule, path="/bin/sh")
    got = match_recorded(found, "/bin/sh", version="1.0")
    assert not got.same_path and got.record is not None and got.record.path == str(tmp_path / "bin" / "okt")
    assert not marker.exists()


def _hostile_lock(tmp_path: Path, marker: Path, rule_toml: str, path: str,
                  rule_id: str | None = None) -> tuple[Path, dict[str, str]]:
    from ckpm import api

    idx = tmp_path / "idx"
    init_index(idx, "lab")
    write_component(idx, [entry("tool-fake", "1.0", kind="tool",
                                detect=[{"executable": ["faketool"], "version_regex": r"faketool (\S+)"}])])
    bindir = tmp_path / "bin"
    write_exe(bindir / "faketool", tool_script("faketool 1.0\n"))
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin", "CKPM_CACHE_DIR": str(tmp_path / "c")}
    proj = tmp_path / "proj"
    api.init_project(proj, "proj")
    (proj / "ckpm.toml").write_text((proj / "ckpm.toml").read_text()
                                    + f'tool-fake = "*"\n[[index]]\nname = "lab"\nurl = "{idx}"\n')
    r = subprocess.run([sys.executable, "-m", "ckpm", "-C", str(proj), "lock"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    lock = proj / "ckpm.lock"
    text = lock.read_text()
    assert "host = \"executable\"" in text
    assert "rule-id = " in text and "version_args" not in text  # the lock records which rule, not the rule
    text = re.sub(r'path = "[^"]*"', lambda m: f'path = "{path}"', text)
    # an attacker adds a rule of their own to the pin (and may change the rule's id)
    text = text.replace("source = { ", f"source = {{ rule = {rule_toml}, ")
    if rule_id is not None:
        text = re.sub(r'rule-id = "[^"]*"', f'rule-id = "{rule_id}"', text)
    lock.write_text(text)
    return proj, env


def test_lock_check_with_a_hostile_host_pin_runs_nothing(tmp_path: Path, marker: Path) -> None:
    proj, env = _hostile_lock(tmp_path, marker,
                              f'{{ executable = "/bin/sh", version_args = ["-c", "touch {marker}; echo 1.0"] }}',
                              "/bin/sh")
    r = subprocess.run([sys.executable, "-m", "ckpm", "-C", str(proj), "lock", "--check"], capture_output=True,
                       text=True, env=env)
    # the index's rule runs, finds faketool 1.0 elsewhere: a note, and nothing of the lock ran
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "the same version at another path" in r.stdout
    assert not marker.exists()
    proj, env = _hostile_lock(tmp_path / "again", marker,
                              f'{{ executable = "/bin/sh", version_args = ["-c", "touch {marker}; echo 1.0"] }}',
                              "/bin/sh", rule_id="sha256:0000000000000000")
    r = subprocess.run([sys.executable, "-m", "ckpm", "-C", str(proj), "lock", "--check"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 4, r.stdout + r.stderr  # a rule no index has: reported, not run
    assert "cannot check" in r.stdout and "no index has the detect rule" in r.stdout
    assert not marker.exists()


def test_lock_check_never_executes_the_recorded_path(tmp_path: Path, marker: Path) -> None:
    shim = write_exe(tmp_path / "shim" / "faketool", f"touch {marker}\necho faketool 1.0")
    proj, env = _hostile_lock(tmp_path, marker, '{ executable = ["faketool"], version_regex = "faketool (\\\\S+)" }',
                              str(shim))
    r = subprocess.run([sys.executable, "-m", "ckpm", "-C", str(proj), "lock", "--check"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr  # not at the recorded path: a note, found elsewhere
    assert "Traceback" not in r.stderr and "tool-fake" in r.stdout and str(shim) in r.stdout
    assert not marker.exists(), "the path in the lock was executed"


def test_python_m_ckpm_detect_with_a_hostile_index(tmp_path: Path, marker: Path, env: dict[str, str]) -> None:
    idx = tmp_path / "idx"
    init_index(idx, "lab")
    for name, rules in hostile_rules(tmp_path, marker).items():
        write_component(idx, [entry(name, "1.0", kind="tool", detect=rules)])
    data = tmp_path / "data" / "ds"
    data.mkdir(parents=True)
    (data / "VERSION").write_text("3.1\n")
    write_component(idx, [entry("data-ds", "3.1", kind="data", detect=[{"path": str(data), "version_file": "VERSION"}])])
    cmd = [sys.executable, "-m", "ckpm.detect", "--index", str(idx), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr and not marker.exists()
    assert "warning: index lab: component evil-tool: detect rule 1: executable '/bin/sh' must be a bare name" in r.stderr
    assert json.loads(r.stdout)["found"]["data-ds"] == []
    assert "component data-ds: detect rule 1: path" in r.stderr and "outside the folders" in r.stderr
    r = subprocess.run(cmd + ["--path-root", str(tmp_path / "data")], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0 and [d["version"] for d in json.loads(r.stdout)["found"]["data-ds"]] == ["3.1"]
    assert SECRET_VERSION not in r.stdout and not marker.exists()


def test_probes_do_not_run_files_of_the_current_folder(tmp_path: Path, marker: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`sh version` would run ./version: probes run in the file-system root, not in the project."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "version").write_text(f"touch {marker}\necho 1.0\n")
    (project / "json.py").write_text(f"open({str(marker)!r}, 'w').close()\n")  # python -c imports from cwd
    monkeypatch.chdir(project)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    other_python = tmp_path / "py" / "python3"
    other_python.parent.mkdir()
    os.symlink(sys.executable, other_python)
    result = detect({"sh": [{"executable": "sh", "version_args": "version"}],
                     "pt": [{"python_package": "pytest"}]}, cache_dir=tmp_path / "cache", python=str(other_python))
    assert not marker.exists()
    assert result.found["sh"] == []


@pytest.mark.parametrize("name", ["reboot", "shutdown", "sudo", "rm", "mkfs.ext4", "kill"])
def test_commands_that_act_are_never_probes(name: str, tmp_path: Path, marker: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write_exe(tmp_path / "bin" / name, f"touch {marker}\necho {name} 1.0")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    clean, warnings = validate_rule({"executable": name, "version_args": []}, origin="index x", component="c")
    assert clean is None and f"executable {name!r} is a command ckpm never runs as a probe" in warnings[0]
    # a glob that happens to match it finds nothing either
    result = detect({"c": [{"executable": name[:2] + "*", "version_args": []}]}, cache_dir=tmp_path / "cache")
    assert result.found["c"] == [] and not marker.exists()
