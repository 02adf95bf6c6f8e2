"""``__cpu``: the microarchitecture (archspec), with its features.

``version`` is the highest generic level the CPU reaches: the N of ``x86_64_vN`` on
x86_64, the ``8.2`` of ``armv8.2a`` on Arm, else archspec's generation or ``1``;
``extra`` has ``name`` (``icelake``), ``vendor``, ``family``, ``generic`` and ``features``.
archspec is imported only on a cache miss: the result is memoised by a fingerprint of
the stable lines of ``/proc/cpuinfo`` (or ``uname`` elsewhere).
"""
from __future__ import annotations

import os
import platform
import re
from typing import TYPE_CHECKING, Any

from ckpm.detect.fingerprint import text_fingerprint
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

NAME = "__cpu"
OVERRIDES = ("CPU",)
CPUINFO = "/proc/cpuinfo"
_UNSTABLE = re.compile(r"^(cpu MHz|bogomips|BogoMIPS)\s*:", re.IGNORECASE)


def cpu_key() -> str:
    """A fingerprint that changes when the CPU does (first processor block of /proc/cpuinfo)."""
    try:
        with open(CPUINFO, encoding="utf-8", errors="replace") as f:
            block = f.read(1 << 16).split("\n\n", 1)[0]
        lines = [ln for ln in block.splitlines() if not _UNSTABLE.match(ln)]
        return text_fingerprint("\n".join(lines))
    except OSError:
        u = os.uname() if hasattr(os, "uname") else None
        return text_fingerprint(f"{platform.machine()} {u.sysname if u else ''} {u.version if u else ''}")


def describe(target: Any) -> dict[str, Any]:
    """name, vendor, family, generic level and features of an archspec Microarchitecture."""
    lineage = [target, *target.ancestors]
    level = None
    generic = None
    for t in lineage:
        m = re.fullmatch(r"x86_64_v(\d+)", t.name) or re.fullmatch(r"armv(\d+(?:\.\d+)?)a", t.name)
        if m and (level is None or _num(m.group(1)) > _num(level)):
            level, generic = m.group(1), t.name
    if level is None:
        level = str(target.generation) if getattr(target, "generation", 0) else "1"
        generic = str(target.family.name) if getattr(target, "family", None) else target.name
    return {
        "name": target.name,
        "vendor": target.vendor,
        "family": target.family.name,
        "generic": generic,
        "level": level,
        "features": sorted(target.features),
    }


def _num(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.split("."))


def detect(ctx: "DetectContext") -> Detected | None:
    fp = cpu_key()

    def compute() -> list[Detected]:
        import archspec.cpu

        info = describe(archspec.cpu.host())
        return [Detected(NAME, str(info["level"]), None, "fact", fp, info)]

    recs = ctx.memo_records(["fact", NAME], fp, compute)
    return recs[0] if recs else None
