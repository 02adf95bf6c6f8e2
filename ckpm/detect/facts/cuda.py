"""``__cuda``: the CUDA version the installed NVIDIA driver supports; absent without a driver.

As conda's ``__cuda``, the version is the highest CUDA the driver runs (``12.4``), with
``extra.driver`` the driver version. ``nvidia-smi`` (on PATH) says both; without it the
driver version is read from ``/proc/driver/nvidia/version`` and mapped through
:data:`MIN_DRIVER` (NVIDIA's table of minimum Linux driver per CUDA release). Memoised
by the fingerprint of ``nvidia-smi`` and the text of the proc file.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ckpm.detect.fingerprint import combine, fingerprint_of, text_fingerprint
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

NAME = "__cuda"
OVERRIDES = ("CUDA",)
PROC_VERSION = "/proc/driver/nvidia/version"

#: (CUDA release, minimum Linux x86_64 driver), newest first (CUDA toolkit release notes)
MIN_DRIVER: tuple[tuple[str, str], ...] = (
    ("13.0", "580.65.06"), ("12.9", "575.51.03"), ("12.8", "570.26"), ("12.6", "560.28.03"),
    ("12.5", "555.42.02"), ("12.4", "550.54.14"), ("12.3", "545.23.06"), ("12.2", "535.54.03"),
    ("12.1", "530.30.02"), ("12.0", "525.60.13"), ("11.8", "520.61.05"), ("11.7", "515.43.04"),
    ("11.6", "510.39.01"), ("11.5", "495.29.05"), ("11.4", "470.42.01"), ("11.3", "465.19.01"),
    ("11.2", "460.27.03"), ("11.1", "455.23"), ("11.0", "450.36.06"), ("10.2", "440.33"),
    ("10.1", "418.39"), ("10.0", "410.48"),
)


def _v(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", s))


def cuda_for_driver(driver: str) -> str | None:
    """The newest CUDA release whose minimum driver is at most ``driver``."""
    for cuda, minimum in MIN_DRIVER:
        if _v(driver) >= _v(minimum):
            return cuda
    return None


def parse_smi(text: str) -> tuple[str | None, str | None]:
    """(driver version, CUDA version) from ``nvidia-smi`` output."""
    d = re.search(r"Driver Version:\s*([\d.]+)", text)
    c = re.search(r"CUDA Version:\s*([\d.]+)", text)
    return (d.group(1) if d else None, c.group(1) if c else None)


def parse_proc(text: str) -> str | None:
    """The driver version from ``/proc/driver/nvidia/version``."""
    m = re.search(r"Kernel Module(?: for \S+)?\s+([\d.]+)", text) \
        or re.search(r"NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s", text)
    return m.group(1) if m else None


def read_proc(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return None


def detect(ctx: "DetectContext", proc_version: str = PROC_VERSION) -> Detected | None:
    smi_found = ctx.find_executables(["nvidia-smi"])
    smi = smi_found[0] if smi_found else None
    proc = read_proc(proc_version)
    if smi is None and proc is None:
        return None
    fp = combine(fingerprint_of(smi) if smi else "", text_fingerprint(proc or ""))

    def compute() -> list[Detected]:
        driver = cuda = None
        source = None
        if smi is not None:
            out = ctx.run([smi], label=f"{NAME}: {smi}")
            if out is not None:
                driver, cuda = parse_smi(out.text)
                source = "nvidia-smi"
        if driver is None and proc is not None:
            driver, source = parse_proc(proc), "proc"
        if cuda is None and driver is not None:
            cuda = cuda_for_driver(driver)
            source = f"{source}+driver-table"
        if cuda is None:
            return []
        extra = {"driver": driver, "source": source}
        if smi:
            extra["nvidia_smi"] = smi
        return [Detected(NAME, cuda, None, "fact", fp, extra)]

    recs = ctx.memo_records(["fact", NAME, smi or "", proc_version], fp, compute, path=smi)
    return recs[0] if recs else None
