"""Recipes and toolchains with real compilers, make, cmake, pip and qemu (no mocks).

The sources are libckhello (tests/data/build/libckhello: a C library with a configure-less
Makefile and a CMakeLists.txt), packed as a .tar.gz and unpacked into a fresh source folder
for each build, as ``ckpm sync`` does. Cross builds target linux-aarch64 and are skipped
(with the reason) only when the cross compiler or qemu-aarch64 is missing.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ckpm.build.environment import deps_env, root_variable
from ckpm.build.recipes import STEP_KINDS, BuildContext, build_env, check_recipe, run_recipe, staged_prefix
from ckpm.build.toolchain import Toolchain, find_toolchain, host_only, real_host_target
from ckpm.errors import BuildError
from ckpm.settings import Settings

DATA = Path(__file__).parent / "data" / "build" / "libckhello"
EM_AARCH64 = 183
EM_X86_64 = 62


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One detection cache for the module: compilers are probed once."""
    return Settings(cache_dir=tmp_path_factory.mktemp("cache"), env=dict(os.environ))


@pytest.fixture(scope="module")
def native(settings: Settings) -> Toolchain:
    return find_toolchain(real_host_target(), settings=settings)


@pytest.fixture(scope="module")
def aarch64(settings: Settings) -> Toolchain:
    if real_host_target() == "linux-aarch64":
        pytest.skip("this host is linux-aarch64: no cross build to test")
    try:
        tc = find_toolchain("linux-aarch64", settings=settings)
    except BuildError as e:
        pytest.skip(f"no aarch64 cross compiler: {e.message} ({e.hint})")
    if not tc.emulator:
        pytest.skip("qemu-aarch64 is not installed (Debian: qemu-user)")
    return tc


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """libckhello-1.0.tar.gz, with the usual top-level folder."""
    out = tmp_path_factory.mktemp("dist") / "libckhello-1.0.tar.gz"
    with tarfile.open(out, "w:gz") as tf:
        tf.add(DATA, arcname="libckhello-1.0")
    return out


def unpack(tarball: Path, dest: Path) -> Path:
    """The sources unpacked into a fresh folder (the top-level folder stripped)."""
    with tarfile.open(tarball) as tf:
        tf.extractall(dest.parent / "unpack", filter="data")
    shutil.move(str(dest.parent / "unpack" / "libckhello-1.0"), dest)
    return dest


def make_ctx(tmp_path: Path, toolchain: Toolchain, tarball: Path | None = None, **kw: Any) -> BuildContext:
    source = tmp_path / "src"
    if tarball is not None:
        unpack(tarball, source)
    else:
        source.mkdir(parents=True)
    return BuildContext(source=source, build_dir=tmp_path / "build", prefix=tmp_path / "store" / "libckhello-1.0",
                        destdir=tmp_path / "stage", toolchain=toolchain, log=tmp_path / "logs" / "build.log", **kw)


def elf_machine(data: bytes) -> int:
    """e_machine of an ELF image (little-endian, as on both targets here)."""
    assert data[:4] == b"\x7fELF", data[:16]
    return int.from_bytes(data[18:20], "little")


def ar_members(path: Path) -> dict[str, bytes]:
    """The members of a Unix ar archive (a static library)."""
    data = path.read_bytes()
    assert data[:8] == b"!<arch>\n"
    pos, out = 8, {}
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip()
        size = int(header[48:58].decode().strip())
        out[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
    return out


# -- toolchains -------------------------------------------------------------------------------

def test_native_toolchain_is_found_by_detection(native: Toolchain) -> None:
    assert not native.cross and native.triple is None and native.emulator is None
    assert native.cc and os.path.isabs(native.cc) and os.access(native.cc, os.X_OK)
    assert native.configure_args() == []
    env = native.env()
    assert env["CC"] == native.cc and env["CKPM_TARGET"] == native.target and "CKPM_TRIPLE" not in env


def test_cross_toolchain_for_aarch64(aarch64: Toolchain, tmp_path: Path) -> None:
    assert aarch64.cross and aarch64.triple and aarch64.triple.startswith("aarch64-")
    assert aarch64.cc and os.path.basename(aarch64.cc).startswith(aarch64.triple)
    assert aarch64.ar and os.path.basename(aarch64.ar) in (f"{aarch64.triple}-ar", f"{aarch64.triple}-gcc-ar")
    assert aarch64.configure_args() == [f"--host={aarch64.triple}"]
    assert aarch64.emulator and "qemu-aarch64" in os.path.basename(aarch64.emulator[0])
    if os.path.isdir(f"/usr/{aarch64.triple}"):
        assert aarch64.emulator[1:] == ("-L", f"/usr/{aarch64.triple}")
    text = aarch64.cmake_toolchain_file(tmp_path / "tc.cmake", roots=["/opt/deps"]).read_text()
    for needle in ('CMAKE_SYSTEM_NAME "Linux"', 'CMAKE_SYSTEM_PROCESSOR "aarch64"', f'CMAKE_C_COMPILER "{aarch64.cc}"',
                   '"/opt/deps"', 'CMAKE_FIND_ROOT_PATH_MODE_PROGRAM "NEVER"', 'CMAKE_FIND_ROOT_PATH_MODE_LIBRARY "ONLY"'):
        assert needle in text


def test_missing_cross_compiler_says_what_to_install(settings: Settings) -> None:
    # a PATH with no cross compiler on it: detection finds none and the error names the package
    empty = Settings(cache_dir=settings.cache_root, env={"PATH": "/nonexistent"})
    with pytest.raises(BuildError) as info:
        find_toolchain("linux-riscv64", settings=empty, host_target="linux-x86_64")
    assert "linux-riscv64" in info.value.message
    assert "gcc-riscv64-linux-gnu" in (info.value.hint or "")


# -- make -------------------------------------------------------------------------------------

def test_make_recipe_native(tmp_path: Path, native: Toolchain, tarball: Path) -> None:
    ctx = make_ctx(tmp_path, native, tarball)
    record = run_recipe({"steps": [{"kind": "make"}]}, ctx)
    assert record["steps"] == ["make"] and record["toolchain"]["cc"] == native.cc
    stage = staged_prefix(ctx.destdir, ctx.prefix)
    assert (stage / "lib" / "libckhello.a").is_file() and (stage / "include" / "ckhello.h").is_file()
    assert not ctx.prefix.exists()  # only the staging root was written
    assert sorted(p.name for p in ctx.destdir.iterdir()) == [ctx.prefix.parts[1]]
    prog = tmp_path / "demo"
    subprocess.run([native.cc, str(DATA / "main.c"), f"-I{stage / 'include'}", str(stage / "lib" / "libckhello.a"),
                    "-o", str(prog)], check=True)
    assert subprocess.run([str(prog)], capture_output=True, text=True, check=True).stdout == \
        "hello from libckhello 1.0 answer=42\n"
    log = ctx.log.read_text()
    assert "$ " in log and "make install DESTDIR=" in log and f"PREFIX={ctx.prefix}" in log


def test_make_recipe_cross_aarch64_runs_under_qemu(tmp_path: Path, aarch64: Toolchain, tarball: Path) -> None:
    ctx = make_ctx(tmp_path, aarch64, tarball)
    run_recipe({"targets": ["linux-aarch64"], "steps": [{"kind": "make"}]}, ctx)
    stage = staged_prefix(ctx.destdir, ctx.prefix)
    assert elf_machine((stage / "lib" / "libckhello.so").read_bytes()) == EM_AARCH64
    members = ar_members(stage / "lib" / "libckhello.a")
    obj = next(v for k, v in members.items() if k.startswith("hello.o"))
    assert elf_machine(obj) == EM_AARCH64
    prog = tmp_path / "demo-aarch64"
    assert aarch64.cc and aarch64.emulator
    subprocess.run([aarch64.cc, str(DATA / "main.c"), f"-I{stage / 'include'}", str(stage / "lib" / "libckhello.a"),
                    "-o", str(prog)], check=True)
    assert elf_machine(prog.read_bytes()) == EM_AARCH64
    out = subprocess.run([*aarch64.emulator, str(prog)], capture_output=True, text=True, check=True)
    assert out.stdout == "hello from libckhello 1.0 answer=42\n"


def test_make_recipe_with_configure(tmp_path: Path, native: Toolchain, tarball: Path) -> None:
    ctx = make_ctx(tmp_path, native, tarball)
    # a configure script that writes what it was given (autoconf's interface, none of its bulk)
    (ctx.source / "configure").write_text('#!/bin/sh\necho "$@" > configure.args\necho "CC=$CC" >> configure.args\n')
    (ctx.source / "configure").chmod(0o755)
    run_recipe({"steps": [{"kind": "make", "configure_args": ["--disable-docs"]}]}, ctx)
    args = (ctx.source / "configure.args").read_text().splitlines()
    assert args == [f"--prefix={ctx.prefix} --disable-docs", f"CC={native.cc}"]


def test_make_configure_true_without_script_fails_before_make(tmp_path: Path, native: Toolchain,
                                                                tarball: Path) -> None:
    ctx = make_ctx(tmp_path, native, tarball)
    with pytest.raises(BuildError, match=r"step 1 of 1 \(make\): the recipe asks for ./configure"):
        run_recipe({"steps": [{"kind": "make", "configure": True}]}, ctx)
    assert not (ctx.source / "hello.o").exists()


# -- cmake ------------------------------------------------------------------------------------

def test_cmake_recipe_native(tmp_path: Path, native: Toolchain, tarball: Path) -> None:
    if not shutil.which("cmake"):
        pytest.skip("cmake is not installed")
    ctx = make_ctx(tmp_path, native, tarball)
    run_recipe({"steps": [{"kind": "cmake", "args": ["-DCMAKE_C_FLAGS=-DCKHELLO_CMAKE=1"]}]}, ctx)
    stage = staged_prefix(ctx.destdir, ctx.prefix)
    assert (stage / "lib" / "libckhello.a").is_file() and (stage / "include" / "ckhello.h").is_file()
    out = subprocess.run([str(stage / "bin" / "ckhello-demo")], capture_output=True, text=True, check=True)
    assert out.stdout == "hello from libckhello 1.0 answer=42\n"
    assert "-DCMAKE_BUILD_TYPE=Release" in ctx.log.read_text()


def test_cmake_recipe_cross_aarch64(tmp_path: Path, aarch64: Toolchain, tarball: Path) -> None:
    if not shutil.which("cmake"):
        pytest.skip("cmake is not installed")
    ctx = make_ctx(tmp_path, aarch64, tarball)
    run_recipe({"steps": [{"kind": "cmake"}]}, ctx)
    stage = staged_prefix(ctx.destdir, ctx.prefix)
    demo = stage / "bin" / "ckhello-demo"
    assert elf_machine(demo.read_bytes()) == EM_AARCH64
    assert aarch64.emulator
    out = subprocess.run([*aarch64.emulator, str(demo)], capture_output=True, text=True, check=True)
    assert out.stdout == "hello from libckhello 1.0 answer=42\n"
    assert "-DCMAKE_TOOLCHAIN_FILE=" in ctx.log.read_text()


# -- dependencies -----------------------------------------------------------------------------

def test_a_dependency_prefix_is_visible_to_the_next_build(tmp_path: Path, native: Toolchain, tarball: Path) -> None:
    lib = make_ctx(tmp_path / "lib", native, tarball)
    run_recipe({"steps": [{"kind": "make"}]}, lib)
    dep_prefix = staged_prefix(lib.destdir, lib.prefix)  # as if the store had made it final
    app = make_ctx(tmp_path / "app", native, deps={"libckhello": dep_prefix})
    shutil.copy(DATA / "main.c", app.source / "main.c")
    # CPATH and LIBRARY_PATH find the header and the library; the rpath finds the .so at run time
    run_recipe({"steps": [{"kind": "script", "run": [
        'mkdir -p "$DESTDIR$PREFIX/bin"',
        '$CC main.c $LDFLAGS -lckhello -o "$DESTDIR$PREFIX/bin/demo"',
        'test "$LIBCKHELLO_ROOT" = "' + str(dep_prefix) + '"',
    ]}]}, app)
    demo = staged_prefix(app.destdir, app.prefix) / "bin" / "demo"
    out = subprocess.run([str(demo)], capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout == "hello from libckhello 1.0 answer=42\n"


def test_deps_env(tmp_path: Path, aarch64_or_none: Toolchain | None) -> None:
    dep = tmp_path / "zlib"
    for d in ("bin", "include", "lib/pkgconfig", "share/pkgconfig"):
        (dep / d).mkdir(parents=True)
    env = deps_env({"lib-zlib": dep, "host-thing": Path("/usr")}, base_path="/usr/bin:/bin")
    assert env["PATH"] == f"{dep}/bin:/usr/bin:/bin"
    assert env["CPATH"] == f"{dep}/include" and env["CPPFLAGS"] == f"-I{dep}/include"
    assert env["LDFLAGS"] == f"-L{dep}/lib -Wl,-rpath,{dep}/lib" and env["LIBRARY_PATH"] == f"{dep}/lib"
    assert env["PKG_CONFIG_PATH"] == f"{dep}/lib/pkgconfig:{dep}/share/pkgconfig"
    assert env["LIB_ZLIB_ROOT"] == str(dep) and env["HOST_THING_ROOT"] == "/usr"
    assert env["CMAKE_PREFIX_PATH"] == str(dep)  # /usr is the compiler's own: no flags for it
    assert "LD_LIBRARY_PATH" not in env and "PKG_CONFIG_LIBDIR" not in env
    assert root_variable("9lives.x") == "_9LIVES_X_ROOT"
    if aarch64_or_none is not None:
        cross = deps_env({"lib-zlib": dep}, toolchain=aarch64_or_none, base_path="/usr/bin:/bin")
        assert cross["PATH"] == "/usr/bin:/bin"  # the target's programs do not run here
        assert "PKG_CONFIG_LIBDIR" in cross and "/usr/lib/pkgconfig" not in cross["PKG_CONFIG_LIBDIR"].split(":")


@pytest.fixture
def aarch64_or_none(settings: Settings) -> Toolchain | None:
    try:
        return find_toolchain("linux-aarch64", settings=settings)
    except BuildError:
        return None


# -- script, copy, the environment, failures --------------------------------------------------

def test_script_env_is_clean(tmp_path: Path, native: Toolchain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKPM_TEST_SECRET", "do-not-leak")
    monkeypatch.setenv("CFLAGS", "-DLEAKED")
    tools = tmp_path / "tools"
    tools.mkdir()
    ctx = make_ctx(tmp_path, native, tool_paths=[str(tools)], env={"SOURCE_DATE_EPOCH": "315532800"})
    record = run_recipe({"env": {"CFLAGS": "-O1", "GREETING": "a b"}, "steps": [{"kind": "script", "run": [
        'env | sort > "$DESTDIR$PREFIX/env.txt"', 'pwd > "$DESTDIR$PREFIX/cwd.txt"',
    ]}]}, ctx)
    assert record["steps"] == ["script"]
    stage = staged_prefix(ctx.destdir, ctx.prefix)
    env = dict(line.split("=", 1) for line in (stage / "env.txt").read_text().splitlines() if "=" in line)
    assert "CKPM_TEST_SECRET" not in env and "do-not-leak" not in (stage / "env.txt").read_text()
    assert env["CFLAGS"] == "-O1" and env["GREETING"] == "a b" and env["SOURCE_DATE_EPOCH"] == "315532800"
    assert env["PATH"].split(":")[0] == str(tools) and env["PATH"].endswith("/usr/bin:/sbin:/bin")
    assert env["HOME"].startswith(str(ctx.build_dir)) and env["TMPDIR"].startswith(str(ctx.build_dir))
    assert env["LANG"] == "C" and env["PREFIX"] == str(ctx.prefix) and env["DESTDIR"] == str(ctx.destdir)
    assert env["CC"] == native.cc and env["CKPM_TARGET"] == native.target
    assert (stage / "cwd.txt").read_text().strip() == str(ctx.source)
    # build_env is the same environment, for callers that show it
    assert build_env(ctx)["HOME"] == env["HOME"]


def test_copy_steps(tmp_path: Path, native: Toolchain, tarball: Path) -> None:
    ctx = make_ctx(tmp_path, host_only(), tarball)
    record = run_recipe({"steps": [
        {"kind": "copy", "from": "data", "to": "share/models"},
        {"kind": "copy", "from": "ckhello.h", "to": "include/"},
        {"kind": "copy", "from": "main.c", "to": "share/doc/example.c"},
    ]}, ctx)
    assert "toolchain" not in record  # nothing was compiled
    stage = staged_prefix(ctx.destdir, ctx.prefix)
    assert (stage / "share" / "models" / "model.bin").read_text() == "weights v1\n"
    assert (stage / "include" / "ckhello.h").is_file() and (stage / "share" / "doc" / "example.c").is_file()


def test_copy_refuses_a_symlink_out_of_the_sources(tmp_path: Path, native: Toolchain) -> None:
    ctx = make_ctx(tmp_path, host_only())
    (ctx.source / "escape").symlink_to("/etc")
    with pytest.raises(BuildError, match="refused to copy"):
        run_recipe({"steps": [{"kind": "copy", "from": "escape", "to": "etc"}]}, ctx)


def test_failing_step_carries_the_log_tail(tmp_path: Path, native: Toolchain) -> None:
    ctx = make_ctx(tmp_path, native)
    recipe = {"steps": [{"kind": "script", "run": ['true']},
                        {"kind": "script", "run": ['for i in $(seq 1 40); do echo "line $i"; done; exit 3']}]}
    with pytest.raises(BuildError) as info:
        run_recipe(recipe, ctx)
    err = info.value
    assert "step 2 of 2 (script)" in err.message and "exit status 3" in err.message and "seq 1 40" in err.message
    assert err.log == str(ctx.log) and len(err.tail) == 20 and err.tail[-1] == "line 40"
    assert f"the whole log: {ctx.log}" in err.render()


def test_installing_nothing_or_outside_the_prefix_fails(tmp_path: Path, native: Toolchain) -> None:
    ctx = make_ctx(tmp_path, native)
    with pytest.raises(BuildError, match="installed nothing"):
        run_recipe({"steps": [{"kind": "script", "run": ["true"]}]}, ctx)
    with pytest.raises(BuildError, match="outside the prefix"):
        run_recipe({"steps": [{"kind": "script", "run": [
            'mkdir -p "$DESTDIR/usr/local/lib" "$DESTDIR$PREFIX/lib"']}]}, ctx)


def test_timeout_kills_the_whole_group(tmp_path: Path, native: Toolchain) -> None:
    ctx = make_ctx(tmp_path, native, timeout=1.0)
    pidfile = tmp_path / "child.pid"
    with pytest.raises(BuildError, match="did not finish in time"):
        run_recipe({"steps": [{"kind": "script", "run": [f'sleep 60 & echo $! > {pidfile}; wait']}]}, ctx)
    pid = int(pidfile.read_text())
    for _ in range(100):  # SIGKILL was sent; wait for the kernel to deliver it
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the background child {pid} survived the timeout")


def test_bad_recipe_runs_nothing(tmp_path: Path, native: Toolchain) -> None:
    ctx = make_ctx(tmp_path, native)
    marker = tmp_path / "ran"
    recipe = {"steps": [{"kind": "script", "run": [f"touch {marker}"]}, {"kind": "make", "configure": "maybe"}]}
    with pytest.raises(BuildError, match="invalid.*configure"):
        run_recipe(recipe, ctx)
    assert not marker.exists() and not ctx.log.exists()


def test_recipe_for_another_target_is_refused(tmp_path: Path, native: Toolchain) -> None:
    ctx = make_ctx(tmp_path, native)
    other = "linux-aarch64" if native.target != "linux-aarch64" else "linux-x86_64"
    with pytest.raises(BuildError, match=f"not for {native.target}"):
        run_recipe({"targets": [other], "steps": [{"kind": "script", "run": ["true"]}]}, ctx)


GOOD = {"targets": ["linux-*"], "sources": [], "env": {"CFLAGS": "-O2"}, "steps": [
    {"kind": "script", "run": ["make"]},
    {"kind": "make", "configure": "auto", "configure_args": ["--x"], "make_args": [], "install_args": []},
    {"kind": "cmake", "args": ["-DX=1"], "build_type": "RelWithDebInfo"},
    {"kind": "pip", "requirements": ["numpy==1.26.4", "Foo_Bar[extra1,extra2] >=1.0, <2 ; python_version >= '3.8'"],
     "hashes": {"numpy": ["a" * 64], "foo-bar": ["sha256:" + "B" * 64]}},
    {"kind": "copy", "from": "data/x", "to": "share/x"},
    {"kind": "copy"},
]}


@pytest.mark.parametrize("recipe, problem", [
    ([], "must be a table"),
    ({"steps": []}, "steps: empty"),
    ({}, "steps: missing"),
    ({"steps": [{"kind": "ninja"}]}, "not a step kind"),
    ({"steps": [{"run": ["x"]}]}, "kind: missing"),
    ({"steps": [{"kind": "script", "run": "make install"}]}, "must be a list of strings, not a string"),
    ({"steps": [{"kind": "script", "run": [1]}]}, "must be a string, not a number"),
    ({"steps": [{"kind": "script", "run": ["x"], "shell": "bash"}]}, "unknown field 'shell'"),
    ({"steps": [{"kind": "script", "run": ["x"]}], "build": 1}, "unknown recipe field 'build'"),
    ({"steps": [{"kind": "make", "configure": "yes"}]}, "configure: must be true, false"),
    ({"steps": [{"kind": "cmake", "build_type": "Release; rm -rf /"}]}, "build_type"),
    ({"steps": [{"kind": "copy", "from": "../../etc"}]}, "climbs out"),
    ({"steps": [{"kind": "copy", "to": "a/../../x"}]}, "climbs out"),
    ({"steps": [{"kind": "copy", "from": "/etc/passwd"}]}, "absolute path"),
    ({"steps": [{"kind": "script", "run": ["x"]}] * 65}, "more than 64"),
    ({"steps": [{"kind": "script", "run": ["x" * 20000]}]}, "more than 16384"),
    ({"steps": [{"kind": "make", "make_args": ["x"] * 300}]}, "300 items"),
    ({"steps": [{"kind": "script", "run": ["a\x00b"]}]}, "NUL"),
    ({"steps": [{"kind": "pip", "requirements": ["--index-url=http://evil/ numpy"]}]}, "not a plain requirement"),
    ({"steps": [{"kind": "pip", "requirements": ["numpy @ https://evil/numpy.whl"]}]}, "not a plain requirement"),
    ({"steps": [{"kind": "pip", "requirements": ["-r other.txt"]}]}, "not a plain requirement"),
    ({"steps": [{"kind": "pip", "requirements": ["numpy==1 ; os_name == 'x' --hash=sha256:0"]}]},
     "not a plain requirement"),
    ({"steps": [{"kind": "pip", "requirements": ["numpy"], "hashes": {"numpy": ["abc"]}}]}, "not a sha256"),
    ({"steps": [{"kind": "pip", "requirements": []}]}, "requirements: empty"),
    ({"steps": [{"kind": "script", "run": ["x"]}], "env": {"PATH": "/evil"}}, "env.PATH: ckpm sets"),
    ({"steps": [{"kind": "script", "run": ["x"]}], "env": {"LD_PRELOAD": "/x.so"}}, "env.LD_PRELOAD"),
    ({"steps": [{"kind": "script", "run": ["x"]}], "env": {"CKPM_TARGET": "x"}}, "env.CKPM_TARGET"),
    ({"steps": [{"kind": "script", "run": ["x"]}], "env": {"A B": "x"}}, "not a variable name"),
    ({"steps": [{"kind": "script", "run": ["x"]}], "env": {"X": "y" * 5000}}, "more than 4096"),
    ({"steps": [{"kind": "script", "run": ["x"]}], "targets": ["linx-*"]}, "names no known OS"),
    ({"steps": [{"kind": "script", "run": ["x"]}], "targets": "linux-*"}, "targets: must be a list"),
])
def test_check_recipe_refuses(recipe: Any, problem: str) -> None:
    problems = check_recipe(recipe)
    assert problems and any(problem in p for p in problems), problems


def test_check_recipe_accepts_every_kind() -> None:
    assert check_recipe(GOOD) == []
    assert {s["kind"] for s in GOOD["steps"]} == set(STEP_KINDS)


# -- pip --------------------------------------------------------------------------------------

def make_wheel(folder: Path, name: str = "ckdemo", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel (METADATA, WHEEL, RECORD, one module)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"GREETING = 'hello from {name} {version}'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: ckpm-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    import base64

    record = []
    for fn, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{fn},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for fn, text in files.items():
            zf.writestr(zipfile.ZipInfo(fn, date_time=(2024, 1, 1, 0, 0, 0)), text)
    path.write_bytes(buf.getvalue())
    return path


def test_pip_recipe_from_a_local_wheel_mirror(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    venv = tmp_path / "venv"
    ctx = make_ctx(tmp_path, host_only(), venv=venv, python=sys.executable,
                   pip_args=["--no-index", "--find-links", str(wheel.parent)])
    record = run_recipe({"steps": [{"kind": "pip", "requirements": ["ckdemo==1.0"]}]}, ctx)
    assert [(d["name"], d["version"], d["sha256"]) for d in record["pip"]] == [("ckdemo", "1.0", sha)]
    assert record["pip"][0]["url"].endswith(wheel.name)
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import ckdemo; print(ckdemo.GREETING)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "hello from ckdemo 1.0\n"
    assert "--report" in ctx.log.read_text()


def test_pip_recipe_with_hashes(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    venv = tmp_path / "venv"
    ctx = make_ctx(tmp_path, host_only(), venv=venv, pip_args=["--no-index", "--find-links", str(wheel.parent)])
    wrong = {"steps": [{"kind": "pip", "requirements": ["ckdemo==1.0"], "hashes": {"ckdemo": ["0" * 64]}}]}
    with pytest.raises(BuildError) as info:
        run_recipe(wrong, ctx)
    assert "step 1 of 1 (pip)" in info.value.message and "--require-hashes" in info.value.message
    assert any("HASH" in line.upper() for line in info.value.tail)
    assert not list(venv.glob("lib/python*/site-packages/ckdemo.py"))  # nothing was installed
    right = {"steps": [{"kind": "pip", "requirements": ["ckdemo==1.0"], "hashes": {"CKDemo": [f"sha256:{sha}"]}}]}
    record = run_recipe(right, ctx)
    assert record["pip"] == [{"name": "ckdemo", "version": "1.0", "sha256": sha, "url": record["pip"][0]["url"]}]
    assert list(venv.glob("lib/python*/site-packages/ckdemo.py"))


def test_pip_steps_are_refused_for_a_cross_target(tmp_path: Path) -> None:
    host = real_host_target()
    other = "linux-aarch64" if host != "linux-aarch64" else "linux-x86_64"
    ctx = make_ctx(tmp_path, Toolchain(target=other, host_target=host, triple=None, cc=None), venv=tmp_path / "v")
    with pytest.raises(BuildError, match="pip steps install into this host's Python"):
        run_recipe({"steps": [{"kind": "pip", "requirements": ["ckdemo"]}]}, ctx)
    assert not (tmp_path / "v").exists()


def test_check_recipe_wants_a_digest_for_every_hashed_requirement() -> None:
    recipe = {"steps": [{"kind": "pip", "requirements": ["a==1", "b==2"], "hashes": {"a": ["a" * 64]}}]}
    assert any("no digest for b" in p for p in check_recipe(recipe))
    too_many = {"steps": [{"kind": "script", "run": ["x"]}], "env": {f"V{i}": "x" for i in range(100_000)}}
    assert check_recipe(too_many) == ["env: 100000 variables, more than 64"]


def test_compiling_needs_a_compiler(tmp_path: Path, tarball: Path) -> None:
    ctx = make_ctx(tmp_path, host_only(), tarball)
    with pytest.raises(BuildError, match="has no C compiler"):
        run_recipe({"steps": [{"kind": "make"}]}, ctx)
    assert not ctx.log.exists()


def test_deps_env_lists_a_shared_prefix_once(tmp_path: Path) -> None:
    from ckpm.build.environment import deps_env

    prefix = tmp_path / "prefix"
    for d in ("bin", "include", "lib/pkgconfig"):
        (prefix / d).mkdir(parents=True)
    env = deps_env({"lib-a": prefix, "lib-a-dev": prefix}, base_path="/usr/bin")
    assert env["LIB_A_ROOT"] == env["LIB_A_DEV_ROOT"] == str(prefix)
    assert env["PATH"] == f"{prefix}/bin:/usr/bin" and env["CPPFLAGS"] == f"-I{prefix}/include"
    assert env["PKG_CONFIG_PATH"] == f"{prefix}/lib/pkgconfig" and env["CMAKE_PREFIX_PATH"] == str(prefix)
