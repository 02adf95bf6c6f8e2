"""The lock's provisioning data is typed (issue 25 §1): sources, recipes, pip lists and the
program are parsed and checked once, when the lock is read (and when an index line's recipe
is first used), and written back byte for byte."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ckpm import api
from ckpm.errors import IndexReadError, LockError
from ckpm.model.entry import IndexEntry
from ckpm.model.lockfile import Lock, LockedDep, LockedPackage, read_lock
from ckpm.model.program import Program
from ckpm.model.recipe import PipDist, Recipe, Step, parse_fetch_source, parse_pip_dist, parse_recipe
from ckpm.model.source import ArchiveSource, GitSource, IndexSource

SHA = "ab" * 32
REV = "0123456789abcdef0123456789abcdef01234567"

#: every step kind, with fields given and left out, explicit defaults and empty lists
RECIPES: list[dict[str, Any]] = [
    {"targets": ["linux-*"], "env": {"CFLAGS": "-O2", "MY_SETTING": "x y"},
     "sources": [{"urls": ["https://example.org/a.tar.gz", "https://mirror.example.org/a.tar.gz"],
                  "sha256": "sha256:" + SHA.upper(), "size": 123, "unpacked-size": 4567},
                 {"git": "https://example.org/repo.git", "rev": REV, "tag": "v1.0", "subdir": "sub"}],
     "steps": [{"kind": "script", "run": ["make -C src", "cp x \"$DESTDIR$PREFIX\""]},
               {"kind": "make"},
               {"kind": "make", "configure": "auto", "configure_args": [], "make_args": ["V=1"],
                "install_args": ["prefix=/x"]},
               {"kind": "make", "configure": False},
               {"kind": "cmake", "args": ["-DX=1"], "build_type": "Debug"},
               {"kind": "cmake"},
               {"kind": "copy", "from": "data", "to": "share/data"},
               {"kind": "copy"}]},
    {"steps": [{"kind": "pip", "requirements": ["numpy==1.26.4", "Foo_Bar[extra]>=1"],
                "hashes": {"numpy": [SHA], "foo-bar": [SHA, "cd" * 32]}}]},
    {"targets": ["*"], "sources": [], "steps": [{"kind": "copy", "to": "."}]},
]
RUN = {"sources": ["main.c"], "cflags": ["-O2"], "env": {"OMP_NUM_THREADS": "1"},
       "commands": {"go": {"args": ["{out}"]}}, "metrics": {"n": {"regex": "n: ([0-9]+)"}}}


def _lock(install: list[Any], sources: list[Any], pip: list[Any], run: Any) -> Lock:
    p = LockedPackage("lib-x", "1.0", "lib", IndexSource("lab", "https://index.example.org/"), ["linux-x86_64"],
                      ["lib-x"], [], sources, install, pip, run)
    return Lock("h", ["linux-x86_64"], [LockedDep("lib-x", "lib-x", "1.0", None, "*")], [p], ckpm_version="0")


def test_typed_values_write_the_bytes_the_plain_tables_wrote_and_read_back_the_same() -> None:
    sources = [{"urls": ["https://example.org/x-1.0.tar.gz"], "sha256": SHA, "size": 9}]
    pip = [{"name": "numpy", "version": "1.26.4", "sha256": SHA}, {"name": "ckpyhello", "version": "1.0"}]
    plain = _lock(RECIPES, sources, pip, RUN).dumps()  # the tables as data, as locks held them before
    typed_lock = _lock([parse_recipe(r) for r in RECIPES], [parse_fetch_source(s) for s in sources],
                       [parse_pip_dist(d) for d in pip], Program("lib-x", ("main.c",), raw=RUN))
    assert typed_lock.dumps() == plain
    back = Lock.loads(plain)
    assert back.dumps() == plain  # a round trip keeps every byte
    (p,) = back.packages
    assert all(isinstance(r, Recipe) for r in p.install) and all(isinstance(s, Step) for s in p.install[0].steps)
    assert isinstance(p.sources[0], ArchiveSource) and p.sources[0].size == 9
    assert [type(s) for s in p.install[0].sources or ()] == [ArchiveSource, GitSource]
    assert p.install[0].sources[0].unpacked_size == 4567 and p.install[0].sources[0].digest == SHA.upper()
    assert p.pip == [PipDist("ckpyhello", "1.0"), PipDist("numpy", "1.26.4", SHA)]  # written sorted by name
    assert isinstance(p.run, Program) and p.run.sources == ("main.c",) and p.run.raw == RUN
    # each value reads as, and equals, its lock table
    assert p.install == RECIPES and p.sources == sources and p.pip == pip[::-1]
    make = p.install[0].steps[1]
    assert make.configure is None and make.configure_mode == "auto" and make.to_lock() == {"kind": "make"}
    assert p.install[0].env_vars == {"CFLAGS": "-O2", "MY_SETTING": "x y"}
    assert p.install[1].is_pip and not p.install[1].compiles and p.install[0].compiles
    assert p.install[0].applies("linux-x86_64") and not p.install[0].applies("windows-x86_64")


def _written(tmp_path: Path, **fields: Any) -> Path:
    """A lock whose one package has ``fields`` (plain tables), written after a first package."""
    other = LockedPackage("aaa-first", "2.0", "lib", IndexSource("lab"), ["linux-x86_64"], ["aaa-first"])
    lk = _lock([], [], [], None)
    (p,) = lk.packages
    for k, v in fields.items():
        setattr(p, k, v)
    lk.packages.insert(0, other)
    path = tmp_path / "ckpm.lock"
    path.write_text(lk.dumps())
    return path


def _line_of_package(path: Path, name: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line == "[[package]]" and lines[i] == f'name = "{name}"')


@pytest.mark.parametrize("fields, message", [
    ({"install": [{"steps": [{"kind": "bogus"}]}]},
     "lib-x 1.0: install[0]: not a valid install recipe: steps[0].kind: 'bogus' is not a step kind"),
    ({"install": [{"steps": [{"kind": "copy", "from": "../etc"}]}]},
     "install[0]: not a valid install recipe: steps[0] (copy).from: '../etc' climbs out of its folder with '..'"),
    ({"install": [{"steps": [{"kind": "copy"}], "env": {"LD_PRELOAD": "x"}}]},
     "install[0]: not a valid install recipe: env.LD_PRELOAD: ckpm sets this variable itself"),
    ({"install": [{"steps": [{"kind": "pip", "requirements": ["--index-url=http://evil/ x"]}]}]},
     "is not a plain requirement"),
    ({"install": [{"steps": [{"kind": "copy"}], "sources": [{"urls": ["https://e.org/a"], "sha256": "xyz"}]}]},
     "install[0]: not a valid install recipe: sources[0]: the sha256 for https://e.org/a is not 64 hex digits"),
    ({"sources": [{"urls": ["https://e.org/a"], "sha256": "12"}]},
     "lib-x 1.0: sources[0]: the sha256 for https://e.org/a is not 64 hex digits"),
    ({"sources": [{"urls": ["https://e.org/" + "a" * 3000]}]}, "sources[0]: a source has too many or too long URLs"),
    ({"sources": [{"urls": ["https://e.org/a"], "size": -1}]}, "sources[0]: the size for https://e.org/a is not a "
                                                               "byte count"),
    ({"sources": [{"git": "https://e.org/r.git", "rev": "main"}]},
     "sources[0]: a git source needs a URL and a full 40-hex commit"),
    ({"sources": [{"sha256": SHA}]}, "sources[0]: a source has no list of URLs (and no git repository)"),
    ({"pip": [{"name": "--evil", "version": "1"}]}, "pip[0]: a python distribution has no valid name and version"),
    ({"run": {"command": "sh"}}, "lib-x 1.0 run.sources: name at least one source file"),
], ids=["step-kind", "copy-path", "reserved-env", "pip-option", "recipe-sha", "sha", "long-url", "size", "git-rev",
        "no-urls", "pip-name", "run"])
def test_a_bad_lock_is_refused_when_read_naming_the_file_line_and_package(
        tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    path = _written(tmp_path, **fields)
    with pytest.raises(LockError) as e:
        read_lock(path)
    assert e.value.message.startswith(f"{path}:{_line_of_package(path, 'lib-x')}: "), e.value.message
    assert message in e.value.message, e.value.message
    assert e.value.hint


def _entry(**fields: Any) -> IndexEntry:
    return IndexEntry.from_json({"name": "lib-x", "version": "1.0", "kind": "lib", "targets": ["*"], "deps": [],
                                 "source": {}, **fields})


def test_an_index_line_is_typed_when_its_recipe_is_used_not_when_it_is_read() -> None:
    broken = _entry(install=[{"steps": [{"kind": "bogus"}]}])  # reading the line checks no recipe
    with pytest.raises(IndexReadError, match=r"lib-x 1.0: install\[0\]: not a valid install recipe: steps\[0\]"):
        broken.recipes
    good = _entry(install=[{"targets": None, "steps": [{"kind": "copy"}]}],  # a JSON null is no field
                  source={"urls": ["https://e.org/x.tgz"], "sha256": SHA, "name": "ignored"},
                  run={"sources": ["main.c"]})
    assert good.recipes == ({"steps": [{"kind": "copy"}]},) and good.recipes is good.recipes  # parsed once
    assert good.fetch_sources == (ArchiveSource(("https://e.org/x.tgz",), SHA),)
    assert isinstance(good.program, Program) and good.program.sources == ("main.c",)
    git = _entry(source={"git": "https://e.org/r.git", "rev": REV, "tag": "v1", "cksum": "c"})
    assert git.fetch_sources == (GitSource("https://e.org/r.git", REV, "v1"),)
    assert _entry(source={"host": "executable"}).fetch_sources == () and _entry().program is None


def test_lock_refuses_an_index_line_with_a_broken_recipe_naming_the_index(tmp_path: Path, index_factory: Any) -> None:
    from ckpm.testing import entry

    marker = tmp_path / "PWNED"
    lab = index_factory({"lib-x": [entry("lib-x", "1.0", source={},
                                         install=[{"steps": [{"kind": "script", "run": [f"touch {marker}"]},
                                                             {"kind": "bogus"}]}])]}, name="lab")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "p"\n\n[dependencies]\nlib-x = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{lab}"\n')
    with pytest.raises(IndexReadError) as e:
        api.lock(api.Workspace(proj))
    assert e.value.message.startswith("index lab: lib-x 1.0: install[0]: not a valid install recipe"), e.value.message
    assert not (proj / "ckpm.lock").exists() and not marker.exists()


def test_each_source_kind_has_its_fetcher_and_a_first_download_pins_the_typed_source(tmp_path: Path) -> None:
    import hashlib

    from ckpm import provision
    from ckpm.provision.fetchers import expand_all
    from ckpm.testing import HttpIndexServer

    files = tmp_path / "files"
    files.mkdir()
    (files / "data.txt").write_bytes(b"hello\n")
    server = HttpIndexServer(files)
    url = server.start()
    try:
        proj = tmp_path / "proj"
        proj.mkdir()
        (proj / "ckpm.toml").write_text('[project]\nname = "p"\n')
        ws = api.Workspace(proj, api.Settings(cache_dir=tmp_path / "cache", store_dir=tmp_path / "store",
                                              config_path=tmp_path / "no-config.toml"))
        src = parse_fetch_source({"urls": [f"{url}/data.txt"]})  # no sha256: trust on first use
        p = LockedPackage("data-x", "1.0", "dataset", IndexSource("lab"), [ws.host_target], ["data-x"],
                          sources=[src], install=[parse_recipe({"steps": [{"kind": "copy"}]})])
        session = provision.SyncSession(ws, Lock("", [ws.host_target], [], [p]), provision.SyncOptions())
        assert isinstance(session.fetchers[ArchiveSource], provision.ArchiveFetcher)
        assert isinstance(session.fetchers[GitSource], provision.GitTreeFetcher)
        got = session.fetch(p, src)
        assert got.path.read_bytes() == b"hello\n"
        assert got.source == {"urls": [f"{url}/data.txt"], "sha256": hashlib.sha256(b"hello\n").hexdigest(), "size": 6}
        assert p.sources == [got.source]  # the lock's value is replaced, never changed in place
        assert session.learnt == [(p, got.source, f"{url}/data.txt")]
        expand_all(session, [(got.path, got.source)], tmp_path / "src")
        assert (tmp_path / "src" / got.path.name).read_bytes() == b"hello\n"  # a plain file is copied in
    finally:
        server.stop()
