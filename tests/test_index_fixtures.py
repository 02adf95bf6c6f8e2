"""The ckpm.testing plugin itself: what component authors get from it."""
from __future__ import annotations

import json
import os

import pygit2
import pytest

from ckpm.index.folder import FolderIndex
from ckpm.index.layout import entry_path
from ckpm.model.entry import IndexDataError
from ckpm.model.manifest import parse_component_manifest
from ckpm.testing import component_toml, entry


def test_entry_builder() -> None:
    e = entry("lib-x", "1.2", deps=["zlib >=1.2,<2", "cc", {"name": "py", "req": "*", "kind": "build"}],
              tags=["jpeg"], yanked=True, pubtime="2024-01-01T00:00:00Z")
    assert e["deps"] == [{"name": "zlib", "req": ">=1.2,<2"}, {"name": "cc", "req": "*"},
                         {"name": "py", "req": "*", "kind": "build"}]
    assert (e["tags"], e["targets"], e["kind"], e["yanked"], e["pubtime"]) == (["jpeg"], ["*"], "lib", True,
                                                                                "2024-01-01T00:00:00Z")
    assert e["cksum"] == "sha256:" + e["source"]["sha256"]
    assert entry("lib-x", "1.2") == entry("lib-x", "1.2", yanked=False)  # deterministic


def test_component_toml_round_trip() -> None:
    text = component_toml("mytool", "0.3.0", kind="tool", tags=["cli", "x"], description="a tool",
                          deps={"zlib": ">=1", "cc": {"tags": "compiler", "kind": "build"}})
    d = parse_component_manifest(text, "mem")
    assert (d["name"], d["version"], d["kind"], d["tags"], d["description"]) == ("mytool", "0.3.0", "tool",
                                                                              ["cli", "x"], "a tool")
    assert {x["name"]: x for x in d["deps"]}["cc"] == {"name": "cc", "req": "*", "tags": ["compiler"], "kind": "build"}


def test_index_factory(index_factory) -> None:
    root = index_factory({"lib-x": [entry("lib-x", "1.0"), entry("lib-x", "1.1")], "a": [entry("a", "2")]}, name="t")
    assert json.loads((root / "config.json").read_text())["name"] == "t"
    assert (root / entry_path("lib-x")).is_file() and (root / "summary.jsonl").is_file()
    index_factory.append(root, entry("a", "3"))
    idx = FolderIndex(root)
    assert [e.version_text for e in idx.entries("a")] == ["2", "3"]
    assert {s.name: s.versions for s in idx.summaries()} == {"lib-x": ("1.0", "1.1"), "a": ("2", "3")}
    assert index_factory() != root  # each call makes a new folder


def test_git_repo_factory(git_repo_factory) -> None:
    repo = git_repo_factory("t", {"v1": "[component]\nname = 't'\n", "v2": {"ckpm.toml": "x", "data/f.bin": b"\0\1"}},
                            annotated=["v2"])
    r = pygit2.Repository(str(repo.path))
    assert r.is_bare and r.head.shorthand == "main"
    tags = repo.tags()
    assert set(tags) == {"v1", "v2"} and tags["v2"] == repo.head()
    assert repo.is_annotated("v2") and not repo.is_annotated("v1")
    assert r[tags["v2"]].peel(pygit2.Commit).parents[0].id == pygit2.Oid(hex=tags["v1"])
    assert r[tags["v2"]].peel(pygit2.Commit).tree["data/f.bin"].read_raw() == b"\0\1"
    repo.add_tag("latest")
    assert repo.tags()["latest"] == repo.head()
    new = repo.move_tag("v1", "moved")
    assert repo.tags()["v1"] == new == repo.head() and not repo.is_annotated("v1")
    assert repo.url.startswith("file:///") and repo.url.endswith("/t.git")


def test_git_repo_factory_worktree(git_repo_factory) -> None:
    repo = git_repo_factory("w", {"1.0": "one"}, bare=False)
    assert (repo.path / "ckpm.toml").read_text() == "one"
    repo.commit({"other": "two"})
    assert sorted(os.listdir(repo.path)) == [".git", "other"]


def test_git_index_factory(git_index_factory) -> None:
    gi = git_index_factory({"lib-x": [entry("lib-x", "1.0")]})
    assert gi.url.startswith("git+file:///")
    first = gi.git.head()
    second = gi.publish(entry("lib-x", "1.1"))
    assert second != first and gi.git.head() == second
    tree = pygit2.Repository(str(gi.git.path))[second].peel(pygit2.Commit).tree
    lines = tree[entry_path("lib-x")].read_raw().decode().splitlines()
    assert [json.loads(x)["version"] for x in lines] == ["1.0", "1.1"]
    assert "summary.jsonl" in [o.name for o in tree]


def test_index_factory_writes_only_valid_lines(index_factory) -> None:
    with pytest.raises(IndexDataError, match="name 'liba' does not match the file, which holds 'libb'"):
        index_factory({"libb": [entry("libb", "1.0"), entry("liba", "9.0")]})
    root = index_factory({"libb": [entry("libb", "1.0")]})
    with pytest.raises(IndexDataError, match="'../../../etc/passwd' is not a valid component name"):
        index_factory.append(root, entry("../../../etc/passwd", "1.0"))
    with pytest.raises(IndexDataError, match=r"version '1{40}'… \(10000 characters\) is longer than 64 characters"):
        index_factory.append(root, entry("libb", "1" * 10_000))
    idx = FolderIndex(root)
    assert [e.version_text for e in idx.entries("libb")] == ["1.0"]
    assert [s.name for s in idx.summaries()] == ["libb"] and idx.reporter.warnings == []
