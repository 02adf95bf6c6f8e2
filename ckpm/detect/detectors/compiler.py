"""``{"compiler": "gcc", "languages": ["c", "c++"]}``: compilers, with language and target.

Beyond a version, a compiler record says which language it compiles, its target
triple (``-dumpmachine``), the ckpm target platform of that triple, and whether it is
a cross compiler (its arch or OS differs from the host's). The family is checked, not
trusted from the name: ``gcc --version`` mentioning clang, or ``-dM -E`` defining
``__clang__``, makes a "gcc" a clang, so a gcc rule does not report it.

Optional keys: ``executable`` (names/globs; default: the family's usual names per
language, native and ``<triple>-`` prefixed), ``search_paths``, ``version_args`` and
``version_regex`` (a version probe of the rule's own, e.g. ``-dumpfullversion``, instead
of the predefined macros), ``cross`` (true: only cross compilers; false: only native),
``target`` (a glob over the triple or the platform: ``aarch64-*``, ``linux-aarch64``) and
``dumpmachine`` (ask an unknown family for ``-dumpmachine``; gcc and clang always are).
Languages: ``c``, ``c++`` (or ``cxx``), ``fortran``, or any name (``cuda``) for
executables given explicitly.
"""
from __future__ import annotations

import fnmatch
import os
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ckpm.detect.context import host_arch, host_os, normalize_arch, rule_key
from ckpm.detect.detectors.base import RuleDetector, as_list, extract_version, no_version_warning
from ckpm.detect.fingerprint import fingerprint_of
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

#: usual executable names per family and language (globs; ``*-*-`` is a triple prefix)
NAMES: dict[str, dict[str, list[str]]] = {
    "gcc": {
        "c": ["gcc", "gcc-[0-9]*", "*-*-gcc", "*-*-gcc-[0-9]*"],
        "c++": ["g++", "g++-[0-9]*", "*-*-g++", "*-*-g++-[0-9]*"],
        "fortran": ["gfortran", "gfortran-[0-9]*", "*-*-gfortran", "*-*-gfortran-[0-9]*"],
    },
    "clang": {
        "c": ["clang", "clang-[0-9]*", "*-*-clang"],
        "c++": ["clang++", "clang++-[0-9]*", "*-*-clang++"],
    },
}
_MACRO_LANG = {"c": "c", "c++": "c++"}
_DEFINE = re.compile(r"^#define\s+(\w+)(?:\s+(.*))?$", re.MULTILINE)
_GCC_LINE = re.compile(r"\)\s+(\d+\.\d+(?:\.\d+)?)")
_CLANG_LINE = re.compile(r"clang version\s+(\d+(?:\.\d+)+)", re.IGNORECASE)


LANG_ALIASES = {"cxx": "c++", "cpp": "c++", "c++": "c++", "f": "fortran", "f90": "fortran", "f95": "fortran"}


def canonical_language(lang: str) -> str:
    """``c``, ``c++`` (also spelled ``cxx``, ``cpp``), ``fortran``, or the name as given."""
    low = lang.strip().lower()
    return LANG_ALIASES.get(low, low)


def language_of(exe_name: str, default: str = "c") -> str:
    """The language an executable compiles, judged from its name."""
    n = exe_name.lower()
    if "++" in n or n.endswith("cxx"):
        return "c++"
    if "fortran" in n:
        return "fortran"
    return default


def triple_platform(triple: str) -> str:
    """The ckpm target (``linux-aarch64``) a target triple stands for."""
    parts = triple.lower().split("-")
    arch = normalize_arch(parts[0]) if parts else ""
    t = triple.lower()
    if "android" in t:
        os_ = "android"
    elif "linux" in t:
        os_ = "linux"
    elif any(x in t for x in ("darwin", "apple", "macos")):
        os_ = "macos"
    elif any(x in t for x in ("mingw", "windows", "msvc", "cygwin", "win32")):
        os_ = "windows"
    elif "none" in parts or "elf" in t or "eabi" in t:
        os_ = "none"
    else:
        os_ = parts[2] if len(parts) > 2 else "unknown"
    return f"{os_}-{arch}"


def parse_macros(text: str) -> dict[str, str]:
    """``-dM -E`` output as {macro: value}."""
    return {m.group(1): (m.group(2) or "").strip() for m in _DEFINE.finditer(text)}


def identify(version_text: str, macros: Mapping[str, str]) -> str | None:
    """``"clang"``, ``"gcc"`` or None: what a compiler really is."""
    if "__clang__" in macros or re.search(r"\bclang\b", version_text, re.IGNORECASE):
        return "clang"
    if any(m in macros for m in ("__INTEL_COMPILER", "__INTEL_LLVM_COMPILER", "__NVCOMPILER")):
        return None
    if "__GNUC__" in macros:
        return "gcc"
    if not macros and re.search(r"\b(gcc|g\+\+|GCC|Free Software Foundation)\b", version_text):
        return "gcc"
    return None


def macro_version(family: str | None, macros: Mapping[str, str]) -> str | None:
    keys = {
        "gcc": ("__GNUC__", "__GNUC_MINOR__", "__GNUC_PATCHLEVEL__"),
        "clang": ("__clang_major__", "__clang_minor__", "__clang_patchlevel__"),
    }.get(family or "")
    if not keys or keys[0] not in macros:
        return None
    parts = [macros.get(k, "0") for k in keys]
    return ".".join(parts) if all(p.isdigit() for p in parts) else None


class CompilerDetector(RuleDetector):
    """Compilers of one family (gcc, clang, or any other named by its executables)."""

    kind = "compiler"
    priority = 10  # a compiler rule also has an "executable" key

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        family = str(rule.get("compiler") or "").lower()
        langs = [canonical_language(lang) for lang in as_list(rule.get("languages"))] or ["c"]
        key = rule_key(rule)
        explicit = as_list(rule.get("executable"))
        groups: list[tuple[str, list[str]]]
        if explicit:
            groups = [("", explicit)]
        else:
            groups = [(lang, NAMES.get(family, {}).get(lang, [])) for lang in langs]
        seen: set[str] = set()
        items = []
        for lang, patterns in groups:
            for path in ctx.find_executables(patterns, as_list(rule.get("search_paths")), as_list(rule.get("exclude"))):
                real = os.path.realpath(path)
                if real in seen:
                    continue
                seen.add(real)
                language = lang or language_of(os.path.basename(path), langs[0] if len(langs) == 1 else "c")
                if language not in langs:
                    continue
                fp = fingerprint_of(path)
                items.append(([self.kind, name, key, path, language], fp,
                              lambda p=path, f=fp, lg=language: self.probe(name, rule, family, lg, p, f, ctx), path))
        for recs in ctx.memo_records_many(items):
            yield from (d for d in recs if self._wanted(rule, d))

    @staticmethod
    def _wanted(rule: Mapping[str, Any], d: Detected) -> bool:
        cross = rule.get("cross")
        if cross is not None and bool(d.extra.get("cross")) != bool(cross):
            return False
        target = rule.get("target")
        if target:
            names = [str(d.extra.get("target") or ""), str(d.extra.get("target_platform") or "")]
            return any(fnmatch.fnmatchcase(n, str(target)) for n in names)
        return True

    def probe(
        self, name: str, rule: Mapping[str, Any], family: str, language: str, path: str, fp: str,
        ctx: "DetectContext",
    ) -> list[Detected]:
        """Identify, version and locate one compiler executable ([] if it is not one of ``family``)."""
        label = f"{name}: {path}"
        out = ctx.run([path, "--version"], label=label)
        if out is None:
            return []
        text = out.text
        macros: dict[str, str] = {}
        known = family in NAMES
        if known and language in _MACRO_LANG:
            mo = ctx.run([path, "-dM", "-E", "-x", _MACRO_LANG[language], os.devnull], label=label)
            if mo is not None:
                macros = parse_macros(mo.stdout)
        really = identify(text, macros)
        if known and really != family:
            return []  # e.g. a clang installed as "gcc": not a gcc
        regex = rule.get("version_regex")
        args = as_list(rule.get("version_args")) or ["--version"]
        vout = out
        if args != ["--version"]:  # the rule asks for its own version probe (e.g. -dumpfullversion)
            asked = ctx.run([path, *args], label=label)
            if asked is None:
                return []
            vout = asked
        if regex or args != ["--version"]:
            version = extract_version(vout.text, regex)
        else:
            version = macro_version(really, macros)
            if version is None:
                first = text.strip().splitlines()[0] if text.strip() else ""
                m = (_CLANG_LINE.search(text) if really == "clang" else _GCC_LINE.search(first)) if really else None
                version = m.group(1) if m else extract_version(text, None)
        if not version:
            ctx.warn(no_version_warning(label, vout.command, regex, vout.text))
            return []
        triple = None
        dm = ctx.run([path, "-dumpmachine"], label=label) if known or rule.get("dumpmachine") else None
        if dm is not None and dm.stdout.strip():
            triple = dm.stdout.strip().splitlines()[0].strip()
        else:
            m = re.search(r"^Target:\s*(\S+)", text, re.MULTILINE)
            triple = m.group(1) if m else None
        platform_ = triple_platform(triple) if triple else f"{host_os()}-{host_arch()}"
        tos, _, tarch = platform_.partition("-")
        extra: dict[str, Any] = {
            "family": really or family or "unknown",
            "language": language,
            "target": triple,
            "target_platform": platform_,
            "cross": tarch != host_arch() or tos != host_os(),
            "rule": dict(rule),
        }
        if "Apple" in text:
            extra["vendor"] = "apple"
        real = os.path.realpath(path)
        if real != path:
            extra["realpath"] = real
        return [Detected(name, version, path, self.kind, fp, extra)]
