"""Issue 25's typed candidates, one BareMirror and one Reporter, each on real repositories and tools."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ckpm.detect import detect
from ckpm.detect.record import Detected
from ckpm.detect.testing import tool_script, write_exe
from ckpm.errors import GitSourceError, IndexReadError
from ckpm.index.git import GIT_LIMITS, BareMirror, GitIndex, MirrorFetchFailed
from ckpm.index.gitsource import GitComponentSource
from ckpm.index.writer import init_index, write_component
from ckpm.model.entry import IndexEntry
from ckpm.model.source import HostSource, IndexSource
from ckpm.report import Reporter
from ckpm.resolve.candidates import Candidate, Origin
from ckpm.testing import component_toml, entry


class Labels(Reporter):
    """A reporter that also keeps the labels of the operations in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []

    def progress(self, label: str):  # type: ignore[override]
        self.labels.append(label)
        return super().progress(label)


# -- typed candidates ----------------------------------------------------------------------------

def test_a_host_candidate_carries_its_detection_record_and_an_origin_compared_by_identity() -> None:
    d = Detected("tool-x", "1.2", "/opt/x/bin/x", "executable", "fp1", {"rule_id": "sha256:ab", "local": True})
    e = IndexEntry(name="tool-x", version_text="1.2", kind="tool")
    c = Candidate(ident="tool-x", key="tool-x", name="tool-x", version=e.version, target="t", origin=Origin.HOST,
                  entry=e, host=d)
    assert c.host is d and c.origin is Origin.HOST
    assert c.source == HostSource("executable", "/opt/x/bin/x", "fp1", "sha256:ab", None, True)
    assert c.label() == "tool-x 1.2 (host)"
    i = Candidate(ident="tool-x", key="tool-x", name="tool-x", version=e.version, target="t", origin=Origin.INDEX,
                  entry=e, index_name="lab", index_url="file:///lab")
    assert i.source == IndexSource("lab", "file:///lab", None) and i._id[2] == "index:lab"
    assert i.label() == "tool-x 1.2" and i != c
    # as a str, an origin sorts and prints as its value (the preference order's tie-break, --json)
    assert sorted([Origin.INDEX, Origin.HOST, Origin.GIT]) == ["git", "host", "index"]
    assert not hasattr(c, "__dict__")  # slotted: a resolution makes tens of thousands


# -- one BareMirror ------------------------------------------------------------------------------

def _mirror(url: str, path: Path, reporter: Reporter, *, offline: bool = False) -> BareMirror:
    return BareMirror(url, path, reporter=reporter, offline=offline, deadline=None, limits=GIT_LIMITS,
                      error=GitSourceError, label=url, what="", noun="mirror", clone_hint="check the URL",
                      offline_message="not in the cache, and ckpm is offline", offline_hint="go online")


def test_a_bare_mirror_is_cloned_once_fetched_on_demand_and_cleans_stale_git_locks(git_repo_factory,
                                                                                   tmp_path: Path) -> None:
    origin = git_repo_factory("m", {"v1.0.0": component_toml("m", "1.0.0")})
    path = tmp_path / "cache" / "m"
    rep = Labels()
    first = _mirror(origin.url, path, rep)
    assert not first.cached()
    repo = first.open()
    assert rep.labels == [f"cloning {origin.url}"] and first.cached() and repo.is_bare
    assert not list(path.parent.glob(".*tmp*"))  # built in a temporary folder, renamed into place
    second = _mirror(origin.url, path, rep)
    second.open()
    assert rep.labels == [f"cloning {origin.url}"]  # cached: not cloned again
    new = origin.commit(component_toml("m", "1.1.0"))
    (path / "packed-refs.lock").write_text("")  # what a killed git process leaves
    second.fetch(["+refs/heads/*:refs/remotes/origin/*"])
    assert rep.labels[-1] == f"fetching {origin.url}"
    assert str(second.open().lookup_reference("refs/remotes/origin/main").target) == new
    assert not (path / "packed-refs.lock").exists()


def test_a_bare_mirror_words_its_errors_as_its_owner_says(git_repo_factory, tmp_path: Path) -> None:
    rep = Reporter()
    with pytest.raises(GitSourceError, match="not in the cache, and ckpm is offline"):
        _mirror("file:///nowhere.git", tmp_path / "a", rep, offline=True).open()
    with pytest.raises(GitSourceError, match=r"^cannot clone file:///nowhere\.git: "):
        _mirror("file:///nowhere.git", tmp_path / "b", rep).open()
    origin = git_repo_factory("m", {"v1.0.0": component_toml("m", "1.0.0")})
    m = _mirror(origin.url, tmp_path / "c", rep)
    m.open()
    shutil.rmtree(origin.path)  # the remote is gone
    with pytest.raises(MirrorFetchFailed) as ei:
        m.fetch(["+refs/heads/*:refs/remotes/origin/*"])
    assert not ei.value.bound and ei.value.reason
    # the two owners share it: an index's offline error is its own
    idx = GitIndex("git+file:///nowhere.git", cache_dir=tmp_path / "cache", offline=True)
    with pytest.raises(IndexReadError, match="no cached copy of this index, and ckpm is offline"):
        idx.config
    assert isinstance(idx.mirror, BareMirror) and idx.deadline is None
    idx.deadline = 5.0
    assert idx.mirror.deadline == 5.0


# -- one Reporter --------------------------------------------------------------------------------

def test_every_part_warns_through_the_reporter_it_was_given_once_each(git_repo_factory, tmp_path: Path) -> None:
    root = tmp_path / "idx"
    init_index(root, name="lab")
    write_component(root, [entry("liba", "1.0")])
    (root / "li" / "ba" / "liba").open("a").write("{not json\n")
    origin = git_repo_factory("t", {"v1.0.0": component_toml("t", "1.0.0"), "v2.0.0": "not toml ["})
    rep = Reporter()
    from ckpm.index import open_index

    idx = open_index(str(root), reporter=rep)
    src = GitComponentSource(origin.url, cache_dir=tmp_path / "cache", reporter=rep)
    for _ in range(2):
        idx.entries("liba")
        src.entries()
    assert not hasattr(idx, "warnings") and not hasattr(src, "warnings")  # no list of their own
    assert len(rep.warnings) == 2
    assert rep.warnings[0].startswith(f"{root / 'li' / 'ba' / 'liba'}:2: not JSON") and "line skipped" in rep.warnings[0]
    assert "tag v2.0.0 skipped" in rep.warnings[1]
    # without a reporter, each part has a fresh one that only collects
    alone = open_index(str(root))
    alone.entries("liba")
    assert alone.reporter is not rep and len(alone.reporter.warnings) == 1


def test_detection_warns_through_the_reporter_and_the_result_lists_what_the_run_said(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    write_exe(bindir / "tool-crash", tool_script(stderr="boom", exit_code=3))
    env = {"PATH": str(bindir)}
    rules = {"tool-crash": [{"executable": "tool-crash", "version_args": ["--version"]}]}
    rep = Reporter()
    rep.warning("said before")
    first = detect(rules, env=env, cache_dir=tmp_path / "cache", reporter=rep)
    assert len(first.warnings) == 1 and "tool-crash" in first.warnings[0] and "exited with 3" in first.warnings[0]
    assert rep.warnings == ["said before", *first.warnings]
    again = detect(rules, env=env, cache_dir=tmp_path / "cache", reporter=rep)  # replayed from the cache
    assert again.probes_run == 0 and rep.warnings == ["said before", *first.warnings]  # once
    own = detect(rules, env=env, cache_dir=tmp_path / "cache")
    assert own.warnings == first.warnings
