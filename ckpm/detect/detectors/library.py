"""``{"library": "z", "header": "zlib.h"}``: a library found by its files.

Library folders are searched in order: the rule's ``search_paths`` (and their ``lib``,
``lib64``), the run's search paths, ``LIBRARY_PATH``, ``LD_LIBRARY_PATH``, the folders
of the linker cache (``ldconfig -p``, memoised by ``/etc/ld.so.cache``'s fingerprint),
then the standard ones (``/usr/local/lib``, ``/usr/lib/<multiarch>``, ``/usr/lib``…).
One record per library folder. Every ``header`` must be found too, beside the
library's prefix or in the standard include folders. The version comes from
``version_regex`` over the first header (``#define ZLIB_VERSION "(.*)"``), else from
the shared library's file name (``libz.so.1.2.13``), else ``"0"``. ``library: []``
with a ``header`` finds a header-only library.
"""
from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ckpm.detect.detectors.base import RuleDetector, as_list, extract_version, read_head
from ckpm.detect.fingerprint import combine, fingerprint_of
from ckpm.detect.probe import truncate
from ckpm.detect.record import Detected
from ckpm.detect.trust import VERSION_FILE_LIMIT, check_version

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

MULTIARCH: str | None = getattr(sys.implementation, "_multiarch", None)
LD_SO_CACHE = "/etc/ld.so.cache"
_SOVER = re.compile(r"\.so\.(\d+(?:\.\d+)*)$|\.(\d+(?:\.\d+)*)\.dylib$")


def standard_lib_dirs() -> list[str]:
    ma = [f"/usr/local/lib/{MULTIARCH}", f"/usr/lib/{MULTIARCH}", f"/lib/{MULTIARCH}"] if MULTIARCH else []
    return ["/usr/local/lib", "/usr/local/lib64", *ma, "/usr/lib64", "/lib64", "/usr/lib", "/lib", "/opt/homebrew/lib"]


def standard_include_dirs() -> list[str]:
    ma = [f"/usr/include/{MULTIARCH}"] if MULTIARCH else []
    return ["/usr/local/include", *ma, "/usr/include", "/opt/homebrew/include"]


def lib_file_regex(lib: str) -> re.Pattern[str]:
    n = re.escape(lib)
    return re.compile(rf"^lib{n}(\.so(\.\d+)*|\.a|(\.\d+)*\.dylib)$")


def prefix_of(libdir: str) -> str | None:
    """``/usr`` for ``/usr/lib``, ``/usr/lib64`` or ``/usr/lib/x86_64-linux-gnu``."""
    parts = libdir.rstrip("/").split("/")
    if MULTIARCH and parts and parts[-1] == MULTIARCH:
        parts = parts[:-1]
    if parts and parts[-1] in ("lib", "lib64", "lib32"):
        return "/".join(parts[:-1]) or "/"
    return None


def _file_rank(name: str) -> tuple[int, int]:
    if name.endswith(".so") or (name.endswith(".dylib") and name.count(".") == 1):
        return (0, len(name))
    if ".so." in name or name.endswith(".dylib"):
        return (1, len(name))
    return (2, len(name))


def _include_root(found: str, header: str) -> str:
    """The folder to pass with ``-I`` for a header named ``header`` found at ``found``."""
    if found.endswith("/" + header):
        return found[: -len(header)].rstrip("/") or "/"
    return os.path.dirname(found)


class LibraryDetector(RuleDetector):
    """Libraries (and their headers) found in library and include folders."""

    kind = "library"

    def lib_dirs(self, rule: Mapping[str, Any], ctx: "DetectContext") -> list[str]:
        own = ctx.rule_dirs(as_list(rule.get("search_paths")), ("", "lib", "lib64"))
        cands: list[str] = []
        for p in ctx.search_paths:
            cands += [p, os.path.join(p, "lib"), os.path.join(p, "lib64")]
        for var in ("LIBRARY_PATH", "LD_LIBRARY_PATH"):
            cands += [d for d in ctx.env.get(var, "").split(os.pathsep) if d]
        cands += self.ldconfig_dirs(ctx)
        cands += standard_lib_dirs()
        return self._unique_dirs([*own, *ctx.glob_dirs(cands)])

    @staticmethod
    def _unique_dirs(dirs: Iterable[str]) -> list[str]:
        out, seen = [], set()
        for d in dirs:
            r = os.path.realpath(d)
            if r not in seen:
                seen.add(r)
                out.append(d)
        return out

    def ldconfig_dirs(self, ctx: "DetectContext") -> list[str]:
        """The folders named in the linker cache (Linux only; memoised)."""
        if not sys.platform.startswith("linux") or not os.path.exists(LD_SO_CACHE):
            return []
        tools = ctx.find_executables(["ldconfig"], trusted_dirs=["/sbin", "/usr/sbin"])
        if not tools:
            return []
        tool = tools[0]

        def compute() -> list[str]:
            out = ctx.run([tool, "-p"], label=f"linker cache: {tool}")
            dirs: list[str] = []
            for line in (out.stdout if out else "").splitlines():
                if "=>" in line:
                    d = os.path.dirname(line.split("=>", 1)[1].strip())
                    if d and d not in dirs:
                        dirs.append(d)
            return dirs

        fp = combine(fingerprint_of(LD_SO_CACHE), fingerprint_of(tool))
        return list(ctx.memo_value(["ldconfig-dirs", tool], fp, compute, path=tool))

    def include_dirs(self, rule: Mapping[str, Any], ctx: "DetectContext", libdir: str | None) -> list[str]:
        own = ctx.rule_dirs(as_list(rule.get("include_paths")))
        own += ctx.rule_dirs(as_list(rule.get("search_paths")), ("include",))
        cands: list[str] = []
        pre = prefix_of(libdir) if libdir else None
        if pre:
            if MULTIARCH:
                cands.append(os.path.join(pre, "include", MULTIARCH))
            cands.append(os.path.join(pre, "include"))
        for p in ctx.search_paths:
            cands.append(os.path.join(p, "include"))
        for var in ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH"):
            cands += [d for d in ctx.env.get(var, "").split(os.pathsep) if d]
        cands += standard_include_dirs()
        out = list(own)
        out += [d for d in ctx.glob_dirs(cands) if d not in out]
        return out

    def find_headers(self, rule: Mapping[str, Any], ctx: "DetectContext", libdir: str | None) -> list[str] | None:
        """Paths of every header the rule names (None if one is missing)."""
        dirs = self.include_dirs(rule, ctx, libdir)
        out = []
        for h in as_list(rule.get("header")):
            hit = next((os.path.join(d, h) for d in dirs if os.path.isfile(os.path.join(d, h))), None)
            if hit is None:
                return None
            out.append(hit)
        return out

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        libs = as_list(rule.get("library"))
        if not libs:
            headers = self.find_headers(rule, ctx, None) if rule.get("header") else None
            if headers:
                yield self._record(name, rule, ctx, headers[0], None, [], headers)
            return
        regexes = [lib_file_regex(lib) for lib in libs]
        for d in self.lib_dirs(rule, ctx):
            files = [n for n in ctx.listdir(d) if any(r.match(n) for r in regexes)]
            if not files:
                continue
            files.sort(key=_file_rank)
            headers = self.find_headers(rule, ctx, d)
            if headers is None:
                continue
            real = os.path.realpath(d)
            paths = [os.path.join(real, f) for f in files]
            yield self._record(name, rule, ctx, paths[0], real, paths, headers)

    def _record(
        self, name: str, rule: Mapping[str, Any], ctx: "DetectContext", path: str, libdir: str | None,
        files: list[str], headers: list[str],
    ) -> Detected:
        version = None
        regex = rule.get("version_regex")
        if regex and headers:
            version = extract_version(read_head(headers[0], VERSION_FILE_LIMIT) or "", regex)
            why = check_version(version) if version is not None else None
            if why is not None:
                ctx.warn(f"{name}: version_regex {regex!r} in {headers[0]} gives {truncate(version or '', 40)!r}: "
                         f"{why}; ignored")
                version = None
            elif version is None:
                ctx.warn(f"{name}: no match for version_regex {regex!r} in {headers[0]}")
        if version is None:
            for f in files:
                m = _SOVER.search(os.path.realpath(f))
                if m:
                    cand = m.group(1) or m.group(2)
                    if version is None or cand.count(".") > version.count("."):
                        version = cand
        incdir = _include_root(headers[0], as_list(rule.get("header"))[0]) if headers else None
        extra: dict[str, Any] = {"libdir": libdir, "files": files, "headers": headers, "includedir": incdir,
                                 "rule": dict(rule)}
        if version is None:
            extra["version_unknown"] = True
        fp = combine(*[fingerprint_of(f) for f in [*files, *headers]])
        return Detected(name, version or "0", path, self.kind, fp, extra)
