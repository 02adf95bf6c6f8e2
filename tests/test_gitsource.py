"""GitComponentSource: versions from the tags of real git repositories."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pygit2
import pytest

from ckpm.errors import GitSourceError, ManifestError
from ckpm.index.cache import cache_key
from ckpm.index.gitsource import GitComponentSource, TaggedVersion, tag_version, tree_cksum
from ckpm.testing import component_toml


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _tree_of(repo_path: Path, commit: str, subdir: str | None = None) -> str:
    tree = pygit2.Repository(str(repo_path))[commit].peel(pygit2.Commit).tree
    return str((tree[subdir] if subdir else tree).id)


@pytest.fixture
def mytool(git_repo_factory):
    repo = git_repo_factory("mytool", {
        "v1.2.0": component_toml("mytool", "1.2.0", kind="tool", tags=["cli"], deps={"zlib": ">=1.2"}),
        "1.3.0": component_toml("mytool", "1.3.0", kind="tool", tags=["cli"],
                                deps={"zlib": ">=1.3", "cc": {"tags": "compiler,lang-c", "kind": "build"}}),
    }, annotated=["v1.2.0"])
    repo.add_tag("latest")
    repo.add_tag("release-candidate", annotated=True)
    return repo


def test_tag_version() -> None:
    assert str(tag_version("v1.2.0")) == "1.2.0"
    assert str(tag_version("1.3.0")) == "1.3.0"
    assert tag_version("latest") is None
    assert tag_version("release-candidate") is None


def test_versions_from_tags(mytool, cache: Path) -> None:
    assert mytool.is_annotated("v1.2.0") and not mytool.is_annotated("1.3.0")
    src = GitComponentSource(mytool.url, cache_dir=cache)
    vs = src.versions()
    tags = mytool.tags()
    assert [(tv.tag, tv.version.text, tv.commit) for tv in vs] == [
        ("v1.2.0", "1.2.0", tags["v1.2.0"]),
        ("1.3.0", "1.3.0", tags["1.3.0"]),
    ]
    assert all(isinstance(tv, TaggedVersion) and len(tv.commit) == 40 for tv in vs)
    assert src.reporter.warnings == []
    assert src.find("1.2") == vs[0] and src.find("v1.3.0") == vs[1] and src.find("9") is None
    assert (cache / "git" / cache_key(mytool.url) / "HEAD").is_file()


def test_entry_at_reads_the_manifest(mytool, cache: Path) -> None:
    src = GitComponentSource(mytool.url, cache_dir=cache)
    old, new = src.versions()
    e = src.entry_at(new)
    assert (e.name, e.version_text, e.kind, e.tags) == ("mytool", "1.3.0", "tool", ("cli",))
    assert {d.key: d.spec.text for d in e.deps} == {"zlib": ">=1.3", "cc": "*"}
    assert [d for d in e.deps if d.key == "cc"][0].kind == "build"
    assert dict(e.source) == {"git": mytool.url, "rev": new.commit, "tag": "1.3.0"}
    tree = _tree_of(mytool.path, new.commit)
    assert e.cksum == "sha256:" + hashlib.sha256(f"git-tree:{tree}".encode()).hexdigest() == tree_cksum(tree)
    assert src.entry_at(old).version_text == "1.2.0"
    assert src.entry_at(old).source["tag"] == "v1.2.0"
    assert [x.version_text for x in src.entries()] == ["1.2.0", "1.3.0"]
    assert src.reporter.warnings == []


def test_git_plus_url_is_accepted(mytool, cache: Path) -> None:
    src = GitComponentSource("git+" + mytool.url, cache_dir=cache)
    assert src.url == mytool.url
    assert src.entry_at(src.versions()[0]).source["git"] == mytool.url


def test_tag_without_manifest_is_skipped(git_repo_factory, cache: Path) -> None:
    repo = git_repo_factory("half", {
        "v0.1.0": {"README.md": "no manifest yet"},
        "v0.2.0": component_toml("half", "0.2.0"),
    })
    src = GitComponentSource(repo.url, cache_dir=cache)
    assert [tv.tag for tv in src.versions()] == ["v0.2.0"]
    assert len(src.reporter.warnings) == 1 and "v0.1.0" in src.reporter.warnings[0] and "ckpm.toml" in src.reporter.warnings[0]


def test_tag_wins_over_manifest_version(git_repo_factory, cache: Path) -> None:
    repo = git_repo_factory("drift", {"v2.0.0": component_toml("drift", "1.9.0"),
                                      "v2.1.0": component_toml("drift")})  # no version in the manifest
    src = GitComponentSource(repo.url, cache_dir=cache)
    a, b = (src.entry_at(tv) for tv in src.versions())
    assert (a.version_text, b.version_text) == ("2.0.0", "2.1.0")
    assert len(src.reporter.warnings) == 1
    assert "v2.0.0" in src.reporter.warnings[0] and "1.9.0" in src.reporter.warnings[0] and "tag wins" in src.reporter.warnings[0]


def test_invalid_manifest_at_one_tag(git_repo_factory, cache: Path) -> None:
    repo = git_repo_factory("broken", {"v1.0.0": "[component\nname = ", "v1.1.0": component_toml("broken", "1.1.0")})
    src = GitComponentSource(repo.url, cache_dir=cache)
    v1, v11 = src.versions()
    with pytest.raises(ManifestError) as ei:
        src.entry_at(v1)
    assert "v1.0.0" in ei.value.message and "invalid TOML" in ei.value.message
    assert [e.version_text for e in src.entries()] == ["1.1.0"]
    assert any("v1.0.0 skipped" in w for w in src.reporter.warnings)


def test_moved_tag_is_seen_after_refresh(mytool, cache: Path) -> None:
    src = GitComponentSource(mytool.url, cache_dir=cache)
    locked = src.commit_of("1.3.0")
    assert locked == mytool.tags()["1.3.0"]
    assert src.entry_at(src.versions()[1]).description == ""

    moved_to = mytool.move_tag("1.3.0", component_toml("mytool", "1.3.0", kind="tool", description="re-released",
                                                       deps={"zlib": ">=1.3.1"}))
    assert src.commit_of("1.3.0") == locked  # fetched once per process: not yet seen
    src.refresh()
    assert src.commit_of("1.3.0") == moved_to != locked
    tv = src.versions()[1]
    assert tv.commit == moved_to
    e = src.entry_at(tv)  # the manifest cache is keyed by commit, so this is the new manifest
    assert e.description == "re-released"
    assert {d.key: d.spec.text for d in e.deps} == {"zlib": ">=1.3.1"}
    assert e.source["rev"] == moved_to
    assert src.commit_of("no-such-tag") is None


def test_moved_annotated_tag_and_deleted_tag(mytool, cache: Path) -> None:
    src = GitComponentSource(mytool.url, cache_dir=cache)
    before = src.commit_of("v1.2.0")
    moved_to = mytool.move_tag("v1.2.0", component_toml("mytool", "1.2.0", description="fixed"), on_branch=False)
    assert mytool.is_annotated("v1.2.0")
    mytool.delete_tag("1.3.0")
    src.refresh()
    assert src.commit_of("v1.2.0") == moved_to != before
    assert src.commit_of("1.3.0") is None
    assert [(tv.tag, tv.commit) for tv in src.versions()] == [("v1.2.0", moved_to)]
    assert src.entry_at(src.versions()[0]).description == "fixed"


def test_first_use_sees_tags_off_the_branch(git_repo_factory, cache: Path) -> None:
    repo = git_repo_factory("side", {"v1.0.0": component_toml("side", "1.0.0")})
    side = repo.commit(component_toml("side", "1.1.0"), "hotfix", on_branch=False)
    repo.tag("v1.1.0", side)
    src = GitComponentSource(repo.url, cache_dir=cache)
    assert [(tv.tag, tv.commit) for tv in src.versions()] == [("v1.0.0", repo.head()), ("v1.1.0", side)]


def test_manifest_cache_is_keyed_by_commit_and_reused(mytool, cache: Path) -> None:
    first = GitComponentSource(mytool.url, cache_dir=cache)
    tv = first.versions()[0]
    first.entry_at(tv)
    meta = cache / "git-meta" / f"{tv.commit}.json"
    data = json.loads(meta.read_text())
    assert data["commit"] == tv.commit and data["manifest"]["name"] == "mytool"
    assert data["tree"] == _tree_of(mytool.path, tv.commit)

    # prove a second instance reads the cache file rather than the blob
    data["manifest"]["description"] = "from the cache"
    meta.write_text(json.dumps(data))
    shutil.rmtree(mytool.path)  # and that it needs neither the network nor the origin
    again = GitComponentSource(mytool.url, cache_dir=cache, offline=True)
    assert again.versions() == first.versions()
    assert again.entry_at(again.versions()[0]).description == "from the cache"
    with pytest.raises(GitSourceError, match="offline"):
        again.refresh()


def test_subdir(git_repo_factory, cache: Path) -> None:
    repo = git_repo_factory("mono", {
        "v0.1.0": {"tools/a/ckpm.toml": component_toml("tool-a", "0.1.0"), "README": "x"},
        "v0.2.0": {"tools/a/ckpm.toml": component_toml("tool-a", "0.2.0"), "ckpm.toml": component_toml("root", "9")},
    })
    src = GitComponentSource(repo.url, subdir="/tools/a/", cache_dir=cache)
    assert src.subdir == "tools/a" and src.manifest_path == "tools/a/ckpm.toml"
    entries = src.entries()
    assert [(e.name, e.version_text) for e in entries] == [("tool-a", "0.1.0"), ("tool-a", "0.2.0")]
    tv = src.versions()[0]
    assert dict(entries[0].source) == {"git": repo.url, "rev": tv.commit, "tag": "v0.1.0", "subdir": "tools/a"}
    assert entries[0].cksum == tree_cksum(_tree_of(repo.path, tv.commit, "tools/a"))
    # the root manifest of the same commit is cached separately
    root = GitComponentSource(repo.url, cache_dir=cache)
    assert [(e.name, e.version_text) for e in root.entries()] == [("root", "0.2.0")]
    assert len(list((cache / "git-meta").iterdir())) == 3
    with pytest.raises(GitSourceError, match="relative path"):
        GitComponentSource(repo.url, subdir="../elsewhere", cache_dir=cache)


def test_non_bare_repository(git_repo_factory, cache: Path) -> None:
    repo = git_repo_factory("work", {"v3.0": component_toml("work", "3.0")}, bare=False)
    assert (repo.path / "ckpm.toml").is_file()  # a working tree
    src = GitComponentSource(repo.url, cache_dir=cache)
    assert [e.version_text for e in src.entries()] == ["3.0"]


def test_bad_url_is_a_clear_error(tmp_path: Path, cache: Path) -> None:
    url = (tmp_path / "missing.git").as_uri()
    src = GitComponentSource(url, cache_dir=cache)
    with pytest.raises(GitSourceError) as ei:
        src.versions()
    assert ei.value.message.startswith(f"cannot clone {url}: ")
    assert "file:///" in (ei.value.hint or "")
    assert not (cache / "git" / cache_key(url)).exists()


def test_offline_without_mirror(mytool, cache: Path) -> None:
    with pytest.raises(GitSourceError, match="not in the cache") as ei:
        GitComponentSource(mytool.url, cache_dir=cache, offline=True).versions()
    assert mytool.url in ei.value.message


def test_fetch_failure_with_mirror_warns(mytool, cache: Path) -> None:
    src = GitComponentSource(mytool.url, cache_dir=cache)
    n = len(src.versions())
    shutil.rmtree(mytool.path)
    src.refresh()
    assert len(src.versions()) == n
    assert len(src.reporter.warnings) == 1 and "cannot fetch" in src.reporter.warnings[0] and mytool.url in src.reporter.warnings[0]
