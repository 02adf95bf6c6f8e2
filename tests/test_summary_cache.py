"""Searching an index without summary.jsonl: each component file is read once, then kept in the cache."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ckpm.index import open_index
from ckpm.index.base import parse_component, summary_of_component
from ckpm.index.folder import FolderIndex
from ckpm.index.git import GitIndex
from ckpm.index.layout import entry_path
from ckpm.index.summary_cache import cache_path
from ckpm.index.writer import init_index, reindex, write_component
from ckpm.model.entry import ComponentSummary
from ckpm.testing import entry


def _index(root: Path) -> Path:
    init_index(root, "lab")
    write_component(root, [entry("lib-a", "1.0", tags=["x"]), entry("lib-a", "1.1", tags=["y"])])
    write_component(root, [entry("zlib", "1.3", kind="tool", description="compression")])
    (root / "summary.jsonl").unlink(missing_ok=True)
    return root


def _seen(idx: FolderIndex | GitIndex) -> dict[str, tuple[str, list[str], tuple[str, ...]]]:
    return {s.name: (s.kind, sorted(s.tags), s.versions) for s in idx.summaries()}


def _cache_file(cache: Path) -> Path:
    files = list((cache / "index-summary").iterdir())
    assert len(files) == 1
    return files[0]


def test_the_first_scan_is_kept_and_the_next_reads_no_component_file(tmp_path: Path) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    first = _seen(FolderIndex(root, cache_dir=cache))
    assert first == {"lib-a": ("lib", ["x", "y"], ("1.0", "1.1")), "zlib": ("tool", [], ("1.3",))}
    assert _cache_file(cache) == cache_path(cache, str(root.resolve()))
    # rewrite lib-a in place with other bytes of the same size, keeping its mtime: the
    # cache key (size, mtime, inode) is unchanged, so a second scan must not read it
    p = root / entry_path("lib-a")
    st = p.stat()
    text = p.read_text()
    with open(p, "r+") as f:
        f.write(text.replace('"1.1"', '"1.2"'))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _seen(FolderIndex(root, cache_dir=cache)) == first
    # a real change (a new mtime) is seen at once
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert _seen(FolderIndex(root, cache_dir=cache))["lib-a"][2] == ("1.0", "1.2")


def test_added_removed_and_appended_components_are_seen(tmp_path: Path) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    _seen(FolderIndex(root, cache_dir=cache))
    write_component(root, [entry("lib-a", "1.0"), entry("lib-a", "2.0", tags=["new"])])
    write_component(root, [entry("lib-b", "0.1")])
    (root / entry_path("zlib")).unlink()
    (root / "summary.jsonl").unlink(missing_ok=True)
    got = _seen(FolderIndex(root, cache_dir=cache))
    assert got == {"lib-a": ("lib", ["new"], ("1.0", "2.0")), "lib-b": ("lib", [], ("0.1",))}
    names = [line.split("\t", 1)[0] for line in _cache_file(cache).read_text().splitlines()[1:]]
    assert names == ["lib-a", "lib-b"]  # the line of the removed file is dropped


def _line_of(name: str, text: str, new: str) -> str:
    """``text`` (a cache file) with the line of component ``name`` replaced by ``new``."""
    return "\n".join(new if line.startswith(name + "\t") else line for line in text.split("\n"))


@pytest.mark.parametrize("damage", [
    lambda text: "",
    lambda text: "not json\n" + text,
    lambda text: text[: len(text) // 2],
    lambda text: text.replace("\t", " ", 2),  # a line with too few fields
    lambda text: _line_of("lib-a", text, '["lib-a","k","lib",["x"],"",[1,2],[]]'),
    lambda text: _line_of("lib-a", text, "[" + '{"deep":' * 50 + "1" + "}" * 50 + "]"),
    lambda text: _line_of("lib-a", text, '["lib-a",'),
    lambda text: '{"format":99}\n' + "\n".join(text.splitlines()[1:]),
])
def test_a_damaged_cache_is_a_miss_never_a_wrong_answer(tmp_path: Path, damage) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    expected = _seen(FolderIndex(root, cache_dir=cache))
    f = _cache_file(cache)
    damaged = damage(f.read_text())
    assert damaged != f.read_text()
    f.write_text(damaged)
    assert _seen(FolderIndex(root, cache_dir=cache)) == expected
    assert _seen(FolderIndex(root, cache_dir=cache)) == expected  # and it was written again


def test_bad_lines_are_reported_on_every_search_cached_or_not(tmp_path: Path) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    p = root / entry_path("lib-a")
    p.write_text(p.read_text() + '{"name":"lib-a","version":"bad version"}\n{"name":"other","version":"1"}\n')
    for _ in range(2):
        idx = FolderIndex(root, cache_dir=cache)
        assert _seen(idx)["lib-a"][2] == ("1.0", "1.1")
        assert [w.split(": ", 1)[0] for w in idx.reporter.warnings] == [f"{p}:3", f"{p}:4"]
        assert "line skipped" in idx.reporter.warnings[0] and "other" in idx.reporter.warnings[1]


def test_a_file_over_its_cap_is_left_out_with_a_warning(tmp_path: Path) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    from ckpm.model.entry import MAX_FILE_BYTES

    p = root / entry_path("lib-a")
    p.write_text(p.read_text() + "\n" * (MAX_FILE_BYTES + 1))
    idx = FolderIndex(root, cache_dir=cache)
    assert set(_seen(idx)) == {"zlib"}
    assert any("over the cap" in w for w in idx.reporter.warnings)


def test_the_scan_agrees_with_reading_every_entry(tmp_path: Path) -> None:
    """summary_of_component shows what ComponentSummary.from_entries shows, and skips the
    lines that parse_component skips for what a summary holds."""
    text = "\n".join(json.dumps(e) for e in [
        entry("lib-q", "1.0", tags=["B", "a"], description="one"),
        {"name": "lib-q", "version": "1.0.1", "tags": ["Bad Tag"]},
        {"name": "lib-q", "version": "2.0", "kind": "tool", "tags": ["c"], "description": "two"},
        {"name": "lib-q", "version": "3.0", "kind": "no such kind!"},
        "[1, 2]",
        "",
    ]) + "\n"
    summary, problems = summary_of_component(text, "F", "lib-q")
    entries, expected_problems = parse_component(text, "F", "lib-q")
    assert summary == ComponentSummary.from_entries(entries)
    assert summary is not None and summary.versions == ("1.0", "2.0") and summary.kind == "tool"
    assert problems == expected_problems


def test_search_without_a_summary_matches_search_with_one(tmp_path: Path) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    without = _seen(FolderIndex(root, cache_dir=cache))
    reindex(root)
    assert (root / "summary.jsonl").is_file()
    assert _seen(FolderIndex(root, cache_dir=cache)) == without


def test_open_index_keeps_the_scan_in_the_cache_dir(tmp_path: Path) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    idx = open_index(str(root), cache_dir=cache)
    assert set(s.name for s in idx.summaries()) == {"lib-a", "zlib"}
    assert _cache_file(cache).is_file()


def test_a_git_index_is_keyed_by_blob(git_index_factory, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    gi = git_index_factory({"lib-x": [entry("lib-x", "1.0")], "zlib": [entry("zlib", "1.3")]}, summary=False)
    assert _seen(GitIndex(gi.url, cache_dir=cache))["lib-x"][2] == ("1.0",)
    keys = dict(line.split("\t")[:2] for line in _cache_file(cache).read_text().splitlines()[1:])
    gi.publish(entry("lib-x", "2.0"), summary=False)
    idx = GitIndex(gi.url, cache_dir=cache)
    idx.update()
    assert _seen(idx)["lib-x"][2] == ("1.0", "2.0")
    again = dict(line.split("\t")[:2] for line in _cache_file(cache).read_text().splitlines()[1:])
    assert again["zlib"] == keys["zlib"] and again["lib-x"] != keys["lib-x"]


def test_a_named_pipe_at_a_layout_path_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Reading a FIFO would block forever: a folder index refuses anything but a regular file."""
    from ckpm.errors import IndexReadError
    from ckpm.index.writer import update_summary_for

    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    fifo = root / entry_path("lib-b")
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    idx = FolderIndex(root, cache_dir=cache)
    with pytest.raises(IndexReadError, match="not a regular file"):
        idx.entries("lib-b")
    assert set(_seen(FolderIndex(root, cache_dir=cache))) == {"lib-a", "zlib"}  # the scan skips it
    with pytest.raises(IndexReadError, match="not a regular file"):
        update_summary_for(root, "lib-b")


def test_the_walks_layout_check_is_the_layout_paths() -> None:
    """in_layout_dir(leaf, dir) is at_layout_path(leaf, dir + leaf), for names of every length,
    files in the wrong folder, upper case, and the index's own files."""
    from ckpm.index.base import at_layout_path, in_layout_dir
    from ckpm.index.layout import entry_path

    leaves = ["a", "ab", "abc", "abcd", "lib-zlib", "x.y_z-1", "Lib-x", "a b", "", "config.json",
              "summary.jsonl", "-ab", "ab/cd", "é-lib"]
    dirs = ["", "1/", "2/", "3/a/", "ab/cd/", "li/b-/", "x./y_/", "ab/", "3/A/", "Li/b-/", "li/b-/x/"]
    for leaf in leaves:
        candidates = list(dirs)
        try:
            candidates.append(entry_path(leaf).rsplit("/", 1)[0] + "/")
        except ValueError:
            pass
        for d in candidates:
            assert in_layout_dir(leaf, d) == at_layout_path(leaf, d + leaf), (leaf, d)
    assert in_layout_dir("lib-zlib", "li/b-/") and in_layout_dir("abc", "3/a/") and in_layout_dir("ab", "2/")


def test_a_folders_layout_check_is_each_files_check() -> None:
    """layout_leaves(dir, leaves) keeps what in_layout_dir keeps, in order, whether every name in
    the folder is good (one match) or some are not (each checked on its own)."""
    from ckpm.index.base import in_layout_dir, layout_leaves

    good = ["abcd", "abcde", "ab-cd", "abc", "abx", "ab", "a", "lib-zlib", "x.y_z-1"]
    bad = ["Abcd", "abcD", "abcd\nefg", "abc/d", "abcd ", "-abc", "abcd" + "e" * 61, "config.json", "summary.jsonl",
           "é-lib", "", "a\nb"]
    dirs = ["", "1/", "2/", "3/a/", "ab/cd/", "co/nf/", "su/mm/", "li/b-/", "x./y_/", "ab/", "3/A/", "3/ab/",
            "AB/CD/", "ab/cd/e/", "ab/cd", "1", "4/", "abc/d/"]
    for d in dirs:
        for leaves in (good, good + bad, bad, [], list(reversed(good + bad))):
            assert layout_leaves(d, leaves) == [x for x in leaves if in_layout_dir(x, d)], (d, leaves)
    assert layout_leaves("ab/cd/", ["abcd", "abcdef", "abc"]) == ["abcd", "abcdef"]


def test_a_summary_built_fast_is_the_same_summary() -> None:
    from dataclasses import FrozenInstanceError

    from ckpm.model.entry import ComponentSummary

    args = ("lib-x", "lib", frozenset({"a", "b"}), "a library", ("1.0", "2.0"))
    fast, plain = ComponentSummary.of(*args), ComponentSummary(*args)
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert fast.to_json() == plain.to_json()
    with pytest.raises(FrozenInstanceError):
        fast.name = "other"  # type: ignore[misc]


def test_a_lazy_summary_is_the_same_summary_and_splits_its_versions_when_read() -> None:
    args = ("lib-x", "lib", frozenset({"a", "b"}), "a library")
    lazy, plain = ComponentSummary.lazy(*args, "1.0\t2.0"), ComponentSummary(*args, ("1.0", "2.0"))
    assert "versions" not in lazy.__dict__  # nothing split yet
    assert lazy == plain and hash(lazy) == hash(plain) and repr(lazy) == repr(plain)
    assert lazy.versions == ("1.0", "2.0") and lazy.to_json() == plain.to_json()
    assert ComponentSummary.lazy(*args, "").versions == ()
    with pytest.raises(AttributeError):
        lazy.nothing  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.parametrize("summary, problems, tabbed", [
    (ComponentSummary("lib-a", "lib", frozenset({"x", "y"}), "a lib", ("1.0", "1.1")), (), True),
    (ComponentSummary("lib-a", "lib", frozenset(), "", ("1.0",)), (), True),
    (ComponentSummary("lib-a", "lib", frozenset({"x"}), "tab\there", ("1.0",)), (), False),
    (ComponentSummary("lib-a", "lib", frozenset({"x"}), "two\nlines", ("1.0",)), (), False),
    (ComponentSummary("lib-a", "lib", frozenset({"a,b"}), "", ("1.0",)), (), False),
    (ComponentSummary("lib-a", "lib", frozenset({""}), "", ("1.0",)), (), False),
    (ComponentSummary("lib-a", "lib", frozenset(), "", ()), (), False),
    (ComponentSummary("lib-a", "lib", frozenset(), "", ("1.0",)), ("x:2: line skipped",), False),
    (None, ("x:1: line skipped",), False),
])
def test_every_cache_line_reads_back_as_written(tmp_path: Path, summary, problems, tabbed) -> None:
    from ckpm.index.summary_cache import Scanned, load, save

    item = Scanned("12:34:56", summary, problems)
    assert (not item.to_line("lib-a").startswith("[")) == tabbed
    save(tmp_path / "c.jsonl", "/idx", {"lib-a": item})
    back = load(tmp_path / "c.jsonl", "/idx")["lib-a"]
    assert back == item and (back.summary is None or back.summary.versions == summary.versions)


def _published(root: Path) -> Path:
    """An index that publishes summary.jsonl (as the writer makes it)."""
    init_index(root, "lab")
    write_component(root, [entry("zlib", "1.3", kind="tool", description="compression")])
    write_component(root, [entry("lib-a", "1.0", tags=["x"]), entry("lib-a", "1.1", tags=["y"])])
    reindex(root)
    return root


def test_a_published_summary_is_parsed_once_then_read_from_the_cache(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import ckpm.index.base as base
    from ckpm.index.summary_cache import published_path

    root, cache = _published(tmp_path / "idx"), tmp_path / "cache"
    first = [(s.name, s.kind, sorted(s.tags), s.versions) for s in FolderIndex(root, cache_dir=cache).summaries()]
    assert [n for n, *_ in first] == [json.loads(x)["name"] for x in (root / "summary.jsonl").read_text().splitlines()]
    kept = published_path(cache_path(cache, str(root.resolve())))
    assert kept.is_file()
    # the next read takes the kept lines, in the file's order, and parses nothing
    real = base.parse_summary_text

    def refuse(*a: object, **k: object) -> object:
        raise AssertionError("summary.jsonl parsed again")

    monkeypatch.setattr(base, "parse_summary_text", refuse)
    again = [(s.name, s.kind, sorted(s.tags), s.versions) for s in FolderIndex(root, cache_dir=cache).summaries()]
    assert again == first
    # a new summary.jsonl (another size and mtime) is parsed again at once
    monkeypatch.setattr(base, "parse_summary_text", real)
    write_component(root, [entry("lib-b", "2.0")])
    reindex(root)
    assert "lib-b" in {s.name for s in FolderIndex(root, cache_dir=cache).summaries()}
    monkeypatch.setattr(base, "parse_summary_text", refuse)
    assert "lib-b" in {s.name for s in FolderIndex(root, cache_dir=cache).summaries()}


def test_a_published_summary_with_bad_lines_is_not_kept_and_warns_every_time(tmp_path: Path) -> None:
    from ckpm.index.summary_cache import published_path

    root, cache = _published(tmp_path / "idx"), tmp_path / "cache"
    with open(root / "summary.jsonl", "a") as f:
        f.write('{"name": "Bad Name"}\n')
    for _ in range(2):
        idx = FolderIndex(root, cache_dir=cache)
        assert {s.name for s in idx.summaries()} == {"lib-a", "zlib"}
        assert any("summary.jsonl" in w for w in idx.reporter.warnings)
    assert not published_path(cache_path(cache, str(root.resolve()))).exists()


def test_a_damaged_published_cache_is_a_miss(tmp_path: Path) -> None:
    from ckpm.index.summary_cache import published_path

    root, cache = _published(tmp_path / "idx"), tmp_path / "cache"
    want = _seen(FolderIndex(root, cache_dir=cache))
    kept = published_path(cache_path(cache, str(root.resolve())))
    lines = kept.read_text().split("\n")
    for damage in ("", "not json\n", kept.read_text().replace('"format":3', '"format":99'),
                   lines[0] + "\n", "\n".join([lines[0], lines[2]]) + "\n", "\n".join([lines[0], lines[1]]) + "\n"):
        kept.write_text(damage)
        assert _seen(FolderIndex(root, cache_dir=cache)) == want
    # a stale line (its component file removed) is left out, kept or not
    (root / entry_path("zlib")).unlink()
    assert set(_seen(FolderIndex(root, cache_dir=cache))) == {"lib-a"}
