"""Issue 24, finding 8: versions follow the documented grammar and names are compared normalised.

The registry had published ``1.0.0/../../``, ``1.0.0<img src=x onerror=…>`` and
``1.0.1;$(touch …)`id` ``. A version is now at most 64 characters of PEP 440 or semver
(a digit first, then letters, digits and ``. + - _ !``), checked at publish, in the registry and
when an index is read. Names end in a letter or digit, are no Windows device name, and are
compared as PEP 503 compares them (``fo.o`` is ``fo-o``): a publish of another owner's name under
another spelling is refused.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from ckpm.errors import VersionError
from ckpm.model.entry import IndexDataError, check_entry, normalize_name, valid_name
from ckpm.model.version import parse_version
from registry_support import RunningRegistry, line_from_repo, make_users, tagged_component

HOSTILE_VERSIONS = [
    "1.0.0/../../", "1.0.0<img src=x onerror=alert(1)>", "1.0.1;$(touch x)`id`", "1.0.0\\..\\..\\x",
    "1.0.0 beta", "1.0.0\n2.0", "1.0.0\x00", "1.0.0'\"", "1.0.0%2f..%2f", "1.0.0&amp;", "1.0.0|id", "1.0.0>x",
    "1.0.0#frag", "1.0.0?q=1", "1.0.0:x", "1.0.0~rc1", "1.0.0*", "1.0.0$HOME", "1.0.0{a}", "1.0.0@x",
    "1." + "0" * 64, "../1.0", "/1.0", "", "v", "beta", "１.0",
]
GOOD_VERSIONS = ["1.2.0", "v1.2.0", "1.1.1w", "12.2.0-14", "2.39.5.windows.1", "1!2.0", "2.0.0-rc.1+build.5",
                 "1.0.0_1", "1.0.dev3", "3.0.0-rc1", "1." + "0" * 62]
HOSTILE_NAMES = ["foo.", "foo..", "foo-", "foo_", "con", "nul", "aux", "prn", "com1", "lpt9", "con.txt", "nul.tar.gz",
                 "-foo", ".foo", "Foo", "fo o", "fo/o", "a" * 65]
GOOD_NAMES = ["foo", "fo.o", "fo--o", "fo-o", "console", "com10", "auxiliary", "lib-nul-2", "a", "a" * 64]


def test_version_grammar() -> None:
    escaped = []
    for v in HOSTILE_VERSIONS:
        try:
            parse_version(v)
            escaped.append(v)
        except VersionError:
            pass
    assert escaped == []
    for v in GOOD_VERSIONS:
        assert parse_version(v).text == v
    print(f"versions tried: {len(HOSTILE_VERSIONS)}, escaped: {len(escaped)}")


def test_name_grammar_and_normal_form() -> None:
    assert [n for n in HOSTILE_NAMES if valid_name(n)] == []
    assert [n for n in GOOD_NAMES if not valid_name(n)] == []
    assert normalize_name("fo.o") == normalize_name("fo--o") == normalize_name("fo_-.o") == normalize_name("Fo-O")
    assert normalize_name("fo.o") == "fo-o" and normalize_name("foo") != normalize_name("fo-o")
    print(f"names tried: {len(HOSTILE_NAMES)}, escaped: 0")


def _line(name: str, version: str) -> dict[str, Any]:
    return {"name": name, "version": version, "kind": "lib", "tags": [], "targets": ["*"], "deps": [],
            "source": {"urls": ["https://example.org/x.tgz"]}}


def test_lines_with_them_are_refused_by_the_writer_and_skipped_by_readers(tmp_path: Path) -> None:
    from ckpm.index.folder import FolderIndex
    from ckpm.index.layout import entry_path
    from ckpm.index.writer import init_index, write_component

    for v in HOSTILE_VERSIONS:
        with pytest.raises(IndexDataError):
            check_entry(_line("lib-a", v), name="lib-a")
    for n in HOSTILE_NAMES:
        with pytest.raises(IndexDataError):
            check_entry(_line(n, "1.0.0"))
    root = tmp_path / "idx"
    init_index(root, "lab")
    with pytest.raises(IndexDataError):
        write_component(root, [_line("lib-a", "1.0.0/../../")])
    # an index written by someone else: the hostile lines are skipped, with a warning, when read
    path = root / entry_path("lib-a")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(_line("lib-a", v)) for v in ["1.0.0", *HOSTILE_VERSIONS[:3]]) + "\n")
    idx = FolderIndex(root)
    assert [e.version_text for e in idx.entries("lib-a")] == ["1.0.0"]
    assert len(idx.reporter.warnings) == 3 and all("not a version" in w for w in idx.reporter.warnings), idx.reporter.warnings


@pytest.fixture
def registry(tmp_path: Path, git_index_factory: Any) -> Iterator[RunningRegistry]:
    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=make_users(tokens, "alice", "bob"),
                          refresh=0.0).start()
    try:
        yield reg
    finally:
        reg.stop()


def test_the_registry_refuses_hostile_versions(registry: RunningRegistry, git_repo_factory: Any) -> None:
    repo = tagged_component(git_repo_factory, "lib-a", ["1.0.0"])
    good = line_from_repo(repo, "1.0.0")
    before = registry.history()
    statuses = {v: registry.publish(good | {"version": v}).status_code for v in HOSTILE_VERSIONS}
    assert {v: s for v, s in statuses.items() if s != 422} == {}
    assert registry.history() == before
    # nor can they be yanked (or named in a path)
    assert registry.yank("lib-a", "1.0.0;id").status_code == 404


def test_the_registry_compares_names_normalised(registry: RunningRegistry, git_repo_factory: Any) -> None:
    first = tagged_component(git_repo_factory, "fo-o", ["1.0.0"])
    assert registry.publish(line_from_repo(first, "1.0.0"), "alice").status_code == 201
    before = registry.history()
    for spelling in ("fo.o", "fo--o", "fo_o", "fo._o"):
        repo = tagged_component(git_repo_factory, spelling, ["1.0.0"])
        r = registry.publish(line_from_repo(repo, "1.0.0"), "bob")
        assert r.status_code == 403 and "fo-o" in r.json()["error"]["error"], r.text
        r = registry.publish(line_from_repo(repo, "1.0.0"), "alice")  # the owner: told the spelling to use
        assert r.status_code == 409 and r.json()["error"]["code"] == "name-taken", r.text
    for spelling in ("foo.", "fo-o-", "con"):
        r = registry.publish(line_from_repo(first, "1.0.0") | {"name": spelling}, "bob")
        assert r.status_code == 422, r.text
    assert registry.history() == before
