"""Index data is someone else's data: bad lines are skipped and reported, oversized files refused.

Every index here is real: folders written with ckpm.index.writer (then damaged by hand, as a
hostile or broken index would be), git repositories and the loopback HTTP server of
ckpm.testing, and the ckpm command line run as a subprocess.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from ckpm import api
from ckpm.errors import IndexReadError
from ckpm.index import EMBEDDED, Index, embedded_index_path, open_index
from ckpm.index.folder import FolderIndex
from ckpm.index.git import GitIndex
from ckpm.index.http import HttpIndex
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.index.writer import append_entry, reindex, update_summary_for, write_component
from ckpm.model.entry import (
    MAX_FILE_BYTES, MAX_JSON_DEPTH, MAX_LINE_BYTES, MAX_NAME_LEN, MAX_VERSIONS, IndexDataError, json_too_deep,
    load_json_line, valid_name,
)
from ckpm.report import Reporter
from ckpm.testing import entry

ROOT = Path(__file__).resolve().parent.parent
LIBB = entry_path("libb")
ESC = "\x1b"


def _line(d: dict) -> str:
    return json.dumps(d, separators=(",", ":"))


def _add_lines(root: Path, name: str, *lines: str) -> Path:
    """Append raw lines to a component's file, as a hand edit (or an attacker) would."""
    p = root / entry_path(name)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8", newline="") as f:
        for line in lines:
            f.write(line + "\n")
    return p


def _versions(idx: Index, name: str) -> list[str]:
    return [e.version_text for e in idx.entries(name)]


def _printable(message: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) <= 0xDFFF for c in message)


@pytest.fixture
def libb_index(index_factory) -> Path:
    """libb 1.0, then a line that says it is liba 9.0, then libb 2.0; and a real liba 1.0."""
    root = index_factory({"libb": [entry("libb", "1.0")], "liba": [entry("liba", "1.0")]}, name="lab")
    _add_lines(root, "libb", _line(entry("liba", "9.0")), _line(entry("libb", "2.0")))
    return root


# -- 1, 2: a line of another component -------------------------------------------------------

def test_line_of_another_component_is_skipped_and_reported(libb_index: Path) -> None:
    rep = Reporter()
    idx = FolderIndex(libb_index, reporter=rep)
    assert _versions(idx, "libb") == ["1.0", "2.0"]
    assert [e.name for e in idx.entries("libb")] == ["libb", "libb"]
    assert _versions(idx, "liba") == ["1.0"]  # liba's own file; 9.0 is nowhere
    where = libb_index / LIBB
    assert idx.reporter.warnings == [f"{where}:2: name 'liba' does not match the file, which holds 'libb'; line skipped"]
    assert rep.warnings == idx.reporter.warnings
    _versions(idx, "libb")
    assert len(idx.reporter.warnings) == 1  # memoised: reported once


def test_add_libb_never_locks_liba(libb_index: Path, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    api.init_project(proj, "proj")
    ws = api.Workspace(proj, api.Settings(index_url=str(libb_index), no_host=True))
    out = api.add(ws, [api.AddRequest("libb")])
    assert [(p.name, p.version) for p in out.lock.packages] == [("libb", "2.0")]
    assert 'name = "liba"' not in (proj / "ckpm.lock").read_text()


BAD_LINES = [
    pytest.param(_line(entry("liba", "9.0")), "name 'liba' does not match the file, which holds 'libb'", id="other-name"),
    pytest.param('{"name":"libb","version":"' + "1" * 10_000 + '"}',
                 "version '" + "1" * 40 + "'… (10000 characters) is longer than 64 characters", id="10000-digit-version"),
    pytest.param('{"name":"libb","version":' + "1" * 10_000 + "}", "not JSON (a number with too many digits)", id="10000-digit-number"),
    pytest.param('{"name":"libb","version":"1.5","description":"\\ud800"}', r"a string holds a lone surrogate (\ud800)",
                 id="lone-surrogate"),
    pytest.param('{"name":"\\udfff","version":"1.5"}', r"lone surrogate (\udfff)", id="lone-surrogate-name"),
    pytest.param('{"name":"libb","version":"1.5","x":' + "[" * 20_000 + "]" * 20_000 + "}",
                 f"JSON nested deeper than {MAX_JSON_DEPTH} levels", id="nested-20000"),
    pytest.param('{"name":"libb","version":"1.5","x":' + "[" * 100_000 + "]" * 100_000 + "}",
                 f"line is 200,036 bytes long (at most {MAX_LINE_BYTES:,})", id="nested-100000"),
    pytest.param(_line({**entry("libb", "1.5"), "description": "d" * 70_000}), "bytes long (at most 65536)",
                 id="line-over-cap"),
    pytest.param('{"name":"lib\\u001b[31mb","version":"1.5"}', r"name 'lib\x1b[31mb' is not a valid component name",
                 id="escape-sequence-in-name"),
    pytest.param('{"name":"libb\\n","version":"1.5"}', r"name 'libb\n' is not a valid component name",
                 id="newline-after-name"),
    pytest.param(_line(entry("libb", "1.5", description="red \x1b[31m text")),
                 r"description 'red \x1b[31m text' holds control characters", id="escape-sequence-in-description"),
    pytest.param(_line(entry("b" * (MAX_NAME_LEN + 1), "1.5")), "is not a valid component name", id="name-too-long"),
    pytest.param(_line(entry("../../../etc/passwd", "1.5")), "'../../../etc/passwd' is not a valid component name",
                 id="path-as-name"),
    pytest.param('[1, 2]', "the line must be an object, not a list", id="not-an-object"),
    pytest.param('{"name":"libb","version":', "not JSON", id="truncated"),
    pytest.param(_line(entry("libb", "latest")), "version 'latest' is not a version", id="not-a-version"),
    pytest.param(_line(entry("libb", "1.5", deps=[{"name": "zlib", "req": ">>1"}])),
                 "deps[0].req '>>1' is not a version range", id="bad-range"),
    pytest.param(_line(entry("libb", "1.5", tags=[f"t{i}" for i in range(65)])), "tags has 65 items (at most 64)",
                 id="too-many-tags"),
    pytest.param(_line(entry("libb", "1.5", deps=["zlib"] * 257)), "deps has 257 items (at most 256)",
                 id="too-many-deps"),
    pytest.param(_line(entry("libb", "1.5", targets=["linux-" + "x" * 100])), "targets[0]", id="long-target"),
    pytest.param(_line({**entry("libb", "1.5"), "source": {"git": "g" * 3000}}), "source.git", id="long-git-url"),
    pytest.param(_line({**entry("libb", "1.5"), "yanked": "no"}), "yanked must be true or false", id="yanked-string"),
    pytest.param(_line({**entry("libb", "1.5"), "source": {"sha256": "0" * 300}}), "source.sha256",
                 id="long-sha256"),
    pytest.param(_line({**entry("libb", "1.5"), "source": {"rev": "r" * 300}}), "source.rev", id="long-rev"),
    pytest.param(_line(entry("libb", "1.5", deps=[{"name": "zlib", "req": ">=1\u0007"}])),
                 "deps[0].req", id="bell-in-range"),
    pytest.param(_line(entry("libb", "1.5", deps=[{"name": "zlib", "req": ">=1"}, {"name": "../x", "req": ">=1"}])),
                 "deps[1].name '../x' is not a valid component name", id="path-as-dep-name"),
    pytest.param(_line(entry("libb", "1.5", deps=[{"name": "z" * (MAX_NAME_LEN + 1), "req": ">=1"}])),
                 "deps[0].name", id="long-dep-name"),
    pytest.param(_line(entry("libb", "1.5", deps=[{"name": "zlib", "req": ">=1" + " " * 300}])), "deps[0].req",
                 id="long-range"),
    pytest.param(_line({**entry("libb", "1.5"), "detect": {}}), "detect must be a list", id="detect-empty-object"),
    pytest.param(_line({**entry("libb", "1.5"), "install": 0}), "install must be a list", id="install-zero"),
]


@pytest.mark.parametrize("bad, what", BAD_LINES)
def test_bad_line_is_skipped_and_reported(index_factory, bad: str, what: str) -> None:
    root = index_factory({"libb": [entry("libb", "1.0")]})
    _add_lines(root, "libb", bad, _line(entry("libb", "2.0")))
    idx = FolderIndex(root)
    assert _versions(idx, "libb") == ["1.0", "2.0"]  # the rest of the file still works
    assert len(idx.reporter.warnings) == 1
    (msg,) = idx.reporter.warnings
    assert msg.startswith(f"{root / LIBB}:2: ") and msg.endswith("; line skipped")
    assert what.replace(",", "") in msg.replace(",", "")
    assert _printable(msg) and len(msg) < 400


def test_control_characters_are_escaped_for_the_reporter(index_factory) -> None:
    seen: list[str] = []

    class Collect(Reporter):
        def on_warning(self, message: str) -> None:
            seen.append(message)

    root = index_factory({"libb": [entry("libb", "1.0")]})
    _add_lines(root, "libb", '{"name":"x\\u001b]0;pwned\\u0007","version":"1"}', '{"name":"\\u009b31m","version":"1"}')
    idx = open_index(str(root), reporter=Collect())
    assert _versions(idx, "libb") == ["1.0"]
    assert len(seen) == 2 and seen == idx.reporter.warnings
    assert r"'x\x1b]0;pwned\x07'" in seen[0] and r"'\x9b31m'" in seen[1]
    assert all(_printable(m) for m in seen)


def test_many_bad_lines_are_counted_not_listed(index_factory) -> None:
    root = index_factory({"libb": [entry("libb", "1.0")]})
    _add_lines(root, "libb", *(['{"name":"nope"'] * 100))
    idx = FolderIndex(root)
    assert _versions(idx, "libb") == ["1.0"]
    assert len(idx.reporter.warnings) == 21
    assert idx.reporter.warnings[-1] == f"{root / LIBB}: 80 more bad lines skipped"


def test_a_file_with_no_good_line_is_an_unknown_component(libb_index: Path) -> None:
    p = libb_index / LIBB
    p.write_text(_line(entry("liba", "9.0")) + "\n")
    idx = FolderIndex(libb_index)
    assert idx.entries("libb") == []
    assert len(idx.reporter.warnings) == 1


# -- 1, 6: size and version caps ----------------------------------------------------------------

def test_million_version_file_is_refused_fast_in_bounded_memory(index_factory) -> None:
    root = index_factory({"liba": [entry("liba", "1.0")]})
    p = root / entry_path("big")
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        for start in range(0, 1_000_000, 100_000):
            f.write("".join(f'{{"name":"big","version":"0.0.{i}"}}\n' for i in range(start, start + 100_000)))
    assert p.stat().st_size > MAX_FILE_BYTES
    idx = FolderIndex(root)
    tracemalloc.start()
    try:
        with pytest.raises(IndexReadError) as ei:
            idx.entries("big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ei.value.message == (f"{p}: a component file of {p.stat().st_size:,} bytes, over the cap of "
                                f"{MAX_FILE_BYTES:,} bytes; refused")
    assert peak < 1024 * 1024  # the file was never read
    with pytest.raises(IndexReadError, match="refused"):  # the refusal is remembered, still an error
        idx.entries("big")
    # a scan (no summary.jsonl) and reindex leave it out with one warning; the rest still works
    (root / SUMMARY).unlink()
    assert [s.name for s in FolderIndex(root).summaries()] == ["liba"]
    rep = Reporter()
    assert reindex(root, reporter=rep) == 1
    assert [w for w in rep.warnings if "big" in w] == [ei.value.message]
    assert [json.loads(x)["name"] for x in (root / SUMMARY).read_text().splitlines()] == ["liba"]


def test_too_many_versions_is_refused(index_factory) -> None:
    root = index_factory({"liba": [entry("liba", "1.0")]})
    p = _add_lines(root, "many", *(f'{{"name":"many","version":"1.{i}"}}' for i in range(MAX_VERSIONS + 1)))
    assert p.stat().st_size < MAX_FILE_BYTES
    with pytest.raises(IndexReadError) as ei:
        FolderIndex(root).entries("many")
    assert ei.value.message == f"{p}: 10,001 versions, over the cap of 10,000 per component; refused"
    # exactly at the cap is fine
    p.write_text("".join(f'{{"name":"many","version":"1.{i}"}}\n' for i in range(MAX_VERSIONS)))
    assert len(FolderIndex(root).entries("many")) == MAX_VERSIONS


def test_summary_over_its_cap_is_refused(index_factory) -> None:
    root = index_factory({"liba": [entry("liba", "1.0")]})
    with open(root / SUMMARY, "r+b") as f:
        f.truncate(64 * 1024 * 1024 + 1)  # sparse: nothing is written, and nothing should be read
    idx = FolderIndex(root)
    with pytest.raises(IndexReadError, match=r"summary.jsonl of 67,108,865 bytes, over the cap of 67,108,864 bytes"):
        idx.summaries()
    assert _versions(idx, "liba") == ["1.0"]


def test_config_json_depth_and_size(tmp_path: Path) -> None:
    root = tmp_path / "idx"
    root.mkdir()
    (root / CONFIG).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(IndexReadError, match="config.json of 200,000 bytes, over the cap of 65,536 bytes; refused"):
        FolderIndex(root)
    (root / CONFIG).write_text('{"format":1,"x":' + "[" * 1000 + "]" * 1000 + "}")
    with pytest.raises(IndexReadError, match=r"malformed config.json \(JSON nested deeper than 32 levels\)"):
        FolderIndex(root)
    (root / CONFIG).write_text('{"format":1,"name":"evil\\u001b[2J"}')
    with pytest.raises(IndexReadError) as ei:
        FolderIndex(root)
    assert ESC not in ei.value.message and r"\x1b[2J" in ei.value.message


def test_non_utf8_file_is_refused(index_factory) -> None:
    root = index_factory({"liba": [entry("liba", "1.0")]})
    (root / entry_path("liba")).write_bytes(b'{"name":"liba","version":"1\xff"}\n')
    with pytest.raises(IndexReadError, match=r"not UTF-8 text .*; refused"):
        FolderIndex(root).entries("liba")


def test_json_depth_check_needs_no_recursion() -> None:
    deep = "[" * 1_000_000 + "]" * 1_000_000
    assert json_too_deep(deep)
    with pytest.raises(IndexDataError, match="nested deeper"):
        load_json_line(deep)
    # brackets inside strings do not count; real nesting up to the cap parses
    assert not json_too_deep('{"a":"' + "[" * 1000 + '"}')
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert load_json_line(ok) is not None and json_too_deep("[" + ok + "]")
    assert load_json_line('"\\ud83d\\ude00"') == "\U0001F600"  # a surrogate pair is fine


def test_valid_name_rules() -> None:
    assert valid_name("lib-x.y_z") and valid_name("a" * MAX_NAME_LEN)
    for bad in ("", "a" * (MAX_NAME_LEN + 1), "Lib", "-x", "a/b", "..", "a\n", "a b", "\ud800"):
        assert not valid_name(bad), bad


# -- 3: summary.jsonl -----------------------------------------------------------------------------

def _summary(name: str, versions: list[str] | None = None) -> str:
    return _line({"name": name, "kind": "lib", "tags": [], "description": "", "versions": versions or ["1.0"]})


def test_summary_bad_lines_are_skipped_and_never_rewritten(index_factory) -> None:
    root = index_factory({"liba": [entry("liba", "1.0")], "libb": [entry("libb", "1.0")]})
    s = root / SUMMARY
    good = s.read_text()
    s.write_text(good + "\n".join([
        _summary("../../../etc/passwd"),
        '{"name":"x","versions":' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"name":"\\ud800"}',
        _summary("liba", ["6.6.6"]),
        _summary("x", ["1" * 100]),
    ]) + "\n")
    rep = Reporter()
    idx = FolderIndex(root, reporter=rep)
    sums = {x.name: x.versions for x in idx.summaries()}
    assert sums == {"liba": ("1.0",), "libb": ("1.0",)}
    w = idx.reporter.warnings
    assert len(w) == 5 and w == rep.warnings
    assert w[0] == (f"{s}:3: name '../../../etc/passwd' is not a valid component name "
                    f"([a-z0-9][a-z0-9._-]*, at most 64 characters); line skipped")
    assert w[1] == f"{s}:4: JSON nested deeper than 32 levels; line skipped"
    assert "lone surrogate" in w[2] and w[3] == f"{s}:6: a second line for 'liba'; line skipped"
    assert "versions[0]" in w[4]
    assert idx.all_names() == ["liba", "libb"]
    # the writer drops what the reader skips: an append rewrites the summary without them
    append_entry(root, entry("libb", "1.1"), reporter=rep)
    names = [json.loads(x)["name"] for x in s.read_text().splitlines()]
    assert names == ["liba", "libb"]
    assert "../../../etc/passwd" not in s.read_text()


def test_reindex_never_writes_an_invalid_name(index_factory) -> None:
    root = index_factory({"liba": [entry("liba", "1.0")]})
    (root / SUMMARY).write_text(_summary("../../../etc/passwd") + "\n")
    # a file named like a component but at the wrong place, and one whose lines name another
    stray = root / "et" / "c"
    stray.mkdir(parents=True)
    (stray / "passwd").write_text(_line(entry("passwd", "1.0")) + "\n")
    _add_lines(root, "libb", _line(entry("../../../etc/passwd", "1.0")))
    rep = Reporter()
    assert reindex(root, reporter=rep) == 1
    assert [json.loads(x)["name"] for x in (root / SUMMARY).read_text().splitlines()] == ["liba"]
    assert any("'../../../etc/passwd' is not a valid component name" in m for m in rep.warnings)


def test_writer_refuses_invalid_data(index_factory, tmp_path: Path) -> None:
    root = index_factory({"libb": [entry("libb", "1.0")]})
    before = (root / LIBB).read_bytes()
    with pytest.raises(IndexDataError, match="name 'liba' does not match the file, which holds 'libb'"):
        write_component(root, [entry("libb", "1.0"), entry("liba", "9.0")])
    with pytest.raises(IndexDataError, match="is not a valid component name"):
        write_component(root, [entry("../../../etc/passwd", "1.0")])
    with pytest.raises(IndexDataError, match="is not a valid component name"):
        append_entry(root, entry("../../../etc/passwd", "1.0"))
    with pytest.raises(IndexDataError, match="is not a valid component name"):
        update_summary_for(root, "../../../etc/passwd")
    with pytest.raises(IndexDataError, match="version 'x' is not a version"):
        append_entry(root, entry("libb", "x"))
    with pytest.raises(IndexDataError, match="lone surrogate"):
        append_entry(root, entry("libb", "2.0", description="\ud800"))
    with pytest.raises(IndexDataError, match="line is .* bytes long"):
        append_entry(root, {**entry("libb", "2.0"), "description": "d" * MAX_LINE_BYTES})
    assert (root / LIBB).read_bytes() == before
    assert not (tmp_path / "etc").exists() and not list(root.rglob("passwd"))


# -- 4: layering and the protocol -----------------------------------------------------------------

def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_layering() -> None:
    idx = ROOT / "ckpm" / "index"
    assert not {"ckpm.index.folder", "ckpm.index.git", "ckpm.index.http", "ckpm.index.open",
                "ckpm.index.writer", "ckpm.index"} & _imports(idx / "base.py")
    assert "ckpm.index.writer" not in _imports(idx / "folder.py")
    writer = (idx / "writer.py").read_text()
    assert "def atomic_write" not in writer and "from ckpm.fsutil import atomic_write" in writer
    import ckpm.index.base as base

    assert not hasattr(base, "open_index") and not hasattr(base, "embedded_index_path")
    assert open_index(None).url == EMBEDDED and (embedded_index_path() / CONFIG).is_file()


def test_every_client_completes_the_protocol(index_factory, git_index_factory, http_index_server,
                                             ckpm_cache_dir: Path) -> None:
    comps = {"liba": [entry("liba", "1.0")], "libb": [entry("libb", "1.0")]}
    folder = index_factory(comps)
    http_index_server.serve(folder)
    clients = [FolderIndex(folder), GitIndex(git_index_factory(comps).url, cache_dir=ckpm_cache_dir),
               HttpIndex(http_index_server.url, cache_dir=ckpm_cache_dir)]
    for idx in clients:
        assert isinstance(idx, Index)
        assert idx.all_names() == ["liba", "libb"]
        assert idx.reporter.warnings == []
        idx.update()
        assert _versions(idx, "liba") == ["1.0"]
        idx.close()


def test_folder_update_rereads(index_factory) -> None:
    root = index_factory({"liba": [entry("liba", "1.0")]})
    idx = FolderIndex(root)
    assert _versions(idx, "liba") == ["1.0"]
    append_entry(root, entry("liba", "1.1"))
    assert _versions(idx, "liba") == ["1.0"]  # memoised
    assert idx.update() is None
    assert _versions(idx, "liba") == ["1.0", "1.1"]
    assert [s.versions for s in idx.summaries()] == [("1.0", "1.1")]


# -- 5: stale summary -----------------------------------------------------------------------------

def test_stale_summary_left_out_by_folder_and_git(index_factory, git_index_factory, ckpm_cache_dir: Path) -> None:
    comps = {"liba": [entry("liba", "1.0")], "libb": [entry("libb", "1.0", tags=["x"])]}
    root = index_factory(comps)
    (root / LIBB).unlink()  # deleted by hand; summary.jsonl not rebuilt
    idx = FolderIndex(root)
    assert [s.name for s in idx.summaries()] == ["liba"]
    assert idx.reporter.warnings == [f"{root / SUMMARY}: 'libb' has no component file (a stale summary; "
                            "`ckpm index reindex` rebuilds it); left out"]
    assert idx.all_names() == ["liba"]
    assert api.search([idx], tags="x") == []

    gi = git_index_factory(comps)
    (gi.folder / LIBB).unlink()
    gi.git.commit({p.relative_to(gi.folder).as_posix(): p.read_bytes()
                   for p in gi.folder.rglob("*") if p.is_file()}, "delete libb, keep the summary")
    g = GitIndex(gi.url, cache_dir=ckpm_cache_dir)
    assert [s.name for s in g.summaries()] == ["liba"]
    assert any("'libb' has no component file" in w for w in g.reporter.warnings)


def test_http_stale_summary_is_tolerated(index_factory, http_index_server, ckpm_cache_dir: Path) -> None:
    root = index_factory({"liba": [entry("liba", "1.0")], "libb": [entry("libb", "1.0")]})
    (root / LIBB).unlink()
    http_index_server.serve(root)
    idx = HttpIndex(http_index_server.url, cache_dir=ckpm_cache_dir)
    # HTTP cannot list files cheaply: the summary is handed out as published, and entries() is []
    assert [s.name for s in idx.summaries()] == ["liba", "libb"]
    assert idx.entries("libb") == []
    hits = api.search([idx])
    assert [h.name for h in hits] == ["liba", "libb"]


# -- git and HTTP clients share the checks ---------------------------------------------------------

def test_git_index_skips_bad_lines(git_index_factory, ckpm_cache_dir: Path) -> None:
    gi = git_index_factory({"libb": [entry("libb", "1.0")]})
    _add_lines(gi.folder, "libb", _line(entry("liba", "9.0")), '{"name":"libb","version":"\\ud800"}',
               _line(entry("libb", "2.0")))
    gi.commit("damage libb")
    rep = Reporter()
    idx = open_index(gi.url, cache_dir=ckpm_cache_dir, reporter=rep)
    assert isinstance(idx, GitIndex)
    assert _versions(idx, "libb") == ["1.0", "2.0"]
    assert rep.warnings == idx.reporter.warnings == [
        f"{gi.url}#{LIBB}:2: name 'liba' does not match the file, which holds 'libb'; line skipped",
        f"{gi.url}#{LIBB}:3: a string holds a lone surrogate (\\ud800); line skipped",
    ]


def test_git_index_refuses_an_oversized_blob_before_reading_it(git_index_factory, ckpm_cache_dir: Path) -> None:
    gi = git_index_factory({"libb": [entry("libb", "1.0")]})
    with open(gi.folder / LIBB, "ab") as f:
        f.write(b" " * (MAX_FILE_BYTES + 1))
    gi.commit("grow libb past the cap")
    idx = open_index(gi.url, cache_dir=ckpm_cache_dir)
    with pytest.raises(IndexReadError, match=r"a component file of [\d,]+ bytes, over the cap of 8,388,608 bytes; refused"):
        idx.entries("libb")


def test_http_index_skips_bad_lines(index_factory, http_index_server, ckpm_cache_dir: Path) -> None:
    root = index_factory({"libb": [entry("libb", "1.0")]})
    _add_lines(root, "libb", _line(entry("liba", "9.0")), _line(entry("libb", "2.0")))
    (root / SUMMARY).write_text((root / SUMMARY).read_text() + _summary("../../../etc/passwd") + "\n")
    http_index_server.serve(root)
    rep = Reporter()
    idx = open_index(http_index_server.url, cache_dir=ckpm_cache_dir, reporter=rep)
    assert isinstance(idx, HttpIndex)
    assert _versions(idx, "libb") == ["1.0", "2.0"]
    assert [s.name for s in idx.summaries()] == ["libb"]
    base = http_index_server.url + "/"
    assert rep.warnings == idx.reporter.warnings == [
        f"{base}{LIBB}:2: name 'liba' does not match the file, which holds 'libb'; line skipped",
        f"{base}{SUMMARY}:2: name '../../../etc/passwd' is not a valid component name "
        "([a-z0-9][a-z0-9._-]*, at most 64 characters); line skipped",
    ]


# -- end to end: the ckpm command ---------------------------------------------------------------

def _ckpm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CKPM_INDEX"}
    env["CKPM_CACHE_DIR"] = str(cwd / ".cache")
    return subprocess.run([sys.executable, "-m", "ckpm.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_end_to_end(libb_index: Path, tmp_path: Path) -> None:
    # damage more: a control sequence in a bad line, a bad summary line, an oversized component
    _add_lines(libb_index, "libb", '{"name":"\\u001b[2Jlibb","version":"5"}')
    s = libb_index / SUMMARY
    s.write_text(s.read_text() + _summary("../../../etc/passwd") + "\n")
    big = libb_index / entry_path("big")
    big.parent.mkdir(parents=True, exist_ok=True)
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    proj = tmp_path / "proj"
    proj.mkdir()
    assert _ckpm("init", ".", cwd=proj).returncode == 0
    ix = ("--index", str(libb_index))

    add = _ckpm(*ix, "add", "libb", "--no-host", cwd=proj)
    assert add.returncode == 0, add.stderr
    assert "Traceback" not in add.stderr and ESC not in add.stdout + add.stderr
    lock = (proj / "ckpm.lock").read_text()
    assert 'name = "libb"\nversion = "2.0"' in lock and 'name = "liba"' not in lock
    assert "warning: " in add.stderr and "\\x1b[2Jlibb" in add.stderr  # the bad line reaches the user, escaped

    show = _ckpm(*ix, "show", "libb", cwd=proj)
    assert show.returncode == 0 and "versions (2): 1.0, 2.0" in show.stdout
    assert "Traceback" not in show.stderr and ESC not in show.stdout + show.stderr

    search = _ckpm(*ix, "search", "--json", cwd=proj)
    assert search.returncode == 0, search.stderr
    assert [h["name"] for h in json.loads(search.stdout)["data"]] == ["liba", "libb"]
    assert "Traceback" not in search.stderr

    refused = _ckpm(*ix, "show", "big", cwd=proj)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: {big}: a component file of {MAX_FILE_BYTES + 1:,} bytes, over the cap of {MAX_FILE_BYTES:,} bytes; "
        "refused"]

    reidx = _ckpm("index", "reindex", str(libb_index), cwd=proj)
    assert reidx.returncode == 0 and "Traceback" not in reidx.stderr
    assert [json.loads(x)["name"] for x in s.read_text().splitlines()] == ["liba", "libb"]


def test_find_entry_reads_one_line_and_agrees_with_entries(tmp_path: Path) -> None:
    """The re-lock check reads one line per locked package: the same entry entries() gives
    (the first valid line of that version), without checking the others."""
    from ckpm.index.folder import FolderIndex
    from ckpm.index.layout import entry_path
    from ckpm.index.writer import init_index

    root = tmp_path / "idx"
    init_index(root, "lab")
    p = root / entry_path("lib-a")
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {"name": "lib-a", "version": "1.0", "cksum": "first"},
        {"name": "lib-a", "version": "2.0", "deps": [{"name": "x", "req": "not a range"}]},  # bad: skipped
        {"name": "lib-a", "version": "2.0", "cksum": "good"},
        {"name": "lib-a", "version": "1.0", "cksum": "second"},  # a duplicate: the first wins
        {"name": "other", "version": "3.0"},  # another component's line: skipped
    ]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    fresh = FolderIndex(root)
    got = {v: fresh.find_entry("lib-a", v) for v in ("1.0", "2.0", "3.0", "9")}
    assert fresh._entries == {}  # nothing was memoised: only lines were read
    read = FolderIndex(root)
    for v, e in got.items():
        want = next((x for x in read.entries("lib-a") if x.version_text == v), None)
        assert (e and (e.version_text, e.cksum)) == (want and (want.version_text, want.cksum))
    assert got["1.0"].cksum == "first" and got["2.0"].cksum == "good" and got["3.0"] is None
    assert read.find_entry("LIB-A", "2.0").cksum == "good"  # from the memoised entries
    assert fresh.find_entry("no-such", "1.0") is None and fresh.find_entry("Not A Name!", "1") is None


class _Slow(dict):
    """A dict that is not exactly a dict: check_entry takes its detailed path (the reference)."""


GOOD_LINES = [
    entry("libb", "1.5"),
    entry("libb", "2.0rc1", deps=[{"name": "zlib", "req": ">=1.2,<2"}, {"req": "*", "name": "Lib-C"}]),
    entry("libb", "1.5", deps=[{"name": "zlib", "req": ""}, {"name": "cc", "req": ">=9", "kind": "build"}]),
    entry("libb", "1.5", deps=[{"name": "zlib", "req": ">=1", "tags": ["Fast"], "targets": ["linux-*"]}]),
    {**entry("libb", "1.5", tags=["Compiler", "c++"]), "description": "caf\u00e9 \u00ae", "targets": []},
    {**entry("libb", "1.5"), "source": {"git": "https://x/y.git", "rev": "a" * 40, "sha256": "0" * 64,
                                         "urls": ["https://x/a.tgz"], "note": "x"}},
    {**entry("libb", "1.5"), "source": {"git": "https://x/y.git", "note": 3}},
    {**entry("libb", "1.5"), "detect": None, "install": [], "yanked": None, "cksum": None, "pubtime": "2026"},
    {**entry("libb", "1.5"), "detect": [{"exe": "gcc"}], "install": [{"url": "https://x"}], "yanked": True},
    {**entry("libb", "1.5"), "kind": None, "description": None, "tags": [], "source": None},
    {**entry("libb", "1.5"), "description": "tab\tinside", "source": {"subdir": "s" * 1000}},
]


@pytest.mark.parametrize("raw", GOOD_LINES, ids=range(len(GOOD_LINES)))
def test_fast_check_of_a_line_agrees_with_the_detailed_one(raw: dict) -> None:
    """The usual line is checked at C speed; whatever it accepts, the detailed path accepts
    the same way (the same fields, version and requirements)."""
    from ckpm.model.entry import IndexEntry, _entry_fast, check_entry

    line = _line(raw)
    fast = IndexEntry.from_line(line, name="libb")
    slow = check_entry(_Slow(json.loads(line)), name="libb")
    nulls = "null" in line or ":3}" in line
    assert (_entry_fast(json.loads(line), "libb") is None) == nulls  # the usual ones take the fast path
    assert fast.to_json() == slow.to_json()
    for f in ("name", "version_text", "kind", "tags", "description", "targets", "deps_raw", "cksum", "detect",
              "install", "yanked", "pubtime", "version", "deps"):
        assert getattr(fast, f) == getattr(slow, f), f
    assert dict(fast.source) == dict(slow.source)


def test_stale_summary_check_counts_files_as_a_stat_would(index_factory, tmp_path: Path) -> None:
    """One listing per layout folder gives what os.path.isfile gives per line: a link to a
    file counts, a folder or a dangling link at the layout path does not, a missing folder
    leaves out every line in it."""
    comps = {n: [entry(n, "1.0")] for n in ("liba", "libb", "libc", "libd", "zzz-e")}
    root = index_factory(comps)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes((root / entry_path("liba")).read_bytes())
    (root / entry_path("liba")).unlink()
    (root / entry_path("liba")).symlink_to(elsewhere)  # a link to a file: present
    (root / entry_path("libb")).unlink()
    (root / entry_path("libb")).mkdir()  # a folder where the file should be: absent
    (root / entry_path("libc")).unlink()
    (root / entry_path("libc")).symlink_to(tmp_path / "nowhere")  # dangling: absent
    shutil.rmtree(root / entry_path("zzz-e").rsplit("/", 1)[0])  # its whole folder gone
    idx = FolderIndex(root)
    names = [s.name for s in idx.summaries()]
    assert names == ["liba", "libd"]
    assert names == [n for n in sorted(comps) if os.path.isfile(root / entry_path(n))]
    assert len(idx.reporter.warnings) == 3
