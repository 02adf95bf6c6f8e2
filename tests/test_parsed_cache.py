"""The parsed-index cache: a component file is parsed once, then its entries are loaded from the cache."""
from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from ckpm.index import base, parsed_cache
from ckpm.index.folder import FolderIndex
from ckpm.index.git import GitIndex
from ckpm.index.http import HttpIndex
from ckpm.index.layout import entry_path
from ckpm.index.writer import init_index, write_component
from ckpm.model.entry import IndexEntry
from ckpm.testing import entry


def _index(root: Path) -> Path:
    init_index(root, "lab")
    write_component(root, [
        entry("lib-a", "1.0", deps=["zlib >=1.2"], tags=["x"]),
        entry("lib-a", "1.1", deps=["zlib >=1.3,<2", {"name": "compiler", "req": ">=9", "tags": ["lang-c"]}],
              tags=["y"], detect=[{"executable": "a"}], install=[{"copy": "x"}], pubtime="2026-01-01T00:00:00Z"),
        # a line the fast reader leaves to the line-by-line check (a float, an unknown field)
        entry("lib-a", "1.2", deps=["ZLib"], extra_field={"n": 1.5, "big": 2 ** 70}),
    ])
    write_component(root, [entry("zlib", "1.3", kind="tool", description="compression")])
    return root


def _fields(entries: list[IndexEntry]) -> list[tuple[Any, ...]]:
    """Everything an entry holds, its rebuilt ``version`` and ``deps`` included."""
    return [(tuple(e.__dict__[f] for f in parsed_cache.FIELDS), e.version, e.version.sort_key, e.deps)
            for e in entries]


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> object:
        raise AssertionError("a component file was parsed")

    monkeypatch.setattr(base, "parse_component", refuse)


def _cache_file(cache: Path, name: str) -> Path:
    files = [p for p in (cache / "index-parsed").glob(f"*/{name}")]
    assert len(files) == 1
    return files[0]


def test_the_entries_are_kept_and_the_next_read_parses_nothing(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    first = FolderIndex(root, cache_dir=cache).entries("lib-a")
    assert [e.version_text for e in first] == ["1.0", "1.1", "1.2"]
    plain = FolderIndex(root).entries("lib-a")  # no cache: the reference
    assert _fields(first) == _fields(plain)
    with monkeypatch.context() as m:
        _no_parse(m)
        again = FolderIndex(root, cache_dir=cache).entries("lib-a")
        assert _fields(again) == _fields(plain)
        # the same Requirement objects as a fresh read makes (the resolver memoises by identity)
        assert again[0].deps[0] is first[0].deps[0]


def test_a_changed_file_is_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    FolderIndex(root, cache_dir=cache).entries("lib-a")
    p = root / entry_path("lib-a")
    st = p.stat()
    # other bytes of the same size, the mtime kept: the key (size, mtime, inode) is unchanged,
    # so the kept entries are what is read (the proof that the file itself is not)
    text = p.read_text()
    with open(p, "r+") as f:
        f.write(text.replace('"1.2"', '"1.3"'))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [e.version_text for e in FolderIndex(root, cache_dir=cache).entries("lib-a")] == ["1.0", "1.1", "1.2"]
    # a new mtime is a new key
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert [e.version_text for e in FolderIndex(root, cache_dir=cache).entries("lib-a")] == ["1.0", "1.1", "1.3"]
    # a file replaced by another (a new inode, as every writer's atomic rename makes)
    write_component(root, [entry("lib-a", "2.0")])
    assert [e.version_text for e in FolderIndex(root, cache_dir=cache).entries("lib-a")] == ["2.0"]
    with monkeypatch.context() as m:
        _no_parse(m)
        assert [e.version_text for e in FolderIndex(root, cache_dir=cache).entries("lib-a")] == ["2.0"]


def _rewrap(data: bytes, change: Callable[[list[Any]], None]) -> bytes:
    head = list(marshal.loads(data))
    change(head)
    return marshal.dumps(tuple(head))


def _payload(rows: Any) -> Callable[[list[Any]], None]:
    """Replace the payload with ``rows`` and a matching CRC: a well-formed file whose rows are wrong."""
    def change(head: list[Any]) -> None:
        from binascii import crc32

        head[4] = marshal.dumps(rows)
        head[3] = crc32(head[4])
    return change


@pytest.mark.parametrize("damage", [
    lambda data: b"",
    lambda data: data[: len(data) // 2],  # torn
    lambda data: data[:-40] + bytes(40),  # zeros over the payload's end
    lambda data: data.replace(b"zlib", b"zlix"),  # a flipped byte inside the payload: the CRC differs
    lambda data: b"not marshal at all",
    lambda data: marshal.dumps([1, 2, 3]),
    lambda data: _rewrap(data, lambda h: h.__setitem__(0, 99)),  # another format
    lambda data: _rewrap(data, lambda h: h.__setitem__(1, "zlib")),  # another component's file
    lambda data: _rewrap(data, lambda h: h.__setitem__(2, "1:2:3")),  # another key
    lambda data: _rewrap(data, _payload([1, 2])),  # not (pairs, rows)
    lambda data: _rewrap(data, _payload(((), [1, 2]))),  # rows not a tuple
    lambda data: _rewrap(data, _payload(((), ((1, 2),)))),  # a row of the wrong length
    lambda data: _rewrap(data, _payload(((), (("lib-a",) * (len(parsed_cache.FIELDS) + 1),)))),  # wrong types
    lambda data: _rewrap(data, _payload((((1, 2),), ()))),  # a dependency pair of the wrong types
    lambda data: _rewrap(data, _payload(((("Not A Name!", ">=1"),), ()))),  # a dependency that is not valid
])
def test_a_damaged_cache_file_is_a_miss_never_a_wrong_answer(tmp_path: Path, damage) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    expected = _fields(FolderIndex(root).entries("lib-a"))
    FolderIndex(root, cache_dir=cache).entries("lib-a")
    f = _cache_file(cache, "lib-a")
    good = f.read_bytes()
    damaged = damage(good)
    assert damaged != good
    f.write_bytes(damaged)
    assert _fields(FolderIndex(root, cache_dir=cache).entries("lib-a")) == expected
    assert f.read_bytes() == good  # written again
    assert _fields(FolderIndex(root, cache_dir=cache).entries("lib-a")) == expected


def test_a_cache_file_over_its_cap_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    FolderIndex(root, cache_dir=cache).entries("lib-a")
    monkeypatch.setattr(parsed_cache, "MAX_CACHE_BYTES", 64)
    calls = []
    real = base.parse_component
    monkeypatch.setattr(base, "parse_component", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert len(FolderIndex(root, cache_dir=cache).entries("lib-a")) == 3
    assert calls == [1]  # parsed again, and not kept (over the cap)
    assert len(FolderIndex(root, cache_dir=cache).entries("lib-a")) == 3
    assert calls == [1, 1]


def test_a_file_with_bad_lines_is_not_kept_and_warns_every_time(tmp_path: Path) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    p = root / entry_path("zlib")
    p.write_text(p.read_text() + '{"name":"zlib","version":"bad version"}\n')
    for _ in range(2):
        idx = FolderIndex(root, cache_dir=cache)
        assert [e.version_text for e in idx.entries("zlib")] == ["1.3"]
        assert len(idx.reporter.warnings) == 1 and idx.reporter.warnings[0].startswith(f"{p}:2:")
    assert not list((cache / "index-parsed").glob("*/zlib"))


def test_an_unwritable_cache_is_only_slower(tmp_path: Path) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    cache.mkdir()
    (cache / "index-parsed").write_text("a file where the folder would be")
    idx = FolderIndex(root, cache_dir=cache)
    assert [e.version_text for e in idx.entries("zlib")] == ["1.3"]
    assert idx.reporter.warnings == []


def test_a_git_index_is_keyed_by_blob(git_index_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    gi = git_index_factory({"lib-x": [entry("lib-x", "1.0")], "zlib": [entry("zlib", "1.3")]})
    assert [e.version_text for e in GitIndex(gi.url, cache_dir=cache).entries("lib-x")] == ["1.0"]
    key = marshal.loads(_cache_file(cache, "lib-x").read_bytes())[2]
    with monkeypatch.context() as m:
        _no_parse(m)
        assert [e.version_text for e in GitIndex(gi.url, cache_dir=cache).entries("lib-x")] == ["1.0"]
    gi.publish(entry("lib-x", "2.0"))
    idx = GitIndex(gi.url, cache_dir=cache)
    idx.update()
    assert [e.version_text for e in idx.entries("lib-x")] == ["1.0", "2.0"]
    assert marshal.loads(_cache_file(cache, "lib-x").read_bytes())[2] != key
    assert len(key) == 40  # a blob id


def test_an_http_index_is_keyed_by_etag(http_index_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cache = _index(tmp_path / "idx"), tmp_path / "cache"
    url = http_index_server.serve(root)
    first = HttpIndex(url, cache_dir=cache).entries("lib-a")
    assert [e.version_text for e in first] == ["1.0", "1.1", "1.2"]
    key = marshal.loads(_cache_file(cache, "lib-a").read_bytes())[2]
    with monkeypatch.context() as m:
        _no_parse(m)
        again = HttpIndex(url, cache_dir=cache).entries("lib-a")  # revalidated (304), then not parsed
        assert _fields(again) == _fields(first)
    assert http_index_server.not_modified[entry_path("lib-a")] == 1
    write_component(root, [entry("lib-a", "3.0")])
    assert [e.version_text for e in HttpIndex(url, cache_dir=cache).entries("lib-a")] == ["3.0"]
    assert marshal.loads(_cache_file(cache, "lib-a").read_bytes())[2] != key
