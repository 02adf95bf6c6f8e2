"""The embedded default index (``index/``): format 1, valid against its schema, consistent,
and exactly what ``tools/build_embedded_index.py`` generates from ``tools/embedded/``."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from ckpm.index import embedded_index_path, open_index
from ckpm.index.base import parse_component, parse_summary_text
from ckpm.index.folder import FolderIndex
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.index.writer import reindex
from ckpm.model.entry import KINDS, IndexEntry, valid_name
from ckpm.model.targets import ARCHES, OSES, validate_target
from ckpm.model.version import parse_specifier, parse_version

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT / "index"
BUILD = ROOT / "tools" / "build_embedded_index.py"
SCHEMA_FILE = "schema.json"

EXPECTED = {
    "lib-tensorflow", "lib-numpy", "lib-torch", "lib-onnxruntime",
    "compiler-gcc", "compiler-gxx", "compiler-clang", "compiler-nvcc",
    "compiler-gcc-aarch64-linux-gnu", "compiler-gcc-arm-linux-gnueabihf",
    "tool-cmake", "tool-make", "tool-ninja", "tool-python", "tool-git",
    "lib-zlib", "lib-openblas", "lib-jpeg",
    "program-hello-ckpm", "dataset-hello-images", "model-hello-mobilenet",
    "dataset-mnist-test", "model-mobilenet-v1-tflite",
}


def _component_files() -> dict[str, Path]:
    out = {}
    for p in sorted(INDEX.rglob("*")):
        if p.is_file() and p.name not in (CONFIG, SUMMARY, SCHEMA_FILE):
            out[p.relative_to(INDEX).as_posix()] = p
    return out


def _lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path}: no final newline"
    return [json.loads(line) for line in text.splitlines()]


FILES = _component_files()
ALL = {rel: _lines(p) for rel, p in FILES.items()}
BY_NAME = {lines[0]["name"]: lines for lines in ALL.values()}


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads((INDEX / SCHEMA_FILE).read_text())
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema)


def test_config_is_format_1():
    assert json.loads((INDEX / CONFIG).read_text()) == {"format": 1, "name": "default", "api": None}


def test_expected_components_and_nothing_stray():
    assert set(BY_NAME) == EXPECTED
    # every file under index/ is config, summary, schema or a component file at its layout path
    assert len(FILES) == len(EXPECTED)


@pytest.mark.parametrize("rel", sorted(FILES))
def test_every_line_is_valid(rel, validator):
    lines = ALL[rel]
    assert lines, f"{rel} is empty"
    name = lines[0]["name"]
    assert valid_name(name)
    assert rel == entry_path(name), f"{name} belongs at {entry_path(name)}, not {rel}"
    assert Path(rel).name == name
    for no, d in enumerate(lines, 1):
        errors = sorted(validator.iter_errors(d), key=lambda e: list(e.path))
        assert not errors, f"{rel}:{no}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
        assert d["name"] == name, f"{rel}:{no}: line of {d['name']} in the file of {name}"
        assert d["kind"] in KINDS
        parse_version(d["version"])
        for dep in d.get("deps", ()):
            parse_specifier(dep.get("req", "*"))
        for t in d.get("targets", ()):
            if not any(c in t for c in "*?["):
                validate_target(t)
        for rule in d.get("detect", ()):
            if "version_regex" in rule:
                assert re.compile(rule["version_regex"]).groups >= 1, f"{rel}:{no}: version_regex has no group"
        # the library reads it back
        e = IndexEntry.from_json(d)
        assert e.version.text == d["version"]
        _ = e.deps


@pytest.mark.parametrize("rel", sorted(FILES))
def test_versions_strictly_ascending(rel):
    # Format 1 files are in publication order; the embedded files are generated in
    # ascending version order (and have no duplicates), which this asserts.
    versions = [parse_version(d["version"]) for d in ALL[rel]]
    for a, b in zip(versions, versions[1:]):
        assert a < b, f"{rel}: {a} then {b}"


def test_consistent_per_component():
    for name, lines in BY_NAME.items():
        kinds = {d["kind"] for d in lines}
        assert len(kinds) == 1, f"{name}: kinds {kinds}"
        assert name.split("-", 1)[0] in ("lib", "compiler", "tool", "program", "dataset", "model")
        for d in lines:
            assert d["description"] and "\n" not in d["description"]
            assert d["tags"], f"{name} {d['version']}: no tags"
            assert d["yanked"] is False  # nothing in the embedded index was truly yanked


def test_target_os_and_arch_names_are_known():
    pat = re.compile(r"^(\*|[a-z*]+-[a-z0-9_*]+)$")
    for name, lines in BY_NAME.items():
        for d in lines:
            for t in d["targets"]:
                assert pat.match(t), (name, t)
                os_, _, arch = t.partition("-")
                assert t == "*" or os_ in OSES or os_ == "*", (name, t)
                assert t == "*" or arch in ARCHES or arch == "*", (name, t)


HOST_FACTS = {"__os", "__arch", "__libc", "__cpu", "__cuda", "__python"}


def test_every_dependency_can_be_satisfied():
    """A dep naming a component of this index has at least one version in range;
    any other dep key is a capability and carries tags that some component has."""
    all_tags = [set(d["tags"]) for lines in BY_NAME.values() for d in lines]
    for name, lines in BY_NAME.items():
        for d in lines:
            for dep in d["deps"]:
                spec = parse_specifier(dep.get("req", "*"))
                if dep["name"].startswith("__"):  # a host fact (the interpreter's version, the OS…)
                    assert dep["name"] in HOST_FACTS, f"{name} {d['version']}: unknown host fact {dep['name']}"
                    continue
                if dep["name"] in BY_NAME:
                    candidates = [parse_version(x["version"]) for x in BY_NAME[dep["name"]]]
                    assert any(spec.contains(v) for v in candidates), f"{name} {d['version']}: nothing in {dep}"
                else:
                    want = set(dep.get("tags") or ())
                    assert want, f"{name} {d['version']}: {dep['name']} is neither a component nor a capability"
                    assert any(want <= have for have in all_tags), f"{name} {d['version']}: no component has tags {want}"


def test_no_invented_hashes():
    # The index is written without downloading archives: hashes are left out, never made up.
    # The one exception is what this repository ships in vendor/ (the demo's archives): their
    # sha256 and size are those of the files themselves.
    import hashlib

    def check(src, where):
        if "sha256" not in src:
            return
        (url,) = src["urls"][:1]
        shipped = ROOT / "vendor" / url.split("://", 1)[1]
        assert shipped.is_file(), f"{where}: a sha256 for {url}, which vendor/ does not hold"
        data = shipped.read_bytes()
        assert src["sha256"] == hashlib.sha256(data).hexdigest() and src.get("size") == len(data), where

    for name, lines in BY_NAME.items():
        for d in lines:
            assert "cksum" not in d
            check(d.get("source", {}), f"{name} {d['version']}")
            for r in d.get("install", ()):
                for s in r.get("sources", ()):
                    check(s, f"{name} {d['version']} install")


def test_tags_and_detection_as_agreed():
    tags = {n: set(lines[-1]["tags"]) for n, lines in BY_NAME.items()}
    assert {"lib", "python", "tensorflow"} <= tags["lib-tensorflow"]
    assert {"compiler", "lang-c", "gcc"} <= tags["compiler-gcc"]
    assert {"compiler", "lang-cxx", "gcc"} <= tags["compiler-gxx"]
    assert {"compiler", "lang-c", "lang-cxx", "llvm"} <= tags["compiler-clang"]
    assert {"compiler", "lang-cuda", "cuda"} <= tags["compiler-nvcc"]
    assert {"tool", "python", "interpreter"} <= tags["tool-python"]
    # a cross compiler never answers a request for a native C compiler
    for n in ("compiler-gcc-aarch64-linux-gnu", "compiler-gcc-arm-linux-gnueabihf"):
        assert "compiler" not in tags[n] and "cross-compiler" in tags[n]
    detect = {n: lines[-1].get("detect", []) for n, lines in BY_NAME.items()}
    assert detect["lib-tensorflow"] == [{"python_package": "tensorflow"}]
    assert detect["lib-zlib"] == [{"pkg_config": "zlib"}]
    assert detect["lib-jpeg"] == [{"pkg_config": "libjpeg"}]
    gcc = detect["compiler-gcc"][0]
    assert gcc["executable"] == ["gcc", "gcc-[0-9]*"] and gcc["compiler"] == "gcc" and gcc["languages"] == ["c"]
    assert detect["compiler-gcc-aarch64-linux-gnu"][0]["executable"][0] == "aarch64-linux-gnu-gcc"


@pytest.mark.parametrize(
    "rule, output, version",
    [
        ("compiler-gcc", "13.2.0\n", "13.2.0"),
        ("compiler-gcc", "9\n", None),  # old gcc -dumpversion style output: no match, not a wrong version
        ("compiler-clang", "Ubuntu clang version 14.0.0-1ubuntu1.1\nTarget: x86_64-pc-linux-gnu\n", "14.0.0"),
        ("compiler-nvcc", "Cuda compilation tools, release 12.4, V12.4.131\n", "12.4"),
        ("tool-cmake", "cmake version 3.28.3\n\nCMake suite maintained by Kitware\n", "3.28.3"),
        ("tool-make", "GNU Make 4.3\nBuilt for x86_64-pc-linux-gnu\n", "4.3"),
        ("tool-ninja", "1.11.1\n", "1.11.1"),
        ("tool-python", "Python 3.11.2\n", "3.11.2"),
        ("tool-git", "git version 2.39.5\n", "2.39.5"),
    ],
)
def test_version_regexes_on_real_outputs(rule, output, version):
    rx = BY_NAME[rule][-1]["detect"][0]["version_regex"]
    m = re.search(rx, output)
    assert (m.group(1) if m else None) == version


def test_real_version_histories_spot_checks():
    v = {n: [d["version"] for d in lines] for n, lines in BY_NAME.items()}
    tf = v["lib-tensorflow"]
    assert tf[:5] == ["1.13.1", "1.13.2", "1.14.0", "1.15.0", "1.15.2"]
    assert "1.15.1" not in tf and "2.16.0" not in tf and "2.16.1" in tf
    assert {"2.0.0", "2.0.4", "2.15.0.post1"} <= set(tf)
    assert "17.0.0" not in v["compiler-clang"] and "17.0.1" in v["compiler-clang"]
    assert [x for x in v["compiler-gcc"] if x.startswith("9.")] == ["9.1.0", "9.2.0", "9.3.0", "9.4.0", "9.5.0"]
    assert v["compiler-gcc"] == v["compiler-gxx"] == v["compiler-gcc-aarch64-linux-gnu"]
    assert not any(x.startswith("12.7") for x in v["compiler-nvcc"])
    tf113 = BY_NAME["lib-tensorflow"][0]
    assert {"name": "lib-numpy", "req": ">=1.13.3,<2"} in tf113["deps"]
    assert tf113["source"]["urls"][0] == "https://github.com/tensorflow/tensorflow/archive/refs/tags/v1.13.1.tar.gz"


def test_demo_components():
    prog = BY_NAME["program-hello-ckpm"]
    assert [d["version"] for d in prog] == ["0.1.0", "0.2.0", "0.3.0"]
    for d in prog:
        deps = {x["name"]: x for x in d["deps"]}
        assert deps["compiler"]["tags"] == ["compiler", "lang-c"] and deps["compiler"]["req"] == ">=9"
        assert deps["dataset-hello-images"]["req"] in (">=1", ">=1.1")
    newest = prog[-1]
    assert newest["run"]["sources"] == ["src/corners.c", "src/pgm.c"]  # what its copy recipe installs
    assert newest["install"][0]["steps"] == [{"kind": "copy", "to": "src"}]
    from ckpm.model.program import parse_program

    parse_program(newest["run"], name=newest["name"])  # a valid [run] table
    data = BY_NAME["dataset-hello-images"]
    assert [d["version"] for d in data] == ["1.0.0", "1.1.0"]
    assert data[-1]["install"] == [{"targets": ["*"], "steps": [{"kind": "copy"}]}]
    assert data[-1]["source"]["urls"] == ["https://example.org/ckpm/hello-images-1.1.0.tar.gz"]
    assert [d["version"] for d in BY_NAME["model-hello-mobilenet"]] == ["1.0.0"]
    for n in ("program-hello-ckpm", "dataset-hello-images", "model-hello-mobilenet"):
        assert "demo" in BY_NAME[n][-1]["tags"] and BY_NAME[n][-1]["description"].startswith("Demo:")


def test_summary_matches_reindex(tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(INDEX, copy)
    (copy / SUMMARY).unlink()
    assert reindex(copy) == len(EXPECTED)
    assert (copy / SUMMARY).read_bytes() == (INDEX / SUMMARY).read_bytes()


def test_library_reads_the_embedded_index():
    assert embedded_index_path() == INDEX
    idx = open_index(None)
    assert isinstance(idx, FolderIndex)
    assert sorted(idx.all_names()) == sorted(EXPECTED)
    assert [e.version_text for e in idx.entries("lib-tensorflow")][:2] == ["1.13.1", "1.13.2"]
    summaries = {s.name: s for s in idx.summaries()}
    assert set(summaries) == EXPECTED
    assert summaries["compiler-gcc"].versions == tuple(d["version"] for d in BY_NAME["compiler-gcc"])


def _build(out: Path) -> None:
    subprocess.run([sys.executable, str(BUILD), "--out", str(out)], check=True, capture_output=True, text=True)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_is_deterministic_and_index_is_up_to_date(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _build(a)
    _build(b)
    fa, fb = _files(a), _files(b)
    assert fa == fb
    assert fa == _files(INDEX), "index/ is out of date: run python tools/build_embedded_index.py"
    check = subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("rel", sorted(FILES))
def test_every_line_passes_the_reader_checks(rel):
    name = ALL[rel][0]["name"]
    entries, problems = parse_component(FILES[rel].read_text(encoding="utf-8"), rel, name)
    assert problems == []
    assert [e.version_text for e in entries] == [d["version"] for d in ALL[rel]]


def test_embedded_index_reads_without_warnings():
    idx = open_index(None)
    for n in idx.all_names():
        assert idx.entries(n)
    assert len(idx.summaries()) == len(EXPECTED)
    assert idx.reporter.warnings == []
    summaries, problems = parse_summary_text((INDEX / SUMMARY).read_text(encoding="utf-8"), SUMMARY)
    assert problems == [] and [s.name for s in summaries] == sorted(EXPECTED)
