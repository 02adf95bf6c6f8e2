"""HttpIndex against a real loopback HTTP server (ckpm.testing.http_index_server)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from ckpm.errors import IndexReadError
from ckpm.index import Index, open_index
from ckpm.index.cache import cache_key
from ckpm.index.http import HttpIndex
from ckpm.index.layout import entry_path
from ckpm.testing import entry

A, B = entry_path("lib-a"), entry_path("lib-b")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def served(index_factory, http_index_server) -> Path:
    root = index_factory({
        "lib-a": [entry("lib-a", "1.0"), entry("lib-a", "1.1", deps=["lib-b >=2"])],
        "lib-b": [entry("lib-b", "2.0", tags=["jpeg"])],
        "lib-c": [entry("lib-c", "0.1")],
    }, name="web")
    http_index_server.serve(root)
    return root


def _versions(idx: Index, name: str) -> list[str]:
    return [e.version_text for e in idx.entries(name)]


def test_reads_only_the_files_it_needs(served, http_index_server, cache: Path) -> None:
    idx = HttpIndex(http_index_server.url, cache_dir=cache)
    assert isinstance(idx, Index)
    assert _versions(idx, "lib-a") == ["1.0", "1.1"]
    assert idx.entries("lib-a")[1].deps[0].key == "lib-b"
    assert _versions(idx, "lib-a") == ["1.0", "1.1"]
    assert dict(http_index_server.hits) == {"config.json": 1, A: 1}
    assert _versions(idx, "lib-b") == ["2.0"]
    assert dict(http_index_server.hits) == {"config.json": 1, A: 1, B: 1}
    assert idx.name == "web"
    assert idx.revision() is None
    assert idx.reporter.warnings == []
    assert (cache / "index-http" / cache_key(http_index_server.url) / A).is_file()


def test_new_instance_revalidates_with_304(served, http_index_server, cache: Path) -> None:
    first = HttpIndex(http_index_server.url, cache_dir=cache)
    assert _versions(first, "lib-a") == ["1.0", "1.1"]
    second = HttpIndex(http_index_server.url + "/", cache_dir=cache)  # same index, same cache
    assert _versions(second, "lib-a") == ["1.0", "1.1"]
    assert dict(http_index_server.hits) == {"config.json": 1, A: 1}
    assert dict(http_index_server.not_modified) == {"config.json": 1, A: 1}
    http_index_server.assert_no_refetch()


def test_changed_file_is_fetched_again(served, http_index_server, index_factory, cache: Path) -> None:
    assert _versions(HttpIndex(http_index_server.url, cache_dir=cache), "lib-a") == ["1.0", "1.1"]
    index_factory.append(served, entry("lib-a", "1.2"))
    idx = HttpIndex(http_index_server.url, cache_dir=cache)
    assert _versions(idx, "lib-a") == ["1.0", "1.1", "1.2"]
    assert http_index_server.hits[A] == 2
    assert http_index_server.not_modified["config.json"] == 1
    # and the cache now holds the new file: a third instance gets a 304
    assert _versions(HttpIndex(http_index_server.url, cache_dir=cache), "lib-a") == ["1.0", "1.1", "1.2"]
    assert http_index_server.not_modified[A] == 1


def test_update_revalidates_in_the_same_instance(served, http_index_server, index_factory, cache: Path) -> None:
    idx = HttpIndex(http_index_server.url, cache_dir=cache)
    assert _versions(idx, "lib-a") == ["1.0", "1.1"]
    index_factory.append(served, entry("lib-a", "1.2"))
    assert _versions(idx, "lib-a") == ["1.0", "1.1"]  # memoised: no request
    assert http_index_server.hits[A] == 1 and http_index_server.not_modified[A] == 0
    idx.update()
    assert http_index_server.not_modified["config.json"] == 1
    assert _versions(idx, "lib-a") == ["1.0", "1.1", "1.2"]
    assert http_index_server.hits[A] == 2
    with pytest.raises(IndexReadError, match="offline"):
        HttpIndex(http_index_server.url, cache_dir=cache, offline=True).update()


def test_404_is_an_unknown_component(served, http_index_server, cache: Path) -> None:
    idx = HttpIndex(http_index_server.url, cache_dir=cache)
    assert idx.entries("nope") == []
    assert idx.entries("nope") == []
    assert http_index_server.missing[entry_path("nope")] == 1
    assert idx.entries("Bad Name!") == []  # never requested
    assert sum(http_index_server.missing.values()) == 1


def test_offline_uses_only_the_cache(served, http_index_server, cache: Path) -> None:
    online = HttpIndex(http_index_server.url, cache_dir=cache)
    online.entries("lib-a")
    online.entries("nope")
    url = http_index_server.url
    http_index_server.stop()
    offline = HttpIndex(url, cache_dir=cache, offline=True)
    assert _versions(offline, "lib-a") == ["1.0", "1.1"]
    assert offline.entries("nope") == []  # a cached 404
    with pytest.raises(IndexReadError, match="not in the cache") as ei:
        offline.entries("lib-b")
    assert B in ei.value.message
    assert offline.reporter.warnings == []


def test_server_down_is_a_clear_error(http_index_server, cache: Path) -> None:
    url = http_index_server.url
    http_index_server.stop()
    idx = HttpIndex(url, cache_dir=cache, timeout=2)
    with pytest.raises(IndexReadError) as ei:
        idx.entries("lib-a")
    msg = ei.value.message
    assert f"{url}/config.json" in msg and "refused" in msg.lower()
    assert ei.value.hint


def test_server_down_with_cache_warns_and_uses_it(served, http_index_server, cache: Path) -> None:
    HttpIndex(http_index_server.url, cache_dir=cache).entries("lib-a")
    url = http_index_server.url
    http_index_server.stop()
    idx = HttpIndex(url, cache_dir=cache, timeout=2)
    assert _versions(idx, "lib-a") == ["1.0", "1.1"]
    assert len(idx.reporter.warnings) == 2  # config.json and lib-a
    assert all("using the cached copy" in w and url in w for w in idx.reporter.warnings)
    with pytest.raises(IndexReadError, match="cannot read index file"):
        idx.entries("lib-b")  # never cached


def test_summaries(served, http_index_server, cache: Path) -> None:
    idx = HttpIndex(http_index_server.url, cache_dir=cache)
    got = {s.name: s.versions for s in idx.summaries()}
    assert got == {"lib-a": ("1.0", "1.1"), "lib-b": ("2.0",), "lib-c": ("0.1",)}
    assert idx.summaries() is idx.summaries()
    assert http_index_server.hits["summary.jsonl"] == 1
    assert A not in http_index_server.hits  # the summary is enough


def test_no_summary_is_a_clear_error(index_factory, http_index_server, cache: Path) -> None:
    http_index_server.serve(index_factory({"lib-a": [entry("lib-a", "1.0")]}, summary=False))
    idx = HttpIndex(http_index_server.url, cache_dir=cache)
    with pytest.raises(IndexReadError, match="publishes no summary.jsonl; tag queries and search need it"):
        idx.summaries()
    assert _versions(idx, "lib-a") == ["1.0"]


def test_not_an_index(tmp_path: Path, http_index_server, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    http_index_server.serve(empty)
    with pytest.raises(IndexReadError, match="not an index"):
        HttpIndex(http_index_server.url, cache_dir=cache).entries("lib-a")


def test_newer_format_is_refused(index_factory, http_index_server, cache: Path) -> None:
    root = index_factory({"lib-a": [entry("lib-a", "1.0")]})
    (root / "config.json").write_text(json.dumps({"format": 2, "name": "future"}))
    http_index_server.serve(root)
    with pytest.raises(IndexReadError, match="format 2 is newer"):
        HttpIndex(http_index_server.url, cache_dir=cache).entries("lib-a")


def test_config_gone_is_not_an_index(index_factory, http_index_server, cache: Path, tmp_path: Path) -> None:
    http_index_server.serve(index_factory({"lib-a": [entry("lib-a", "1.0")]}))
    HttpIndex(http_index_server.url, cache_dir=cache).entries("lib-a")
    http_index_server.serve(tmp_path / "gone")  # now every path is a 404
    # a 404 is an answer, not a failure: the cached copy is not used
    with pytest.raises(IndexReadError, match="not an index"):
        HttpIndex(http_index_server.url, cache_dir=cache).entries("lib-a")


def test_server_error_falls_back_to_cache(served, http_index_server, cache: Path) -> None:
    HttpIndex(http_index_server.url, cache_dir=cache).entries("lib-a")
    http_index_server.errors[A] = 503
    idx = HttpIndex(http_index_server.url, cache_dir=cache)
    assert _versions(idx, "lib-a") == ["1.0", "1.1"]
    assert idx.reporter.warnings == [f"{http_index_server.url}/{A}: HTTP 503 Service Unavailable; using the cached copy"]
    http_index_server.errors[B] = 503
    with pytest.raises(IndexReadError, match="HTTP 503") as ei:
        idx.entries("lib-b")
    assert f"{http_index_server.url}/{B}" in ei.value.message


def test_open_index_dispatches_to_http(served, http_index_server, cache: Path) -> None:
    idx = open_index(http_index_server.url, name="cdn", cache_dir=cache)
    assert isinstance(idx, HttpIndex)
    assert idx.name == "cdn"
    assert _versions(idx, "lib-c") == ["0.1"]


def test_cache_dir_from_environment(served, http_index_server, ckpm_cache_dir: Path) -> None:
    idx = HttpIndex(http_index_server.url)
    assert _versions(idx, "lib-c") == ["0.1"]
    assert (ckpm_cache_dir / "index-http" / cache_key(http_index_server.url) / entry_path("lib-c")).is_file()


def test_server_fixture_detects_refetch(served, http_index_server) -> None:
    for _ in range(2):
        requests.get(f"{http_index_server.url}/config.json", timeout=5).raise_for_status()
    assert http_index_server.refetched() == {"config.json": 2}
    with pytest.raises(AssertionError, match="config.json"):
        http_index_server.assert_no_refetch()
    http_index_server.reset_counts()  # so that the fixture's own teardown check passes
    http_index_server.assert_no_refetch()
