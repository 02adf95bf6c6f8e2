"""ckpm.toml: parsing, errors with file and line, and parsing component manifests."""
from __future__ import annotations

from pathlib import Path

import pytest

from ckpm.errors import ManifestError
from ckpm.model.manifest import load_project, parse_component_manifest, parse_project_manifest

GOOD = """\
[project]
name = "demo"
version = "0.1.0"

# the deps we need
[dependencies]
lib-tensorflow = ">=1.13,<2"                                  # by name and version range
compiler = { tags = "compiler,lang-c", version = ">=9" }       # by tags
lib-jpeg = { version = ">=9", no-tags = "static" }
dataset-images = { version = "*", targets = ["linux-*"] }
mytool = { git = "https://example.org/lab/mytool.git", version = ">=0.3" }

[[index]]
name = "lab"
url = "https://example.org/index"

[targets]
default = ["linux-x86_64", "linux-aarch64"]
"""


def test_parses_every_dependency_form(tmp_path: Path) -> None:
    m = parse_project_manifest(GOOD, tmp_path / "ckpm.toml")
    assert list(m.dependencies) == ["lib-tensorflow", "compiler", "lib-jpeg", "dataset-images", "mytool"]
    assert m.dependencies["compiler"].tags == {"compiler", "lang-c"}
    assert m.dependencies["lib-jpeg"].no_tags == {"static"}
    assert m.dependencies["dataset-images"].targets == ("linux-*",)
    assert m.dependencies["mytool"].git == "https://example.org/lab/mytool.git"
    assert [i.url for i in m.indexes] == ["https://example.org/index"]
    assert m.targets == ["linux-x86_64", "linux-aarch64"]


def test_content_hash_ignores_comments_but_not_deps(tmp_path: Path) -> None:
    p = tmp_path / "ckpm.toml"
    a = parse_project_manifest(GOOD, p).content_hash()
    b = parse_project_manifest(GOOD.replace("# the deps we need", "# other words"), p).content_hash()
    c = parse_project_manifest(GOOD.replace(">=1.13,<2", ">=1.14,<2"), p).content_hash()
    assert a == b != c


@pytest.mark.parametrize(
    "edit,line,words",
    [
        (("no-tags", "no_tags"), 9, "unknown key 'no_tags' in dependency 'lib-jpeg'; did you mean 'no-tags'?"),
        (("[targets]", "[target]"), 17, "unknown key 'target' in ckpm.toml; did you mean 'targets'?"),
        (('version = "0.1.0"', 'verison = "0.1.0"'), 3, "did you mean 'version'?"),
        ((">=1.13,<2", ">=1.x"), 7, "dependency 'lib-tensorflow': not a version range"),
        (('name = "lab"', 'name = "lab'), 14, "invalid TOML"),
        (('"linux-x86_64", "linux-aarch64"', '"linux-x86-64"'), 18, "unknown target 'linux-x86-64'"),
        (('["linux-*"]', '["linux-*"], kind = "runtime"'), 10, "kind must be one of run, build"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, edit: tuple[str, str], line: int, words: str) -> None:
    p = tmp_path / "ckpm.toml"
    p.write_text(GOOD.replace(*edit))
    with pytest.raises(ManifestError) as info:
        load_project(p)
    assert info.value.line == line, info.value.message
    assert str(info.value.message).startswith(f"{p}:{line}: ")
    assert words in info.value.message


def test_missing_project_and_component_manifest(tmp_path: Path) -> None:
    p = tmp_path / "ckpm.toml"
    with pytest.raises(ManifestError, match="missing \\[project\\]"):
        parse_project_manifest("[dependencies]\n", p)
    with pytest.raises(ManifestError, match="component manifest"):
        parse_project_manifest('[component]\nname = "x"\n', p)
    with pytest.raises(ManifestError, match="no such file"):
        load_project(tmp_path / "nope" / "ckpm.toml")


def test_component_manifest_to_index_entry() -> None:
    text = """\
[component]
name = "mytool"
version = "0.3.1"
kind = "tool"
tags = ["tool", "image"]
targets = ["linux-*"]
description = "a tool"

[dependencies]
lib-a = ">=1"
cmake = { version = ">=3.20", kind = "build", tags = "tool" }
"""
    d = parse_component_manifest(text, "mytool/ckpm.toml")
    assert d["name"] == "mytool" and d["version"] == "0.3.1" and d["kind"] == "tool"
    assert d["deps"] == [
        {"name": "lib-a", "req": ">=1"},
        {"name": "cmake", "req": ">=3.20", "tags": ["tool"], "kind": "build"},
    ]
    with pytest.raises(ManifestError, match=r"mytool/ckpm.toml:4: kind 'tol'.*did you mean 'tool'"):
        parse_component_manifest(text.replace('kind = "tool"', 'kind = "tol"'), "mytool/ckpm.toml")
