"""`ckpm vendor DIR` writes every source a sync needs; `ckpm sync --locked --offline --mirror DIR`
provisions from DIR alone on a fresh machine (new cache, store, config and home, no network).

Everything is real: tagged git repositories made with pygit2, a real wheel served by a loopback
"find-links" HTTP server (stopped before the offline step), `ckpm` run as a process. "No
network" is proven with `unshare -n` (a new network namespace: not even loopback is up; `unshare -rn` where only user
namespaces are allowed), and the original repository, archive and server are gone before the
offline step.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pygit2
import pytest

from ckpm.fetch.vendor import archive_relpath, count_words, git_relpath
from ckpm.index.writer import init_index, reindex, write_component
from ckpm.model.lockfile import read_lock
from ckpm.testing import GitRepoFactory, component_toml

pytest_plugins = ["ckpm.testing"]

COPY = {"install": [{"steps": [{"kind": "copy", "from": "data", "to": "share/mytool"}]}]}


def _netns_prefix() -> list[str]:
    """A command prefix that runs a process with no network at all (a network namespace of its
    own: not even loopback is up): ``unshare -n`` as root, ``unshare -rn`` where user namespaces
    are allowed; empty when neither works here (the offline steps then run without it, with
    every server stopped and every original removed)."""
    if not shutil.which("unshare"):
        return []
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            continue
    return []


NETNS = _netns_prefix()


def _env(tmp_path: Path, tag: str) -> dict[str, str]:
    """A machine of its own: cache, store, config, home and pip settings under ``tmp_path/tag``."""
    home = tmp_path / f"home-{tag}"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "CKPM_", "XDG_"))}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
                "XDG_DATA_HOME": str(home / ".local/share"), "CKPM_CACHE_DIR": str(home / "ckpm-cache"),
                "CKPM_STORE": str(home / "ckpm-store"), "CKPM_CONFIG": str(home / "ckpm-config.toml"),
                "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1"})
    return env


def ckpm(*args: str, cwd: Path, env: dict[str, str], offline_net: bool = False) -> subprocess.CompletedProcess[str]:
    """``ckpm ARGS`` as a process; ``offline_net``: in a network namespace of its own (no network at all)."""
    argv = [sys.executable, "-m", "ckpm", *args]
    if offline_net:
        argv = [*NETNS, *argv]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _json(r: subprocess.CompletedProcess[str]) -> Any:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["data"]


def _no_network_here() -> None:
    """What the offline step runs in really has no network (the proof's own check)."""
    if not NETNS:
        return
    code = ("import socket\ns = socket.socket()\ns.settimeout(5)\n"
            "try:\n    s.connect(('127.0.0.1', 9))\nexcept OSError as e:\n    print(e.errno)\n")
    r = subprocess.run([*NETNS, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr  # even loopback is unreachable (ENETUNREACH)


# -- layout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url,rel", [
    ("https://github.com/u/r.git", "@git/github.com/u/r.git"),
    ("https://github.com/u/r", "@git/github.com/u/r.git"),
    ("git+https://GitHub.com:8443/u/r", "@git/github.com_8443/u/r.git"),
    ("ssh://git@host.example/u/r.git", "@git/host.example/u/r.git"),
    ("git@host.example:u/r.git", "@git/host.example/u/r.git"),
])
def test_git_relpath(url: str, rel: str) -> None:
    assert git_relpath(url) == rel


def test_git_relpath_of_a_local_repository_is_named_by_a_hash() -> None:
    a, b = git_relpath("file:///srv/a/mytool.git"), git_relpath("file:///srv/b/mytool.git")
    assert a.startswith("@git/_local/mytool-") and a.endswith(".git") and a != b
    with pytest.raises(ValueError):
        git_relpath("https://host.example/../etc")


def test_archive_relpath_of_a_file_url() -> None:
    rel = archive_relpath("file:///data/sets/words.tar.gz")
    assert rel.startswith("@file/") and rel.endswith("/words.tar.gz") and ".." not in rel
    assert archive_relpath("https://zlib.net/z.tgz") == "zlib.net/z.tgz"
    with pytest.raises(ValueError):
        archive_relpath("ftp://host.example/a.tgz")


def test_counts_have_correct_plurals() -> None:
    assert [count_words(n, k) for n, k in [(0, "archive"), (1, "archive"), (1, "git"), (2, "git"),
                                           (1, "python"), (36, "python")]] == [
        "0 archives", "1 archive", "1 git repository", "2 git repositories", "1 python distribution",
        "36 python distributions"]


# -- git ------------------------------------------------------------------------------------

def _git_project(tmp_path: Path, url: str) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "proj"\n\n[dependencies]\n'
                                    f'mytool = {{ git = "{url}", version = ">=0.5" }}\n')
    return proj


def test_vendored_git_component_syncs_offline_on_a_fresh_machine(tmp_path: Path,
                                                                   git_repo_factory: GitRepoFactory) -> None:
    tool = git_repo_factory("mytool", {
        "v0.4.0": {"ckpm.toml": component_toml("mytool", "0.4.0", kind="tool", extra=COPY),
                   "data/hello.txt": "hello 0.4\n"},
        "v0.5.0": {"ckpm.toml": component_toml("mytool", "0.5.0", kind="tool", extra=COPY),
                   "data/hello.txt": "hello 0.5\n", "data/sub/more.txt": "more\n"},
    }, annotated=["v0.5.0"])
    rev = tool.tags()["v0.5.0"]
    proj = _git_project(tmp_path, tool.url)
    author = _env(tmp_path, "author")
    synced = _json(ckpm("sync", "--json", cwd=proj, env=author))
    (pkg,) = [p for p in synced["packages"] if p["name"] == "mytool"]
    assert pkg["action"] == "built"

    vendor = tmp_path / "vendor"
    out = _json(ckpm("vendor", str(vendor), "--json", cwd=proj, env=author))
    assert out["counts"] == {"archive": 0, "git": 1, "python": 0}
    (item,) = out["files"]
    assert item["kind"] == "git" and item["commits"] == [rev] and item["tags"] == {"v0.5.0": rev}
    repo_dir = vendor / item["path"]
    assert repo_dir == vendor / git_relpath(tool.url)
    vendored = pygit2.Repository(str(repo_dir))
    assert str(vendored.lookup_reference("refs/tags/v0.5.0").peel(pygit2.Commit).id) == rev
    assert isinstance(vendored[vendored.lookup_reference("refs/tags/v0.5.0").target], pygit2.Tag)  # annotated, as made
    assert json.loads((vendor / "ckpm-vendor.json").read_text())["counts"]["git"] == 1
    r = ckpm("vendor", str(vendor), cwd=proj, env=author)
    assert r.returncode == 0 and "vendored 0 archives, 1 git repository, 0 python distributions" in r.stderr, r.stderr

    shutil.rmtree(tool.path)  # the original is gone: only the vendored copy can serve
    _no_network_here()
    fresh = _env(tmp_path, "evaluator")
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(vendor), "--json", cwd=proj, env=fresh, offline_net=True)
    again = _json(r)
    (pkg2,) = [p for p in again["packages"] if p["name"] == "mytool"]
    assert pkg2["action"] == "built" and pkg2["key"] == pkg["key"]
    prefix = Path(pkg2["path"])
    assert prefix.is_relative_to(Path(fresh["CKPM_STORE"]))
    assert (prefix / "share" / "mytool" / "hello.txt").read_text() == "hello 0.5\n"
    assert (prefix / "share" / "mytool" / "sub" / "more.txt").read_text() == "more\n"


def test_vendored_git_folder_named_by_a_mirrors_rule_serves_the_sync(tmp_path: Path,
                                                                     git_repo_factory: GitRepoFactory) -> None:
    """A vendored folder named by `[mirrors]` (no --mirror) serves git repositories too; a
    tampered copy (the locked commit missing) is refused, not trusted."""
    tool = git_repo_factory("mytool", {"v0.5.0": {"ckpm.toml": component_toml("mytool", "0.5.0", kind="tool",
                                                                                extra=COPY),
                                                   "data/hello.txt": "hi\n"}})
    proj = _git_project(tmp_path, tool.url)
    author = _env(tmp_path, "author")
    _json(ckpm("sync", "--json", cwd=proj, env=author))
    _json(ckpm("vendor", str(proj / "vendor"), "--json", cwd=proj, env=author))
    with open(proj / "ckpm.toml", "a") as f:
        f.write('\n[mirrors]\n"https://" = ["vendor/"]\n')
    _json(ckpm("lock", "--json", cwd=proj, env=author))  # the manifest changed: the same pins, a new hash
    shutil.rmtree(tool.path)
    fresh = _env(tmp_path, "evaluator")
    data = _json(ckpm("sync", "--locked", "--offline", "--json", cwd=proj, env=fresh))
    (pkg,) = [p for p in data["packages"] if p["name"] == "mytool"]
    assert (Path(pkg["path"]) / "share" / "mytool" / "hello.txt").read_text() == "hi\n"
    # a vendored repository without the locked commit does not serve it
    rel = git_relpath(tool.url)
    packs = list((proj / "vendor" / rel / "objects" / "pack").glob("*.pack"))
    assert packs
    for p in (proj / "vendor" / rel / "objects" / "pack").iterdir():
        p.unlink()
    other = _env(tmp_path, "third")
    r = ckpm("sync", "--locked", "--offline", cwd=proj, env=other)
    assert r.returncode != 0 and "mytool" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_vendor_for_a_target_the_lock_lacks_is_one_clear_error(tmp_path: Path,
                                                               git_repo_factory: GitRepoFactory) -> None:
    tool = git_repo_factory("mytool", {"v0.5.0": {"ckpm.toml": component_toml("mytool", "0.5.0", kind="tool",
                                                                                extra=COPY),
                                                   "data/hello.txt": "hi\n"}})
    proj = _git_project(tmp_path, tool.url)
    env = _env(tmp_path, "author")
    host = _json(ckpm("lock", "--json", cwd=proj, env=env))
    targets = read_lock(proj / "ckpm.lock").targets  # type: ignore[union-attr]
    assert host is not None and len(targets) == 1
    out = _json(ckpm("vendor", str(tmp_path / "v1"), "--target", targets[0], "--json", cwd=proj, env=env))
    assert out["targets"] == targets and out["counts"]["git"] == 1
    other = "linux-riscv64" if targets[0] != "linux-riscv64" else "linux-aarch64"
    r = ckpm("vendor", str(tmp_path / "v2"), "--target", other, cwd=proj, env=env)
    assert r.returncode != 0 and f"no resolution for {other}" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_an_unreachable_git_source_makes_vendor_fail_and_name_it(tmp_path: Path,
                                                                 git_repo_factory: GitRepoFactory) -> None:
    tool = git_repo_factory("mytool", {"v0.5.0": {"ckpm.toml": component_toml("mytool", "0.5.0", kind="tool",
                                                                                extra=COPY),
                                                   "data/hello.txt": "hi\n"}})
    proj = _git_project(tmp_path, tool.url)
    author = _env(tmp_path, "author")
    _json(ckpm("lock", "--json", cwd=proj, env=author))
    shutil.rmtree(tool.path)  # never fetched, and gone
    fresh = _env(tmp_path, "other")
    # `vendor --locked` verifies the lock first, and the component's ckpm.toml at the pinned commit
    # cannot be read any more: the lock cannot be shown to hold (exit 3), naming the repository
    r = ckpm("vendor", str(tmp_path / "vendor"), "--locked", "--json", cwd=proj, env=fresh)
    assert r.returncode == 3, r.stdout
    err = json.loads(r.stdout)
    assert err["error"]["code"] == "stale-lock" and any("mytool.git" in d for d in err["error"]["details"]), err
    # offline, the lock is taken as it is (with a note), and the vendoring itself names what it lacks
    r = ckpm("--offline", "vendor", str(tmp_path / "vendor"), "--locked", "--json", cwd=proj, env=fresh)
    assert r.returncode == 1, r.stdout
    err = json.loads(r.stdout)
    assert err["error"]["code"] == "vendor-incomplete", err
    assert any("mytool 0.5.0" in d for d in err["error"]["details"]), err
    r = ckpm("--offline", "vendor", str(tmp_path / "vendor"), "--locked", cwd=proj, env=fresh)
    assert r.returncode != 0 and "mytool 0.5.0" in r.stderr and "Traceback" not in r.stderr, r.stderr


# -- archives: a file:// source -------------------------------------------------------------

def _tarball(files: dict[str, str], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _index(tmp_path: Path, lines: list[dict[str, Any]]) -> Path:
    idx = tmp_path / "index"
    init_index(idx, "lab")
    write_component(idx, lines)
    reindex(idx)
    return idx


def test_a_file_url_source_is_vendored_and_served_offline(tmp_path: Path) -> None:
    """The lock's file:// source (a ValueError traceback before) is vendored under @file/. (Index
    data may name a local file only inside its own folder: tests/security/test_local_files.py.)"""
    blob = _tarball({"data/words.txt": "alpha\nbeta\n"}, "words-1.0")
    data = tmp_path / "index" / "files" / "words-1.0.tar.gz"
    idx = _index(tmp_path, [{
        "name": "dataset-words", "version": "1.0", "kind": "dataset", "tags": ["dataset"], "targets": ["*"],
        "deps": [], "source": {"urls": [data.as_uri()], "sha256": hashlib.sha256(blob).hexdigest()},
        "install": [{"steps": [{"kind": "copy", "from": "data", "to": "share/words"}]}]}])
    data.parent.mkdir()
    data.write_bytes(blob)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "proj"\n\n[dependencies]\ndataset-words = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{idx}"\n')
    author = _env(tmp_path, "author")
    _json(ckpm("sync", "--json", cwd=proj, env=author))
    vendor = tmp_path / "vendor"
    r = ckpm("vendor", str(vendor), cwd=proj, env=author)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "vendored 1 archive, 0 git repositories, 0 python distributions" in r.stderr
    assert (vendor / archive_relpath(data.as_uri())).read_bytes() == data.read_bytes()
    data.unlink()
    fresh = _env(tmp_path, "evaluator")
    out = _json(ckpm("sync", "--locked", "--offline", "--mirror", str(vendor), "--json", cwd=proj, env=fresh,
                     offline_net=True))
    (pkg,) = [p for p in out["packages"] if p["name"] == "dataset-words"]
    assert (Path(pkg["path"]) / "share" / "words" / "words.txt").read_text() == "alpha\nbeta\n"


# -- python distributions -------------------------------------------------------------------

class _FindLinks:
    """A loopback HTTP server of a folder of wheels (a pip "find-links" page: the folder listing)."""

    def __init__(self, root: Path) -> None:
        root_s = str(root)
        self.hits: list[str] = []
        hits = self.hits

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, directory=root_s, **kw)

            def log_message(self, *a: Any) -> None:
                hits.append(self.path)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def find_links(tmp_path: Path) -> Iterator[tuple[_FindLinks, Path]]:
    from test_build import make_wheel

    wheel = make_wheel(tmp_path / "wheels", "ckpyhello", "1.0")
    server = _FindLinks(wheel.parent)
    try:
        yield server, wheel
    finally:
        server.close()


def _pip_project(tmp_path: Path) -> Path:
    idx = _index(tmp_path, [{
        "name": "lib-pyhello", "version": "1.0", "kind": "lib", "tags": ["lib", "python"], "targets": ["*"],
        "deps": [], "install": [{"steps": [{"kind": "pip", "requirements": ["ckpyhello==1.0"]}]}]}])
    proj = tmp_path / "py"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "py"\n\n[dependencies]\nlib-pyhello = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{idx}"\n')
    return proj


def test_vendored_python_distributions_install_offline_into_a_fresh_venv(
        tmp_path: Path, find_links: tuple[_FindLinks, Path]) -> None:
    server, wheel = find_links
    proj = _pip_project(tmp_path)
    author = _env(tmp_path, "author")
    Path(author["CKPM_CONFIG"]).write_text(f'[pip]\nfind-links = ["{server.url}"]\nno-index = true\n')
    _json(ckpm("sync", "--json", cwd=proj, env=author))
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    lock = read_lock(proj / "ckpm.lock")
    assert lock is not None and lock.find("lib-pyhello")[0].pip[0]["sha256"] == sha
    vendor = tmp_path / "vendor"
    server.hits.clear()
    out = _json(ckpm("vendor", str(vendor), "--json", cwd=proj, env=author))
    assert out["counts"] == {"archive": 0, "git": 0, "python": 1}
    (item,) = out["files"]
    assert item["kind"] == "python" and item["sha256"] == sha and item["packages"] == ["lib-pyhello 1.0"]
    assert (vendor / item["path"]).read_bytes() == wheel.read_bytes()
    assert any(h.endswith(wheel.name) for h in server.hits), server.hits  # pip downloaded it from the server
    server.close()  # nothing to reach any more
    shutil.rmtree(wheel.parent)
    _no_network_here()
    shutil.rmtree(proj / ".ckpm")  # a fresh project environment
    fresh = _env(tmp_path, "evaluator")
    data = _json(ckpm("sync", "--locked", "--offline", "--mirror", str(vendor), "--json", cwd=proj, env=fresh,
                      offline_net=True))
    (pkg,) = [p for p in data["packages"] if p["name"] == "lib-pyhello"]
    assert pkg["action"] == "venv" and "ckpyhello 1.0" in pkg["detail"]
    py = proj / ".ckpm" / "venv" / "bin" / "python"
    r = subprocess.run([str(py), "-c", "import ckpyhello; print(ckpyhello.GREETING)"], capture_output=True, text=True)
    assert r.stdout.strip() == "hello from ckpyhello 1.0", r.stderr
    # a vendored file with other bytes is refused by its hash
    shutil.rmtree(proj / ".ckpm")
    target = vendor / item["path"]
    target.write_bytes(target.read_bytes().replace(b"hello from", b"HACKS from"))
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(vendor), cwd=proj, env=_env(tmp_path, "third"))
    assert r.returncode != 0 and "hash" in r.stderr.lower(), r.stderr


def test_a_pip_package_the_lock_has_no_files_for_makes_vendor_fail(tmp_path: Path,
                                                                   find_links: tuple[_FindLinks, Path]) -> None:
    """Locked but never synced: the lock does not name the exact distributions, so nothing
    verifiable can be vendored; vendor says so, names the package, and exits non-zero."""
    proj = _pip_project(tmp_path)
    env = _env(tmp_path, "author")
    _json(ckpm("lock", "--json", cwd=proj, env=env))
    r = ckpm("vendor", str(tmp_path / "vendor"), cwd=proj, env=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "lib-pyhello 1.0" in r.stderr and "ckpm sync" in r.stderr, r.stderr
    assert (tmp_path / "vendor" / "ckpm-vendor.json").is_file()  # what could be written, was


def test_a_component_published_from_a_git_tag_is_vendored(tmp_path: Path, git_repo_factory: GitRepoFactory) -> None:
    """An index line as `ckpm publish` writes it (``source = {git, tag, rev}``, the cksum of the
    tree) provisions offline from the vendored repository, the published tag checked there."""
    from ckpm.index.archive import tree_cksum_of

    repo = git_repo_factory("mylib", {"v1.0.0": {"ckpm.toml": component_toml("mylib", "1.0.0", extra=COPY),
                                                 "data/lib.txt": "mylib 1.0.0\n"}}, annotated=True)
    rev = repo.tags()["v1.0.0"]
    idx = _index(tmp_path, [{
        "name": "mylib", "version": "1.0.0", "kind": "lib", "tags": ["lib"], "targets": ["*"], "deps": [],
        "source": {"git": repo.url, "tag": "v1.0.0", "rev": rev}, "cksum": tree_cksum_of(repo.repo, rev, None),
        "install": COPY["install"]}])
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "proj"\n\n[dependencies]\nmylib = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{idx}"\n')
    author = _env(tmp_path, "author")
    _json(ckpm("sync", "--json", cwd=proj, env=author))
    vendor = tmp_path / "vendor"
    out = _json(ckpm("vendor", str(vendor), "--json", cwd=proj, env=author))
    assert out["counts"]["git"] == 1 and out["files"][0]["packages"] == ["mylib 1.0.0"]
    shutil.rmtree(repo.path)
    fresh = _env(tmp_path, "evaluator")
    data = _json(ckpm("sync", "--locked", "--offline", "--mirror", str(vendor), "--json", cwd=proj, env=fresh,
                      offline_net=True))
    (pkg,) = [p for p in data["packages"] if p["name"] == "mylib"]
    assert (Path(pkg["path"]) / "share" / "mytool" / "lib.txt").read_text() == "mylib 1.0.0\n"


def test_a_source_of_another_scheme_is_named_not_a_traceback(tmp_path: Path) -> None:
    idx = _index(tmp_path, [{
        "name": "dataset-old", "version": "1.0", "kind": "dataset", "tags": ["dataset"], "targets": ["*"],
        "deps": [], "source": {"urls": ["ftp://ftp.example.org/pub/old-1.0.tar.gz"]},
        "install": [{"steps": [{"kind": "copy", "from": "data", "to": "share/old"}]}]}])
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "proj"\n\n[dependencies]\ndataset-old = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{idx}"\n')
    env = _env(tmp_path, "author")
    _json(ckpm("lock", "--json", cwd=proj, env=env))
    r = ckpm("vendor", str(tmp_path / "vendor"), cwd=proj, env=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "dataset-old 1.0: ftp://ftp.example.org/pub/old-1.0.tar.gz: only http://, https:// and file://" in r.stderr


def test_api_vendor_returns_a_result_that_counts_each_kind(tmp_path: Path, git_repo_factory: GitRepoFactory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`api.vendor` (what `ckpm artifact` builds on): a VendorResult, counted per kind; the
    VendorIncomplete it raises carries the same result."""
    from ckpm import api
    from ckpm.fetch.vendor import VendorIncomplete, VendorResult

    for k, v in _env(tmp_path, "api").items():
        if k.startswith(("CKPM_", "HOME", "XDG_")):
            monkeypatch.setenv(k, v)
    tool = git_repo_factory("mytool", {"v0.5.0": {"ckpm.toml": component_toml("mytool", "0.5.0", kind="tool",
                                                                                extra=COPY),
                                                   "data/hello.txt": "hi\n"}})
    proj = _git_project(tmp_path, tool.url)
    res = api.vendor(api.Workspace(proj), tmp_path / "vendor")
    assert isinstance(res, VendorResult) and res.ok
    assert res.counts() == {"archive": 0, "git": 1, "python": 0}
    assert res.summary() == "0 archives, 1 git repository, 0 python distributions"
    assert res.to_dict()["files"][0]["commits"] == [tool.tags()["v0.5.0"]]
    shutil.rmtree(tool.path)
    monkeypatch.setenv("CKPM_CACHE_DIR", str(tmp_path / "another-cache"))
    from ckpm.settings import Settings

    with pytest.raises(VendorIncomplete) as info:  # offline: the lock is taken as it is, with a note
        api.vendor(api.Workspace(proj, Settings(offline=True)), tmp_path / "vendor2",
                   lock_options=api.LockOptions(locked=True))
    assert info.value.result.counts()["git"] == 0 and "mytool 0.5.0" in info.value.result.problems[0]


def test_vendoring_again_after_a_tag_moved_keeps_the_new_pin(tmp_path: Path, git_repo_factory: GitRepoFactory) -> None:
    """The same folder vendored again for a re-locked moved tag: the repository is rewritten so
    that the tag names the commit the lock now pins, and the offline sync takes that one."""
    tool = git_repo_factory("mytool", {"v0.5.0": {"ckpm.toml": component_toml("mytool", "0.5.0", kind="tool",
                                                                                extra=COPY),
                                                   "data/hello.txt": "first\n"}})
    proj = _git_project(tmp_path, tool.url)
    author = _env(tmp_path, "author")
    vendor = tmp_path / "vendor"
    _json(ckpm("vendor", str(vendor), "--json", cwd=proj, env=author))
    new = tool.move_tag("v0.5.0", {"ckpm.toml": component_toml("mytool", "0.5.0", kind="tool", extra=COPY),
                                   "data/hello.txt": "second\n"})
    _json(ckpm("lock", "--upgrade", "--json", cwd=proj, env=author))
    out = _json(ckpm("vendor", str(vendor), "--json", cwd=proj, env=author))
    assert out["files"][0]["commits"] == [new] and out["files"][0]["tags"] == {"v0.5.0": new}
    repo = pygit2.Repository(str(vendor / out["files"][0]["path"]))
    assert str(repo.lookup_reference("refs/tags/v0.5.0").peel(pygit2.Commit).id) == new
    shutil.rmtree(tool.path)
    data = _json(ckpm("sync", "--locked", "--offline", "--mirror", str(vendor), "--json", cwd=proj,
                      env=_env(tmp_path, "evaluator")))
    (pkg,) = [p for p in data["packages"] if p["name"] == "mytool"]
    assert (Path(pkg["path"]) / "share" / "mytool" / "hello.txt").read_text() == "second\n"
