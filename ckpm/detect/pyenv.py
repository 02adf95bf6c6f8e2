"""Python interpreters as detection sees them: version, sys.path, installed distributions.

The running interpreter is asked in-process; another one through one subprocess running
:data:`QUERY` (the same code), memoised by the interpreter's fingerprint. An environment's
fingerprint is the interpreter's plus the mtimes of its ``sys.path`` folders, which change
whenever a distribution is installed or removed there.
"""
from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, Sequence

from ckpm.detect.fingerprint import combine, dirs_fingerprint, fingerprint_of

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

#: runs in the queried interpreter (Python >= 3.8): prints one JSON object
QUERY = r'''
import json, platform, sys

def info():
    return {"version": platform.python_version(), "implementation": sys.implementation.name,
            "executable": sys.executable, "sys_path": [p for p in sys.path if p]}

def packages(names):
    from importlib import metadata
    out = {}
    for n in names:
        try:
            d = metadata.distribution(n)
        except metadata.PackageNotFoundError:
            out[n] = None
            continue
        dist_info = getattr(d, "_path", None)
        out[n] = {"name": d.metadata["Name"] or n, "version": d.version,
                  "location": str(d.locate_file("")), "dist_info": str(dist_info) if dist_info else None}
    return out

if __name__ == "__main__":
    names = sys.argv[1:]
    print(json.dumps({"info": info(), "packages": packages(names)}))
'''

_ns: dict[str, Any] | None = None


def _local() -> dict[str, Any]:
    global _ns
    if _ns is None:
        _ns = {"__name__": "ckpm_detect_query"}
        exec(compile(QUERY, "<ckpm.detect.pyenv.QUERY>", "exec"), _ns)
    return _ns


def is_running(python: str) -> bool:
    """True if ``python`` is the interpreter running ckpm (same path, not just same binary)."""
    return os.path.abspath(python) == os.path.abspath(sys.executable)


def local_sys_path() -> list[str]:
    """This process's sys.path without the script or current folder at its head.

    That folder (``python -m``/``-c`` put the current folder there) is not an install
    location, and its mtime changes with every file edited in it.
    """
    entries = list(sys.path)
    if entries and not getattr(sys.flags, "safe_path", False):
        head = entries[0]
        script_dir = os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else None
        if head in ("", ".") or os.path.abspath(head) in (os.getcwd(), script_dir):
            entries = entries[1:]
    return [p for p in entries if p]


def interpreter_fingerprint(python: str) -> str:
    """The interpreter binary plus its venv's ``pyvenv.cfg`` (a venv shares the binary)."""
    p = os.path.abspath(python)
    cfg = os.path.join(os.path.dirname(os.path.dirname(p)), "pyvenv.cfg")
    return combine(p, fingerprint_of(p), fingerprint_of(cfg))


def interpreter_info(ctx: "DetectContext", python: str) -> dict[str, Any] | None:
    """{"version", "implementation", "executable", "sys_path"} of ``python`` (None if it fails)."""
    if is_running(python):
        info = dict(_local()["info"]())
        info["sys_path"] = local_sys_path()
        return info
    fp = interpreter_fingerprint(python)
    if not fingerprint_of(python):
        return None

    def compute() -> dict[str, Any] | None:
        out = run_query(ctx, python, [], label=f"python {python}")
        return out["info"] if out else None

    return ctx.memo_value(["python-info", os.path.abspath(python)], fp, compute, path=python)


def env_fingerprint(ctx: "DetectContext", python: str) -> str | None:
    """Fingerprint of ``python``'s installed distributions (None if the interpreter fails)."""
    info = interpreter_info(ctx, python)
    if info is None:
        return None
    return combine(interpreter_fingerprint(python), dirs_fingerprint(info.get("sys_path") or ()))


def run_query(ctx: "DetectContext", python: str, names: Sequence[str], *, label: str) -> dict[str, Any] | None:
    """Ask ``python`` (a subprocess) for its info and the named distributions."""
    out = ctx.run([python, "-c", QUERY, *names], label=label)
    if out is None:
        return None
    try:
        data = json.loads(out.stdout.strip().splitlines()[-1])
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    except (ValueError, IndexError):
        from ckpm.detect.probe import truncate

        ctx.warn(f"{label}: unexpected output from the interpreter query: {truncate(out.text)!r}")
        return None


def query_packages(ctx: "DetectContext", python: str, names: Sequence[str], *, label: str) -> dict[str, Any] | None:
    """{name: {"name", "version", "location", "dist_info"} or None} in ``python``."""
    if is_running(python):
        return dict(_local()["packages"](list(names)))
    data = run_query(ctx, python, names, label=label)
    return None if data is None else dict(data.get("packages") or {})
