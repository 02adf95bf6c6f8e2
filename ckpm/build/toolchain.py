"""Toolchains: the compilers and tools a recipe builds with, for the host or for another target.

A :class:`Toolchain` is found, never invented: :func:`find_toolchain` asks ckpm's detection
layer (:func:`ckpm.detect.detect`, the same ``compiler`` rules an index declares, cached in
the host profile) for a C compiler whose ``target_platform`` is the wanted target. For the
host that is the native gcc, clang or ``cc``; for another target it is a cross compiler
such as ``aarch64-linux-gnu-gcc`` (linux-aarch64) or ``arm-linux-gnueabihf-gcc``
(linux-armv7). ``ar`` and ``ranlib`` with the compiler's prefix are taken from beside it
(else from PATH), the C++ compiler of the same family and prefix when there is one, and
for a cross target an emulator (``qemu-<arch>``, with ``-L /usr/<triple>`` when that sysroot
exists) so that target programs can run on this host (tests, a build's own helpers).

Native or cross is decided against the machine that runs the compilers: ``host_target``
defaults to the real host, not to the ``CKPM_OVERRIDE_OS``/``ARCH`` facts, which describe
the machine a lock is made for.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ckpm.errors import BuildError
from ckpm.settings import Settings

#: the GNU triple of each Linux target, as Debian names its cross compilers (for hints and sysroots)
DEBIAN_TRIPLES = {
    "linux-x86_64": "x86_64-linux-gnu",
    "linux-aarch64": "aarch64-linux-gnu",
    "linux-armv7": "arm-linux-gnueabihf",
    "linux-riscv64": "riscv64-linux-gnu",
}
#: qemu's user-mode emulator per ckpm architecture
QEMU_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "armv7": "arm", "riscv64": "riscv64"}
#: CMAKE_SYSTEM_NAME per ckpm OS, CMAKE_SYSTEM_PROCESSOR per ckpm architecture (uname -m spelling)
CMAKE_SYSTEM = {"linux": "Linux", "macos": "Darwin", "windows": "Windows", "android": "Android"}
CMAKE_PROCESSOR = {"x86_64": "x86_64", "aarch64": "aarch64", "armv7": "armv7l", "riscv64": "riscv64"}

#: detection rules, by preference: gcc, then clang, then whatever ``cc`` is (same shape as the index's)
COMPILER_RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("toolchain-gcc", {"compiler": "gcc", "languages": ["c", "c++"]}),
    ("toolchain-clang", {"compiler": "clang", "languages": ["c", "c++"]}),
    ("toolchain-cc-gcc", {"compiler": "gcc", "executable": ["cc", "c++"], "languages": ["c", "c++"]}),
    ("toolchain-cc-clang", {"compiler": "clang", "executable": ["cc", "c++"], "languages": ["c", "c++"]}),
)
# "aarch64-linux-gnu-gcc-12" -> prefix "aarch64-linux-gnu-", driver "gcc"
_DRIVER = re.compile(r"^(?P<prefix>.*-)?(?P<driver>gcc|g\+\+|clang\+\+|clang|cc|c\+\+)(?:-\d+(?:\.\d+)*)?$")


@dataclass(frozen=True)
class Toolchain:
    """The tools that build for ``target`` on a ``host_target`` machine (absolute paths).

    ``triple`` is the cross compiler's GNU triple (``aarch64-linux-gnu``), None for a
    native build. ``emulator`` is the command prefix that runs a target program on this
    host (``("/usr/bin/qemu-aarch64", "-L", "/usr/aarch64-linux-gnu")``), None when native
    or when no emulator is installed. A toolchain with ``cc`` None is enough for recipes
    that compile nothing (pip, copy).
    """

    target: str
    host_target: str
    triple: str | None
    cc: str | None
    cxx: str | None = None
    ar: str | None = None
    ranlib: str | None = None
    emulator: tuple[str, ...] | None = None

    @property
    def cross(self) -> bool:
        """True when the target differs from the machine that runs the build."""
        return self.target != self.host_target

    def env(self) -> dict[str, str]:
        """``CC``, ``CXX``, ``AR``, ``RANLIB`` (those found), ``CKPM_TARGET``, ``CKPM_HOST_TARGET``,
        and when cross ``CKPM_TRIPLE`` and ``CKPM_EMULATOR`` (a shell-quoted command prefix)."""
        out: dict[str, str] = {}
        for name, value in (("CC", self.cc), ("CXX", self.cxx), ("AR", self.ar), ("RANLIB", self.ranlib)):
            if value:
                out[name] = value
        out["CKPM_TARGET"] = self.target
        out["CKPM_HOST_TARGET"] = self.host_target
        if self.triple:
            out["CKPM_TRIPLE"] = self.triple
        if self.emulator:
            out["CKPM_EMULATOR"] = shlex.join(self.emulator)
        return out

    def configure_args(self) -> list[str]:
        """What an autoconf ``./configure`` needs to cross-compile: ``--host=TRIPLE`` (native: [])."""
        return [f"--host={self.triple}"] if self.cross and self.triple else []

    def make_vars(self) -> list[str]:
        """``CC=…``, ``AR=…``… as make command-line variables (they beat a Makefile's own assignments)."""
        return [f"{k}={v}" for k, v in self.env().items() if k in ("CC", "CXX", "AR", "RANLIB")]

    def sysroot(self) -> Path | None:
        """The target's system root on this host (Debian's ``/usr/<triple>``), when it exists."""
        if self.cross and self.triple and os.path.isdir(f"/usr/{self.triple}"):
            return Path(f"/usr/{self.triple}")
        return None

    def cmake_toolchain_file(self, path: Path, *, roots: Sequence[Path | str] = ()) -> Path:
        """Write a CMake toolchain file for this toolchain at ``path`` and return ``path``.

        It sets the compilers and ``ar``/``ranlib``; when cross also ``CMAKE_SYSTEM_NAME``/
        ``PROCESSOR``, ``CMAKE_CROSSCOMPILING_EMULATOR`` when there is an emulator, and
        ``CMAKE_FIND_ROOT_PATH`` = the sysroot plus ``roots`` (the dependencies' prefixes)
        with programs found on the host and libraries, headers and packages only under the
        roots, so a cross build never links a host library by mistake.
        """
        os_, _, arch = self.target.partition("-")
        lines = ["# written by ckpm for target " + self.target]

        def setv(name: str, *values: str) -> None:
            lines.append(f"set({name} {' '.join(_cmake_quote(v) for v in values)})")

        if self.cross:  # setting the system name is what tells CMake it cross-compiles
            setv("CMAKE_SYSTEM_NAME", CMAKE_SYSTEM.get(os_, os_.capitalize()))
            setv("CMAKE_SYSTEM_PROCESSOR", CMAKE_PROCESSOR.get(arch, arch))
        for name, value in (("CMAKE_C_COMPILER", self.cc), ("CMAKE_CXX_COMPILER", self.cxx),
                            ("CMAKE_AR", self.ar), ("CMAKE_RANLIB", self.ranlib)):
            if value:
                setv(name, value)
        if self.cross and self.emulator:
            setv("CMAKE_CROSSCOMPILING_EMULATOR", *self.emulator)
        if self.cross:
            sysroot = self.sysroot()
            root_list = ([str(sysroot)] if sysroot else []) + [str(r) for r in roots]
            if root_list:
                setv("CMAKE_FIND_ROOT_PATH", *root_list)
            setv("CMAKE_FIND_ROOT_PATH_MODE_PROGRAM", "NEVER")
            for kind in ("LIBRARY", "INCLUDE", "PACKAGE"):
                setv(f"CMAKE_FIND_ROOT_PATH_MODE_{kind}", "ONLY")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def _cmake_quote(value: str) -> str:
    """``value`` as one CMake argument (quoted; ``\\``, ``"`` and ``$`` escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def real_host_target() -> str:
    """The target of the machine this process runs on (no ``CKPM_OVERRIDE_*`` applied)."""
    from ckpm.model.targets import host_target

    return host_target({})


def install_hint(target: str, host_target: str) -> str:
    """What to install to get a compiler for ``target`` (Debian's package names where they exist)."""
    if target == host_target:
        return ("install a C compiler: Debian/Ubuntu `apt-get install build-essential`, Fedora `dnf install gcc make`, "
                "macOS `xcode-select --install`")
    triple = DEBIAN_TRIPLES.get(target)
    if triple and host_target.startswith("linux-"):
        pkg = triple.replace("x86_64", "x86-64")
        return (f"install a cross compiler for {target}: Debian/Ubuntu `apt-get install gcc-{pkg}` "
                f"(and qemu-user to run its programs), or put {triple}-gcc on PATH")
    return f"put a C compiler whose -dumpmachine names {target} on PATH (e.g. <triple>-gcc or <triple>-clang)"


def find_toolchain(target: str, *, settings: Settings, host_target: str | None = None) -> Toolchain:
    """The toolchain that builds for ``target`` here, found by ckpm's compiler detection.

    Native (``target`` == ``host_target``, default the real host): the detected C compiler
    for the host, gcc first, then clang, then ``cc``. Cross: a detected compiler whose
    ``target_platform`` is ``target``, with ``ar``/``ranlib`` of the same prefix and an
    emulator when ``qemu-<arch>`` is installed. Detection runs in ``settings.environ``
    (its PATH) and uses the host-profile cache in ``settings.cache_root``; warnings go to
    ``settings.reporter``. Raises BuildError naming the target and what to install.
    """
    from ckpm.detect import detect
    from ckpm.model.targets import validate_target

    host = host_target or real_host_target()
    validate_target(target)
    cross = target != host
    rules: dict[str, list[dict[str, Any]]] = {}
    for name, rule in COMPILER_RULES:
        rules[name] = [{**rule, "target": target}]
    arch = target.partition("-")[2]
    qemu = QEMU_ARCH.get(arch)
    if cross and qemu:
        rules["toolchain-emulator"] = [{"executable": [f"qemu-{qemu}", f"qemu-{qemu}-static"],
                                        "version_regex": r"version (\d+\.\d+(?:\.\d+)?)"}]
    env = settings.environ
    result = detect(rules, cache_dir=settings.cache_root, env=env, refresh=settings.refresh_host,
                    origin="ckpm toolchain")
    settings.reporter.warn_all([w for w in result.warnings if "toolchain-" in w])
    path_dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d]
    for name, _ in COMPILER_RULES:
        found = [d for d in result.found.get(name, []) if d.extra.get("target_platform") == target]
        ccs = [d for d in found if d.extra.get("language") == "c"]
        if not ccs:
            continue
        cc = ccs[0]
        assert cc.path is not None
        triple = str(cc.extra.get("target") or "") or None
        family = str(cc.extra.get("family") or "")
        cxx = _companion_cxx(cc.path, [d.path for d in found if d.extra.get("language") == "c++" and d.path])
        prefix = _prefix(cc.path)
        ar = _beside(cc.path, [f"{prefix}ar", f"{prefix}gcc-ar"] + (["llvm-ar"] if family == "clang" else []),
                     path_dirs)
        ranlib = _beside(cc.path, [f"{prefix}ranlib", f"{prefix}gcc-ranlib"]
                         + (["llvm-ranlib"] if family == "clang" else []), path_dirs)
        emulator: tuple[str, ...] | None = None
        emus = result.found.get("toolchain-emulator") or []
        if cross and emus and emus[0].path:
            emulator = (emus[0].path,)
            if triple and os.path.isdir(f"/usr/{triple}"):
                emulator += ("-L", f"/usr/{triple}")
        return Toolchain(target=target, host_target=host, triple=triple if cross else None, cc=cc.path, cxx=cxx,
                         ar=ar, ranlib=ranlib, emulator=emulator)
    what = "C compiler" if not cross else f"cross compiler for {target}"
    raise BuildError(f"no {what} found on this host (building on {host})", hint=install_hint(target, host))


def _prefix(compiler: str) -> str:
    """The tool prefix of a compiler's name: ``aarch64-linux-gnu-`` of ``aarch64-linux-gnu-gcc-12``."""
    m = _DRIVER.match(os.path.basename(compiler))
    return (m.group("prefix") or "") if m else ""


def _companion_cxx(cc: str, cxxs: Sequence[str]) -> str | None:
    """The C++ driver that goes with ``cc``: the same name with ``g++``/``clang++`` in the same
    folder when detected, else the first detected C++ compiler of that family and target."""
    base = os.path.basename(cc)
    m = _DRIVER.match(base)
    if m:
        drv = {"gcc": "g++", "clang": "clang++", "cc": "c++"}.get(m.group("driver"), m.group("driver"))
        want = os.path.join(os.path.dirname(cc), base[:m.start("driver")] + drv + base[m.end("driver"):])
        if want in cxxs:
            return want
        same_prefix = [c for c in cxxs if _prefix(c) == (m.group("prefix") or "")]
        if same_prefix:
            return same_prefix[0]
    return cxxs[0] if cxxs else None


def _beside(compiler: str, names: Sequence[str], path_dirs: Sequence[str]) -> str | None:
    """The first of ``names`` found in the compiler's folder (as named, then its real folder),
    else on PATH: an absolute path, or None."""
    dirs = [os.path.dirname(compiler), os.path.dirname(os.path.realpath(compiler))]
    for name in names:
        for d in [*dirs, *path_dirs]:
            p = os.path.join(d, name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
    return None


def toolchain_record(tc: Toolchain) -> dict[str, Any]:
    """What a build record keeps of a toolchain (paths of the tools, the target, the triple)."""
    out: dict[str, Any] = {"target": tc.target, "host_target": tc.host_target}
    for k in ("triple", "cc", "cxx"):
        v = getattr(tc, k)
        if v:
            out[k] = v
    return out


def host_only(target: str | None = None, host_target: str | None = None) -> Toolchain:
    """A toolchain with no compiler, for recipes that build nothing (pip, copy, data scripts)."""
    host = host_target or real_host_target()
    return Toolchain(target=target or host, host_target=host, triple=None, cc=None)

