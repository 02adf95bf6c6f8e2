"""Libraries: pkg-config (the real zlib and fake .pc files) and library + header search."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ckpm.detect import detect
from ckpm.detect.detectors.pkgconfig import parse_pc

ZLIB_VERSION_RE = r'#define ZLIB_VERSION "([^"]+)"'


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def system_path(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    for var in ("PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "LIBRARY_PATH", "LD_LIBRARY_PATH", "CPATH"):
        monkeypatch.delenv(var, raising=False)


def real_zlib_version() -> str:
    tool = shutil.which("pkg-config", path="/usr/bin")
    assert tool, "pkg-config must be installed (Debian: pkg-config)"
    out = subprocess.run([tool, "--modversion", "zlib"], capture_output=True, text=True)
    assert out.returncode == 0, "zlib's .pc must be installed (Debian: zlib1g-dev)"
    return out.stdout.strip()


def test_real_zlib_by_pkg_config(system_path, cache):
    expected = real_zlib_version()
    result = detect({"zlib": [{"pkg_config": "zlib"}]}, cache_dir=cache)
    [d] = result.found["zlib"]
    assert d.version == expected
    assert d.detector == "pkg_config" and d.path.endswith("/zlib.pc")
    def var(name):
        out = subprocess.run(["pkg-config", f"--variable={name}", "zlib"], capture_output=True, text=True)
        return out.stdout.strip()

    libdir, incdir = var("libdir"), var("includedir")
    assert d.extra["libdir"] == libdir and d.extra["includedir"] == incdir
    assert result.warnings == []
    warm = detect({"zlib": [{"pkg_config": "zlib"}]}, cache_dir=cache)
    assert warm.probes_run == 0 and warm.found == result.found


def test_real_zlib_by_library_and_header(system_path, cache):
    expected = real_zlib_version()
    rule = {"library": "z", "header": "zlib.h", "version_regex": ZLIB_VERSION_RE}
    result = detect({"zlib": [rule]}, cache_dir=cache)
    assert result.found["zlib"], result.warnings
    d = result.found["zlib"][0]
    assert d.version == expected
    assert os.path.basename(d.path) in ("libz.so", "libz.a") and os.path.exists(d.path)
    assert d.extra["headers"] and os.path.isfile(d.extra["headers"][0])
    assert os.path.isfile(os.path.join(d.extra["includedir"], "zlib.h"))
    # without a regex the version comes from the shared library's file name
    by_name = detect({"zlib": [{"library": "z", "header": "zlib.h"}]}, cache_dir=cache).found["zlib"][0]
    assert by_name.version == expected


def test_missing_library_or_header(system_path, cache):
    result = detect({
        "nolib": [{"library": "ckpm_surely_absent"}],
        "nohdr": [{"library": "z", "header": "ckpm_surely_absent.h"}],
        "nopc": [{"pkg_config": "ckpm-surely-absent"}],
    }, cache_dir=cache)
    assert result.found == {"nolib": [], "nohdr": [], "nopc": []}
    assert result.warnings == []


def test_fake_pc_file_through_pkg_config_path(system_path, tmp_path, monkeypatch, cache):
    pc = tmp_path / "pc"
    pc.mkdir()
    (pc / "ckfake.pc").write_text(
        "prefix=/opt/ckfake\nlibdir=${prefix}/lib\nincludedir=${prefix}/include\n\n"
        "Name: ckfake\nDescription: test\nVersion: 3.1.4\nLibs: -L${libdir} -lckfake\nCflags: -I${includedir}\n")
    monkeypatch.setenv("PKG_CONFIG_PATH", str(pc))
    rules = {"fake": [{"pkg_config": ["ckfake-absent", "ckfake"]}]}
    result = detect(rules, cache_dir=cache)
    [d] = result.found["fake"]
    assert (d.version, d.path) == ("3.1.4", str(pc / "ckfake.pc"))
    assert d.extra["libdir"] == "/opt/ckfake/lib" and d.extra["includedir"] == "/opt/ckfake/include"
    assert detect(rules, cache_dir=cache).probes_run == 0
    (pc / "ckfake.pc").write_text((pc / "ckfake.pc").read_text().replace("3.1.4", "3.2.0"))
    again = detect(rules, cache_dir=cache)
    assert again.found["fake"][0].version == "3.2.0" and again.probes_run == 1


def test_fake_library_in_a_prefix(system_path, tmp_path, cache):
    prefix = tmp_path / "prefix"
    (prefix / "lib").mkdir(parents=True)
    (prefix / "include" / "ckfake").mkdir(parents=True)
    (prefix / "lib" / "libckfake.so.2.5.1").write_bytes(b"\x7fELF")
    os.symlink("libckfake.so.2.5.1", prefix / "lib" / "libckfake.so.2")
    os.symlink("libckfake.so.2", prefix / "lib" / "libckfake.so")
    (prefix / "lib" / "libckfake.a").write_bytes(b"!<arch>\n")
    (prefix / "include" / "ckfake" / "ckfake.h").write_text('#define CKFAKE_VERSION "2.5.1-rc2"\n')
    rule = {"library": "ckfake", "header": "ckfake/ckfake.h"}
    result = detect({"ckfake": [rule]}, cache_dir=cache, search_paths=[str(prefix)])
    [d] = result.found["ckfake"]
    assert d.version == "2.5.1"
    assert d.path == str(prefix / "lib" / "libckfake.so")
    assert d.extra["libdir"] == str(prefix / "lib")
    assert d.extra["includedir"] == str(prefix / "include")
    assert sorted(os.path.basename(f) for f in d.extra["files"]) == [
        "libckfake.a", "libckfake.so", "libckfake.so.2", "libckfake.so.2.5.1"]
    with_re = detect({"ckfake": [{**rule, "version_regex": r'CKFAKE_VERSION "([^"]+)"'}]},
                     cache_dir=cache, search_paths=[str(prefix)])
    assert with_re.found["ckfake"][0].version == "2.5.1-rc2"
    header_only = detect({"hdr": [{"library": [], "header": "ckfake/ckfake.h",
                                   "include_paths": [str(prefix / "include")],
                                   "version_regex": r'CKFAKE_VERSION "([^"]+)"'}]}, cache_dir=cache,
                         path_roots=[str(tmp_path)])  # include_paths outside the system prefixes: the user allows
    assert [d.version for d in header_only.found["hdr"]] == ["2.5.1-rc2"]


def test_parse_pc_expands_variables():
    variables, fields = parse_pc("prefix=/usr\nexec_prefix=${prefix}\nlibdir=${exec_prefix}/lib # c\n"
                                 "Name: x\nVersion: 1.2\nLibs: -L${libdir}\n")
    assert variables["libdir"] == "/usr/lib"
    assert fields["Version"] == "1.2" and fields["Libs"] == "-L/usr/lib"
