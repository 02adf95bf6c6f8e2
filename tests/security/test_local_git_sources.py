"""Issue 24, finding 1, for git sources: an index line from an index that another machine serves
may not name a repository on this machine (``{"git": "file:///home/u/private.git", "rev": …}``):
exporting it would copy a private tree into the store. A local index (a folder, ``git+file://``)
may, as `ckpm publish --index git+file://…` of local repositories does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ckpm.index.writer import init_index, reindex, write_component

SECRET = "TOPSECRET-git-5f0e\n"
COPY = {"targets": ["*"], "steps": [{"kind": "copy", "from": ".", "to": "share/leak"}]}


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache"), "CKPM_STORE": str(tmp_path / "store"),
            "CKPM_CONFIG": str(tmp_path / "no-config.toml")}


def ckpm(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _leaked(tmp_path: Path) -> list[Path]:
    out = []
    for top in (tmp_path / "cache", tmp_path / "store"):
        for f in top.rglob("*") if top.exists() else ():
            if f.is_file() and not f.is_symlink() and SECRET.encode() in f.read_bytes():
                out.append(f)
    return out


def _index_with_a_git_line(folder: Path, url: str, rev: str) -> Path:
    init_index(folder, "lab")
    write_component(folder, [{"name": "data-leak", "version": "1.0", "kind": "dataset", "tags": ["data"],
                              "targets": ["*"], "deps": [], "source": {"git": url, "rev": rev},
                              "install": [COPY]}])
    reindex(folder)
    return folder


def _project(tmp_path: Path, index_url: str) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text('[project]\nname = "proj"\n\n[dependencies]\ndata-leak = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{index_url}"\n')
    return proj


def test_a_remote_index_may_not_name_a_local_repository(tmp_path: Path, git_repo_factory: Any) -> None:
    """The line of an index that another machine serves (``https://…``; never reached here: the
    check runs before any export) names a local repository: refused, naming the index."""
    import pytest

    from ckpm import api, provision
    from ckpm.fetch.local import LocalFileRefused
    from ckpm.model.lockfile import Lock, LockedPackage
    from ckpm.model.source import IndexSource

    private = git_repo_factory("private", {"v1": {"notes.txt": SECRET}})
    proj = _project(tmp_path, "https://registry.invalid/ckpm/")
    ws = api.Workspace(proj, api.Settings(cache_dir=tmp_path / "cache"))
    from ckpm.model.recipe import parse_fetch_source, parse_recipe

    p = LockedPackage("data-leak", "1.0", "dataset", IndexSource("lab"), ["linux-x86_64"], ["data-leak"],
                      sources=[parse_fetch_source({"git": private.url, "rev": private.tags()["v1"]})],
                      install=[parse_recipe(COPY)])
    lock = Lock(manifest_hash="", targets=["linux-x86_64"], roots=[], packages=[p])
    session = provision.SyncSession(ws, lock, provision.SyncOptions())
    with pytest.raises(LocalFileRefused, match="index lab: data-leak 1.0: source.git names the repository"):
        session.fetch(p, p.sources[0])  # the git tree's fetcher
    assert _leaked(tmp_path) == [] and not (tmp_path / "cache" / "git-export").exists()


def test_an_index_served_from_loopback_is_on_this_machine(tmp_path: Path, git_repo_factory: Any,
                                                         http_index_server: Any) -> None:
    mine = git_repo_factory("mine", {"v1": {"notes.txt": "public\n"}})
    url = http_index_server.serve(_index_with_a_git_line(tmp_path / "served", mine.url, mine.tags()["v1"]))
    proj = _project(tmp_path, url + "/")
    r = ckpm("sync", cwd=proj, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "store").rglob("notes.txt"))


def test_a_local_folder_index_may(tmp_path: Path, git_repo_factory: Any) -> None:
    mine = git_repo_factory("mine", {"v1": {"notes.txt": "public\n"}})
    idx = _index_with_a_git_line(tmp_path / "idx", mine.url, mine.tags()["v1"])
    proj = _project(tmp_path, str(idx))
    r = ckpm("sync", cwd=proj, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "store").rglob("notes.txt"))
