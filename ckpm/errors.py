"""Structured errors: one root with a stable code, a message and a hint.

The library raises these; the CLI words them at the edge (one line, no traceback
unless ``-v``). ``access()`` turns them into ``{"return": N, "error": ...}``.
"""
from __future__ import annotations

from typing import Any


class CkpmError(Exception):
    """Root of every error a user can cause or act on."""

    code: str = "ckpm"
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: list[str] = list(details or [])

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "error": self.message, "hint": self.hint, "details": self.details}

    def render(self) -> str:
        lines = [f"error: {self.message}"]
        lines.extend(f"  {d}" for d in self.details)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class ManifestError(CkpmError, ValueError):
    """A ckpm.toml that cannot be read: names the file and the line."""

    code = "manifest"

    def __init__(self, path: str, message: str, line: int | None = None, *, hint: str | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = path
        self.line = line


class VersionError(CkpmError, ValueError):
    code = "version"


class SpecifierError(CkpmError, ValueError):
    code = "specifier"


class TargetError(CkpmError, ValueError):
    code = "target"


class IndexError_(CkpmError):
    """An index that cannot be read (bad layout, unreachable, malformed line)."""

    code = "index"


class UnknownComponent(CkpmError, LookupError):
    code = "unknown-component"


class GitSourceError(CkpmError):
    code = "git"


class ResolutionError(CkpmError):
    code = "resolution"
    exit_code = 2


class LockError(CkpmError):
    code = "lock"


class StaleLock(LockError):
    code = "stale-lock"
    exit_code = 3


class HostDriftError(LockError):
    code = "host-drift"
    exit_code = 4


class ProjectError(CkpmError):
    code = "project"


def unknown_key_message(key: str, known: "list[str] | tuple[str, ...]", where: str) -> str:
    """``unknown key 'x' in [project]; did you mean 'y'?`` (or the list of known keys)."""
    from difflib import get_close_matches

    near = get_close_matches(key, list(known), n=1, cutoff=0.6)
    msg = f"unknown key {key!r} in {where}"
    return msg + (f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(known)})")
