"""The machine a run happened on, as people name it: CPU model and count, OS, architecture, libc.

Kept in each experiment record (``machine``) beside the host facts (which carry versions
only), so that a pushed record says where it ran (docs/registry.md, "Share results").
Reads files and calls that cost microseconds; runs no program.
"""
from __future__ import annotations

import os
import platform
from typing import Any

from ckpm.detect.context import host_os
from ckpm.detect.facts.cpu import CPUINFO
from ckpm.detect.facts.libc import from_confstr
from ckpm.detect.facts.system import os_release


def cpu_model(cpuinfo: str = CPUINFO) -> str | None:
    """The CPU's marketing name (``model name`` of /proc/cpuinfo, or the platform's processor string)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f.read(1 << 16).splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip().lower() in ("model name", "hardware", "cpu model") and value.strip():
                    return " ".join(value.split())[:200]
    except OSError:
        pass
    return (platform.processor() or platform.machine() or None)


def machine_facts() -> dict[str, Any]:
    """``{"cpu_model", "cpu_count", "os", "arch", "libc"}`` of this machine (None where unknown)."""
    name = host_os()
    rel = os_release() if name in ("linux", "android") else {}
    distro = rel.get("PRETTY_NAME") or " ".join(x for x in (rel.get("ID"), rel.get("VERSION_ID")) if x)
    libc = from_confstr()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "os": " ".join(x for x in (name, platform.release(), f"({distro})" if distro else "") if x)[:200],
        "arch": platform.machine() or None,
        "libc": f"{libc[0]} {libc[1]}" if libc else None,
    }
