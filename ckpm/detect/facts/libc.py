"""``__libc``: the C library (``extra.name`` ``glibc`` or ``musl``) and its version.

glibc answers ``os.confstr("CS_GNU_LIBC_VERSION")`` with no subprocess; otherwise
``platform.libc_ver()``; musl (which answers neither) is read from ``ldd --version``,
memoised by the fingerprint of ``ldd``. Override: ``CKPM_OVERRIDE_LIBC`` or
``CKPM_OVERRIDE_GLIBC``.
"""
from __future__ import annotations

import os
import platform
import re
import sys
from typing import TYPE_CHECKING

from ckpm.detect.fingerprint import fingerprint_of, text_fingerprint
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

NAME = "__libc"
OVERRIDES = ("LIBC", "GLIBC")


def parse_ldd(text: str) -> tuple[str, str] | None:
    """(libc name, version) from ``ldd --version`` output, glibc or musl."""
    if re.search(r"\bmusl\b", text, re.IGNORECASE):
        m = re.search(r"^Version\s+(\d+(?:\.\d+)+)", text, re.MULTILINE)
        return ("musl", m.group(1)) if m else None
    first = text.strip().splitlines()[0] if text.strip() else ""
    if re.search(r"GLIBC|GNU libc|glibc", first, re.IGNORECASE):
        m = re.search(r"(\d+\.\d+(?:\.\d+)?)\s*$", first)
        return ("glibc", m.group(1)) if m else None
    return None


def from_confstr() -> tuple[str, str] | None:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    if text:
        name, _, version = text.partition(" ")
        if version:
            return ("glibc" if name.lower() == "glibc" else name.lower(), version)
    return None


def from_ldd(ctx: "DetectContext") -> tuple[str, str] | None:
    """Ask ``ldd --version`` (musl's ldd prints on stderr and exits 1)."""
    found = ctx.find_executables(["ldd"])
    if not found:
        return None
    ldd = found[0]

    def compute() -> list[str] | None:
        out = ctx.run([ldd, "--version"], label=f"{NAME}: {ldd}", ok_codes=(0, 1))
        parsed = parse_ldd(out.text) if out else None
        return list(parsed) if parsed else None

    got = ctx.memo_value(["fact", NAME, ldd], fingerprint_of(ldd), compute, path=ldd)
    return (got[0], got[1]) if got else None


def detect(ctx: "DetectContext") -> Detected | None:
    if not sys.platform.startswith("linux"):
        return None
    found = from_confstr()
    source = "confstr"
    if found is None:
        lib, ver = platform.libc_ver()
        found, source = ((lib, ver), "libc_ver") if lib and ver else (None, source)
    if found is None:
        found, source = from_ldd(ctx), "ldd"
    if found is None:
        return None
    name, version = found
    fp = text_fingerprint(f"{name} {version}")
    return Detected(NAME, version, None, "fact", fp, {"name": name, "source": source})
