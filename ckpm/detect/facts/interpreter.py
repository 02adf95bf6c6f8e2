"""``__python``: the version of the chosen interpreter (default: the one running ckpm)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ckpm.detect import pyenv
from ckpm.detect.fingerprint import fingerprint_of
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

NAME = "__python"
OVERRIDES = ("PYTHON",)


def detect(ctx: "DetectContext") -> Detected | None:
    info = pyenv.interpreter_info(ctx, ctx.python)
    if info is None:
        return None
    extra = {"implementation": info.get("implementation"), "executable": ctx.python}
    return Detected(NAME, str(info["version"]), ctx.python, "fact", fingerprint_of(ctx.python), extra)
