"""Files and folders at declared paths: data sets and models with their versions."""
from __future__ import annotations

import pytest

from ckpm.detect import detect, match_recorded, recheck


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def roots(tmp_path):
    """tmp_path is no system prefix: the user lists it as a folder detection may look in."""
    return [str(tmp_path)]


@pytest.fixture
def datasets(tmp_path):
    root = tmp_path / "data"
    for name, version in (("imagenet-2012", "2012.1\n"), ("imagenet-mini", "0.3.0\n")):
        d = root / name
        d.mkdir(parents=True)
        (d / "VERSION").write_text(version)
        (d / "images.txt").write_text("a\nb\n")
    (root / "imagenet-broken").mkdir()
    return root


def test_glob_with_version_file(datasets, cache, roots):
    rules = {"imagenet": [{"path": str(datasets / "imagenet-*"), "version_file": "VERSION", "type": "dir"}]}
    result = detect(rules, cache_dir=cache, path_roots=roots)
    assert [(d.version, d.path) for d in result.found["imagenet"]] == [
        ("2012.1", str(datasets / "imagenet-2012")),
        ("0.3.0", str(datasets / "imagenet-mini")),
    ]
    assert result.found["imagenet"][0].extra["version_file"] == str(datasets / "imagenet-2012" / "VERSION")
    assert len(result.warnings) == 1 and "imagenet-broken" in result.warnings[0] and "not found" in result.warnings[0]


def test_home_and_env_vars_are_expanded(datasets, tmp_path, monkeypatch, cache, roots):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CKPM_TEST_DATA", str(datasets))
    a = detect({"m": [{"path": "~/data/imagenet-mini", "version_file": "VERSION"}]}, cache_dir=cache, path_roots=roots)
    b = detect({"m": [{"path": "${CKPM_TEST_DATA}/imagenet-mini", "version_file": "VERSION"}]}, cache_dir=cache, path_roots=roots)
    c = detect({"m": [{"path": "$CKPM_TEST_DATA/imagenet-mini", "version_file": "VERSION"}]}, cache_dir=cache, path_roots=roots)
    assert [d.version for d in a.found["m"]] == [d.version for d in b.found["m"]] == \
        [d.version for d in c.found["m"]] == ["0.3.0"]


def test_version_regex_over_a_version_file_and_over_a_name(tmp_path, cache, roots):
    # a version_regex over the matched file itself is no longer allowed (it could copy any
    # file's content into the lock): the regex runs over a named version_file or the name
    models = tmp_path / "models"
    models.mkdir()
    (models / "resnet50-v1.5.onnx").write_bytes(b"\x08\x07onnx")
    (models / "card.json").write_text('{"name": "bert", "version": "4.2.0"}')
    by_name = {"path": str(models / "resnet50-*.onnx"), "version_regex": r"-v(\d+\.\d+)\.onnx$",
               "version_from": "name"}
    by_file = {"path": str(models / "card.json"), "version_file": "card.json",
               "version_regex": r'"version":\s*"([^"]+)"'}
    by_content = {"path": str(models / "card.json"), "version_regex": r'"version":\s*"([^"]+)"'}
    result = detect({"resnet": [by_name], "bert": [by_file], "old": [by_content]}, cache_dir=cache,
                    path_roots=roots)
    assert [d.version for d in result.found["resnet"]] == ["1.5"]
    assert [d.version for d in result.found["bert"]] == ["4.2.0"]
    assert result.found["resnet"][0].extra["type"] == "file"
    assert result.found["old"] == []
    assert any("component old: detect rule 1: version_regex over the matched file is not allowed" in w
               for w in result.warnings)


def test_fixed_version_and_unknown_version(tmp_path, cache, roots):
    (tmp_path / "weights.bin").write_bytes(b"0")
    result = detect({"w": [{"path": str(tmp_path / "weights.bin"), "version": "7"}],
                     "u": [{"path": str(tmp_path / "weights.bin")}]}, cache_dir=cache, path_roots=roots)
    assert result.found["w"][0].version == "7"
    assert result.found["u"][0].version == "0" and result.found["u"][0].extra["version_unknown"] is True


def test_regex_that_does_not_match_is_a_warning_with_the_text(tmp_path, cache, roots):
    (tmp_path / "card.txt").write_text("release: unknown")
    result = detect({"c": [{"path": str(tmp_path / "card.txt"), "version_file": "card.txt",
                            "version_regex": r"v(\d+)"}]}, cache_dir=cache, path_roots=roots)
    assert result.found["c"] == []
    assert "release: unknown" in result.warnings[0]


def test_recursive_glob_and_recheck(datasets, cache, roots):
    rules = {"img": [{"path": str(datasets / "**" / "VERSION"), "version_file": "VERSION"}]}
    result = detect(rules, cache_dir=cache, path_roots=roots)
    assert sorted(d.version for d in result.found["img"]) == ["0.3.0", "2012.1"]
    d = next(x for x in result.found["img"] if x.version == "0.3.0")
    (datasets / "imagenet-mini" / "VERSION").write_text("0.4.0\n")
    rule = rules["img"][0]
    now = match_recorded(recheck("img", rule, path=d.path, path_roots=roots), d.path)
    assert now.same_path and now.record.version == "0.4.0"
    (datasets / "imagenet-mini" / "VERSION").unlink()
    now = match_recorded(recheck("img", rule, path=d.path, path_roots=roots), d.path)
    assert not now.same_path and now.record.version == "2012.1"  # the other data set is still there
