"""Compilers: GCC (C and C++ drivers), GCC cross compilers, Clang/LLVM and NVIDIA nvcc.

GCC versions and dates are the releases listed on gcc.gnu.org (9.1 is the first
release of the 9 series: x.0 numbers are development snapshots, never released).
LLVM 17 has no 17.0.0 release: its first release was 17.0.1; from 18 on the
first release of a series is x.1.0. nvcc versions are the CUDA Toolkit versions
of NVIDIA's download archive (there is no 12.7); the toolkit is not shipped as a
plain source archive, so those entries carry no ``source``.
"""
from __future__ import annotations

from typing import Any

from ._helpers import dep, entry, executable, pick, urls, versions

VERSION_RE = r"(\d+\.\d+(?:\.\d+)?)"

GCC = versions(
    """
    9.1.0 2019-05-03
    9.2.0 2019-08-12
    9.3.0 2020-03-12
    9.4.0 2021-06-01
    9.5.0 2022-05-27
    10.1.0 2020-05-07
    10.2.0 2020-07-23
    10.3.0 2021-04-08
    10.4.0 2022-06-28
    10.5.0 2023-07-07
    11.1.0 2021-04-27
    11.2.0 2021-07-28
    11.3.0 2022-04-21
    11.4.0 2023-05-29
    11.5.0 2024-07-19
    12.1.0 2022-05-06
    12.2.0 2022-08-19
    12.3.0 2023-05-08
    12.4.0 2024-06-20
    12.5.0 2025-07-11
    13.1.0 2023-04-26
    13.2.0 2023-07-27
    13.3.0 2024-05-21
    13.4.0 2025-06-05
    14.1.0 2024-05-07
    14.2.0 2024-08-01
    14.3.0 2025-05-23
    15.1.0 2025-04-25
    15.2.0 2025-08-08
    """
)


def _gcc_source(v: str) -> dict[str, Any]:
    return urls(
        f"https://ftp.gnu.org/gnu/gcc/gcc-{v}/gcc-{v}.tar.xz",
        f"https://mirrors.kernel.org/gnu/gcc/gcc-{v}/gcc-{v}.tar.xz",
    )


def _gcc_family(name: str, tags: list[str], description: str, detect: dict[str, Any], targets: list[str]) -> list[dict[str, Any]]:
    return [
        entry(
            name, v, kind="compiler", tags=tags, description=description, targets=targets,
            source=_gcc_source(v), detect=[detect], pubtime=date,
        )
        for v, date in GCC
    ]


def gcc() -> list[dict[str, Any]]:
    return _gcc_family(
        "compiler-gcc", ["compiler", "lang-c", "gcc"],
        "GCC, the GNU Compiler Collection: C compiler driver (gcc)",
        executable(["gcc", "gcc-[0-9]*"], ["-dumpfullversion"], VERSION_RE, compiler="gcc", languages=["c"]),
        ["linux-*", "macos-*"],
    )


def gxx() -> list[dict[str, Any]]:
    return _gcc_family(
        "compiler-gxx", ["compiler", "lang-cxx", "gcc"],
        "GCC, the GNU Compiler Collection: C++ compiler driver (g++)",
        executable(["g++", "g++-[0-9]*"], ["-dumpfullversion"], VERSION_RE, compiler="gcc", languages=["cxx"]),
        ["linux-*", "macos-*"],
    )


# Cross compilers do not carry the tag "compiler": a request for a native C
# compiler (tags "compiler,lang-c") must never be satisfied by a compiler that
# produces code for another machine. They carry "cross-compiler" and the
# target they produce code for; their detect rule names that target too.
def cross_gcc(triple: str, target: str) -> list[dict[str, Any]]:
    return _gcc_family(
        f"compiler-gcc-{triple}", ["cross-compiler", "lang-c", "gcc", f"target-{target}"],
        f"GCC cross compiler for {target} ({triple}-gcc), runs on Linux hosts",
        executable(
            [f"{triple}-gcc", f"{triple}-gcc-[0-9]*"], ["-dumpfullversion"], VERSION_RE,
            compiler="gcc", languages=["c"], target=target,
        ),
        ["linux-*"],
    )


LLVM = versions(
    """
    9.0.0 2019-09-19
    9.0.1
    10.0.0 2020-03-24
    10.0.1
    11.0.0 2020-10-12
    11.0.1 11.1.0
    12.0.0 2021-04-14
    12.0.1
    13.0.0 2021-10-04
    13.0.1
    14.0.0 2022-03-25
    14.0.1 14.0.2 14.0.3 14.0.4 14.0.5 14.0.6
    15.0.0 2022-09-06
    15.0.1 15.0.2 15.0.3 15.0.4 15.0.5 15.0.6 15.0.7
    16.0.0 2023-03-17
    16.0.1 16.0.2 16.0.3 16.0.4 16.0.5 16.0.6
    17.0.1 2023-09-19
    17.0.2 17.0.3 17.0.4 17.0.5 17.0.6
    18.1.0 18.1.1 18.1.2 18.1.3 18.1.4 18.1.5 18.1.6 18.1.7 18.1.8
    19.1.0 2024-09-17
    19.1.1 19.1.2 19.1.3 19.1.4 19.1.5 19.1.6 19.1.7
    20.1.0 2025-03-04
    20.1.1 20.1.2 20.1.3 20.1.4 20.1.5 20.1.6 20.1.7 20.1.8
    """
)


def clang() -> list[dict[str, Any]]:
    return [
        entry(
            "compiler-clang", v, kind="compiler",
            tags=["compiler", "lang-c", "lang-cxx", "llvm"],
            description="Clang: the LLVM C, C++ and Objective-C compiler",
            targets=["linux-*", "macos-*", "windows-*"],
            source=urls(f"https://github.com/llvm/llvm-project/archive/refs/tags/llvmorg-{v}.tar.gz"),
            detect=[executable(
                ["clang", "clang-[0-9]*"], ["--version"], r"clang version (\d+\.\d+\.\d+)",
                compiler="clang", languages=["c", "cxx"],
            )],
            pubtime=date,
        )
        for v, date in LLVM
    ]


CUDA = versions(
    """
    10.0.130
    10.1.105 10.1.168 10.1.243
    10.2.89
    11.0.2 11.0.3
    11.1.0 11.1.1
    11.2.0 11.2.1 11.2.2
    11.3.0 11.3.1
    11.4.0 11.4.1 11.4.2 11.4.3 11.4.4
    11.5.0 11.5.1 11.5.2
    11.6.0 11.6.1 11.6.2
    11.7.0 11.7.1
    11.8.0
    12.0.0 12.0.1
    12.1.0 12.1.1
    12.2.0 12.2.1 12.2.2
    12.3.0 12.3.1 12.3.2
    12.4.0 12.4.1
    12.5.0 12.5.1
    12.6.0 12.6.1 12.6.2 12.6.3
    12.8.0 12.8.1
    12.9.0 12.9.1
    """
)

CUDA_TARGETS = [
    ("10.0", ["linux-x86_64", "linux-aarch64", "macos-x86_64", "windows-x86_64"]),
    ("11.0", ["linux-x86_64", "linux-aarch64", "windows-x86_64"]),
]


def nvcc() -> list[dict[str, Any]]:
    # nvcc compiles host code with a C++ compiler: a separate key, so that it never
    # merges with a project's own "compiler" requirement (a key resolves to one candidate).
    return [
        entry(
            "compiler-nvcc", v, kind="compiler",
            tags=["compiler", "lang-cuda", "cuda"],
            description="NVIDIA CUDA compiler driver (nvcc), from the CUDA Toolkit",
            targets=pick(v, CUDA_TARGETS),
            deps=[dep("cuda-host-compiler", "*", tags=["compiler", "lang-cxx"])],
            detect=[executable(
                ["nvcc"], ["--version"], r"release (\d+\.\d+)", compiler="nvcc", languages=["cuda"],
            )],
            pubtime=date,
        )
        for v, date in CUDA
    ]


def components() -> dict[str, list[dict[str, Any]]]:
    return {
        "compiler-gcc": gcc(),
        "compiler-gxx": gxx(),
        "compiler-gcc-aarch64-linux-gnu": cross_gcc("aarch64-linux-gnu", "linux-aarch64"),
        "compiler-gcc-arm-linux-gnueabihf": cross_gcc("arm-linux-gnueabihf", "linux-armv7"),
        "compiler-clang": clang(),
        "compiler-nvcc": nvcc(),
    }
