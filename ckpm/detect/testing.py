"""Helpers for detection tests: fake executables written as real ``#!/bin/sh`` scripts.

No mocks: a fake ``gcc`` is a script on a real PATH that answers ``--version``,
``-dumpmachine``, ``-dumpfullversion`` and ``-dM -E`` like the real one; a counter file
records each run, so a test can prove that a warm detection ran nothing.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Iterable


def _lines(text: str) -> str:
    """A ``printf`` command printing ``text`` exactly (one quoted argument per line)."""
    return "printf '%s\\n' " + " ".join(shlex.quote(line) for line in text.splitlines())


def write_exe(path: str | os.PathLike[str], body: str, *, counter: str | os.PathLike[str] | None = None) -> Path:
    """Write an executable ``#!/bin/sh`` script (appending a line to ``counter`` on each run)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    head = "#!/bin/sh\n"
    if counter is not None:
        head += f"echo \"$0 $*\" >> {shlex.quote(str(counter))}\n"
    p.write_text(head + body.rstrip("\n") + "\n")
    p.chmod(0o755)
    return p


def tool_script(stdout: str = "", *, stderr: str = "", exit_code: int = 0) -> str:
    """A body that prints fixed output and exits with ``exit_code``."""
    parts = []
    if stdout:
        parts.append(_lines(stdout))
    if stderr:
        parts.append(_lines(stderr) + " >&2")
    parts.append(f"exit {exit_code}")
    return "\n".join(parts)


def compiler_script(version: str, triple: str, *, family: str = "gcc", version_text: str | None = None,
                    macros_family: str | None = None) -> str:
    """A body that behaves like a gcc or clang driver of ``version`` targeting ``triple``.

    ``version_text`` replaces the ``--version`` output; ``macros_family`` makes ``-dM -E``
    answer as another family (a clang whose ``--version`` claims to be gcc).
    """
    major, minor, patch = (version.split(".") + ["0", "0"])[:3]
    if version_text is None:
        if family == "clang":
            version_text = f"clang version {version}\nTarget: {triple}\nThread model: posix"
        else:
            version_text = f"gcc (GCC) {version}\nCopyright (C) 2023 Free Software Foundation, Inc."
    mf = macros_family or family
    if mf == "clang":
        macros = ["#define __clang__ 1", f"#define __clang_major__ {major}", f"#define __clang_minor__ {minor}",
                  f"#define __clang_patchlevel__ {patch}", "#define __GNUC__ 4", "#define __GNUC_MINOR__ 2",
                  "#define __GNUC_PATCHLEVEL__ 1"]
    else:
        macros = [f"#define __GNUC__ {major}", f"#define __GNUC_MINOR__ {minor}",
                  f"#define __GNUC_PATCHLEVEL__ {patch}"]
    return "\n".join([
        'case "$1" in',
        f"  --version) {_lines(version_text)} ;;",
        f"  -dumpmachine) echo {shlex.quote(triple)} ;;",
        f"  -dumpfullversion) echo {shlex.quote(version)} ;;",
        f"  -dumpversion) echo {shlex.quote(major)} ;;",
        f"  -dM) {_lines(chr(10).join(macros))} ;;",
        "  *) echo \"unknown option $1\" >&2; exit 1 ;;",
        "esac",
    ])


def run_count(counter: str | os.PathLike[str]) -> int:
    """How many times the scripts sharing ``counter`` have run."""
    try:
        return len(Path(counter).read_text().splitlines())
    except FileNotFoundError:
        return 0


def runs_of(counter: str | os.PathLike[str], name: str) -> int:
    """How many runs in ``counter`` were of the executable called ``name``."""
    try:
        lines = Path(counter).read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if os.path.basename(line.split(" ", 1)[0]) == name)


def write_dist(site: str | os.PathLike[str], name: str, version: str,
               entry_points: Iterable[tuple[str, str, str]] = ()) -> Path:
    """Write an installed distribution's metadata (``NAME-VERSION.dist-info``) into ``site``.

    ``entry_points`` items are (group, name, "module:attr").
    """
    d = Path(site) / f"{name.replace('-', '_')}-{version}.dist-info"
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups: dict[str, list[str]] = {}
    for group, ep_name, ref in entry_points:
        groups.setdefault(group, []).append(f"{ep_name} = {ref}")
    if groups:
        (d / "entry_points.txt").write_text("".join(f"[{g}]\n" + "\n".join(v) + "\n\n" for g, v in groups.items()))
    return d
