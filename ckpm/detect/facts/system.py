"""``__os``: the operating system; version = kernel (Linux), macOS or Windows release."""
from __future__ import annotations

import platform
import re
from typing import TYPE_CHECKING

from ckpm.detect.context import host_os
from ckpm.detect.fingerprint import text_fingerprint
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

NAME = "__os"
OVERRIDES = ("OS",)
OS_RELEASE = "/etc/os-release"


def os_release(path: str = OS_RELEASE) -> dict[str, str]:
    """The fields of /etc/os-release ({} if absent)."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep:
                    out[k] = v.strip().strip('"').strip("'")
    except OSError:
        pass
    return out


def detect(ctx: "DetectContext") -> Detected | None:
    name = host_os()
    extra: dict[str, str] = {"name": name}
    if name in ("linux", "android"):
        release = platform.release()
        m = re.match(r"\d+(?:\.\d+)*", release)
        version = m.group(0) if m else "0"
        extra["release"] = release
        rel = os_release()
        if rel.get("ID"):
            extra["distro"] = rel["ID"]
        if rel.get("VERSION_ID"):
            extra["distro_version"] = rel["VERSION_ID"]
    elif name == "macos":
        version = platform.mac_ver()[0] or "0"
    elif name == "windows":
        version = platform.version() or "0"
    else:
        m = re.match(r"\d+(?:\.\d+)*", platform.release() or "")
        version = m.group(0) if m else "0"
    return Detected(NAME, version, None, "fact", text_fingerprint(f"{name} {version} {extra}"), extra)
