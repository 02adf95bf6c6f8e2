"""The demo program (programs/image-corners) built with the real compiler and run on the committed data set.

Its output must be the same bytes at every optimisation level and on aarch64 under qemu, and
what programs/image-corners/README.md documents; the vendored archives must be what
tools/make_demo_data.py builds.
"""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "programs" / "image-corners"
SOURCES = [PROGRAM / "corners.c", PROGRAM / "pgm.c"]
VENDOR = ROOT / "vendor" / "example.org" / "ckpm"
DATA = VENDOR / "hello-images-1.1.0.tar.gz"
SOURCE_ARCHIVE = VENDOR / "hello-ckpm-0.3.0.tar.gz"
GENERATOR = ROOT / "tools" / "make_demo_data.py"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"]

# what README.md documents for the default threshold (40)
EXPECTED_STDOUT = """\
image img-01: 25 corners
image img-02: 24 corners
image img-03: 18 corners
image img-04: 20 corners
image img-05: 34 corners
image img-06: 19 corners
image img-07: 25 corners
image img-08: 40 corners
corners: 205
images: 8
"""
EXPECTED_METRICS = '{"corners": 205, "images": 8, "checksum": "d1711aea2310215a"}\n'
# other settings: arguments -> (total corners, checksum)
EXPECTED_OTHER: dict[tuple[str, ...], tuple[int, str]] = {
    ("--blur",): (303, "5ecbd4460c0eb4fb"),
    ("--score=fast",): (208, "91601a18091a15a4"),
    ("20",): (239, "43a501c99e8e144c"),
    ("80",): (171, "97e38788d5ebdd19"),
}


def compile_program(cc: str, flags: list[str], out: Path, extra: list[str] | None = None) -> Path:
    subprocess.run([cc, *CFLAGS, *flags, "-o", str(out), *map(str, SOURCES), *(extra or [])],
                   check=True, capture_output=True, text=True, timeout=120)
    return out


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def fnv1a64(data: bytes, h: int = 0xCBF29CE484222325) -> int:
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed data set, unpacked: a folder of img-01.pgm … img-08.pgm."""
    dest = tmp_path_factory.mktemp("hello-images")
    with tarfile.open(DATA) as tar:
        for m in tar.getmembers():
            assert m.name.startswith("hello-images-1.1.0/") or m.name == "hello-images-1.1.0"
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                (dest / Path(m.name).name).write_bytes(f.read())
    return dest


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The program compiled by gcc at -O0, -O2, -O3 and -Os."""
    d = tmp_path_factory.mktemp("builds")
    return {opt: compile_program("gcc", [opt], d / f"corners{opt}") for opt in ("-O0", "-O2", "-O3", "-Os")}


@pytest.fixture(scope="module")
def reference(builds: dict[str, Path], images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The outputs of the -O2 build with the default threshold."""
    out = tmp_path_factory.mktemp("reference") / "out"
    r = run([str(builds["-O2"]), str(images), str(out)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == EXPECTED_STDOUT
    return out


def test_the_documented_results(reference: Path, images: Path) -> None:
    outputs = files_of(reference)
    assert sorted(outputs) == [f"img-{i:02d}.pgm" for i in range(1, 9)] + ["metrics.json"]
    assert outputs["metrics.json"].decode() == EXPECTED_METRICS
    # the checksum is FNV-1a over the output images in order; each is a P5 copy of its input with crosses
    h = 0xCBF29CE484222325
    for name in sorted(outputs):
        if name.endswith(".pgm"):
            data = outputs[name]
            h = fnv1a64(data, h)
            assert data.startswith(b"P5\n512 512\n255\n") and len(data) == (images / name).stat().st_size
            assert data != (images / name).read_bytes()
    assert json.loads(outputs["metrics.json"])["checksum"] == f"{h:016x}"
    readme = (PROGRAM / "README.md").read_text()
    assert EXPECTED_STDOUT in readme and EXPECTED_METRICS.strip() in readme


@pytest.mark.parametrize("opt", ["-O0", "-O3", "-Os"])
def test_same_bytes_at_every_optimisation_level(opt: str, builds: dict[str, Path], images: Path,
                                                 reference: Path, tmp_path: Path) -> None:
    r = run([str(builds[opt]), str(images), str(tmp_path / "out"), "40"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == EXPECTED_STDOUT
    assert files_of(tmp_path / "out") == files_of(reference)


@pytest.mark.parametrize("args", list(EXPECTED_OTHER), ids=lambda a: " ".join(a))
def test_other_settings(args: tuple[str, ...], builds: dict[str, Path], images: Path, tmp_path: Path) -> None:
    total, checksum = EXPECTED_OTHER[args]
    options = [a for a in args if a.startswith("--")]
    threshold = [a for a in args if not a.startswith("--")]
    outs = {}
    for opt in ("-O0", "-O2"):
        out = tmp_path / opt
        r = run([str(builds[opt]), *options, str(images), str(out), *threshold])
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[-2:] == [f"corners: {total}", "images: 8"]
        outs[opt] = files_of(out)
    assert outs["-O0"] == outs["-O2"]
    assert json.loads(outs["-O2"]["metrics.json"]) == {"corners": total, "images": 8, "checksum": checksum}
    readme = " ".join((PROGRAM / "README.md").read_text().split())
    assert f"{total} (`{checksum}`)" in readme or f"{total} corners (checksum `{checksum}`)" in readme


def test_ascii_p2_and_a_smaller_maxval_read_as_the_binary_image(builds: dict[str, Path], images: Path,
                                                                reference: Path, tmp_path: Path) -> None:
    data = (images / "img-03.pgm").read_bytes()
    header = b"P5\n512 512\n255\n"
    assert data.startswith(header)
    pixels = data[len(header):]
    src = tmp_path / "in"
    src.mkdir()
    rows = [" ".join(str(v) for v in pixels[y * 512:(y + 1) * 512]) for y in range(512)]
    (src / "img-03.pgm").write_text("P2\n# an ASCII copy\n512 # width\n512\n255\n" + "\n".join(rows) + "\n")
    r = run([str(builds["-O2"]), str(src), str(tmp_path / "out")])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "image img-03: 18 corners"
    assert (tmp_path / "out" / "img-03.pgm").read_bytes() == (reference / "img-03.pgm").read_bytes()
    # maxval 15: samples are rescaled to 0..255 (v * 255 / 15 = v * 17)
    (src / "img-03.pgm").write_bytes(b"P5 4 2 15\n" + bytes([0, 1, 7, 15, 15, 8, 2, 0]))
    r = run([str(builds["-O2"]), str(src), str(tmp_path / "out2")])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out2" / "img-03.pgm").read_bytes() == b"P5\n4 2\n255\n" + bytes(
        [0, 17, 119, 255, 255, 136, 34, 0])


@pytest.mark.parametrize("content, words", [
    (b"P5\n512 512\n255\n" + bytes(1000), "truncated: 1000 of 262144 pixel bytes"),
    (b"P6\n2 2\n255\n" + bytes(12), 'does not start with "P5" or "P2"'),
    (b"", 'does not start with "P5" or "P2"'),
    (b"P5\n2 2\n65535\n" + bytes(8), "maxval 65535 is not supported"),
    (b"P5\n0 4\n255\n", "width and height must be at least 1"),
    (b"P2\n2 2\n255\n1 2 x 4\n", "pixel value 2 is not a decimal number"),
    (b"P5\n8193 8192\n255\n", "too large: 8193x8192 (at most 8192x8192)"),
    (b"P5\n99999999999999999999 2\n255\n", "too large"),
])
def test_a_bad_image_is_an_error_naming_the_file(content: bytes, words: str, builds: dict[str, Path],
                                                 images: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(images / "img-01.pgm", src / "a-good.pgm")
    (src / "b-bad.pgm").write_bytes(content)
    r = run([str(builds["-O2"]), str(src), str(tmp_path / "out")])
    assert r.returncode == 2
    assert f"corners: error: {src / 'b-bad.pgm'}: " in r.stderr and words in r.stderr
    assert r.stdout == "image a-good: 25 corners\n"  # the images before it are done; no totals
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_usage_errors(builds: dict[str, Path], images: Path, tmp_path: Path) -> None:
    exe = str(builds["-O2"])
    r = run([exe, str(tmp_path / "missing"), str(tmp_path / "out")])
    assert r.returncode == 2 and str(tmp_path / "missing") in r.stderr and "No such file" in r.stderr
    for bad in ("0", "255", "4x", "-1", ""):
        r = run([exe, str(images), str(tmp_path / "out"), bad])
        assert r.returncode == 2 and "THRESHOLD must be a whole number from 1 to 254" in r.stderr, bad
    r = run([exe, str(images)])
    assert r.returncode == 2 and "usage: corners" in r.stderr
    r = run([exe, "--sharpen", str(images), str(tmp_path / "out")])
    assert r.returncode == 2 and "unknown option '--sharpen'" in r.stderr
    r = run([exe, str(images), str(images)])
    assert r.returncode == 2 and "the output folder is the input folder" in r.stderr
    r = run([exe, "--help"])
    assert r.returncode == 0 and r.stdout.startswith("usage: corners")
    # an empty folder (and names that are not *.pgm, or hidden) is not an error
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    (tmp_path / "empty" / ".hidden.pgm").write_text("x")
    r = run([exe, str(tmp_path / "empty"), str(tmp_path / "out" / "deeper")])
    assert r.returncode == 0 and r.stdout == "corners: 0\nimages: 0\n"
    assert (tmp_path / "out" / "deeper" / "metrics.json").read_text() == \
        '{"corners": 0, "images": 0, "checksum": "cbf29ce484222325"}\n'


def test_the_makefile_builds_and_installs(tmp_path: Path, images: Path, reference: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(PROGRAM, src)
    subprocess.run(["make", "CC=gcc", "CFLAGS=-O1"], cwd=src, check=True, capture_output=True, timeout=120)
    subprocess.run(["make", "install", "PREFIX=/opt/demo", f"DESTDIR={tmp_path / 'stage'}"], cwd=src,
                   check=True, capture_output=True, timeout=120)
    exe = tmp_path / "stage" / "opt" / "demo" / "bin" / "corners"
    r = run([str(exe), str(images), str(tmp_path / "out")])
    assert r.returncode == 0 and r.stdout == EXPECTED_STDOUT
    assert files_of(tmp_path / "out") == files_of(reference)


def test_the_archives_are_what_the_generator_builds() -> None:
    r = run([sys.executable, str(GENERATOR), "--check"], cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    expected = {
        DATA: None,  # its content is what --check built afresh
        SOURCE_ARCHIVE: {f"hello-ckpm-0.3.0/{p.name}": p.read_bytes() for p in sorted(PROGRAM.iterdir())
                         if p.suffix in (".c", ".h") or p.name in ("Makefile", "README.md")},
    }
    for archive, files in expected.items():
        raw = archive.read_bytes()
        assert raw[:4] == b"\x1f\x8b\x08\x00" and raw[4:8] == bytes(4)  # gzip, no name, mtime 0
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            members = tar.getmembers()
            top = archive.name[:-len(".tar.gz")]
            assert [m.name for m in members if m.isdir()][0] == top
            assert all(m.name == top or m.name.startswith(top + "/") for m in members)
            assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and not m.uname and not m.gname for m in members)
            got = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
        assert list(got) == sorted(got)
        if files is None:
            assert list(got) == [f"{top}/images/img-{i:02d}.pgm" for i in range(1, 9)]
        else:
            assert got == files


def _cross_tools() -> tuple[str | None, str | None]:
    return shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")


@pytest.mark.skipif(None in _cross_tools(),
                    reason="needs aarch64-linux-gnu-gcc (Debian gcc-aarch64-linux-gnu, libc6-dev-arm64-cross) "
                           "and qemu-aarch64 (qemu-user)")
def test_aarch64_under_qemu_gives_the_same_bytes(images: Path, reference: Path, tmp_path: Path) -> None:
    cc, qemu = _cross_tools()
    assert cc and qemu
    exe = compile_program(cc, ["-O2"], tmp_path / "corners-aarch64", ["-static"])
    r = run([qemu, "-L", "/usr/aarch64-linux-gnu", str(exe), str(images), str(tmp_path / "out")])
    assert r.returncode == 0, r.stderr
    assert r.stdout == EXPECTED_STDOUT
    assert files_of(tmp_path / "out") == files_of(reference)
