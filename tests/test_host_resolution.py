"""Host software in resolution: preferred when it fits, pinned in the lock, drift reported.

Fake tools are real shell scripts on a real PATH; the real gcc of this machine is
detected with its real version.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ckpm import api
from ckpm.detect import rule_id
from ckpm.detect.testing import tool_script, write_exe
from ckpm.errors import ResolutionError
from ckpm.model.targets import host_target
from ckpm.testing import entry

FAKE_RULE = {"executable": ["faketool"], "version_args": ["--version"], "version_regex": r"faketool (\S+)"}


@pytest.fixture
def bindir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    return d


def faketool(bindir: Path, version: str) -> Path:
    return write_exe(bindir / "faketool", tool_script(f"faketool {version}\n"))


@pytest.fixture
def lab(index_factory):  # type: ignore[no-untyped-def]
    return index_factory({
        "tool-fake": [entry("tool-fake", v, kind="tool", tags=["tool", "fake"], detect=[FAKE_RULE])
                      for v in ("1.0", "2.0", "3.0")],
        "lib-uses-fake": [entry("lib-uses-fake", "1.0", deps=[{"name": "tool-fake", "req": ">=2", "kind": "build"}],
                                targets=["linux-*"])],
        "lib-cuda-only": [entry("lib-cuda-only", "1.0", deps=[{"name": "__cuda", "req": ">=12"}])],
    }, name="lab")


def project(tmp_path: Path, index: Path, deps: str = "") -> api.Workspace:
    d = tmp_path / "proj"
    api.init_project(d, "proj")
    text = (d / "ckpm.toml").read_text() + deps + f'\n[[index]]\nname = "lab"\nurl = "{index}"\n'
    (d / "ckpm.toml").write_text(text)
    return api.Workspace(d)


def fresh(ws: api.Workspace, **kw: bool) -> api.Workspace:
    return api.Workspace(ws.root, api.Settings(**kw))


def test_host_version_is_preferred_and_pinned(tmp_path: Path, bindir: Path, lab: Path, ckpm_cache_dir: Path) -> None:
    tool = faketool(bindir, "2.5.0")
    ws = project(tmp_path, lab)
    api.add(ws, [api.AddRequest("tool-fake@>=2")])
    (p,) = fresh(ws).read_lock().find("tool-fake")  # type: ignore[union-attr]
    assert p.version == "2.5.0"  # the installed one, not the newest 3.0 of the index
    assert p.source["host"] == "executable" and p.source["path"] == str(tool)
    assert p.source["fingerprint"] and p.source["rule-id"] == rule_id(FAKE_RULE)  # which rule, not the rule
    assert api.check(fresh(ws)).ok
    assert not api.lock(fresh(ws)).changed  # stable


def test_no_host_and_prefer_build(tmp_path: Path, bindir: Path, lab: Path, ckpm_cache_dir: Path) -> None:
    faketool(bindir, "2.5.0")
    ws = project(tmp_path, lab, 'tool-fake = ">=2"\n')
    api.lock(fresh(ws, no_host=True))
    assert [p.version for p in fresh(ws).read_lock().find("tool-fake")] == ["3.0"]  # type: ignore[union-attr]
    ws.manifest_path.write_text(ws.manifest_path.read_text().replace(
        'tool-fake = ">=2"', 'tool-fake = { version = ">=2", prefer = "build" }'))
    api.lock(fresh(ws), api.LockOptions(upgrade=True))
    assert [p.version for p in fresh(ws).read_lock().find("tool-fake")] == ["3.0"]  # type: ignore[union-attr]


def test_host_version_outside_range_falls_back_to_index(tmp_path: Path, bindir: Path, lab: Path,
                                                        ckpm_cache_dir: Path) -> None:
    faketool(bindir, "1.5")
    ws = project(tmp_path, lab, 'tool-fake = ">=2"\n')
    api.lock(ws)
    (p,) = fresh(ws).read_lock().find("tool-fake")  # type: ignore[union-attr]
    assert (p.version, p.source_kind) == ("3.0", "index")


def test_drift_is_reported_with_what_to_do(tmp_path: Path, bindir: Path, lab: Path, ckpm_cache_dir: Path) -> None:
    faketool(bindir, "2.5.0")
    ws = project(tmp_path, lab, 'tool-fake = ">=2"\n')
    api.lock(ws)
    faketool(bindir, "2.6.0")  # somebody upgraded the tool
    res = api.check(fresh(ws))
    assert not res.ok and not res.problems
    (d,) = res.drift
    assert (d.name, d.expected, d.found) == ("tool-fake", f"2.5.0 at {bindir / 'faketool'}",
                                             f"2.6.0 at {bindir / 'faketool'}")
    assert "ckpm lock" in d.action
    assert api.check(fresh(ws), allow_host_drift=True).ok
    (bindir / "faketool").unlink()
    (d,) = api.check(fresh(ws)).drift
    assert d.found == "missing"
    # through the CLI: a table, exit 4; warnings only with --allow-host-drift
    cli = [sys.executable, "-m", "ckpm", "-C", str(ws.root), "lock", "--check"]
    r = subprocess.run(cli, capture_output=True, text=True, env=os.environ)
    assert r.returncode == 4, r.stderr
    assert "this host differs" in r.stderr and "tool-fake" in r.stdout and "missing" in r.stdout
    r = subprocess.run(cli + ["--allow-host-drift"], capture_output=True, text=True, env=os.environ)
    assert r.returncode == 0 and "host drift allowed" in r.stdout


def test_cross_target_uses_host_only_for_build_deps(tmp_path: Path, bindir: Path, lab: Path,
                                                    ckpm_cache_dir: Path) -> None:
    faketool(bindir, "2.5.0")
    ws = project(tmp_path, lab, 'lib-uses-fake = "*"\ntool-fake = "*"\n')
    cross = "linux-aarch64" if host_target() != "linux-aarch64" else "linux-x86_64"
    api.lock(ws, api.LockOptions(targets=[cross]))
    lk = fresh(ws).read_lock()
    assert lk is not None
    by = {(p.name, p.version): p for p in lk.packages}
    # the run dependency for the cross target comes from the index ...
    assert by[("tool-fake", "3.0")].targets == [cross] and by[("tool-fake", "3.0")].source_kind == "index"
    # ... the build dependency of lib-uses-fake is resolved for the host, where 2.5.0 is installed
    assert by[("tool-fake", "2.5.0")].source_kind == "host"
    assert by[("tool-fake", "2.5.0")].targets == [host_target()]
    nodes = {n.name: n for n in api.tree(fresh(ws), cross)[cross]}
    assert [(c.name, c.version, c.source) for c in nodes["lib-uses-fake"].children] == [("tool-fake", "2.5.0", "host")]


def test_host_facts_and_overrides(tmp_path: Path, lab: Path, ckpm_cache_dir: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ws = project(tmp_path, lab, '__libc = ">=2.17"\n')
    api.lock(ws)
    (p,) = fresh(ws).read_lock().find("__libc")  # type: ignore[union-attr]
    assert p.source_kind == "host"
    assert api.check(fresh(ws)).ok
    monkeypatch.setenv("CKPM_OVERRIDE_GLIBC", "2.17")
    res = api.check(fresh(ws))
    assert [(d.name, d.found) for d in res.drift] == [("__libc", "2.17")]
    monkeypatch.setenv("CKPM_OVERRIDE_GLIBC", "2.12")
    with pytest.raises(ResolutionError) as info:
        api.lock(fresh(ws), api.LockOptions(upgrade=True))
    assert "__libc 2.12 (host): outside >=2.17" in info.value.render()


def test_missing_fact_is_explained(tmp_path: Path, lab: Path, ckpm_cache_dir: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKPM_OVERRIDE_CUDA", "none")
    ws = project(tmp_path, lab, 'lib-cuda-only = "*"\n')
    with pytest.raises(ResolutionError) as info:
        api.lock(ws)
    assert "set CKPM_OVERRIDE_CUDA=VERSION" in info.value.render()
    monkeypatch.setenv("CKPM_OVERRIDE_CUDA", "12.4")
    api.lock(fresh(ws))
    assert [p.version for p in fresh(ws).read_lock().find("__cuda")] == ["12.4"]  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the machine's gcc (.ci/run installs it)")
def test_real_gcc_satisfies_compiler_from_the_embedded_index(tmp_path: Path, ckpm_cache_dir: Path) -> None:
    d = tmp_path / "proj"
    api.init_project(d, "proj")
    ws = api.Workspace(d)
    api.add(ws, [api.AddRequest("compiler", tags="compiler,lang-c")])
    (p,) = fresh(ws).read_lock().by_key("compiler")  # type: ignore[union-attr]
    real = subprocess.run([p.source["path"], "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    assert p.source_kind == "host" and p.version == real
    assert "gcc" in p.name or "clang" in p.name


def test_installed_python_package_satisfies_a_lib(tmp_path: Path, index_factory, ckpm_cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from importlib.metadata import version

    real = version("packaging")
    lab = index_factory({"lib-packaging": [entry("lib-packaging", v, detect=[{"python_package": "packaging"}])
                                           for v in ("20.0", "99.0")]}, name="lab")
    ws = project(tmp_path, lab)
    api.add(ws, [api.AddRequest("lib-packaging@>=20")])
    (p,) = fresh(ws).read_lock().find("lib-packaging")  # type: ignore[union-attr]
    assert (p.version, p.source["host"]) == (real, "python_package")


def test_glibc_spelling_of_the_libc_fact(tmp_path: Path, lab: Path, ckpm_cache_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKPM_OVERRIDE_GLIBC", "glibc@2.31")
    ws = project(tmp_path, lab, '__glibc = ">=2.17"\n')
    api.lock(ws)
    (p,) = fresh(ws).read_lock().find("__libc")  # type: ignore[union-attr]
    assert p.version == "2.31" and p.keys == ["__glibc"]


def test_detect_command(tmp_path: Path, bindir: Path, lab: Path, ckpm_cache_dir: Path) -> None:
    import json

    faketool(bindir, "2.5.0")
    env = {**os.environ, "CKPM_INDEX": str(lab)}
    r = subprocess.run([sys.executable, "-m", "ckpm", "detect", "tool-fake", "--json"], capture_output=True,
                       text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (d,) = json.loads(r.stdout)["data"]["found"]["tool-fake"]
    assert (d["version"], d["path"]) == ("2.5.0", str(bindir / "faketool"))
    r = subprocess.run([sys.executable, "-m", "ckpm", "detect"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "__libc" in r.stdout and "tool-fake" in r.stdout
    r = subprocess.run([sys.executable, "-m", "ckpm", "detect", "fake", "--json"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)  # a tag: every component that carries it
    assert r.returncode == 0 and [d["version"] for d in json.loads(r.stdout)["data"]["found"]["tool-fake"]] == ["2.5.0"]
    r = subprocess.run([sys.executable, "-m", "ckpm", "detect", "tool-fak"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 1 and "no component named 'tool-fak'" in r.stderr and "Traceback" not in r.stderr


def test_locked_fails_on_host_drift(tmp_path: Path, bindir: Path, lab: Path, ckpm_cache_dir: Path) -> None:
    from ckpm.errors import HostDriftError

    faketool(bindir, "2.5.0")
    ws = project(tmp_path, lab, 'tool-fake = ">=2"\n')
    api.lock(ws)
    api.lock(fresh(ws), api.LockOptions(locked=True))  # nothing differs: fine
    faketool(bindir, "2.7.0")
    with pytest.raises(HostDriftError) as info:
        api.lock(fresh(ws), api.LockOptions(locked=True))
    assert f"tool-fake: expected 2.5.0 at {bindir / 'faketool'}, found 2.7.0" in info.value.render()


def test_installed_tensorflow_satisfies_the_readme_command(tmp_path: Path, ckpm_cache_dir: Path) -> None:
    """`ckpm add lib-tensorflow@>=1.13` against the embedded index, in an environment that has
    tensorflow: a real venv chosen with CKPM_PYTHON, with tensorflow's installed metadata."""
    from ckpm.detect.testing import write_dist

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    write_dist(site, "tensorflow", "2.15.0")
    env = {**os.environ, "CKPM_PYTHON": str(venv / "bin" / "python")}
    env.pop("CKPM_INDEX", None)
    run = [sys.executable, "-m", "ckpm"]
    assert subprocess.run(run + ["init", "demo"], cwd=tmp_path, env=env, capture_output=True).returncode == 0
    r = subprocess.run(run + ["add", "lib-tensorflow@>=1.13"], cwd=tmp_path / "demo", env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "+ lib-tensorflow 2.15.0" in r.stderr
    lk = api.Workspace(tmp_path / "demo").read_lock()
    (p,) = lk.find("lib-tensorflow")  # type: ignore[union-attr]
    assert p.source["host"] == "python_package" and p.source["path"].startswith(str(site))


def test_a_tool_in_the_projects_venv_is_locked_relative_and_does_not_flip(tmp_path: Path, lab: Path,
                                                                          ckpm_cache_dir: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ws = project(tmp_path, lab, 'tool-fake = ">=2"\n')
    local = write_exe(ws.root / ".venv" / "bin" / "faketool", tool_script("faketool 2.5.0\n"))
    other = tmp_path / "elsewhere"
    write_exe(other / "faketool", tool_script("faketool 2.5.0\n"))
    base = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{local.parent}{os.pathsep}{other}{os.pathsep}{base}")  # activated
    api.lock(fresh(ws))
    (p,) = fresh(ws).read_lock().find("tool-fake")  # type: ignore[union-attr]
    assert (p.source["path"], p.source["local"]) == (".venv/bin/faketool", True)
    monkeypatch.setenv("PATH", f"{other}{os.pathsep}{base}")  # not activated
    assert not api.lock(fresh(ws)).changed
    assert api.check(fresh(ws)).ok and not api.check(fresh(ws)).drift


def test_a_lock_rewritten_because_the_host_changed_says_what_changed(tmp_path: Path, bindir: Path, lab: Path,
                                                                      ckpm_cache_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first = faketool(bindir, "2.5.0")
    ws = project(tmp_path, lab, 'tool-fake = ">=2"\n')
    api.lock(ws)
    moved = tmp_path / "moved"
    write_exe(moved / "faketool", tool_script("faketool 2.5.0\n"))
    first.unlink()
    monkeypatch.setenv("PATH", f"{moved}{os.pathsep}{os.environ['PATH']}")
    res = api.check(fresh(ws))
    assert res.ok and [d.severity for d in res.drift] == ["note"]  # the same version elsewhere
    out = api.lock(fresh(ws))
    assert out.changed and out.updated == [f"tool-fake 2.5.0: host {first} -> host {moved / 'faketool'}"]


def test_host_candidates_pass_the_same_checks_as_index_ones(tmp_path: Path, bindir: Path, index_factory,
                                                           ckpm_cache_dir: Path) -> None:
    faketool(bindir, "2.5.0")
    lab = index_factory({"tool-fake": [entry("tool-fake", v, kind="tool", tags=["tool", "cross"], detect=[FAKE_RULE])
                                       for v in ("1.0", "3.0")]}, name="lab")
    ws = project(tmp_path, lab, 'tool-fake = { version = "*", no-tags = "cross" }\n')
    with pytest.raises(ResolutionError) as info:  # the host's tool-fake carries the index's tags too
        api.lock(ws)
    assert "tool-fake 2.5.0 (host): carries excluded tags cross" in info.value.render()
    lab2 = index_factory({"tool-fake": [entry("tool-fake", "2.5.0", kind="tool", tags=["tool"], detect=[FAKE_RULE],
                                              yanked=True), entry("tool-fake", "3.0", kind="tool", tags=["tool"])]},
                         name="lab2")
    ws2 = project(tmp_path / "two", lab2, 'tool-fake = "*"\n')
    api.lock(ws2)  # the installed version is yanked in the index: a new resolution skips it
    assert [(p.version, p.source_kind) for p in fresh(ws2).read_lock().find("tool-fake")] == [("3.0", "index")]


def test_no_host_keeps_host_facts(tmp_path: Path, bindir: Path, lab: Path, ckpm_cache_dir: Path) -> None:
    """--no-host pretends nothing is installed, but the platform stays what it is: a
    dependency on __os still resolves (and a lock holding a fact stays valid)."""
    ws = project(tmp_path, lab, '__os = "*"\n')
    api.lock(fresh(ws, no_host=True))
    (p,) = fresh(ws).read_lock().find("__os")  # type: ignore[union-attr]
    assert p.source["host"] == "fact"
    assert not api.lock(fresh(ws, no_host=True)).changed
