"""`ckpm publish` / `ckpm yank` to a git index, and a moved tag refused by publish, lock and sync.

Everything is real: a component's working repository with its own bare `origin` (pushed to
with pygit2), a bare git index made by the fixtures, consumer projects locked and synced
against it, `ckpm` run as a process for the command line.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import pytest

from ckpm import api
from ckpm.errors import ManifestError, StaleLock, TagMoved
from ckpm.index.archive import directory_cksum, tree_cksum_of
from ckpm.index.layout import entry_path
from ckpm.index.gitwriter import AlreadyPublished, NotPublished, publish_line
from ckpm.model.lockfile import read_lock
from ckpm.provision import SyncOptions
from ckpm.publishing import PublishError, prepare_release, publish, yank
from ckpm.settings import Settings
from ckpm.testing import GitRepo, GitRepoFactory, component_toml, entry

pytest_plugins = ["ckpm.testing"]

RECIPE = '\n[[install]]\nsteps = [{ kind = "copy", from = "data", to = "share/mylib" }]\n'


@dataclass
class Component:
    """A component's working repository and the bare `origin` users fetch it from."""

    work: GitRepo
    origin: GitRepo

    def release(self, tag: str, files: dict[str, str], *, push: bool = True) -> str:
        commit = self.work.commit(files, f"release {tag}")
        self.work.tag(tag, commit, force=True)
        if push:
            self.push(tag)
        return commit

    def push(self, *tags: str) -> None:
        repo = self.work.repo
        specs = ["+refs/heads/main:refs/heads/main"] + [f"+refs/tags/{t}:refs/tags/{t}" for t in tags]
        repo.remotes["origin"].push(specs)


def files(version: str | None, *, deps: dict[str, Any] | None = None, data: str = "v1", kind: str = "lib",
          extra: str = "") -> dict[str, str]:
    return {"ckpm.toml": component_toml("mylib", version, kind=kind, description="my library", deps=deps) + extra,
            "data/readme.txt": data + "\n", "run.sh": "#!/bin/sh\necho hi\n"}


@pytest.fixture
def comp(git_repo_factory: GitRepoFactory) -> Component:
    origin = git_repo_factory("mylib-origin", bare=True)
    work = git_repo_factory("mylib", bare=False)
    work.repo.remotes.create("origin", origin.url)
    return Component(work, origin)


@pytest.fixture
def index(git_index_factory: Any) -> Any:
    return git_index_factory({"lib-base": [entry("lib-base", "1.0.0")]})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", env={"HOME": str(tmp_path / "home")},
                    config_path=tmp_path / "config.toml", store_dir=tmp_path / "store")


def index_lines(index: Any, name: str) -> list[dict[str, Any]]:
    repo = pygit2.Repository(str(index.git.path))
    try:
        blob = repo[repo.head.peel(pygit2.Commit).tree[entry_path(name)].id]
    except KeyError:
        return []
    return [json.loads(x) for x in bytes(blob.data).decode().splitlines() if x.strip()]


def history(index: Any) -> list[str]:
    repo = pygit2.Repository(str(index.git.path))
    return [c.message.splitlines()[0] for c in repo.walk(repo.head.target)]


def consumer(tmp_path: Path, index: Any, req: str = ">=1", name: str = "app") -> Path:
    proj = tmp_path / name
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "{name}"\n\n[dependencies]\nmylib = "{req}"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{index.url}"\n')
    return proj


def ckpm(*args: str, cwd: Path, tmp_path: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cli-cache"), "CKPM_STORE": str(tmp_path / "cli-store"),
           "CKPM_CONFIG": str(tmp_path / "cli-config.toml"), **(extra_env or {})}
    env.pop("CKPM_INDEX", None)
    env.pop("CKPM_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


# -- the happy path ---------------------------------------------------------------------------


def test_publish_appends_the_tagged_version_with_source_cksum_and_pubtime(comp: Component, index: Any,
                                                                          settings: Settings) -> None:
    commit = comp.release("v1.0.0", files("1.0.0", deps={"lib-base": ">=1"}))
    before = history(index)
    res = publish(comp.work.path, index=index.url, settings=settings)
    assert res.commit is not None and res.attempts == 1 and not res.dry_run
    assert history(index) == ["Publish mylib 1.0.0", *before]
    (line,) = index_lines(index, "mylib")
    assert line["version"] == "1.0.0" and line["yanked"] is False and line["kind"] == "lib"
    assert line["source"] == {"git": comp.origin.url, "tag": "v1.0.0", "rev": commit}
    assert line["deps"] == [{"name": "lib-base", "req": ">=1"}]
    assert line["pubtime"].endswith("Z") and line["pubtime"][:4].isdigit()
    assert line["cksum"] == tree_cksum_of(comp.work.repo, commit)
    # anyone can recompute the cksum from the working tree (or an export) of the commit
    assert line["cksum"] == directory_cksum(comp.work.path)


def test_the_cksum_is_recomputed_from_git_archive_with_the_documented_recipe(comp: Component, index: Any,
                                                                             settings: Settings, tmp_path: Path) -> None:
    """docs/formats.md's few lines of Python over `git archive | tar -x` (the git CLI, not ckpm)."""
    commit = comp.release("v1.0.0", {**files("1.0.0"), "sub/é.txt": "accent\n", "a" * 60 + "/" + "b" * 60: "long\n"})
    os.chmod(comp.work.path / "run.sh", 0o755)  # git's CLI records the bit: add it to the commit
    subprocess.run(["git", "-C", str(comp.work.path), "update-index", "--chmod=+x", "run.sh"], check=True)
    subprocess.run(["git", "-C", str(comp.work.path), "-c", "user.name=t", "-c", "user.email=t@x.invalid",
                    "commit", "-qm", "exec"], check=True)
    commit = str(comp.work.repo.head.target)
    comp.work.tag("v1.0.0", commit, force=True)
    comp.push("v1.0.0")
    publish(comp.work.path, index=index.url, settings=settings)
    (line,) = index_lines(index, "mylib")
    out = tmp_path / "export"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(comp.origin.path), "archive", "--format=tar", commit],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)

    # --- the recipe of docs/formats.md, verbatim ---
    import hashlib
    import os as os_
    import stat

    def ckpm_cksum(root: str) -> str:
        members = []
        for d, dirs, names in os_.walk(root):
            for n in dirs + names:
                p = os_.path.join(d, n)
                rel = os_.path.relpath(p, root).replace(os_.sep, "/")
                st = os_.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    members.append((rel, tarfile.SYMTYPE, 0o777, os_.readlink(p).encode()))
                elif stat.S_ISREG(st.st_mode):
                    mode = 0o755 if st.st_mode & 0o111 else 0o644
                    members.append((rel, tarfile.REGTYPE, mode, open(p, "rb").read()))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
            for rel, kind, mode, data in sorted(members, key=lambda m: m[0].encode()):
                ti = tarfile.TarInfo(rel)
                ti.type, ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = kind, mode, 0, 0, 0, "", ""
                if kind == tarfile.SYMTYPE:
                    ti.linkname = data.decode()
                    tf.addfile(ti)
                else:
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
        return "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()
    # --- end of the recipe ---

    assert ckpm_cksum(str(out)) == line["cksum"]
    assert (out / "run.sh").stat().st_mode & 0o111


def test_dry_run_checks_everything_and_writes_nothing(comp: Component, index: Any, settings: Settings) -> None:
    comp.release("v1.0.0", files("1.0.0"))
    before = history(index)
    res = publish(comp.work.path, index=index.url, settings=settings, dry_run=True)
    assert res.dry_run and res.release.line["version"] == "1.0.0" and res.commit is None
    assert history(index) == before and index_lines(index, "mylib") == []


def test_a_component_in_a_subfolder_records_its_subdir(git_repo_factory: GitRepoFactory, index: Any,
                                                       settings: Settings) -> None:
    origin = git_repo_factory("mono-origin", bare=True)
    work = git_repo_factory("mono", bare=False)
    work.repo.remotes.create("origin", origin.url)
    c = Component(work, origin)
    commit = c.release("v0.2.0", {"README": "mono\n", **{f"tools/mylib/{k}": v for k, v in files("0.2.0").items()}})
    publish(work.path / "tools" / "mylib", index=str(index.git.path), settings=settings)
    (line,) = index_lines(index, "mylib")
    assert line["source"] == {"git": origin.url, "tag": "v0.2.0", "rev": commit, "subdir": "tools/mylib"}
    assert line["cksum"] == directory_cksum(work.path / "tools" / "mylib")


# -- refused before anything is written --------------------------------------------------------


def test_each_check_refuses_and_writes_nothing(comp: Component, index: Any, settings: Settings) -> None:
    before = history(index)
    # no manifest; then no commit; then no tag
    with pytest.raises(PublishError, match="has no ckpm.toml"):
        publish(comp.work.path, index=index.url, settings=settings)
    (comp.work.path / "ckpm.toml").write_text(files("1.0.0")["ckpm.toml"])
    with pytest.raises(PublishError, match="no commit yet"):
        publish(comp.work.path, index=index.url, settings=settings)
    comp.work.commit(files("1.0.0"))
    with pytest.raises(PublishError, match="has no version tag"):
        publish(comp.work.path, index=index.url, settings=settings)
    # the manifest says another version than the tag
    comp.release("v1.0.1", files("1.0.0"))
    with pytest.raises(PublishError, match="says version 1.0.0, but the tag is v1.0.1"):
        publish(comp.work.path, index=index.url, settings=settings)
    # an invalid manifest (an unknown kind), named with its tag
    comp.release("v1.0.2", files("1.0.2", kind="gadget"))
    with pytest.raises(ManifestError, match="ckpm.toml at tag v1.0.2.*kind 'gadget'"):
        publish(comp.work.path, index=index.url, settings=settings)
    # a dirty working tree (an untracked file counts)
    comp.release("v1.0.3", files("1.0.3"))
    (comp.work.path / "notes.txt").write_text("draft\n")
    with pytest.raises(PublishError, match="not clean: notes.txt"):
        publish(comp.work.path, index=index.url, settings=settings)
    (comp.work.path / "notes.txt").unlink()
    # the tag is not pushed to origin
    comp.release("v1.0.4", files("1.0.4"), push=False)
    with pytest.raises(PublishError, match="tag v1.0.4 is not at file://") as e:
        publish(comp.work.path, index=index.url, settings=settings)
    assert e.value.hint is not None and "git push origin v1.0.4" in e.value.hint
    # a dependency the index does not have (a git dependency and a host fact need none)
    comp.release("v1.0.5", files("1.0.5", deps={"lib-nope": ">=1", "lib-base": "*",
                                                 "gitdep": {"git": "https://example.org/g.git"}}))
    with pytest.raises(PublishError, match="does not have: lib-nope$"):
        publish(comp.work.path, index=index.url, settings=settings)
    # a capability is there when some component carries its tags
    comp.release("v1.0.6", files("1.0.6", deps={"compiler": {"tags": "compiler"}}))
    with pytest.raises(PublishError, match=r"compiler \(tags compiler\)"):
        publish(comp.work.path, index=index.url, settings=settings)
    assert history(index) == before and index_lines(index, "mylib") == []


def test_recipes_rules_and_programs_that_users_would_refuse_are_refused(comp: Component, index: Any,
                                                                          settings: Settings) -> None:
    bad = ('\n[[install]]\nsteps = [{ kind = "teleport" }]\n'
           '\n[[detect]]\nexecutable = "/bin/sh"\n')
    comp.release("v1.0.0", files("1.0.0", extra=bad))
    with pytest.raises(PublishError, match="would refuse") as e:
        publish(comp.work.path, index=index.url, settings=settings)
    text = " ".join(e.value.details)
    assert "[[install]] 1:" in text and "teleport" in text and "/bin/sh" in text
    good = '\n[[detect]]\nexecutable = "mylib"\n' + RECIPE
    comp.release("v1.0.1", files("1.0.1", extra=good))
    res = publish(comp.work.path, index=index.url, settings=settings)
    assert res.release.line["detect"] == [{"executable": "mylib"}]
    assert index_lines(index, "mylib")[0]["install"][0]["steps"][0]["kind"] == "copy"


def test_a_capability_dependency_is_found_by_its_tags(comp: Component, git_index_factory: Any,
                                                      settings: Settings) -> None:
    idx = git_index_factory({"gcc": [entry("gcc", "13.2.0", tags=["compiler", "lang-c"], kind="compiler")]})
    comp.release("v1.0.0", files("1.0.0", deps={"cc": {"tags": "compiler,lang-c", "version": ">=9"}}))
    res = publish(comp.work.path, index=idx.url, settings=settings)
    assert res.release.line["deps"][0]["tags"] == ["compiler", "lang-c"]


def test_the_same_version_twice_is_refused(comp: Component, index: Any, settings: Settings) -> None:
    comp.release("v1.0.0", files("1.0.0"))
    publish(comp.work.path, index=index.url, settings=settings)
    before = history(index)
    with pytest.raises(AlreadyPublished, match="already published .*same commit"):
        publish(comp.work.path, index=index.url, settings=settings)
    assert history(index) == before


def test_tag_option_publishes_an_older_tag(comp: Component, index: Any, settings: Settings) -> None:
    old = comp.release("v1.0.0", files("1.0.0"))
    comp.release("v1.1.0", files("1.1.0", data="v2"))
    with pytest.raises(PublishError, match="no tag 'v9'"):
        publish(comp.work.path, index=index.url, settings=settings, tag="v9")
    res = publish(comp.work.path, index=index.url, settings=settings, tag="v1.0.0")
    assert res.release.commit == old and [x["version"] for x in index_lines(index, "mylib")] == ["1.0.0"]


# -- a moved tag ---------------------------------------------------------------------------------


def test_a_moved_tag_is_refused_by_publish_naming_both_commits(comp: Component, index: Any,
                                                               settings: Settings) -> None:
    first = comp.release("v1.0.0", files("1.0.0"))
    publish(comp.work.path, index=index.url, settings=settings)
    moved = comp.release("v1.0.0", files("1.0.0", data="changed"))  # re-tagged and force-pushed
    before = history(index)
    with pytest.raises(TagMoved) as e:
        publish(comp.work.path, index=index.url, settings=settings)
    assert first in e.value.message and moved in e.value.message
    assert e.value.code == "tag-moved" and e.value.to_dict()["published_commit"] == first
    assert history(index) == before


def test_a_moved_tag_is_refused_by_lock_check_and_sync(comp: Component, index: Any, settings: Settings,
                                                       tmp_path: Path) -> None:
    first = comp.release("v1.0.0", files("1.0.0", extra=RECIPE))
    publish(comp.work.path, index=index.url, settings=settings)
    proj = consumer(tmp_path, index)
    ws = api.Workspace(proj, settings)
    out = api.lock(ws)
    (p,) = out.lock.find("mylib")
    assert p.version == "1.0.0"
    assert [s["rev"] for s in p.sources] == [first]
    _, res = api.sync(api.Workspace(proj, settings), SyncOptions())
    assert [x.action for x in res.packages] == ["built"]

    moved = comp.release("v1.0.0", files("1.0.0", data="evil", extra=RECIPE))
    # lock --check: a problem naming both commits (exit 3 in the CLI)
    chk = api.check(api.Workspace(proj, settings))
    assert not chk.ok and len(chk.moved) == 1
    assert first in chk.problems[0] and moved in chk.problems[0]
    # the quick "does the lock hold" of other commands does not fetch each published repository:
    # the existing lock stays (it installs the published commit, whatever the tag does now)
    assert not api.lock(api.Workspace(proj, settings)).changed
    # --upgrade-package asks again, and refuses to write the lock that lock --check refuses
    with pytest.raises(TagMoved, match=f"{moved}.*{first}"):
        api.lock(api.Workspace(proj, settings), api.LockOptions(upgrade_packages=["mylib"]))
    # a lock that takes the version anew asks, and refuses it naming both commits
    fresh = consumer(tmp_path, index, name="fresh")
    with pytest.raises(TagMoved, match=f"{moved}.*{first}"):
        api.lock(api.Workspace(fresh, settings))
    # sync --locked checks as lock --check does
    with pytest.raises(TagMoved):
        api.sync(api.Workspace(proj, settings), SyncOptions(), api.LockOptions(locked=True))
    # a sync that has to fetch the published commit (a new machine: empty cache and store) refuses it
    elsewhere = Settings(cache_dir=tmp_path / "cache2", env={"HOME": str(tmp_path / "home")},
                         config_path=tmp_path / "config.toml", store_dir=tmp_path / "store2")
    with pytest.raises(TagMoved, match=f"{moved}.*{first}"):
        api.sync(api.Workspace(proj, elsewhere), SyncOptions())
    # where it was built already, nothing is fetched and the published commit stays installed
    _, res = api.sync(api.Workspace(proj, settings), SyncOptions())
    assert [x.action for x in res.packages] == ["store"]
    # the CLI says so, naming both
    r = ckpm("lock", "--check", cwd=proj, tmp_path=tmp_path)
    assert r.returncode == 3 and first in r.stdout + r.stderr and moved in r.stdout + r.stderr
    # ...and what fixes it (not a plain `ckpm lock`, which keeps the lock as it is); so does sync --locked, exit 3
    assert f"move tag v1.0.0 back to {first[:12]}" in r.stderr and "`ckpm lock --upgrade-package mylib`" in r.stderr
    r = ckpm("sync", "--locked", cwd=proj, tmp_path=tmp_path)
    assert r.returncode == 3 and moved in r.stderr and "`ckpm lock --upgrade-package mylib`" in r.stderr, r.stderr
    r = ckpm("sync", cwd=proj, tmp_path=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "error: mylib 1.0.0: tag v1.0.0" in r.stderr and first in r.stderr and moved in r.stderr
    # moving the tag back makes everything hold again
    comp.work.tag("v1.0.0", first, force=True)
    comp.push("v1.0.0")
    assert api.check(api.Workspace(proj, settings)).ok


# -- yank ---------------------------------------------------------------------------------------


def test_yank_hides_a_version_from_new_resolutions_but_not_from_a_lock(comp: Component, index: Any,
                                                                        settings: Settings, tmp_path: Path) -> None:
    comp.release("v1.0.0", files("1.0.0", extra=RECIPE))
    publish(comp.work.path, index=index.url, settings=settings)
    comp.release("v1.1.0", files("1.1.0", data="v2", extra=RECIPE))
    publish(comp.work.path, index=index.url, settings=settings)
    pinned = consumer(tmp_path, index, req="==1.1.0", name="pinned")
    api.lock(api.Workspace(pinned, settings))

    res = yank("mylib@1.1.0", index=index.url, settings=settings)
    assert res.yanked and res.changed and history(index)[0] == "Yank mylib 1.1.0"
    assert [x["yanked"] for x in index_lines(index, "mylib")] == [False, True]
    again = yank("mylib@1.1.0", index=index.url, settings=settings)
    assert not again.changed and history(index)[0] == "Yank mylib 1.1.0"

    # a new resolution skips it
    fresh = consumer(tmp_path, index, name="fresh")
    (p,) = api.lock(api.Workspace(fresh, settings)).lock.find("mylib")
    assert p.version == "1.0.0"
    # the existing lock still holds and installs it
    ws = api.Workspace(pinned, settings)
    assert api.check(ws).ok
    _, out = api.sync(ws, SyncOptions(), api.LockOptions(locked=True))
    (pkg,) = out.packages
    assert pkg.action == "built" and (Path(pkg.path) / "share" / "mylib" / "readme.txt").read_text() == "v2\n"
    lk = read_lock(pinned / "ckpm.lock")
    assert lk is not None and lk.find("mylib")[0].version == "1.1.0"

    # unyank: new resolutions take it again
    res = yank("mylib@1.1.0", undo=True, index=index.url, settings=settings)
    assert not res.yanked and history(index)[0] == "Unyank mylib 1.1.0"
    (p,) = api.lock(api.Workspace(consumer(tmp_path, index, name="later"), settings)).lock.find("mylib")
    assert p.version == "1.1.0"


def test_yank_of_an_unknown_version_is_refused(index: Any, settings: Settings) -> None:
    with pytest.raises(NotPublished):
        yank("lib-base@9.9.9", index=index.url, settings=settings)
    from ckpm.errors import UsageError

    with pytest.raises(UsageError, match="NAME@VERSION"):
        yank("lib-base", index=index.url, settings=settings)


# -- a race ---------------------------------------------------------------------------------------


def test_a_publish_that_loses_a_race_is_retried_on_the_new_tip(comp: Component, index: Any,
                                                               settings: Settings) -> None:
    """Someone publishes another component between our commit and our push: both land."""
    comp.release("v1.0.0", files("1.0.0"))
    raced: list[str] = []

    def other_publisher() -> None:
        if not raced:
            raced.append(publish_line(index.url, entry("lib-other", "2.0.0"), settings=settings).commit)

    res = publish(comp.work.path, index=index.url, settings=settings, before_push=other_publisher)
    assert res.attempts == 2 and raced
    assert history(index)[:2] == ["Publish mylib 1.0.0", "Publish lib-other 2.0.0"]
    assert index_lines(index, "lib-other")[0]["version"] == "2.0.0"
    assert index_lines(index, "mylib")[0]["version"] == "1.0.0"


def test_a_rejected_push_is_fetched_reapplied_and_pushed_again(comp: Component, index: Any,
                                                               settings: Settings) -> None:
    """Through a clone and a real push (``direct=False``): the first push is rejected because
    another publisher pushed meanwhile; ours lands on top of theirs."""
    comp.release("v1.0.0", files("1.0.0"))
    other_settings = Settings(cache_dir=settings.cache_root / "other", env={})
    raced: list[str] = []

    def other_publisher() -> None:
        if not raced:
            raced.append(publish_line(index.url, entry("lib-other", "2.0.0"), settings=other_settings,
                                      direct=False).commit)

    res = publish(comp.work.path, index=index.url, settings=settings, before_push=other_publisher, direct=False)
    assert res.attempts == 2 and raced
    assert history(index)[:2] == ["Publish mylib 1.0.0", "Publish lib-other 2.0.0"]
    repo = pygit2.Repository(str(index.git.path))
    assert str(repo.head.target) == res.commit and str(repo[res.commit].parents[0].id) == raced[0]


def test_a_publish_that_loses_a_race_to_the_same_version_says_so(comp: Component, index: Any,
                                                                 settings: Settings) -> None:
    """The other publisher took our version from another commit: a moved tag, both named."""
    first = comp.release("v1.0.0", files("1.0.0"))
    rel = prepare_release(comp.work.path, settings=settings)
    other = dict(rel.line, source={**rel.line["source"], "rev": "f" * 40})

    def other_publisher() -> None:
        publish_line(index.url, other, settings=settings)

    with pytest.raises(TagMoved) as e:
        publish(comp.work.path, index=index.url, settings=settings, before_push=other_publisher)
    assert "f" * 40 in e.value.message and first in e.value.message


# -- the command line -----------------------------------------------------------------------------


def test_cli_publish_dry_run_json_then_publish_then_yank(comp: Component, index: Any, tmp_path: Path) -> None:
    commit = comp.release("v1.0.0", files("1.0.0"))
    r = ckpm("publish", "--index", index.url, "--dry-run", "--json", cwd=comp.work.path, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["data"]
    assert data["dry_run"] and data["commit"] == commit and data["line"]["source"]["rev"] == commit
    assert index_lines(index, "mylib") == []
    r = ckpm("publish", "--index", index.url, cwd=comp.work.path, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "published mylib 1.0.0 (tag v1.0.0" in r.stderr
    r = ckpm("publish", "--index", index.url, "--json", cwd=comp.work.path, tmp_path=tmp_path)
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "already-published"
    r = ckpm("yank", "mylib@1.0.0", "--index", index.url, cwd=tmp_path, tmp_path=tmp_path)
    assert r.returncode == 0 and "mylib 1.0.0 is yanked" in r.stderr
    r = ckpm("yank", "mylib@1.0.0", "--undo", "--index", index.url, "--json", cwd=tmp_path, tmp_path=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["data"]["yanked"] is False
    r = ckpm("publish", cwd=comp.work.path, tmp_path=tmp_path)
    assert r.returncode == 64 and "--index GIT_URL" in r.stderr and "Traceback" not in r.stderr
