"""``{"python_package": "numpy"}``: a distribution installed in a Python environment.

The interpreter is the one chosen for the run by the user (``detect(python=...)``, from
``CKPM_PYTHON``; default: the interpreter running ckpm, asked in-process), never one
named by the rule: a rule with a ``python`` key is rejected by :mod:`ckpm.detect.trust`. ``python_package`` may list
alternatives (``["tensorflow", "tensorflow-cpu"]``); each one installed is reported.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ckpm.detect import pyenv
from ckpm.detect.context import rule_key
from ckpm.detect.detectors.base import RuleDetector, as_list
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext


class PythonPackageDetector(RuleDetector):
    """Distributions found through importlib.metadata of the chosen interpreter."""

    kind = "python_package"

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        python = os.path.abspath(ctx.python)
        if not os.path.exists(python):
            ctx.warn(f"{name}: python interpreter {python} not found")
            return []
        fp = pyenv.env_fingerprint(ctx, python)
        if fp is None:
            return []
        return ctx.memo_records(
            [self.kind, name, rule_key(rule), python], fp, lambda: self.probe(name, rule, python, fp, ctx)
        )

    def probe(self, name: str, rule: Mapping[str, Any], python: str, fp: str, ctx: "DetectContext") -> list[Detected]:
        """Ask ``python`` for each named distribution."""
        packages = as_list(rule.get("python_package"))
        found = pyenv.query_packages(ctx, python, packages, label=f"{name}: {python}")
        out: list[Detected] = []
        for pkg in packages:
            info = (found or {}).get(pkg)
            if not info:
                continue
            path = info.get("dist_info") or info.get("location")
            extra = {"package": info.get("name") or pkg, "python": python, "location": info.get("location"),
                     "rule": dict(rule)}
            out.append(Detected(name, str(info["version"]), path, self.kind, fp, extra))
        return out
