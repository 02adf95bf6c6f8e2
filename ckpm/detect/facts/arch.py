"""``__arch``: the machine architecture (``extra.name``: ``x86_64``, ``aarch64``…); version ``1``."""
from __future__ import annotations

import platform
from typing import TYPE_CHECKING

from ckpm.detect.context import host_arch, host_os
from ckpm.detect.fingerprint import text_fingerprint
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

NAME = "__arch"
OVERRIDES = ("ARCH",)


def detect(ctx: "DetectContext") -> Detected | None:
    arch = host_arch()
    extra = {"name": arch, "machine": platform.machine(), "target": f"{host_os()}-{arch}"}
    return Detected(NAME, "1", None, "fact", text_fingerprint(platform.machine()), extra)
