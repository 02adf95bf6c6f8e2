"""Writing a git index: publish_line, set_yanked, read_line (ckpm/index/gitwriter.py).

Real bare repositories made in tmp_path; the pushed path pushes over file:// with pygit2.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pygit2
import pytest

from ckpm.errors import IndexReadError
from ckpm.index.git import GitIndex
from ckpm.index.layout import SUMMARY, entry_path
from ckpm.index.gitwriter import AlreadyPublished, NotPublished, publish_line, read_line, set_yanked
from ckpm.model.entry import IndexDataError
from ckpm.settings import Settings

pytest_plugins = ["ckpm.testing"]


def line(name: str, version: str, **more: object) -> dict[str, object]:
    return {"name": name, "version": version, "kind": "lib", "description": f"{name} library", **more}


def history(gitdir: Path) -> list[str]:
    repo = pygit2.Repository(str(gitdir))
    return [c.message.strip() for c in repo.walk(repo.head.target)]


def blob(gitdir: Path, rel: str) -> str | None:
    repo = pygit2.Repository(str(gitdir))
    try:
        return bytes(repo[repo.head.peel(pygit2.Commit).tree[rel].id].data).decode()
    except KeyError:
        return None


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", env={})


@pytest.fixture
def index(git_index_factory):  # type: ignore[no-untyped-def]
    return git_index_factory({"lib-base": [line("lib-base", "1.0.0")]})


def test_publish_appends_a_line_and_keeps_the_summary(index, settings: Settings, tmp_path: Path) -> None:
    gitdir = index.git.path
    before = history(gitdir)
    change = publish_line(index.url, line("lib-foo", "1.2.0", deps=[{"name": "lib-base", "req": ">=1"}]),
                          settings=settings)
    assert change.attempts == 1 and change.name == "lib-foo" and change.version == "1.2.0"
    assert history(gitdir) == ["Publish lib-foo 1.2.0", *before]
    assert str(pygit2.Repository(str(gitdir)).head.target) == change.commit
    text = blob(gitdir, entry_path("lib-foo"))
    assert text is not None and json.loads(text.strip())["version"] == "1.2.0"
    summary = [json.loads(x) for x in (blob(gitdir, SUMMARY) or "").splitlines()]
    assert {s["name"] for s in summary} == {"lib-base", "lib-foo"}
    # a second version appends: the first line stays byte for byte
    publish_line(str(gitdir), line("lib-foo", "1.3.0"), settings=settings)
    text2 = blob(gitdir, entry_path("lib-foo")) or ""
    assert text2.startswith(text) and len(text2.splitlines()) == 2
    # readers see it: a fresh GitIndex client clones the repository and finds both versions
    gi = GitIndex(index.url, cache_dir=tmp_path / "reader-cache")
    assert [str(e.version) for e in gi.entries("lib-foo")] == ["1.2.0", "1.3.0"]
    assert read_line(index.url, "lib-foo", "1.3.0", settings=settings)["version"] == "1.3.0"  # type: ignore[index]
    assert read_line(index.url, "lib-foo", "9.9", settings=settings) is None


def test_the_same_version_twice_is_refused_and_changes_nothing(index, settings: Settings) -> None:
    publish_line(index.url, line("lib-foo", "1.0.0", source={"git": "file:///x", "commit": "a" * 40}),
                 settings=settings)
    before = history(index.git.path)
    with pytest.raises(AlreadyPublished) as e:
        publish_line(index.url, line("lib-foo", "1.0", source={"git": "file:///x", "commit": "b" * 40}),
                     settings=settings)  # 1.0 == 1.0.0
    assert e.value.code == "already-published"
    assert e.value.existing["source"]["commit"] == "a" * 40
    assert history(index.git.path) == before


@pytest.mark.parametrize("bad", [
    {"name": "Bad Name!", "version": "1.0"},
    {"name": "lib-foo", "version": "not a version"},
    {"name": "lib-foo", "version": "1.0", "deps": "lib-base"},
    {"name": "lib-foo", "version": "1.0", "description": "x" * 100_000},
])
def test_a_line_readers_would_refuse_writes_nothing(index, settings: Settings, bad: dict[str, object]) -> None:
    before = history(index.git.path)
    with pytest.raises(IndexDataError):
        publish_line(index.url, bad, settings=settings)
    assert history(index.git.path) == before


def test_what_is_not_a_bare_index_is_refused(tmp_path: Path, git_repo_factory, settings: Settings) -> None:
    work = git_repo_factory("work", bare=False)
    work.commit({"config.json": '{"format": 1, "name": "x", "api": null}\n'})
    with pytest.raises(IndexReadError, match="working tree") as e:
        publish_line(str(work.path), line("lib-foo", "1.0"), settings=settings)
    assert "bare" in (e.value.hint or "")
    with pytest.raises(IndexReadError, match="no git repository"):
        publish_line(str(tmp_path / "nowhere"), line("lib-foo", "1.0"), settings=settings)
    notindex = git_repo_factory("plain", bare=True)
    notindex.commit({"README": "hello\n"})
    with pytest.raises(IndexReadError, match="not a ckpm index"):
        publish_line(notindex.url, line("lib-foo", "1.0"), settings=settings)
    assert history(notindex.path) == ["commit"]


def test_yank_rewrites_only_the_yanked_field(index, settings: Settings) -> None:
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        publish_line(index.url, line("lib-foo", v), settings=settings)
    rel = entry_path("lib-foo")
    before = (blob(index.git.path, rel) or "").splitlines()
    change = set_yanked(index.url, "lib-foo", "1.1.0", True, settings=settings)
    assert change.changed and change.yanked is True
    after = (blob(index.git.path, rel) or "").splitlines()
    assert after[0] == before[0] and after[2] == before[2]
    old, new = json.loads(before[1]), json.loads(after[1])
    assert new.pop("yanked") is True and old == new
    assert history(index.git.path)[0] == "Yank lib-foo 1.1.0"
    # yanking again changes nothing and commits nothing
    n = len(history(index.git.path))
    again = set_yanked(index.url, "lib-foo", "1.1.0", True, settings=settings)
    assert not again.changed and len(history(index.git.path)) == n
    set_yanked(index.url, "lib-foo", "1.1.0", False, settings=settings)
    assert json.loads((blob(index.git.path, rel) or "").splitlines()[1])["yanked"] is False
    assert history(index.git.path)[0] == "Unyank lib-foo 1.1.0"
    with pytest.raises(NotPublished):
        set_yanked(index.url, "lib-foo", "7.0", True, settings=settings)
    with pytest.raises(NotPublished):
        set_yanked(index.url, "lib-nothing", "1.0", True, settings=settings)


def test_a_rejected_push_is_fetched_reapplied_and_retried(index, settings: Settings) -> None:
    """Publishing through a clone (as to a remote): someone else lands a commit between our
    commit and our push; the push is rejected, we fetch, re-apply and push again."""
    raced = []

    def someone_else() -> None:
        if not raced:
            raced.append(publish_line(index.url, line("lib-other", "2.0"), settings=settings, direct=True))

    change = publish_line(index.url, line("lib-foo", "1.0"), settings=settings, direct=False,
                          before_push=someone_else)
    assert change.attempts == 2
    log = history(index.git.path)
    assert log[:2] == ["Publish lib-foo 1.0", "Publish lib-other 2.0"]
    summary = {json.loads(x)["name"] for x in (blob(index.git.path, SUMMARY) or "").splitlines()}
    assert summary == {"lib-base", "lib-foo", "lib-other"}
    # the same version again through the clone: refused after the fetch, nothing pushed
    with pytest.raises(AlreadyPublished):
        publish_line(index.url, line("lib-other", "2.0"), settings=settings, direct=False)
    # yank through the clone too
    assert set_yanked(index.url, "lib-other", "2.0", True, settings=settings, direct=False).changed
    assert json.loads(blob(index.git.path, entry_path("lib-other")) or "{}")["yanked"] is True


def test_pushes_that_keep_losing_give_up_with_a_clear_error(index, settings: Settings) -> None:
    n = iter(range(100))

    def always_someone_else() -> None:
        publish_line(index.url, line("lib-other", f"1.{next(n)}"), settings=settings, direct=True)

    with pytest.raises(IndexReadError, match="rejected 3 times"):
        publish_line(index.url, line("lib-foo", "1.0"), settings=settings, direct=False, max_attempts=3,
                     before_push=always_someone_else)
    assert read_line(index.url, "lib-foo", "1.0", settings=settings) is None


def test_concurrent_processes_all_land(index, tmp_path: Path) -> None:
    """Eight processes publish at once, four directly and four through their own clones."""
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from ckpm.index.gitwriter import publish_line
        from ckpm.settings import Settings
        url, name, direct, cache = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
        line = {"name": name, "version": "1.0", "kind": "lib"}
        publish_line(url, line, settings=Settings(cache_dir=Path(cache), env={}), direct=direct, max_attempts=50)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, index.url, f"lib-p{i}", str(i % 2),
                               str(tmp_path / f"cache{i}")], stderr=subprocess.PIPE)
             for i in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    log = history(index.git.path)
    assert sorted(m for m in log if m.startswith("Publish")) == sorted(f"Publish lib-p{i} 1.0" for i in range(8))
    summary = {json.loads(x)["name"] for x in (blob(index.git.path, SUMMARY) or "").splitlines()}
    assert summary == {"lib-base", *(f"lib-p{i}" for i in range(8))}


def test_an_index_without_summary_gets_none(git_index_factory, settings: Settings) -> None:
    idx = git_index_factory({"lib-base": [line("lib-base", "1.0.0")]}, summary=False)
    publish_line(idx.url, line("lib-foo", "1.0"), settings=settings)
    assert blob(idx.git.path, SUMMARY) is None
    assert blob(idx.git.path, entry_path("lib-foo")) is not None


def test_an_oversized_file_in_the_index_is_an_error_not_a_crash(index, settings: Settings) -> None:
    index.git.commit({**{p.relative_to(index.folder).as_posix(): p.read_bytes()
                         for p in index.folder.rglob("*") if p.is_file()},
                      entry_path("lib-huge"): b"{}\n" * (3 << 20)}, "huge")
    with pytest.raises(IndexReadError, match="bytes"):
        publish_line(index.url, line("lib-huge", "1.0"), settings=settings)
