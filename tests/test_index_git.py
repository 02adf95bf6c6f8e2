"""GitIndex against real git repositories made by the ckpm.testing fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

from ckpm.errors import IndexReadError
from ckpm.index import Index, open_index
from ckpm.index.cache import cache_key
from ckpm.index.git import GitIndex
from ckpm.testing import entry


def _versions(idx: Index, name: str) -> list[str]:
    return [e.version_text for e in idx.entries(name)]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_clone_and_read(git_index_factory, cache: Path) -> None:
    gi = git_index_factory({
        "lib-x": [entry("lib-x", "1.0"), entry("lib-x", "1.1", deps=["zlib >=1.2"])],
        "zlib": [entry("zlib", "1.3", tags=["compression"])],
    }, name="lab")
    idx = GitIndex(gi.url, cache_dir=cache)
    assert isinstance(idx, Index)
    assert _versions(idx, "lib-x") == ["1.0", "1.1"]
    assert idx.entries("lib-x")[1].deps[0].key == "zlib"
    assert idx.entries("LIB-X") is idx.entries("lib-x")  # memoised, case-insensitive
    assert idx.entries("nope") == []
    assert idx.entries("Not A Name!") == []
    assert idx.name == "lab"
    assert idx.revision() == gi.git.head()
    clone = cache / "index-git" / cache_key(gi.url)
    assert (clone / "HEAD").is_file()
    assert not (clone / "config.json").exists()  # bare: no checkout
    # no temp dirs left (the entry's lock file stays, as lock files do)
    assert [p.name for p in (cache / "index-git").iterdir() if not p.name.endswith(".lock")] == [clone.name]


def test_open_index_dispatches_to_git(git_index_factory, cache: Path) -> None:
    gi = git_index_factory({"abc": [entry("abc", "0.1")]})
    idx = open_index(gi.url, name="mine", cache_dir=cache)
    assert isinstance(idx, GitIndex)
    assert idx.name == "mine"
    assert _versions(idx, "abc") == ["0.1"]


def test_new_commit_visible_only_after_update(git_index_factory, cache: Path) -> None:
    gi = git_index_factory({"lib-x": [entry("lib-x", "1.0")]})
    first = GitIndex(gi.url, cache_dir=cache)
    assert _versions(first, "lib-x") == ["1.0"]
    old_rev = first.revision()

    new_commit = gi.publish(entry("lib-x", "2.0"))
    # a new instance on the cached clone does not fetch on open
    second = GitIndex(gi.url, cache_dir=cache)
    assert _versions(second, "lib-x") == ["1.0"]
    assert second.revision() == old_rev

    rev = second.update()
    assert rev == new_commit != old_rev
    assert second.revision() == new_commit
    assert _versions(second, "lib-x") == ["1.0", "2.0"]
    # the fetched state is on disk: a third instance sees it without fetching
    assert _versions(GitIndex(gi.url, cache_dir=cache), "lib-x") == ["1.0", "2.0"]


def test_update_before_first_read_clones(git_index_factory, cache: Path) -> None:
    gi = git_index_factory({"lib-x": [entry("lib-x", "1.0")]})
    idx = GitIndex(gi.url, cache_dir=cache)
    assert idx.update() == gi.git.head()
    assert _versions(idx, "lib-x") == ["1.0"]


def test_summaries_from_summary_file_and_from_tree(git_index_factory, cache: Path) -> None:
    comps = {
        "a": [entry("a", "1.0", tags=["x"])],
        "lib-x": [entry("lib-x", "1.0"), entry("lib-x", "1.1", tags=["jpeg"])],
        "zzz": [entry("zzz", "3", kind="tool")],
    }
    with_summary = GitIndex(git_index_factory(comps).url, cache_dir=cache)
    without = GitIndex(git_index_factory(comps, summary=False).url, cache_dir=cache)
    for idx in (with_summary, without):
        got = {s.name: (s.kind, sorted(s.tags), s.versions) for s in idx.summaries()}
        assert got == {
            "a": ("lib", ["x"], ("1.0",)),
            "lib-x": ("lib", ["jpeg"], ("1.0", "1.1")),
            "zzz": ("tool", [], ("3",)),
        }
    assert without.all_names() == ["a", "lib-x", "zzz"]


def test_offline(git_index_factory, cache: Path) -> None:
    gi = git_index_factory({"lib-x": [entry("lib-x", "1.0")]})
    with pytest.raises(IndexReadError) as ei:
        GitIndex(gi.url, cache_dir=cache, offline=True).entries("lib-x")
    assert "offline" in ei.value.message and gi.url in ei.value.message
    assert not (cache / "index-git").exists() or not any((cache / "index-git").iterdir())

    GitIndex(gi.url, cache_dir=cache).entries("lib-x")  # fill the cache
    gi.publish(entry("lib-x", "2.0"))
    offline = GitIndex(gi.url, cache_dir=cache, offline=True)
    assert _versions(offline, "lib-x") == ["1.0"]
    with pytest.raises(IndexReadError, match="offline"):
        offline.update()


def test_bad_url_is_a_clear_error(tmp_path: Path, cache: Path) -> None:
    url = f"git+file://{tmp_path}/no-such-repo.git"
    with pytest.raises(IndexReadError) as ei:
        GitIndex(url, cache_dir=cache).entries("x")
    msg = ei.value.message
    assert "cannot clone index" in msg and f"{tmp_path}/no-such-repo.git" in msg
    assert ei.value.hint
    assert not any(p for p in (cache / "index-git").iterdir() if not p.name.endswith(".lock"))  # nothing half-cloned left


def test_repo_without_config_is_not_an_index(git_repo_factory, cache: Path) -> None:
    repo = git_repo_factory("plain", {"v1": {"README": "hello"}})
    with pytest.raises(IndexReadError, match="not an index"):
        GitIndex("git+" + repo.url, cache_dir=cache).entries("lib-x")


def test_fetch_failure_names_url(git_index_factory, cache: Path) -> None:
    gi = git_index_factory({"lib-x": [entry("lib-x", "1.0")]})
    idx = GitIndex(gi.url, cache_dir=cache)
    idx.entries("lib-x")
    import shutil

    shutil.rmtree(gi.git.path)
    with pytest.raises(IndexReadError, match="cannot fetch index"):
        idx.update()
    assert _versions(GitIndex(gi.url, cache_dir=cache), "lib-x") == ["1.0"]  # cache intact
