"""Smaller things a user meets: access() as a library, add keeping a dependency's table, exit
codes, global options anywhere, invalid overrides, unwritable paths, why/why-not per target,
search answers, progress only on a terminal. Real `ckpm` processes, real files."""
from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ckpm
from ckpm import api
from ckpm.index.writer import init_index, reindex, write_component
from ckpm.testing import component_toml, entry


@pytest.fixture
def index(tmp_path: Path) -> Path:
    root = tmp_path / "index"
    init_index(root, "lab")
    write_component(root, [entry("lib-a", "1.0"), entry("lib-a", "2.0"),
                           entry("lib-a", "3.0", targets=["linux-aarch64"])])
    write_component(root, [entry("lib-b", "1.0", deps=[{"name": "lib-a", "req": "*"}])])
    reindex(root)
    return root


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def project(tmp_path: Path, index: Path, deps: str = "") -> Path:
    d = tmp_path / "proj"
    api.init_project(d, "proj")
    with open(d / "ckpm.toml", "a") as f:
        f.write(deps + f'\n[[index]]\nname = "lab"\nurl = "{index}"\n')
    return d


def test_access_works_again_and_again_and_validates_requests(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, index)
    base = {"project": str(proj)}
    assert ckpm.access({"action": "add", "spec": "lib-b", **base})["return"] == 0
    assert ckpm.access({"action": "add", "spec": "lib-b", **base})["return"] == 0  # a second call in one process
    out = ckpm.access({"action": "lock", "targets": "linux-aarch64", **base})  # a string is one target
    assert out["return"] == 0 and out["targets"] == ["linux-aarch64"]
    why = ckpm.access({"action": "why", "name": "lib-a", **base})
    assert why["return"] == 0 and why["chains"][0][0] == "the project"
    wn = ckpm.access({"action": "why_not", "name": "lib-a", "version": "1.0", **base})
    assert wn["return"] == 0 and wn["possible"] is True
    det = ckpm.access({"action": "detect", **base})
    assert det["return"] == 0 and "__os" in det["facts"] and isinstance(det["warnings"], list)
    assert ckpm.access(["not", "a", "dict"])["return"] == 1  # type: ignore[arg-type]
    assert "needs 'name'" in ckpm.access({"action": "why", **base})["error"]
    assert ckpm.access({"action": "lock", "targets": 5, **base})["error"] == "'targets' must be a string or a list of strings"
    again = ckpm.access({"action": "lock", "project": str(proj), "index": None, "offline": False,
                       "cache_dir": str(tmp_path / "c")})
    assert again["return"] == 0 and again["warnings"] == []
    # an error has one shape: the --json envelope's error, with the conflict a resolution failure carries
    bad = ckpm.access({"action": "add", "spec": "lib-a@>=99", **base})
    r = run("add", "lib-a@>=99", "--json", cwd=proj)
    cli_error = json.loads(r.stdout)["error"]
    assert bad["return"] == r.returncode == 2 and "conflict" in bad
    assert {k: v for k, v in bad.items() if k not in ("return", "warnings")} == cli_error


def test_add_a_range_changes_only_the_version(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, index, 'lib-a = { version = ">=1", targets = ["linux-*"], prefer = "build" }  # mine\n')
    api.add(api.Workspace(proj), [api.AddRequest("lib-a@<3")])
    text = (proj / "ckpm.toml").read_text()
    assert 'lib-a = { version = "<3", targets = ["linux-*"], prefer = "build" }  # mine' in text


def test_add_a_range_for_a_git_dependency(tmp_path: Path, index: Path, git_repo_factory, ckpm_cache_dir) -> None:  # type: ignore[no-untyped-def]
    repo = git_repo_factory("mytool", {"v0.3.0": component_toml("mytool", "0.3.0", kind="tool"),
                                       "v0.4.0": component_toml("mytool", "0.4.0", kind="tool")})
    proj = project(tmp_path, index)
    api.add(api.Workspace(proj), [api.AddRequest("mytool", git=repo.url)])
    out = api.add(api.Workspace(proj), [api.AddRequest("mytool@==0.3.0")])
    assert [(p.name, p.version) for p in out.lock.packages] == [("mytool", "0.3.0")]
    assert f'git = "{repo.url}"' in (proj / "ckpm.toml").read_text()


def test_exit_codes_and_global_options_after_the_command(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, index, 'lib-b = "*"\n')
    r = run("lock", "--no-such-option", cwd=proj)
    assert r.returncode == 64 and "No such option" in r.stderr
    r = run("lock", "-v", "--offline", "--index", str(index), cwd=tmp_path, env={})  # no project here
    assert r.returncode == 1 and "no ckpm.toml" in r.stderr
    r = run("lock", "--check", "-C", str(proj), "-v", cwd=tmp_path)
    assert r.returncode == 3 and "does not exist" in r.stderr
    r = run("lock", "-C", str(proj), cwd=tmp_path)
    assert r.returncode == 0 and "2 packages" in r.stderr
    r = run("add", "lib-a@>=9", "-C", str(proj), cwd=tmp_path)
    assert r.returncode == 2 and "no set of versions" in r.stderr


def test_invalid_override_and_unknown_target_pattern(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, index, 'lib-a = { version = "*", targets = ["linx-*"] }\n')
    r = run("lock", cwd=proj, env={"CKPM_OVERRIDE_GLIBC": "banana"})
    assert r.returncode == 1 and "CKPM_OVERRIDE_GLIBC=banana is invalid: 'banana' is not a version" in r.stderr
    r = run("lock", cwd=proj, env={"CKPM_OVERRIDE_ARCH": "sparc"})
    assert r.returncode == 1 and "'sparc' is not an architecture name" in r.stderr
    r = run("lock", cwd=proj)
    assert r.returncode == 0 and "target pattern 'linx-*' names no known OS" in r.stderr


def test_unwritable_paths_give_one_line(tmp_path: Path) -> None:
    r = run("init", "/proc/x", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("error: cannot create /proc/x/ckpm.toml")
    assert "Traceback" not in r.stderr


def test_why_and_why_not_per_target(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, index, 'lib-b = "*"\n')
    api.lock(api.Workspace(proj), api.LockOptions(targets=["linux-x86_64", "linux-aarch64"]))
    ws = api.Workspace(proj)
    assert api.why(ws, "lib-a", target="linux-aarch64") == [
        ["the project", "requires lib-b *", "lib-b 1.0 requires lib-a", "lib-a 3.0"]]
    res = api.why_not(ws, "lib-a", "2.0", target="linux-x86_64")
    assert res.locked and res.lines[0] == "lib-a 2.0 is in the lock for linux-x86_64 (from index)"
    res = api.why_not(ws, "lib-a", "2.0", target="linux-aarch64")
    assert not res.locked and "lib-a 3.0" in " ".join(res.lines)  # answered from aarch64's lock
    r = run("why", "lib-a", "--target", "linux-aarch64", "--json", cwd=proj)
    assert json.loads(r.stdout)["data"]["chains"][0][-1] == "lib-a 3.0"


def test_search_answers_the_same_way_with_and_without_json(tmp_path: Path, index: Path) -> None:
    r1 = run("search", "zzz", "--index", str(index), cwd=tmp_path)
    r2 = run("search", "zzz", "--json", "--index", str(index), cwd=tmp_path)
    assert (r1.returncode, r2.returncode) == (0, 0)
    assert "no components match" in r1.stderr and json.loads(r2.stdout)["data"] == []
    r = run("search", "--kind", "bogus", "--index", str(index), cwd=tmp_path)
    assert r.returncode == 1 and "unknown kind 'bogus'" in r.stderr
    r = run("search", "--kind", "bogus", "--json", "--index", str(index), cwd=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["ok"] is False and out["error"]["code"] == "project"


def _run_on_a_terminal(args: list[str], cwd: Path, timeout: float = 60) -> str:
    pid, fd = pty.fork()
    if pid == 0:  # the child: ckpm on a pseudo-terminal
        os.chdir(cwd)
        os.execv(sys.executable, [sys.executable, "-m", "ckpm.cli.main", *args])
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    os.waitpid(pid, 0)
    return out.decode("utf-8", "replace")


def test_progress_shows_on_a_terminal_only(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, index, 'lib-b = "*"\n')
    shown = _run_on_a_terminal(["lock"], proj)
    assert "resolving" in shown and "ckpm.lock updated" in shown
    piped = run("lock", "-U", cwd=proj)
    assert "resolving" not in piped.stderr + piped.stdout


def test_index_text_on_a_terminal_is_shown_not_read_as_markup(tmp_path: Path, index: Path, monkeypatch) -> None:
    """A description is data: rich must not turn "[link=...]" into a hyperlink or "[red]" into a colour."""
    write_component(index, [entry("lib-m", "1.0", tags=["odd"],
                                  description="[link=http://evil.example]click[/link] [red]boom[/red]")])
    reindex(index)
    monkeypatch.setenv("COLUMNS", "200")  # the table on one line per row
    shown = _run_on_a_terminal(["search", "--tags", "odd", "--index", str(index)], tmp_path)
    assert "[link=http://evil.example]click[/link] [red]boom[/red]" in shown, shown
    assert "\x1b]8;" not in shown  # no OSC 8 hyperlink
    proj = project(tmp_path, index, 'lib-m = "*"\n')
    shown = _run_on_a_terminal(["lock"], proj)
    assert "+ lib-m 1.0" in shown.replace("\x1b[32m", "").replace("\x1b[0m", ""), shown


def test_spinner_labels_on_a_terminal_are_text(monkeypatch) -> None:
    """A spinner's label holds URLs from an index or a lock: shown with its brackets, never as markup."""
    import io

    from ckpm.cli.output import ConsoleReporter

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    r = ConsoleReporter()
    label = "fetching https://h.example/[link=http://evil.example]x[/link]"
    with r.progress(label):
        assert r._status.renderable.text.plain == label + "…"
        with r.progress("cloning [red]y[/red]"):
            assert r._status.renderable.text.plain == "cloning [red]y[/red]…"
        assert r._status.renderable.text.plain == label + "…"


def test_the_host_target_follows_the_arch_override_like_detect(tmp_path: Path, index: Path) -> None:
    proj = project(tmp_path, index)
    env = {"CKPM_OVERRIDE_ARCH": "arm64"}  # an alias: both say aarch64
    r = run("add", "lib-a", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    lk = api.Workspace(proj).read_lock()
    assert lk is not None and lk.targets == ["linux-aarch64"] and lk.find("lib-a")[0].version == "3.0"
    d = run("detect", "--json", cwd=proj, env=env)
    assert json.loads(d.stdout)["data"]["facts"]["__arch"]["extra"]["name"] == "aarch64"
