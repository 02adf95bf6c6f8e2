"""Build tools and interpreters: CMake, GNU Make, Ninja, CPython, Git.

CMake: every 3.16.0 to 4.0.4 release. GNU Make: every release since 3.81.
Ninja: every release since 1.8.2. CPython: every 3.7 to 3.13 release up to
June 2025. Git: the feature releases (x.y.0) from 2.30.0 to 2.50.0 only; git's
many maintenance releases are not listed here.
"""
from __future__ import annotations

from typing import Any

from ._helpers import entry, executable, series, urls, versions

CMAKE = versions(
    "\n".join([
        "3.16.0 2019-11-26", series("3.16.", 1, 9),
        "3.17.0 2020-03-20", series("3.17.", 1, 5),
        "3.18.0 2020-07-15", series("3.18.", 1, 6),
        "3.19.0 2020-11-18", series("3.19.", 1, 8),
        "3.20.0 2021-03-23", series("3.20.", 1, 6),
        "3.21.0 2021-07-14", series("3.21.", 1, 7),
        "3.22.0 2021-11-18", series("3.22.", 1, 6),
        "3.23.0 2022-03-29", series("3.23.", 1, 5),
        "3.24.0 2022-08-04", series("3.24.", 1, 4),
        "3.25.0 2022-11-16", series("3.25.", 1, 3),
        "3.26.0 2023-03-14", series("3.26.", 1, 6),
        "3.27.0 2023-07-18", series("3.27.", 1, 9),
        "3.28.0 2023-12-04", series("3.28.", 1, 6),
        "3.29.0 2024-03-21", series("3.29.", 1, 9),
        series("3.30.", 0, 9),
        series("3.31.", 0, 9),
        "4.0.0 2025-03-28", series("4.0.", 1, 4),
    ])
)


def cmake() -> list[dict[str, Any]]:
    out = []
    for v, date in CMAKE:
        mm = ".".join(v.split(".")[:2])
        out.append(entry(
            "tool-cmake", v, kind="tool",
            tags=["tool", "build", "cmake"],
            description="CMake: cross-platform build system generator",
            targets=["linux-*", "macos-*", "windows-*"],
            source=urls(
                f"https://github.com/Kitware/CMake/releases/download/v{v}/cmake-{v}.tar.gz",
                f"https://cmake.org/files/v{mm}/cmake-{v}.tar.gz",
            ),
            detect=[executable(["cmake", "cmake3"], ["--version"], r"cmake3? version (\d+\.\d+\.\d+)")],
            pubtime=date,
        ))
    return out


MAKE = versions(
    """
    3.81 2006-04-01
    3.82 2010-07-28
    4.0 2013-10-09
    4.1 2014-10-05
    4.2 2016-05-22
    4.2.1 2016-06-10
    4.3 2020-01-19
    4.4 2022-10-31
    4.4.1 2023-02-26
    """
)


def make() -> list[dict[str, Any]]:
    return [
        entry(
            "tool-make", v, kind="tool",
            tags=["tool", "build", "make"],
            description="GNU Make: builds programs from makefiles",
            targets=["linux-*", "macos-*"],
            source=urls(
                f"https://ftp.gnu.org/gnu/make/make-{v}.tar.gz",
                f"https://mirrors.kernel.org/gnu/make/make-{v}.tar.gz",
            ),
            detect=[executable(["make", "gmake"], ["--version"], r"GNU Make (\d+\.\d+(?:\.\d+)?)")],
            pubtime=date,
        )
        for v, date in MAKE
    ]


NINJA = versions(
    """
    1.8.2 2017-09-10
    1.9.0 2019-01-30
    1.10.0 2020-01-27
    1.10.1 2020-08-15
    1.10.2 2020-11-28
    1.11.0 2022-05-15
    1.11.1 2022-08-30
    1.12.0 2024-04-11
    1.12.1 2024-05-12
    1.13.0 1.13.1
    """
)


def ninja() -> list[dict[str, Any]]:
    return [
        entry(
            "tool-ninja", v, kind="tool",
            tags=["tool", "build", "ninja"],
            description="Ninja: a small build system with a focus on speed",
            targets=["linux-*", "macos-*", "windows-*"],
            source=urls(f"https://github.com/ninja-build/ninja/archive/refs/tags/v{v}.tar.gz"),
            detect=[executable(["ninja", "ninja-build"], ["--version"], r"(\d+\.\d+\.\d+)")],
            pubtime=date,
        )
        for v, date in NINJA
    ]


PYTHON = versions(
    "\n".join([
        "3.7.0 2018-06-27", series("3.7.", 1, 16), "3.7.17 2023-06-06",
        "3.8.0 2019-10-14", series("3.8.", 1, 19), "3.8.20 2024-09-06",
        "3.9.0 2020-10-05", series("3.9.", 1, 23),
        "3.10.0 2021-10-04", series("3.10.", 1, 18),
        "3.11.0 2022-10-24", series("3.11.", 1, 13),
        "3.12.0 2023-10-02", series("3.12.", 1, 11),
        "3.13.0 2024-10-07", series("3.13.", 1, 5),
    ])
)


def python() -> list[dict[str, Any]]:
    return [
        entry(
            "tool-python", v, kind="tool",
            tags=["tool", "python", "interpreter"],
            description="CPython: the reference Python interpreter",
            targets=["linux-*", "macos-*", "windows-*"],
            source=urls(f"https://www.python.org/ftp/python/{v}/Python-{v}.tar.xz"),
            detect=[executable(["python3", "python3.[0-9]*", "python"], ["--version"], r"Python (\d+\.\d+\.\d+)",
                              exclude=["*-config", "*-gdb.py", "python3.[0-9]*m"])],
            pubtime=date,
        )
        for v, date in PYTHON
    ]


GIT = versions(
    """
    2.30.0 2020-12-27
    2.31.0 2021-03-15
    2.32.0 2021-06-06
    2.33.0 2021-08-16
    2.34.0 2021-11-15
    2.35.0 2022-01-24
    2.36.0 2022-04-18
    2.37.0 2022-06-27
    2.38.0 2022-10-02
    2.39.0 2022-12-12
    2.40.0 2023-03-13
    2.41.0 2023-06-01
    2.42.0 2023-08-21
    2.43.0 2023-11-20
    2.44.0 2024-02-23
    2.45.0 2024-04-29
    2.46.0 2024-07-29
    2.47.0 2024-10-06
    2.48.0
    2.49.0 2025-03-14
    2.50.0 2025-06-16
    """
)


def git() -> list[dict[str, Any]]:
    return [
        entry(
            "tool-git", v, kind="tool",
            tags=["tool", "vcs", "git"],
            description="Git: distributed version control system",
            targets=["linux-*", "macos-*", "windows-*"],
            source=urls(f"https://mirrors.edge.kernel.org/pub/software/scm/git/git-{v}.tar.xz"),
            detect=[executable(["git"], ["--version"], r"git version (\d+\.\d+\.\d+)")],
            pubtime=date,
        )
        for v, date in GIT
    ]


def components() -> dict[str, list[dict[str, Any]]]:
    return {
        "tool-cmake": cmake(),
        "tool-make": make(),
        "tool-ninja": ninja(),
        "tool-python": python(),
        "tool-git": git(),
    }
