"""``{"pkg_config": "zlib"}``: a library known to pkg-config.

The ``.pc`` file is located the way pkg-config does it (``PKG_CONFIG_PATH``, then
``PKG_CONFIG_LIBDIR`` or pkg-config's own ``pc_path``, asked once and memoised), so a
warm run only stats files; the version comes from ``pkg-config --modversion`` and the
library and include folders from the ``.pc`` file's variables. Without pkg-config,
the usual ``pkgconfig`` folders are searched and the ``Version:`` field is read.
``pkg_config`` may list alternatives (``["openblas", "blas"]``); optional
``search_paths`` are prepended to ``PKG_CONFIG_PATH``.
"""
from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ckpm.detect.context import rule_key
from ckpm.detect.detectors.base import RuleDetector, as_list, no_version_warning, read_head
from ckpm.detect.fingerprint import combine, fingerprint_of
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

ENV_KEYS = ("PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR")
_VAR = re.compile(r"\$\{(\w+)\}")


def fallback_pc_dirs(multiarch: str | None) -> list[str]:
    """Where .pc files usually live when pkg-config cannot tell us."""
    dirs = ["/usr/local/lib/pkgconfig", "/usr/local/share/pkgconfig"]
    if multiarch:
        dirs.append(f"/usr/lib/{multiarch}/pkgconfig")
    dirs += ["/usr/lib64/pkgconfig", "/usr/lib/pkgconfig", "/usr/share/pkgconfig",
             "/opt/homebrew/lib/pkgconfig"]
    return dirs


def parse_pc(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """A .pc file as (variables, fields), with ``${var}`` expanded in both."""
    variables: dict[str, str] = {}
    fields: dict[str, str] = {}

    def expand(v: str, depth: int = 0) -> str:
        if depth > 10:
            return v
        new = _VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), v)
        return new if new == v else expand(new, depth + 1)

    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.]+)\s*([=:])\s*(.*)$", line)
        if not m:
            continue
        k, sep, v = m.groups()
        if sep == "=":
            variables[k] = expand(v.strip())
        else:
            fields[k] = expand(v.strip())
    return variables, fields


class PkgConfigDetector(RuleDetector):
    """Libraries described by a pkg-config ``.pc`` file."""

    kind = "pkg_config"

    def _tool(self, ctx: "DetectContext") -> str | None:
        found = ctx.find_executables(["pkg-config", "pkgconf"])
        return found[0] if found else None

    def search_dirs(self, ctx: "DetectContext", tool: str | None, extra: list[str]) -> list[str]:
        """The folders pkg-config looks in, in order."""
        env_part = [ctx.env.get(k, "") for k in ENV_KEYS]
        dirs = list(extra)
        dirs += [d for d in ctx.env.get("PKG_CONFIG_PATH", "").split(os.pathsep) if d]
        if ctx.env.get("PKG_CONFIG_LIBDIR"):
            return dirs + [d for d in ctx.env["PKG_CONFIG_LIBDIR"].split(os.pathsep) if d]
        if tool is None:
            return dirs + fallback_pc_dirs(getattr(sys.implementation, "_multiarch", None))

        def compute() -> list[str]:
            out = ctx.run([tool, "--variable", "pc_path", "pkg-config"], label=f"pkg-config: {tool}")
            text = out.stdout.strip() if out else ""
            return [d for d in text.split(os.pathsep) if d] or fallback_pc_dirs(None)

        fp = combine(fingerprint_of(tool), *env_part)
        return dirs + list(ctx.memo_value(["pkg-config-pc-path", tool], fp, compute, path=tool))

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        tool = self._tool(ctx)
        extra_dirs = ctx.rule_dirs(as_list(rule.get("search_paths")))  # kept inside the roots
        dirs = self.search_dirs(ctx, tool, extra_dirs)
        key = rule_key(rule)
        tool_fp = fingerprint_of(tool) if tool else ""
        for pkg in as_list(rule.get("pkg_config")):
            pc = next((f for f in (os.path.join(d, f"{pkg}.pc") for d in dirs) if os.path.isfile(f)), None)
            if pc is None:
                continue
            fp = combine(fingerprint_of(pc), tool_fp, *[ctx.env.get(k, "") for k in ENV_KEYS])

            def probe(p: str = pkg, c: str = pc, f: str = fp) -> list[Detected]:
                return self.probe(name, rule, p, c, tool, extra_dirs, f, ctx)

            yield from ctx.memo_records([self.kind, name, key, pkg, pc], fp, probe, path=pc)

    def probe(
        self, name: str, rule: Mapping[str, Any], pkg: str, pc: str, tool: str | None, extra_dirs: list[str],
        fp: str, ctx: "DetectContext",
    ) -> list[Detected]:
        """The version of ``pkg`` (pkg-config's word) and its folders (from the .pc file)."""
        text = read_head(pc) or ""
        variables, fields = parse_pc(text)
        version = None
        if tool is not None:
            env = dict(ctx.env)
            if extra_dirs:
                parts = [*extra_dirs, env.get("PKG_CONFIG_PATH", "")]
                env["PKG_CONFIG_PATH"] = os.pathsep.join(parts).rstrip(os.pathsep)
            out = ctx.run([tool, "--modversion", "--", pkg], label=f"{name}: pkg-config {pkg}", env=env)
            if out is None:
                return []
            version = out.stdout.strip().splitlines()[0].strip() if out.stdout.strip() else None
        else:
            version = fields.get("Version")
        if not version:
            ctx.warn(no_version_warning(f"{name}: {pc}", f"pkg-config --modversion {pkg}", "(Version field)", text))
            return []
        extra = {"package": pkg, "libdir": variables.get("libdir"), "includedir": variables.get("includedir"),
                 "prefix": variables.get("prefix"), "pkg_config": tool, "rule": dict(rule)}
        return [Detected(name, version, pc, self.kind, fp, extra)]
