"""Native libraries: zlib, OpenBLAS, libjpeg-turbo.

These build from source with a C compiler: a build dependency (it resolves for
the host) under the key ``compiler`` with tags ``compiler,lang-c``, the same key
and tags a project uses for its own C compiler, so that one compiler builds both.
"""
from __future__ import annotations

from typing import Any

from ._helpers import dep, entry, series, urls, versions

C_COMPILER = dep("compiler", "*", tags=["compiler", "lang-c"], kind="build")

ZLIB = versions(
    """
    1.2.8 2013-04-28
    1.2.9 2016-12-31
    1.2.10 2017-01-02
    1.2.11 2017-01-15
    1.2.12 2022-03-27
    1.2.13 2022-10-13
    1.3 2023-08-18
    1.3.1 2024-01-22
    """
)


# zlib's own configure script is not autoconf's: it takes the compiler from CC (and AR
# from AR), which ckpm sets to the target's toolchain, and refuses --host; so a script.
ZLIB_RECIPE: dict[str, Any] = {
    "targets": ["linux-*", "macos-*"],
    "steps": [{"kind": "script", "run": [
        './configure --prefix="$PREFIX"',
        'make -j"$CKPM_JOBS"',
        'make install DESTDIR="$DESTDIR"',
    ]}],
}


def zlib() -> list[dict[str, Any]]:
    return [
        entry(
            "lib-zlib", v, kind="lib",
            tags=["lib", "zlib", "compression"],
            description="zlib: a general-purpose lossless data-compression library",
            targets=["*"],
            deps=[C_COMPILER, dep("tool-make", "*", kind="build")],
            source=urls(f"https://zlib.net/fossils/zlib-{v}.tar.gz",
                        f"https://github.com/madler/zlib/releases/download/v{v}/zlib-{v}.tar.gz"),
            detect=[{"pkg_config": "zlib"}],
            install=[ZLIB_RECIPE],
            pubtime=date,
        )
        for v, date in ZLIB
    ]


# Every 0.3.x release from 0.3.0 to 0.3.30.
OPENBLAS = versions(
    "\n".join([series("0.3.", 0, 20), "0.3.21 2022-08-07", series("0.3.", 22, 30)])
)


def openblas() -> list[dict[str, Any]]:
    return [
        entry(
            "lib-openblas", v, kind="lib",
            tags=["lib", "blas", "lapack", "openblas"],
            description="OpenBLAS: an optimized BLAS and LAPACK library",
            targets=["linux-*", "macos-*", "windows-*"],
            deps=[C_COMPILER, dep("tool-make", "*", kind="build")],
            source=urls(f"https://github.com/OpenMathLib/OpenBLAS/archive/refs/tags/v{v}.tar.gz"),
            detect=[{"pkg_config": "openblas"}],
            pubtime=date,
        )
        for v, date in OPENBLAS
    ]


# libjpeg-turbo: 2.0.x, 2.1.x (2.1.5.1 is a real release) and 3.x. Its tags have no "v".
JPEG = versions(
    " ".join([
        series("2.0.", 0, 6),
        series("2.1.", 0, 5), "2.1.5.1",
        series("3.0.", 0, 4),
        series("3.1.", 0, 1),
    ])
)


def jpeg() -> list[dict[str, Any]]:
    return [
        entry(
            "lib-jpeg", v, kind="lib",
            tags=["lib", "jpeg", "image", "libjpeg-turbo"],
            description="libjpeg-turbo: a SIMD-accelerated JPEG codec with the libjpeg API",
            targets=["*"],
            deps=[C_COMPILER, dep("tool-cmake", ">=3.10" if v.startswith("3.") else ">=2.8.12", kind="build")],
            source=urls(f"https://github.com/libjpeg-turbo/libjpeg-turbo/archive/refs/tags/{v}.tar.gz"),
            detect=[{"pkg_config": "libjpeg"}],
            pubtime=date,
        )
        for v, date in JPEG
    ]


def components() -> dict[str, list[dict[str, Any]]]:
    return {"lib-zlib": zlib(), "lib-openblas": openblas(), "lib-jpeg": jpeg()}
