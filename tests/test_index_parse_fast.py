"""The fast reading of component files gives what the line-by-line path gives.

:func:`ckpm.index.base.parse_component` checks a file's usual lines in one pass
(:func:`ckpm.model.entry.fast_entries`: file-wide looks at escapes, control characters,
depth and size, the JSON scanner called directly, shared fields checked once) and leaves
anything unusual to :meth:`IndexEntry.from_line`. The reference here is the line-by-line
path itself: every line through ``IndexEntry.from_line``, each bad one reported as
``FILE:LINE: what is wrong; line skipped``. Both must give the same entries (every field,
``raw``, ``version``, ``deps``) and the same messages, whatever the file holds.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path

import pytest

from ckpm.index.base import _parse_lines, parse_component, summary_of_component
from ckpm.index.folder import FolderIndex, _read_upto
from ckpm.index.layout import entry_path
from ckpm.index.writer import init_index
from ckpm.model import entry as entry_module
from ckpm.model.entry import MAX_JSON_DEPTH, MAX_LINE_BYTES, IndexEntry, fast_entries, fast_summary_fields
from ckpm.model.requirement import Requirement, plain_requirement, requirement_from_index_dep
from ckpm.model.version import parse_specifier
from ckpm.testing import entry
from test_index_data import BAD_LINES, GOOD_LINES

FIELDS = [f.name for f in dataclasses.fields(IndexEntry)]


def _line(d: dict) -> str:
    return json.dumps(d, separators=(",", ":"))


def reference(text: str, name: str | None) -> tuple[list[IndexEntry], list[str]]:
    """What parse_component gave before the fast path: each line through IndexEntry.from_line."""
    return _parse_lines(text, "F", "index line", lambda line: IndexEntry.from_line(line, name=name))


def same_entry(a: IndexEntry, b: IndexEntry) -> None:
    for f in FIELDS:
        assert getattr(a, f) == getattr(b, f), f
        assert type(getattr(a, f)) is type(getattr(b, f)), f
    assert a.version == b.version and a.version.text == b.version.text
    assert a.deps == b.deps and all(type(x) is Requirement for x in a.deps)
    assert [x.__dict__ for x in a.deps] == [x.__dict__ for x in b.deps]
    assert a.raw == b.raw and a.to_json() == b.to_json() and a.to_line() == b.to_line()
    assert a == b and repr(a) == repr(b)


def check_file(text: str, name: str | None = "libb") -> tuple[list[IndexEntry], list[str]]:
    got, problems = parse_component(text, "F", name)
    want, want_problems = reference(text, name)
    assert problems == want_problems
    assert len(got) == len(want)
    for a, b in zip(got, want):
        same_entry(a, b)
    if name is not None:  # and a scan for search reads the same file as its own reference does
        assert summary_of_component(text, "F", name) == summary_of_component(text, "F", name, fast=False)
    return got, problems


GOOD = [_line(raw) for raw in GOOD_LINES]
BAD = [str(p.values[0]) for p in BAD_LINES]


def test_the_usual_lines_take_the_fast_path() -> None:
    """Not a vacuous comparison: the lines a writer makes are accepted by the fast path."""
    lines = [_line(entry("libb", f"1.{i}", deps=[f"zlib >=1.{i}", "lib-c"], tags=["x"])) for i in range(5)]
    text = "\n".join(lines) + "\n"
    done = fast_entries(text, text.split("\n"), "libb")
    assert all(e is not None for e in done[:-1]) and done[-1] is None
    check_file(text)
    usual = [x for x in GOOD if "null" not in x and ":3}" not in x]
    text = "\n".join(usual) + "\n"
    assert None not in fast_entries(text, text.split("\n"), "libb")[:-1]
    assert None not in fast_summary_fields(text, text.split("\n"), "libb")[:-1]


def test_good_lines_one_file() -> None:
    entries, problems = check_file("\n".join(GOOD) + "\n")
    assert len(entries) == len(GOOD) and problems == []


@pytest.mark.parametrize("bad", BAD, ids=[p.id for p in BAD_LINES])
def test_a_bad_line_among_good_ones_is_reported_as_before(bad: str) -> None:
    text = "\n".join([GOOD[0], bad, GOOD[1], "", GOOD[2]]) + "\n"
    entries, problems = check_file(text)
    assert len(entries) == 3
    assert len(problems) == 1 and problems[0].startswith("F:2: ") and problems[0].endswith("; line skipped")


def test_every_bad_line_in_one_file() -> None:
    lines = [x for pair in zip(GOOD * 3, BAD) for x in pair]
    entries, problems = check_file("\n".join(lines))
    assert len(entries) == len(BAD) and len(problems) == len(BAD)
    assert [p.split(":")[1] for p in problems] == [str(2 * i + 2) for i in range(len(BAD))]


UNUSUAL = [
    pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
    pytest.param(lambda t: "\ufeff" + t, id="bom"),
    pytest.param(lambda t: " " + t.replace("\n", "\n "), id="leading-blank"),
    pytest.param(lambda t: t.replace("\n", " \t\n"), id="trailing-blank"),
    pytest.param(lambda t: t.replace("\n", "\n\n  \n"), id="blank-lines"),
    pytest.param(lambda t: t.replace('"description":"', '"description":"caf\u00e9 \u00ae '), id="non-ascii"),
    pytest.param(lambda t: t.replace('"description":"', '"description":"caf\\u00e9 \\"q\\" '), id="escapes"),
    pytest.param(lambda t: t.replace('"description":"', '"description":"\\u0085 \u0085 '), id="c1-control"),
    pytest.param(lambda t: t.replace('"description":"', '"description":"\x7f'), id="del"),
    pytest.param(lambda t: t.replace('"description":"', '"description":"\\ud83d\\ude00 '), id="surrogate-pair"),
    pytest.param(lambda t: t.replace('"description":"', '"description":"\\ud83d '), id="lone-surrogate"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":false,"x":' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH),
                 id="depth-at-limit"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":false,"x":' + "[" * (MAX_JSON_DEPTH + 1)
                                     + "]" * (MAX_JSON_DEPTH + 1)), id="depth-over-limit"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":false,"x":"' + "[{" * 40 + '"'), id="brackets-in-string"),
    pytest.param(lambda t: t.replace("}\n", "} \n"), id="space-before-newline"),
    pytest.param(lambda t: t.replace("}\n", "}{}\n"), id="two-values"),
    pytest.param(lambda t: t.replace('"name":"libb"', '"name":"LIBB"'), id="upper-name"),
    pytest.param(lambda t: t.replace('"name":"zlib"', '"name":"ZLib"'), id="upper-dep-name"),
    pytest.param(lambda t: t.replace('"name":"zlib"', '"name":"zl\\u0130b"'), id="dep-name-lowered-past-ascii"),
    pytest.param(lambda t: t.replace('"req":">=1"', '"req":""'), id="empty-range"),
    pytest.param(lambda t: t.replace('"req":">=1"', '"req":null'), id="null-range"),
    pytest.param(lambda t: t.replace('"req":">=1"', '"req":">=1","optional":true'), id="optional-dep"),
    pytest.param(lambda t: t.replace('"kind":"lib"', '"kind":null'), id="null-kind"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":0'), id="yanked-zero"),
    pytest.param(lambda t: t.replace('"tags":[', '"tags":[1,'), id="number-tag"),
    pytest.param(lambda t: t.replace('"targets":["*"]', '"targets":[]'), id="no-targets"),
    pytest.param(lambda t: t.replace('"deps":[', '"deps":[1,'), id="number-dep"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":false,"version":"2.0"'), id="duplicate-key"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":false,"n":1e999,"m":NaN'), id="odd-numbers"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":false,"cksum":"c","pubtime":"2026"'), id="cksum"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":false,"detect":[{"exe":"gcc"}]'), id="detect"),
    pytest.param(lambda t: t.replace('"yanked":false', '"yanked":false,"install":[1]'), id="install-number"),
    pytest.param(lambda t: t.replace('"source":{', '"source":{"subdir":"' + "s" * 2000 + '",'), id="long-subdir"),
]


def _usual_file(n: int = 6) -> str:
    lines = [_line({**entry("libb", f"1.{i}", deps=[{"name": "zlib", "req": ">=1"}, f"lib-c >=2.{i}"]),
                    "tags": ["a", "b"], "yanked": False})
             for i in range(n)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("change", UNUSUAL)
def test_unusual_files_read_as_before(change) -> None:
    text = change(_usual_file())
    check_file(text)
    # the change on one line only, the others usual
    lines = _usual_file().split("\n")
    lines[2] = change(lines[2] + "\n").rstrip("\n") if not change(lines[2] + "\n").endswith("\r\n") else change(
        lines[2] + "\n")[:-1]
    check_file("\n".join(lines))


def test_a_file_over_the_line_cap_in_all_and_a_line_over_it() -> None:
    many = _usual_file(400)  # more than MAX_LINE_BYTES in all: each line's size is checked
    assert len(many) > MAX_LINE_BYTES
    entries, _ = check_file(many)
    assert len(entries) == 400
    long = _line({**entry("libb", "9.0"), "description": "d" * 70_000})
    _, problems = check_file(many + long + "\n" + _usual_file(1))
    assert len(problems) == 1 and problems[0].startswith("F:401: line is ")


def test_a_file_without_a_name_checks_each_line_name() -> None:
    text = _usual_file() + _line(entry("other", "1.0")) + "\n" + _line(entry("Not A Name", "1.0")) + "\n"
    text += '{"version":"1.0"}\n{"name":null,"version":"1.0"}\n{"name":1,"version":"1.0"}\n'
    entries, problems = check_file(text, None)
    assert {e.name for e in entries} == {"libb", "other"} and len(problems) == 4
    entries, problems = check_file(text, "libb")
    assert {e.name for e in entries} == {"libb"} and len(problems) == 5


def test_shared_fields_are_checked_again_when_they_change() -> None:
    lines = [_line({**entry("libb", f"1.{i}"), "tags": tags, "targets": targets, "description": description})
             for i, (tags, targets, description) in enumerate([
                 (["a"], ["*"], "x"), (["a"], ["*"], "x"), (["A", "b"], ["*"], "x"), (["a", "b c"], ["*"], "x"),
                 (["a"], ["linux-" + "x" * 100], "x"), (["a"], ["*"], "y" * 2000), (["a"], ["*"], "x"),
                 ([], [], ""), ([], [], None), (None, ["*"], "x"), (["a"], None, "x")])]
    entries, problems = check_file("\n".join(lines))
    assert len(problems) == 3 and [e.tags for e in entries][:3] == [("a",), ("a",), ("a", "b")]


def test_mutated_lines_read_as_before() -> None:
    """Random damage (a character dropped, doubled or replaced) to usual lines: the same
    entries and the same messages as the line-by-line path."""
    rng = random.Random(20260512)
    base = _usual_file(8).split("\n")
    alphabet = '{}[]",:\\ \t\r\x00\x1b\u00e9\u2028\ud800u0123456789abcdefnull-true.*<>='
    for _ in range(400):
        lines = list(base)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(lines) - 1)
            s = lines[i]
            if not s:
                continue
            j = rng.randrange(len(s))
            op = rng.random()
            if op < 0.3:
                s = s[:j] + s[j + 1:]
            elif op < 0.6:
                s = s[:j] + s[j] + s[j:]
            else:
                s = s[:j] + rng.choice(alphabet) + s[j + 1:]
            lines[i] = s
        check_file("\n".join(lines))


def test_the_dependency_memo_gives_the_same_requirements(monkeypatch) -> None:
    """A dependency seen before is the same Requirement; a memo that overflows starts again."""
    monkeypatch.setattr(entry_module, "_DEP_MEMO_MAX", 3)
    monkeypatch.setattr(entry_module, "_PLAIN_DEP_MEMO", {})
    monkeypatch.setattr(entry_module, "_PLAIN_DEP_NAMES", set())
    monkeypatch.setattr(entry_module, "_PLAIN_DEP_SPECS", {})
    monkeypatch.setattr(entry_module, "_PLAIN_DEP_COUNT", [0])
    lines = [_line(entry("libb", f"1.{i}", deps=[f"dep-{i % 5} >={i % 3}", "zlib", f"Dep-{i % 2}"]))
             for i in range(30)]
    entries, _ = check_file("\n".join(lines))
    assert entries[0].deps[1] == entries[1].deps[1] == Requirement("zlib")
    assert entries[0].deps[2].key == "dep-0"
    assert entry_module._PLAIN_DEP_COUNT[0] <= 3


def test_entries_built_by_the_fast_path_have_the_dataclass_fields() -> None:
    text = _usual_file(2)
    e = fast_entries(text, text.split("\n"), "libb")[0]
    assert e is not None
    assert list(e.__dict__) == FIELDS + ["version", "deps"]
    assert e.tag_set == frozenset({"a", "b"}) and e.supports("linux-x86_64")


def test_plain_requirement_is_the_dataclass() -> None:
    spec = parse_specifier(">=1,<2")
    r = plain_requirement("zlib", spec)
    ref = Requirement(key="zlib", spec=spec)
    assert r == ref and hash(r) == hash(ref) and repr(r) == repr(ref) and r.__dict__ == ref.__dict__
    assert list(r.__dict__) == [f.name for f in dataclasses.fields(Requirement)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.key = "x"  # type: ignore[misc]
    for d in ({"name": "ZLib", "req": ">=1"}, {"req": "", "name": "z"}, {"name": "z", "req": None},
              {"name": "z", "req": ">=1", "kind": "build"}, {"name": "z"}):
        general = Requirement(key=str(d["name"]).lower(), spec=parse_specifier(str(d.get("req") or "*")),
                              kind=str(d.get("kind") or "run"))
        assert requirement_from_index_dep(d) == general


def test_folder_names_files_as_pathlib_does(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "idx"
    init_index(root, "lab")
    rel = entry_path("libb")
    monkeypatch.chdir(tmp_path)
    for given in (root, Path(str(root) + "/"), Path("idx"), Path("./idx/"), Path("idx/../idx")):
        assert FolderIndex(given)._where(rel) == str(given / rel)
    monkeypatch.chdir(root)
    assert FolderIndex(Path("."))._where(rel) == str(Path(".") / rel) == rel


def test_read_upto_reads_all_and_never_past_the_cap(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 100_000)
    for size, most, want in ((100_000, 8 * 1024 * 1024, 100_000), (10, 8 * 1024 * 1024, 100_000),
                             (100_000, 500, 500), (0, 100_001, 100_000), (100_000, 100_001, 100_000)):
        fd = os.open(p, os.O_RDONLY)
        try:
            assert _read_upto(fd, size, most) == b"x" * want
        finally:
            os.close(fd)
