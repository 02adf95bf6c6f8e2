"""``{"executable": [names or globs], "version_args": [...], "version_regex": "..."}``.

Finds every match on PATH (and extra search folders), runs each with the version
arguments, and takes the version from the regex's first group. Optional keys:
``search_paths`` (folders or globs searched first, e.g. ``/usr/local/cuda*/bin``),
``exclude`` (globs of names to skip, e.g. ``["*-config", "*.py"]``) and ``exit_codes``
(accepted exit statuses, default ``[0]``).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ckpm.detect.context import rule_key
from ckpm.detect.detectors.base import RuleDetector, as_list, extract_version, no_version_warning
from ckpm.detect.fingerprint import fingerprint_of
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext


class ExecutableDetector(RuleDetector):
    """Executables found by name or glob, versioned by running them."""

    kind = "executable"

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        key = rule_key(rule)
        names, dirs = as_list(rule.get("executable")), as_list(rule.get("search_paths"))
        items = []
        for path in ctx.find_executables(names, dirs, as_list(rule.get("exclude"))):
            fp = fingerprint_of(path)

            def probe(p: str = path, f: str = fp) -> list[Detected]:
                return self.probe(name, rule, p, f, ctx)

            items.append(([self.kind, name, key, path], fp, probe, path))
        for recs in ctx.memo_records_many(items):
            yield from recs

    def probe(self, name: str, rule: Mapping[str, Any], path: str, fp: str, ctx: "DetectContext") -> list[Detected]:
        """Run one executable and parse its version (a warning and [] if that fails)."""
        args = as_list(rule.get("version_args")) if "version_args" in rule else ["--version"]
        codes = [int(c) for c in rule.get("exit_codes") or (0,)]
        out = ctx.run([path, *args], label=f"{name}: {path}", ok_codes=codes)
        if out is None:
            return []
        regex = rule.get("version_regex")
        version = extract_version(out.text, regex)
        if not version:
            ctx.warn(no_version_warning(f"{name}: {path}", out.command, regex, out.text))
            return []
        extra: dict[str, Any] = {"rule": dict(rule)}
        real = os.path.realpath(path)
        if real != path:
            extra["realpath"] = real
        return [Detected(name, version, path, self.kind, fp, extra)]
