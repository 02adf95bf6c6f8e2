"""`ckpm login`, `ckpm publish --registry`, `ckpm yank --registry` against the real registry
service (``registry/``: FastAPI served by uvicorn on 127.0.0.1, port 0) over a real bare git
index, publishing from real tagged git repositories with their own bare `origin`.

Needs the service (``ckpm_registry``, with fastapi and uvicorn from the test extra) and its
test helpers (tests/registry_support.py).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("ckpm_registry")
pytest.importorskip("uvicorn")

from registry_support import RunningRegistry, make_users, serve_subprocess  # noqa: E402

from ckpm import api  # noqa: E402
from ckpm.errors import TagMoved  # noqa: E402
from ckpm.index.gitwriter import AlreadyPublished  # noqa: E402
from ckpm.publishing import AuthError, RegistryError, login, logout, publish, token_for, yank  # noqa: E402
from ckpm.settings import Settings, read_config  # noqa: E402
from ckpm.testing import GitRepo, GitRepoFactory, component_toml  # noqa: E402

pytest_plugins = ["ckpm.testing"]


@pytest.fixture
def registry(tmp_path: Path, git_index_factory: Any) -> Iterator[RunningRegistry]:
    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    users = make_users(tokens, "alice", "bob")
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=users, refresh=0.0).start()
    try:
        yield reg
    finally:
        reg.stop()


def settings_for(tmp_path: Path, name: str = "s", **env: str) -> Settings:
    return Settings(cache_dir=tmp_path / f"cache-{name}", env={"HOME": str(tmp_path / "home"), **env},
                    config_path=tmp_path / f"config-{name}.toml", store_dir=tmp_path / "store")


def component(repos: GitRepoFactory, name: str, deps: dict[str, str] | None = None) -> GitRepo:
    origin = repos(f"{name}-origin", bare=True)
    work = repos(name, bare=False)
    work.repo.remotes.create("origin", origin.url)
    return work


def release(work: GitRepo, tag: str, data: str = "v1", deps: dict[str, str] | None = None) -> str:
    name = work.path.name
    commit = work.commit({"ckpm.toml": component_toml(name, tag.lstrip("v"), description=f"{name} lib", deps=deps),
                          "data.txt": data + "\n"}, f"release {tag}")
    work.tag(tag, commit, force=True)
    work.repo.remotes["origin"].push(["+refs/heads/main:refs/heads/main", f"+refs/tags/{tag}:refs/tags/{tag}"])
    return commit


def consumer_project(tmp_path: Path, registry_url: str, dependency: str) -> Path:
    """A project ``app`` with one dependency line, on the registry's index."""
    proj = tmp_path / "app"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "app"\n\n[dependencies]\n{dependency}\n\n'
                                    f'[[index]]\nname = "reg"\nurl = "{registry_url}"\n')
    return proj


def test_login_checks_the_token_and_keeps_it_private(registry: RunningRegistry, tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    with pytest.raises(AuthError) as ei:
        login(registry.url, "ckpm_wrong-token", settings=s)
    assert ei.value.hint and "ckpm login" not in ei.value.hint and "does not know this token" in ei.value.hint
    assert not Path(s.config_path).exists()  # type: ignore[arg-type]
    import socket

    with socket.socket() as free:  # a port nothing listens on: the error says so in a few words
        free.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{free.getsockname()[1]}"
    with pytest.raises(RegistryError) as ei2:
        login(dead, registry.tokens_of["alice"], settings=s)
    assert ei2.value.message == f"cannot reach {dead}/api/v1/me: connection refused", ei2.value.message
    res = login(registry.url, registry.tokens_of["alice"], settings=s)
    assert res.user == "alice" and res.registry == registry.url
    cfg = Path(res.config)
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    assert read_config(cfg)["registries"][registry.url] == {"token": registry.tokens_of["alice"], "user": "alice"}
    assert token_for(registry.url, settings_for(tmp_path)) == registry.tokens_of["alice"]
    assert logout(settings=settings_for(tmp_path)) == [registry.url]
    assert token_for(registry.url, settings_for(tmp_path)) is None


def test_cli_login_reads_the_token_from_stdin(registry: RunningRegistry, tmp_path: Path) -> None:
    cfg = tmp_path / "cli-config.toml"
    env = {**os.environ, "CKPM_CONFIG": str(cfg), "CKPM_CACHE_DIR": str(tmp_path / "cli-cache")}
    r = subprocess.run([sys.executable, "-m", "ckpm", "login", "--registry", registry.url, "--json"],
                       input=registry.tokens_of["bob"] + "\n", env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"]["user"] == "bob"
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    assert registry.tokens_of["bob"] not in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "ckpm", "login", "--registry", registry.url],
                       input="ckpm_bad\n", env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "error:" in r.stderr and "Traceback" not in r.stderr


def test_publish_through_the_registry_then_lock_from_its_sparse_files(registry: RunningRegistry, tmp_path: Path,
                                                                     git_repo_factory: GitRepoFactory) -> None:
    work = component(git_repo_factory, "lib-reg")
    commit = release(work, "v1.0.0")
    s = settings_for(tmp_path)
    # no token: refused before any request that writes
    with pytest.raises(AuthError, match="no token"):
        publish(work.path, registry=registry.url, settings=s)
    # a token the registry does not know
    with pytest.raises(AuthError):
        publish(work.path, registry=registry.url, token="ckpm_not-a-token", settings=s)
    before = registry.history()
    login(registry.url, registry.tokens_of["alice"], settings=s)
    res = publish(work.path, registry=registry.url, settings=settings_for(tmp_path))
    assert res.target.kind == "registry" and res.commit is not None
    assert len(registry.history()) == len(before) + 1
    # anyone locks it from the registry's sparse files
    proj = consumer_project(tmp_path, registry.url, 'lib-reg = ">=1"')
    (p,) = api.lock(api.Workspace(proj, settings_for(tmp_path, "consumer"))).lock.find("lib-reg")
    assert p.version == "1.0.0"
    line = api.Workspace(proj, settings_for(tmp_path, "consumer")).indexes[0].find_entry("lib-reg", "1.0.0")
    assert line.source["rev"] == commit and line.source["tag"] == "v1.0.0" and line.cksum.startswith("sha256:")

    # the same version again
    with pytest.raises(AlreadyPublished):
        publish(work.path, registry=registry.url, settings=settings_for(tmp_path))
    # another user may not publish a name alice owns
    release(work, "v1.1.0", data="v2")
    with pytest.raises(RegistryError) as e:
        publish(work.path, registry=registry.url, token=registry.tokens_of["bob"], settings=settings_for(tmp_path))
    assert e.value.code == "forbidden" and e.value.status == 403
    # a moved tag: refused, both commits named
    moved = release(work, "v1.0.0", data="changed")
    with pytest.raises(TagMoved) as te:
        publish(work.path, registry=registry.url, tag="v1.0.0", settings=settings_for(tmp_path))
    assert commit in te.value.message and moved in te.value.message


def test_publish_to_the_registrys_index_url_and_missing_dependencies(registry: RunningRegistry, tmp_path: Path,
                                                                      git_repo_factory: GitRepoFactory) -> None:
    """--index http://… is the registry that serves it (its config.json names the API)."""
    work = component(git_repo_factory, "lib-dep")
    release(work, "v0.1.0", deps={"lib-absent": ">=1"})
    s = settings_for(tmp_path, CKPM_TOKEN=registry.tokens_of["alice"])
    before = registry.history()
    from ckpm.publishing import PublishError

    with pytest.raises(PublishError, match="does not have: lib-absent"):
        publish(work.path, index=registry.url + "/index", settings=s)
    assert registry.history() == before
    release(work, "v0.2.0")
    res = publish(work.path, index=registry.url + "/index", settings=s)
    assert res.target.api == registry.url and res.release.version == "0.2.0"


def test_yank_through_the_registry(registry: RunningRegistry, tmp_path: Path, git_repo_factory: GitRepoFactory) -> None:
    work = component(git_repo_factory, "lib-y")
    release(work, "v1.0.0")
    publish(work.path, registry=registry.url, token=registry.tokens_of["alice"], settings=settings_for(tmp_path))
    release(work, "v1.1.0", data="v2")
    publish(work.path, registry=registry.url, token=registry.tokens_of["alice"], settings=settings_for(tmp_path))
    with pytest.raises(RegistryError) as e:
        yank("lib-y@1.1.0", registry=registry.url, token=registry.tokens_of["bob"], settings=settings_for(tmp_path))
    assert e.value.status == 403
    res = yank("lib-y@1.1.0", registry=registry.url, token=registry.tokens_of["alice"],
               settings=settings_for(tmp_path))
    assert res.yanked
    proj = consumer_project(tmp_path, registry.url, 'lib-y = "*"')
    (p,) = api.lock(api.Workspace(proj, settings_for(tmp_path, "consumer"))).lock.find("lib-y")
    assert p.version == "1.0.0"
    res = yank("lib-y@1.1.0", undo=True, registry=registry.url, token=registry.tokens_of["alice"],
               settings=settings_for(tmp_path))
    assert not res.yanked
    with pytest.raises(RegistryError) as e:
        yank("lib-y@9.0.0", registry=registry.url, token=registry.tokens_of["alice"], settings=settings_for(tmp_path))
    assert e.value.status == 404


def test_a_token_is_never_sent_to_an_api_on_another_host(tmp_path: Path, git_index_factory: Any,
                                                          git_repo_factory: GitRepoFactory) -> None:
    """A service whose config.json names its API on another host (`--public-url`): ckpm refuses
    to send the token there, and says how to go on if that host is trusted."""
    import requests

    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    users = make_users(tokens, "alice")
    proc, url = serve_subprocess(str(gi.git.path), tokens, "--public-url", "http://registry.elsewhere.invalid")
    try:
        assert requests.get(url + "/config.json", timeout=30).json()["api"] == "http://registry.elsewhere.invalid"
        work = component(git_repo_factory, "lib-far")
        release(work, "v1.0.0")
        s = settings_for(tmp_path, CKPM_TOKEN=users["alice"])
        with pytest.raises(RegistryError, match="another host") as e:
            publish(work.path, index=url, settings=s)
        assert e.value.hint is not None and "--registry http://registry.elsewhere.invalid" in e.value.hint
        with pytest.raises(RegistryError, match="another host"):
            login(url, users["alice"], settings=s)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
