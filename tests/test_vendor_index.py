"""`ckpm vendor DIR` writes the index lines of the locked packages, and a lock is verified from
them on a fresh machine where the index cannot be reached: "a recipe runs only from a verified
line" holds offline too.

Everything is real: a git index (a bare repository in tmp_path, `git+file://`) or an HTTP index
on a loopback server, a component published from a tagged git repository with a `copy` recipe,
`ckpm` run as a process. Before each offline step the index repository and the component's
repository are moved away (or the server is stopped), and the evaluator has a new cache, store,
config and home.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ckpm.fetch.vendor import index_relpath
from ckpm.index.archive import tree_cksum_of
from ckpm.index.layout import entry_path
from ckpm.model.lockfile import read_lock
from ckpm.testing import GitIndexFactory, GitRepoFactory, HttpIndexServer, IndexFactory, component_toml
from test_vendor import COPY, _env, _json, _no_network_here, ckpm

pytest_plugins = ["ckpm.testing"]


@dataclass
class Project:
    proj: Path
    vendor: Path
    author: dict[str, str]
    index_url: str
    prefix_key: str  # the store key the author's sync built


def _line(repo: Any) -> dict[str, Any]:
    """mylib 1.0.0 as `ckpm publish` writes it: a git source at the tag's commit, its tree's cksum,
    and a `copy` recipe."""
    rev = repo.tags()["v1.0.0"]
    return {"name": "mylib", "version": "1.0.0", "kind": "lib", "tags": ["lib"], "targets": ["*"], "deps": [],
            "source": {"git": repo.url, "tag": "v1.0.0", "rev": rev}, "cksum": tree_cksum_of(repo.repo, rev, None),
            "install": COPY["install"]}


def _author(tmp_path: Path, index_url: str) -> Project:
    """The author's machine: a project on index ``lab`` at ``index_url``, synced and vendored."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "proj"\n\n[dependencies]\nmylib = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{index_url}"\n')
    author = _env(tmp_path, "author")
    synced = _json(ckpm("sync", "--json", cwd=proj, env=author))
    (pkg,) = [p for p in synced["packages"] if p["name"] == "mylib"]
    assert pkg["action"] == "built"
    vendor = tmp_path / "vendor"
    r = ckpm("vendor", str(vendor), cwd=proj, env=author)
    assert r.returncode == 0 and "1 index line" in r.stderr, r.stderr
    return Project(proj, vendor, author, index_url, pkg["key"])


@pytest.fixture
def git_index_project(tmp_path: Path, git_repo_factory: GitRepoFactory,
                      git_index_factory: GitIndexFactory) -> Project:
    """A project on a git index; afterwards the index and the component's repository are moved away."""
    repo = git_repo_factory("mylib", {"v1.0.0": {"ckpm.toml": component_toml("mylib", "1.0.0", extra=COPY),
                                                 "data/lib.txt": "mylib 1.0.0\n"}}, annotated=True)
    gi = git_index_factory({"mylib": [_line(repo)]}, name="lab")
    out = _author(tmp_path, gi.url)
    shutil.move(str(gi.git.path), str(tmp_path / "index-moved-away.git"))
    shutil.move(str(repo.path), str(tmp_path / "repo-moved-away.git"))
    return out


@pytest.fixture
def http_index_project(tmp_path: Path, git_repo_factory: GitRepoFactory, index_factory: IndexFactory,
                       http_index_server: HttpIndexServer) -> Project:
    """A project on an HTTP index (loopback); afterwards the server is stopped and the repository moved away."""
    repo = git_repo_factory("mylib", {"v1.0.0": {"ckpm.toml": component_toml("mylib", "1.0.0", extra=COPY),
                                                 "data/lib.txt": "mylib 1.0.0\n"}}, annotated=True)
    folder = index_factory({"mylib": [_line(repo)]}, name="lab")
    http_index_server.serve(folder)
    out = _author(tmp_path, http_index_server.url)
    http_index_server.stop()
    shutil.move(str(repo.path), str(tmp_path / "repo-moved-away.git"))
    return out


def _vendored_file(p: Project) -> Path:
    return p.vendor / index_relpath("lab") / entry_path("mylib")


def _store(env: dict[str, str]) -> Path:
    return Path(env["CKPM_STORE"])


def _no_prefix_of_mylib(env: dict[str, str]) -> None:
    prefixes = _store(env) / "prefixes"
    assert not prefixes.exists() or not [d for d in prefixes.iterdir() if d.name.startswith("mylib-")]


# -- vendor writes the lines -------------------------------------------------------------------

def test_vendor_writes_the_lines_as_the_index_served_them(tmp_path: Path, git_index_project: Project) -> None:
    p = git_index_project
    manifest = json.loads((p.vendor / "ckpm-vendor.json").read_text())
    (ix,) = manifest["indexes"]
    assert ix["name"] == "lab" and ix["url"] == p.index_url and ix["path"] == "@index/lab"
    comp = ix["components"]["mylib"]
    assert comp["file"] == entry_path("mylib") and comp["versions"] == ["1.0.0"] and comp["packages"] == ["mylib 1.0.0"]
    # byte for byte the component file of the index (its bare repository, moved away, still holds it)
    import pygit2

    repo = pygit2.Repository(str(tmp_path / "index-moved-away.git"))
    blob = repo.revparse_single(f"HEAD:{entry_path('mylib')}")
    assert _vendored_file(p).read_bytes() == blob.data
    assert (p.vendor / "@index" / "lab" / "config.json").read_bytes() == repo.revparse_single("HEAD:config.json").data
    assert manifest["counts"] == {"archive": 0, "git": 1, "python": 0}  # the kinds stay what they were


# -- (a) verified from the vendored lines, then provisioned --------------------------------------

@pytest.mark.parametrize("kind", ["git", "http"])
def test_offline_sync_verifies_from_the_vendored_lines_and_provisions(kind: str, request: pytest.FixtureRequest,
                                                                      tmp_path: Path) -> None:
    p: Project = request.getfixturevalue(f"{kind}_index_project")
    _no_network_here()
    fresh = _env(tmp_path, "evaluator")
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(p.vendor), "--json", cwd=p.proj, env=fresh,
             offline_net=True)
    data = _json(r)
    (pkg,) = [x for x in data["packages"] if x["name"] == "mylib"]
    assert pkg["action"] == "built" and pkg["key"] == p.prefix_key
    assert Path(pkg["path"]).is_relative_to(_store(fresh))
    assert (Path(pkg["path"]) / "share" / "mytool" / "lib.txt").read_text() == "mylib 1.0.0\n"
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(p.vendor), cwd=p.proj, env=fresh)
    assert r.returncode == 0 and "up to date" not in r.stderr, r.stderr
    assert f"note: mylib 1.0.0: verified against its line of index lab ({p.index_url}) vendored in {p.vendor}" \
        in r.stderr, r.stderr
    # the evaluator vendors again, offline, from the vendored folder: the same lines, byte for byte
    again = tmp_path / "vendor-again"
    r = ckpm("vendor", str(again), "--offline", "--mirror", str(p.vendor), cwd=p.proj, env=fresh, offline_net=True)
    assert r.returncode == 0 and "1 index line" in r.stderr, r.stderr
    assert (again / index_relpath("lab") / entry_path("mylib")).read_bytes() == _vendored_file(p).read_bytes()


def test_lock_check_reads_the_lines_of_a_mirrors_folder(tmp_path: Path, git_index_project: Project) -> None:
    """The vendored folder inside the project, named by `[mirrors]` when the author locked: a
    fresh `lock --check --offline` verifies from it (exit 0) and says where the line came from."""
    p = git_index_project
    inside = p.proj / "vendor"
    shutil.copytree(p.vendor, inside)
    text = (p.proj / "ckpm.toml").read_text()
    (p.proj / "ckpm.toml").write_text(text + '\n[mirrors]\n"https://" = ["vendor/"]\n')
    lock = read_lock(p.proj / "ckpm.lock")
    assert lock is not None
    from ckpm.model.manifest import load_project

    lock.manifest_hash = load_project(p.proj / "ckpm.toml").content_hash()  # the same pins for the new manifest
    (p.proj / "ckpm.lock").write_text(lock.dumps())
    r = ckpm("lock", "--check", "--offline", cwd=p.proj, env=_env(tmp_path, "fresh"))
    assert r.returncode == 0, r.stderr
    assert "ckpm.lock is up to date" in r.stdout and "vendored in" in r.stderr, r.stderr


# -- (b) a hand-edited lock is refused ---------------------------------------------------------

def test_a_hand_edited_lock_is_refused_against_the_vendored_line(tmp_path: Path, git_index_project: Project) -> None:
    p = git_index_project
    marker = tmp_path / "PWNED"
    lock = read_lock(p.proj / "ckpm.lock")
    assert lock is not None
    (mylib,) = lock.find("mylib")
    assert mylib.install[0]["steps"] == COPY["install"][0]["steps"]
    mylib.install[0] = {**mylib.install[0], "steps": [{"kind": "script", "run": [f"touch {marker}"]}]}  # (frozen)
    (p.proj / "ckpm.lock").write_text(lock.dumps())
    fresh = _env(tmp_path, "evaluator")
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(p.vendor), cwd=p.proj, env=fresh, offline_net=True)
    assert r.returncode == 3, r.stderr
    assert "mylib 1.0.0: install:" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not marker.exists()
    _no_prefix_of_mylib(fresh)


# -- (c) no line at all: not verifiable, nothing run --------------------------------------------

@pytest.mark.parametrize("kind", ["git", "http"])
def test_without_vendored_lines_the_recipe_is_not_run(kind: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    p: Project = request.getfixturevalue(f"{kind}_index_project")
    fresh = _env(tmp_path, "evaluator")
    r = ckpm("sync", "--locked", "--offline", cwd=p.proj, env=fresh, offline_net=True)
    assert r.returncode == 3, r.stderr
    assert "cannot be verified" in r.stderr and "mylib 1.0.0: not verifiable" in r.stderr, r.stderr
    assert f"index lab ({p.index_url})" in r.stderr and "ckpm vendor" in r.stderr and "Traceback" not in r.stderr
    _no_prefix_of_mylib(fresh)
    r = ckpm("sync", "--locked", "--offline", "--json", cwd=p.proj, env=fresh)
    assert r.returncode == 3 and json.loads(r.stdout)["error"]["code"] == "unverifiable-lock", r.stdout
    # lock --check: not verifiable is the documented exit code of a lock that does not hold
    r = ckpm("lock", "--check", "--offline", "--json", cwd=p.proj, env=fresh)
    assert r.returncode == 3, r.stderr
    out = json.loads(r.stdout)["data"]
    assert out["unverifiable"] == [f"index lab ({p.index_url})"] and "ckpm vendor" in out["hint"], out
    r = ckpm("lock", "--check", "--offline", cwd=p.proj, env=fresh)
    assert r.returncode == 3 and "ckpm.lock cannot be verified here" in r.stderr, r.stderr
    # a vendored folder without the lines (written by a ckpm that did not vendor them) does not help
    manifest = json.loads((p.vendor / "ckpm-vendor.json").read_text())
    manifest.pop("indexes")
    (p.vendor / "ckpm-vendor.json").write_text(json.dumps(manifest))
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(p.vendor), cwd=p.proj, env=_env(tmp_path, "third"))
    assert r.returncode == 3 and "mylib 1.0.0: not verifiable" in r.stderr, r.stderr


# -- (d) a damaged vendored line is refused ----------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "other-name", "oversized", "a-link"])
def test_a_damaged_vendored_line_is_refused(damage: str, tmp_path: Path, git_index_project: Project) -> None:
    p = git_index_project
    f = _vendored_file(p)
    text = f.read_text()
    if damage == "truncated":
        f.write_text(text[: len(text) // 2] + "\n")
        why = "not JSON"
    elif damage == "other-name":
        f.write_text(text.replace('"name":"mylib"', '"name":"otherlib"').replace('"name": "mylib"', '"name": "otherlib"'))
        why = "does not match the file"
    elif damage == "oversized":
        with open(f, "a") as out:
            out.write(" " * (8 * 1024 * 1024 + 1))
        why = "over the cap"
    else:
        f.unlink()
        f.symlink_to("/dev/zero")
        why = "not a regular file"
    fresh = _env(tmp_path, "evaluator")
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(p.vendor), cwd=p.proj, env=fresh, offline_net=True)
    assert r.returncode == 3, r.stderr
    assert "cannot be verified here" in r.stderr and "mylib 1.0.0: not verifiable" in r.stderr, r.stderr
    assert "vendored in" in r.stderr and "refused, not trusted" in r.stderr and "ckpm vendor" in r.stderr, r.stderr
    assert why in r.stderr and "Traceback" not in r.stderr and "line skipped" not in r.stderr, r.stderr
    _no_prefix_of_mylib(fresh)


def test_lines_vendored_for_another_index_url_are_not_used(tmp_path: Path, git_index_project: Project) -> None:
    """The manifest says which index (name and URL) the lines were read from: lines of an index
    of the same name at another URL do not verify this project's lock."""
    p = git_index_project
    manifest = json.loads((p.vendor / "ckpm-vendor.json").read_text())
    manifest["indexes"][0]["url"] = "https://index.invalid/lab"
    (p.vendor / "ckpm-vendor.json").write_text(json.dumps(manifest))
    fresh = _env(tmp_path, "evaluator")
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(p.vendor), cwd=p.proj, env=fresh)
    assert r.returncode == 3 and "mylib 1.0.0: not verifiable" in r.stderr, r.stderr
    _no_prefix_of_mylib(fresh)


def test_a_package_from_a_folder_index_needs_no_vendored_line(tmp_path: Path, index_factory: IndexFactory,
                                                              git_repo_factory: GitRepoFactory) -> None:
    """A local folder index is read as it is, offline or not: unaffected."""
    repo = git_repo_factory("mylib", {"v1.0.0": {"ckpm.toml": component_toml("mylib", "1.0.0", extra=COPY),
                                                 "data/lib.txt": "mylib 1.0.0\n"}}, annotated=True)
    folder = index_factory({"mylib": [_line(repo)]}, name="lab")
    p = _author(tmp_path, str(folder))
    shutil.rmtree(p.vendor / "@index")
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(p.vendor), "--json", cwd=p.proj,
             env=_env(tmp_path, "evaluator"))
    (pkg,) = [x for x in _json(r)["packages"] if x["name"] == "mylib"]
    assert pkg["action"] == "built"


# -- an artifact of such a project evaluates offline -------------------------------------------

def test_artifact_of_a_git_index_project_evaluates_offline(tmp_path: Path, git_repo_factory: GitRepoFactory,
                                                           git_index_factory: GitIndexFactory) -> None:
    """`ckpm artifact pack` vendors the index lines with the sources; `evaluate` on a fresh home,
    the index and the component's repository gone, verifies the recorded lock from them and
    reproduces (the host compiler's detect rule comes from the embedded index, read although the
    git index cannot be)."""
    if not shutil.which("cc") and not shutil.which("gcc"):
        pytest.skip("no C compiler on this machine")
    repo = git_repo_factory("mylib", {"v1.0.0": {"ckpm.toml": component_toml("mylib", "1.0.0", extra=COPY),
                                                 "data/lib.txt": "a\nb\nc\n"}}, annotated=True)
    gi = git_index_factory({"mylib": [_line(repo)]}, name="lab")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "count.c").write_text('#include <stdio.h>\nint main(int c, char **v) {\n  FILE *f = fopen(v[1], "r");\n'
                                  '  int n = 0, ch;\n  while ((ch = fgetc(f)) != EOF) if (ch == 10) n++;\n'
                                  '  printf("lines: %d\\n", n);\n  return 0;\n}\n')
    (proj / "ckpm.toml").write_text(f'''[project]
name = "proj"

[dependencies]
compiler = {{ tags = "compiler,lang-c", version = ">=9", kind = "build" }}
mylib = "*"

[[index]]
name = "lab"
url = "{gi.url}"

[[index]]
name = "default"
url = "embedded"

[run]
sources = ["count.c"]
binary = "count"
input = "mylib"
command = "count"

[run.commands.count]
args = ["{{input}}/share/mytool/lib.txt"]

[run.validate]
stdout = ["lines: 3"]

[run.metrics]
lines = {{ regex = "lines: ([0-9]+)" }}

[run.tolerance]                   # no verdict on wall time or memory here: only the count is compared
time = 100
max_rss = 100
''')
    author = _env(tmp_path, "author")
    r = ckpm("run", "--record", "baseline", cwd=proj, env=author)
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "proj.ckpm.tar"
    r = ckpm("artifact", "pack", str(bundle), cwd=proj, env=author)
    assert r.returncode == 0, r.stderr
    shutil.move(str(gi.git.path), str(tmp_path / "index-moved-away.git"))
    shutil.move(str(repo.path), str(tmp_path / "repo-moved-away.git"))
    _no_network_here()
    fresh = _env(tmp_path, "evaluator")
    r = ckpm("artifact", "evaluate", str(bundle), "--into", str(tmp_path / "into"), "--report", str(tmp_path / "rep"),
             "--json", cwd=tmp_path, env=fresh, offline_net=True)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)["data"]
    assert [data["verdicts"][k]["status"] for k in ("available", "functional", "reproduced")] == ["yes"] * 3, data
    (exp,) = data["experiments"]
    lines = {m["metric"]: m for m in exp["metrics"]}["lines"]
    assert lines["recorded"] == lines["now"] == 3
    assert (tmp_path / "into" / "sources" / "@index" / "lab" / entry_path("mylib")).is_file()


def test_evaluate_runs_nothing_of_a_bundled_lock_its_lines_refute(tmp_path: Path, git_repo_factory: GitRepoFactory,
                                                                  git_index_factory: GitIndexFactory) -> None:
    """A bundle whose lock was edited (a copy step made a script) and packed without the check
    (`pack(check=False)`, as anyone crafting a bundle could): `evaluate` checks the lock against
    the bundle's vendored index lines before provisioning, says it does not hold (not
    functional, exit 8), and the script never runs."""
    import sys

    repo = git_repo_factory("mylib", {"v1.0.0": {"ckpm.toml": component_toml("mylib", "1.0.0", extra=COPY),
                                                 "data/lib.txt": "mylib 1.0.0\n"}}, annotated=True)
    gi = git_index_factory({"mylib": [_line(repo)]}, name="lab")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "proj"\n\n[dependencies]\nmylib = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{gi.url}"\n')
    author = _env(tmp_path, "author")
    _json(ckpm("sync", "--json", cwd=proj, env=author))
    marker = tmp_path / "PWNED"
    lock = read_lock(proj / "ckpm.lock")
    assert lock is not None
    (mylib,) = lock.find("mylib")
    mylib.install[0] = {**mylib.install[0], "steps": [{"kind": "script", "run": [f"touch {marker}"]}]}  # (frozen)
    (proj / "ckpm.lock").write_text(lock.dumps())
    bundle = tmp_path / "crafted.ckpm.tar"
    code = ("import sys\nfrom pathlib import Path\nfrom ckpm.artifact import pack\n"
            "pack(Path(sys.argv[1]), Path(sys.argv[2]), check=False)\n")
    r = subprocess.run([sys.executable, "-c", code, str(proj), str(bundle)], env=author, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    shutil.move(str(gi.git.path), str(tmp_path / "index-moved-away.git"))
    shutil.move(str(repo.path), str(tmp_path / "repo-moved-away.git"))
    fresh = _env(tmp_path, "evaluator")
    r = ckpm("artifact", "evaluate", str(bundle), "--report", str(tmp_path / "rep"), "--json", cwd=tmp_path,
             env=fresh, offline_net=True)
    assert r.returncode == 8, r.stdout + r.stderr
    fn = json.loads(r.stdout)["data"]["verdicts"]["functional"]
    assert fn["status"] == "no" and any("mylib 1.0.0: install:" in e for e in fn["evidence"]), fn
    assert not marker.exists()
    _no_prefix_of_mylib(fresh)
