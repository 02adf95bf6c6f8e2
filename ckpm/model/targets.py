"""Target platforms: ``<os>-<arch>`` names and the glob patterns that select them."""
from __future__ import annotations

import fnmatch
import platform
import sys
from functools import lru_cache
from typing import Iterable

from ckpm.errors import TargetError

OSES = ("linux", "macos", "windows", "android")
ARCHES = ("x86_64", "aarch64", "armv7", "riscv64")

_ARCH_ALIASES = {
    "amd64": "x86_64",
    "x86_64": "x86_64",
    "arm64": "aarch64",
    "aarch64": "aarch64",
    "armv7l": "armv7",
    "armv7": "armv7",
    "riscv64": "riscv64",
}


def validate_target(name: str) -> str:
    """Return ``name`` if it is a known ``<os>-<arch>`` target, else raise TargetError."""
    os_, _, arch = name.partition("-")
    if os_ in OSES and arch in ARCHES:
        return name
    known = ", ".join(f"{o}-{a}" for o in OSES for a in ARCHES[:2])
    raise TargetError(f"unknown target {name!r}", hint=f"targets are <os>-<arch>, e.g. {known}")


@lru_cache(maxsize=1)
def host_target() -> str:
    """The target name of this machine (e.g. ``linux-x86_64``)."""
    if sys.platform.startswith("linux"):
        os_ = "android" if hasattr(sys, "getandroidapilevel") else "linux"
    elif sys.platform == "darwin":
        os_ = "macos"
    elif sys.platform.startswith("win"):
        os_ = "windows"
    else:
        os_ = sys.platform
    machine = platform.machine().lower()
    return f"{os_}-{_ARCH_ALIASES.get(machine, machine)}"


def matches(target: str, patterns: Iterable[str] | None) -> bool:
    """True if ``target`` matches any glob in ``patterns`` (None or empty: all)."""
    if not patterns:
        return True
    return any(p == "*" or p == target or fnmatch.fnmatchcase(target, p) for p in patterns)
