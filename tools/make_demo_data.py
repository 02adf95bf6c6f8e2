#!/usr/bin/env python3
"""Build the demo's two archives, byte for byte the same on every run.

- ``vendor/example.org/ckpm/hello-images-1.1.0.tar.gz``: the data set, ``hello-images-1.1.0/``
  with ``images/img-01.pgm`` … ``images/img-08.pgm``: 8 grayscale 256x256 binary (P5) PGM
  images drawn here (rectangles, triangles, a checkerboard, rotated squares, discs, a ramp) with
  a little noise from a fixed-seed generator of our own (so no Python version changes them);
- ``vendor/example.org/ckpm/hello-ckpm-0.3.0.tar.gz``: the program's sources, ``hello-ckpm-0.3.0/``
  with the files of ``programs/image-corners/`` (``*.c``, ``*.h``, ``Makefile``, ``README.md``).

Both are tar (ustar) archives with sorted names, folders first, mtime 0, uid/gid 0, no user or
group names, modes 0755/0644, compressed with a gzip header written here (mtime 0, no name)
around zlib's deflate at level 9.

    python tools/make_demo_data.py            # (re)write both archives; print their sha256 and sizes
    python tools/make_demo_data.py --check    # exit 1 when a committed archive is not what this builds
    python tools/make_demo_data.py --images DIR   # also write the images into DIR

An archive whose tar content is unchanged is left as it is, even when this machine's zlib would
compress it to other bytes (zlib-ng does): its sha256 is pinned in the index. ``--check`` says so
and passes in that case.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import math
import struct
import sys
import tarfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "vendor" / "example.org" / "ckpm"
PROGRAM = ROOT / "programs" / "image-corners"
DATA_NAME = "hello-images-1.1.0"
SOURCE_NAME = "hello-ckpm-0.3.0"
SIZE = 512
GRID = 256  # shapes are laid out on a GRID x GRID plan, scaled to SIZE


# ---- a tiny deterministic generator (64-bit LCG, Knuth's MMIX constants) ------------------

class Rng:
    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next32(self) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return self.state >> 32

    def below(self, n: int) -> int:
        """0 <= value < n (a tiny modulo bias is fine here)."""
        return self.next32() % n

    def between(self, lo: int, hi: int) -> int:
        """lo <= value <= hi."""
        return lo + self.below(hi - lo + 1)


# ---- drawing on a SIZE x SIZE bytearray, in GRID coordinates ---------------------------------

class Canvas:
    def __init__(self, background: int = 0) -> None:
        self.w = self.h = SIZE
        self.px = bytearray([background]) * (self.w * self.h)

    def rect(self, x0: int, y0: int, x1: int, y1: int, v: int) -> None:
        """Fill x0 <= x < x1, y0 <= y < y1."""
        k = SIZE // GRID
        x0, y0, x1, y1 = k * x0, k * y0, k * x1, k * y1
        x0, x1 = max(0, x0), min(self.w, x1)
        for y in range(max(0, y0), min(self.h, y1)):
            self.px[y * self.w + x0:y * self.w + x1] = bytes([v]) * max(0, x1 - x0)

    def polygon(self, pts: list[tuple[int, int]], v: int) -> None:
        """Fill a convex polygon: the pixels whose centre lies inside (or on) every edge."""
        k = SIZE // GRID
        pts = [(k * x, k * y) for x, y in pts]
        n = len(pts)
        # twice the signed area tells the winding; edges are tested at pixel centres (2x+1, 2y+1)
        area2 = sum(pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n))
        sign = 1 if area2 > 0 else -1
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        edges = [(2 * pts[i][0], 2 * pts[i][1], 2 * pts[(i + 1) % n][0], 2 * pts[(i + 1) % n][1]) for i in range(n)]
        for y in range(max(0, min(ys)), min(self.h, max(ys) + 1)):
            cy = 2 * y + 1
            for x in range(max(0, min(xs)), min(self.w, max(xs) + 1)):
                cx = 2 * x + 1
                if all(sign * ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax)) >= 0 for ax, ay, bx, by in edges):
                    self.px[y * self.w + x] = v

    def disc(self, cx: int, cy: int, r: int, v: int) -> None:
        k = SIZE // GRID
        cx, cy, r = k * cx, k * cy, k * r
        for y in range(max(0, cy - r), min(self.h, cy + r + 1)):
            for x in range(max(0, cx - r), min(self.w, cx + r + 1)):
                if (x - cx) ** 2 + (y - cy) ** 2 <= r * r:
                    self.px[y * self.w + x] = v

    def noise(self, rng: Rng, amplitude: int) -> None:
        """Add a uniform value in [-amplitude, amplitude] to every pixel, clipped to 0..255."""
        span = 2 * amplitude + 1
        px = self.px
        for i in range(len(px)):
            px[i] = min(255, max(0, px[i] + rng.below(span) - amplitude))

    def pgm(self) -> bytes:
        return b"P5\n%d %d\n255\n" % (self.w, self.h) + bytes(self.px)


def rotated_square(cx: int, cy: int, half: int, num: int, den: int) -> list[tuple[int, int]]:
    """A square of half-size HALF turned by the angle whose tangent is NUM/DEN (integer vertices)."""
    # the direction (den, num) scaled to length HALF and rounded, in integers only
    norm = math.isqrt((num * num + den * den) << 32)  # |(den, num)| * 2**16
    ux, uy = ((half * den << 16) + norm // 2) // norm, ((half * num << 16) + norm // 2) // norm
    return [(cx + ux - uy, cy + uy + ux), (cx - ux - uy, cy - uy + ux), (cx - ux + uy, cy - uy - ux), (cx + ux + uy, cy + uy - ux)]


def image(index: int) -> bytes:
    """Image number INDEX (1..8)."""
    rng = Rng(0xC0FFEE + index)
    if index == 1:  # rectangles, some overlapping
        c = Canvas(30)
        c.rect(20, 20, 100, 80, 200)
        c.rect(60, 50, 140, 130, 120)
        c.rect(160, 30, 230, 100, 240)
        c.rect(30, 160, 110, 230, 170)
        c.rect(150, 150, 240, 240, 90)
        c.rect(175, 175, 215, 215, 250)
    elif index == 2:  # a checkerboard on a mid-grey background
        c = Canvas(128)
        for j in range(6):
            for i in range(6):
                c.rect(32 + 32 * i, 32 + 32 * j, 64 + 32 * i, 64 + 32 * j, 215 if (i + j) % 2 else 40)
    elif index == 3:  # triangles
        c = Canvas(20)
        c.polygon([(20, 110), (120, 110), (70, 20)], 220)
        c.polygon([(140, 20), (240, 40), (160, 120)], 160)
        c.polygon([(30, 140), (110, 240), (20, 230)], 190)
        c.polygon([(130, 150), (245, 150), (245, 245)], 110)
        c.polygon([(150, 160), (200, 230), (130, 230)], 250)
        c.noise(rng, 3)
    elif index == 4:  # rotated squares
        c = Canvas(200)
        c.polygon(rotated_square(64, 64, 40, 1, 3), 30)
        c.polygon(rotated_square(190, 64, 40, 1, 1), 80)
        c.polygon(rotated_square(64, 190, 40, 2, 5), 60)
        c.polygon(rotated_square(190, 190, 44, 3, 4), 10)
        c.polygon(rotated_square(190, 190, 20, 1, 2), 250)
    elif index == 5:  # staircases and L shapes
        c = Canvas(240)
        for s in range(6):
            c.rect(16 + 18 * s, 16 + 18 * s, 128, 34 + 18 * s, 40)
        c.rect(150, 20, 180, 120, 90)
        c.rect(150, 90, 240, 120, 90)
        c.rect(20, 150, 120, 175, 140)
        c.rect(95, 150, 120, 240, 140)
        c.rect(150, 150, 240, 240, 20)
        c.rect(170, 170, 220, 220, 240)
        c.noise(rng, 4)
    elif index == 6:  # discs among a rectangle and a triangle
        c = Canvas(60)
        c.disc(64, 64, 40, 220)
        c.disc(190, 70, 30, 150)
        c.disc(80, 190, 25, 250)
        c.rect(140, 140, 230, 230, 200)
        c.polygon([(20, 240), (60, 150), (120, 240)], 180)
    elif index == 7:  # a horizontal ramp: the same shapes with less and less contrast
        c = Canvas(0)
        for y in range(SIZE):
            c.px[y * SIZE:(y + 1) * SIZE] = bytes(x * 3 * GRID // (4 * SIZE) + 20 for x in range(SIZE))
        for i in range(5):
            x = 12 + 48 * i
            c.rect(x, 20, x + 32, 60, 90 + 30 * i)
            c.polygon([(x, 120), (x + 36, 120), (x + 18, 80)], 70 + 35 * i)
            c.rect(x + 4, 150, x + 28, 230, 255 - 40 * i)
    else:  # a seeded scatter of rectangles and triangles, with more noise
        c = Canvas(100)
        for _ in range(10):
            x, y = rng.between(8, 200), rng.between(8, 200)
            w, h = rng.between(16, 48), rng.between(16, 48)
            c.rect(x, y, x + w, y + h, rng.between(0, 255))
        for _ in range(6):
            x, y = rng.between(20, 230), rng.between(20, 230)
            while True:  # no slivers: at least 300 square units
                pts = [(x, y), (x + rng.between(15, 40), y + rng.between(-30, 30)),
                       (x + rng.between(-30, 30), y + rng.between(15, 40))]
                (ax, ay), (bx, by), (cx, cy) = pts
                if abs((bx - ax) * (cy - ay) - (by - ay) * (cx - ax)) >= 600:
                    break
            c.polygon(pts, rng.between(0, 255))
        c.noise(rng, 8)
    return c.pgm()


def images() -> dict[str, bytes]:
    return {f"img-{i:02d}.pgm": image(i) for i in range(1, 9)}


# ---- deterministic archives ---------------------------------------------------------------

def tar_bytes(top: str, files: dict[str, bytes]) -> bytes:
    """A ustar archive of TOP/ and FILES (relative paths) under it: folders then files, sorted."""
    folders = {top}
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add(top + "/" + "/".join(parts[:i]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(folders):
            tar.addfile(_info(name + "/", tarfile.DIRTYPE, 0o755, 0))
        for rel in sorted(files):
            data = files[rel]
            tar.addfile(_info(f"{top}/{rel}", tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return buf.getvalue()


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    info.mtime = info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def gzip_bytes(data: bytes) -> bytes:
    """gzip (RFC 1952) with a fixed header: no name, mtime 0, XFL 2 (level 9), OS 255."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY)
    body = comp.compress(data) + comp.flush()
    return (b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x02\xff" + body
            + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF))


def source_files() -> dict[str, bytes]:
    """The program's files that go into its source archive."""
    out = {}
    for p in sorted(PROGRAM.iterdir()):
        if p.is_file() and (p.suffix in (".c", ".h") or p.name in ("Makefile", "README.md")):
            out[p.name] = p.read_bytes()
    return out


def archives() -> dict[Path, bytes]:
    """Each archive's path and its uncompressed tar bytes."""
    return {
        VENDOR / f"{DATA_NAME}.tar.gz": tar_bytes(DATA_NAME, {f"images/{n}": d for n, d in images().items()}),
        VENDOR / f"{SOURCE_NAME}.tar.gz": tar_bytes(SOURCE_NAME, source_files()),
    }


def _tar_of(path: Path) -> bytes | None:
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error):
        return None


def _describe(path: Path) -> str:
    data = path.read_bytes()
    return f"{hashlib.sha256(data).hexdigest()}  {len(data):>9}  {path.relative_to(ROOT)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare the committed archives with a fresh build")
    ap.add_argument("--images", metavar="DIR", type=Path, help="also write the images into DIR")
    args = ap.parse_args(argv)
    if args.images:
        args.images.mkdir(parents=True, exist_ok=True)
        for name, data in images().items():
            (args.images / name).write_bytes(data)
    built = archives()
    status = 0
    for path, tar in built.items():
        rel = path.relative_to(ROOT)
        fresh = gzip_bytes(tar)
        same_bytes = path.is_file() and path.read_bytes() == fresh
        same_tar = same_bytes or (path.is_file() and _tar_of(path) == tar)
        if args.check:
            if same_bytes:
                print(f"ok: {rel}")
            elif same_tar:
                print(f"ok: {rel} (same tar content; this machine's zlib compresses it to other bytes)")
            else:
                print(f"error: {rel} is {'missing' if not path.exists() else 'not what tools/make_demo_data.py builds'}"
                      f" (run python tools/make_demo_data.py and commit it)", file=sys.stderr)
                status = 1
        elif not same_tar:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(fresh)
            tmp.replace(path)
    if not args.check:
        for path in built:
            print(_describe(path))
    return status


if __name__ == "__main__":
    sys.exit(main())
