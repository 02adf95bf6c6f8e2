"""The variables that make dependency prefixes visible to a build (and to ``ckpm env``).

For each dependency prefix (a store prefix or a host one) :func:`deps_env` sets:

| variable | value |
| --- | --- |
| ``PATH`` | each prefix's ``bin`` (native builds only: a cross target's programs do not run here), then ``base_path`` |
| ``CPATH``, ``CPPFLAGS`` | each ``include`` folder (``CPPFLAGS`` as ``-I`` flags) |
| ``LIBRARY_PATH``, ``LDFLAGS`` | each ``lib``/``lib64`` folder (``LDFLAGS`` as ``-L`` and ``-Wl,-rpath,`` so programs find the library at run time without ``LD_LIBRARY_PATH``) |
| ``PKG_CONFIG_PATH`` | each ``lib/pkgconfig``, ``lib64/pkgconfig``, ``share/pkgconfig`` |
| ``PKG_CONFIG_LIBDIR`` | cross builds only: the target's own ``.pc`` folders (``/usr/lib/<triple>/pkgconfig``…), so pkg-config never offers a host library |
| ``CMAKE_PREFIX_PATH`` | the prefixes (``:``-separated, as CMake reads it from the environment) |
| ``<NAME>_ROOT`` | each prefix, the name upper-cased with other characters than letters and digits as ``_`` (``lib-zlib`` → ``LIB_ZLIB_ROOT``) |

Only folders that exist are named. A system prefix (``/usr``, ``/``) gets its ``_ROOT`` and
nothing else: the compiler already searches it, and a ``-I/usr/include`` would reorder
the search (and break a cross build). ``LD_LIBRARY_PATH`` is never set: it would leak into
every program the build runs; the rpath does its work.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from ckpm.build.toolchain import Toolchain

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_PREFIXES = frozenset({"/", "/usr"})


def root_variable(name: str) -> str:
    """``<NAME>_ROOT`` for a dependency name (``lib-zlib`` → ``LIB_ZLIB_ROOT``)."""
    ident = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    return ident + "_ROOT"


def deps_env(
    deps: Mapping[str, Path], *, toolchain: "Toolchain | None" = None, base_path: str = "/usr/bin:/bin",
) -> dict[str, str]:
    """The variables that point a build (or a shell, for ``ckpm env``) at ``deps`` (name → prefix).

    Deterministic: dependencies in the order given. See the module docstring for the table.
    """
    cross = toolchain is not None and toolchain.cross
    bins: list[str] = []
    incs: list[str] = []
    libs: list[str] = []
    pcs: list[str] = []
    prefixes: list[str] = []
    out: dict[str, str] = {}
    for name, prefix in deps.items():
        p = Path(prefix)
        out[root_variable(name)] = str(p)
        if os.path.normpath(str(p)) in SYSTEM_PREFIXES or str(p) in prefixes:
            continue  # a system prefix is searched anyway; a shared prefix is listed once
        prefixes.append(str(p))
        if not cross and (p / "bin").is_dir():
            bins.append(str(p / "bin"))
        if (p / "include").is_dir():
            incs.append(str(p / "include"))
        for lib in ("lib", "lib64"):
            if (p / lib).is_dir():
                libs.append(str(p / lib))
        for pc in ("lib/pkgconfig", "lib64/pkgconfig", "share/pkgconfig"):
            if (p / pc).is_dir():
                pcs.append(str(p / pc))
    out["PATH"] = os.pathsep.join(bins + [d for d in base_path.split(os.pathsep) if d])
    if incs:
        out["CPATH"] = os.pathsep.join(incs)
        out["CPPFLAGS"] = " ".join(f"-I{d}" for d in incs)
    if libs:
        out["LIBRARY_PATH"] = os.pathsep.join(libs)
        out["LDFLAGS"] = " ".join([f"-L{d}" for d in libs] + [f"-Wl,-rpath,{d}" for d in libs])
    if pcs:
        out["PKG_CONFIG_PATH"] = os.pathsep.join(pcs)
    if cross and toolchain is not None:
        triple = toolchain.triple or ""
        target_pcs = [d for d in (f"/usr/lib/{triple}/pkgconfig", f"/usr/{triple}/lib/pkgconfig") if triple
                      and os.path.isdir(d)]
        out["PKG_CONFIG_LIBDIR"] = os.pathsep.join(target_pcs)
    if prefixes:
        out["CMAKE_PREFIX_PATH"] = os.pathsep.join(prefixes)
    return out
