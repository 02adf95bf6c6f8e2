"""Target platforms: ``<os>-<arch>`` names, the glob patterns that select them, and the host's.

This module is the one place that spells architectures and operating systems: the
``__os``/``__arch`` host facts and the host target both come from :func:`host_os`,
:func:`normalize_arch` and :func:`host_target`, with the same ``CKPM_OVERRIDE_OS`` /
``CKPM_OVERRIDE_ARCH`` overrides, so ``ckpm detect`` and ``ckpm lock`` always agree.
"""
from __future__ import annotations

import fnmatch
import platform
import sys
from typing import Iterable, Mapping

from ckpm.errors import TargetError

OSES = ("linux", "macos", "windows", "android")
ARCHES = ("x86_64", "aarch64", "armv7", "riscv64")

ARCH_ALIASES = {
    "amd64": "x86_64", "x86_64": "x86_64", "x64": "x86_64",
    "arm64": "aarch64", "aarch64": "aarch64",
    "armv7l": "armv7", "armv7": "armv7", "armv7a": "armv7", "armhf": "armv7", "arm": "armv7",
    "riscv64": "riscv64",
    "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86", "x86": "x86",
    "ppc64le": "ppc64le", "powerpc64le": "ppc64le", "s390x": "s390x",
}
OS_ALIASES = {"darwin": "macos", "osx": "macos", "macos": "macos", "win32": "windows", "windows": "windows",
              "linux": "linux", "android": "android"}
OVERRIDE_PREFIX = "CKPM_OVERRIDE_"


def normalize_arch(machine: str) -> str:
    """ckpm's arch name for a machine or triple component (``amd64`` → ``x86_64``)."""
    m = machine.strip().lower()
    if m in ARCH_ALIASES:
        return ARCH_ALIASES[m]
    if m.startswith("armv7") or m.startswith("armv6"):
        return "armv7"
    return m


def normalize_os(name: str) -> str:
    """ckpm's OS name (``darwin`` → ``macos``)."""
    n = name.strip().lower()
    return OS_ALIASES.get(n, n)


def host_os() -> str:
    """This machine's OS in ckpm's words (``linux``, ``macos``, ``windows``, ``android``)."""
    if sys.platform.startswith("linux"):
        return "android" if hasattr(sys, "getandroidapilevel") else "linux"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith(("win", "cygwin")):
        return "windows"
    return sys.platform


def host_arch() -> str:
    """This machine's arch in ckpm's words (``x86_64``, ``aarch64``…)."""
    return normalize_arch(platform.machine())


def override_name(value: str | None) -> str | None:
    """The name an ``__os``/``__arch`` override gives (``aarch64``, ``linux@5.4`` → ``linux``), if any."""
    if value is None:
        return None
    v = value.strip()
    if not v or v.lower() == "none":
        return None
    if "@" in v:
        return v.partition("@")[0] or None
    return None if v[0].isdigit() else v


def host_target(env: Mapping[str, str] | None = None) -> str:
    """The target of this machine as the host facts describe it (overrides applied).

    ``env`` supplies ``CKPM_OVERRIDE_OS`` / ``CKPM_OVERRIDE_ARCH`` (no environment: none).
    """
    env = env or {}
    os_ = override_name(env.get(OVERRIDE_PREFIX + "OS"))
    arch = override_name(env.get(OVERRIDE_PREFIX + "ARCH"))
    return f"{normalize_os(os_) if os_ else host_os()}-{normalize_arch(arch) if arch else host_arch()}"


def validate_target(name: str) -> str:
    """Return ``name`` if it is a known ``<os>-<arch>`` target, else raise TargetError."""
    os_, _, arch = name.partition("-")
    if os_ in OSES and arch in ARCHES:
        return name
    known = ", ".join(f"{o}-{a}" for o in OSES for a in ARCHES[:2])
    raise TargetError(f"unknown target {name!r}", hint=f"targets are <os>-<arch>, e.g. {known}")


def pattern_problem(pattern: str) -> str | None:
    """Why a target pattern can never match a known target (``linx-*``), or None."""
    if pattern == "*" or any(fnmatch.fnmatchcase(f"{o}-{a}", pattern) for o in OSES for a in ARCHES):
        return None
    os_, _, arch = pattern.partition("-")
    if not any(fnmatch.fnmatchcase(o, os_) for o in OSES):
        return f"target pattern {pattern!r} names no known OS ({', '.join(OSES)})"
    return f"target pattern {pattern!r} names no known architecture ({', '.join(ARCHES)})"


def matches(target: str, patterns: Iterable[str] | None) -> bool:
    """True if ``target`` matches any glob in ``patterns`` (None or empty: all)."""
    if not patterns:
        return True
    return any(p == "*" or p == target or fnmatch.fnmatchcase(target, p) for p in patterns)
