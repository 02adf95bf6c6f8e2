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

    def render(self, verbose: bool = False) -> str:
        lines = [f"error: {self.message}"]
        lines.extend(f"  {d}" for d in self.details)
        more = getattr(self, "more", None)
        if more and verbose:
            lines.extend(f"  {d}" for d in more)
        elif more:
            lines.append(f"  (-v shows {len(more)} more lines of detail)")
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


class NoProject(ManifestError):
    """No ckpm.toml in a folder or any of its parents."""

    code = "no-project"


class UsageError(CkpmError):
    """The command line itself is wrong (an unknown option, a missing argument)."""

    code = "usage"
    exit_code = 64


class VersionError(CkpmError, ValueError):
    code = "version"


class SpecifierError(CkpmError, ValueError):
    code = "specifier"


class TargetError(CkpmError, ValueError):
    code = "target"


class IndexReadError(CkpmError):
    """An index that cannot be read (bad layout, unreachable, malformed line)."""

    code = "index"


class TagMoved(IndexReadError):
    """A published version's tag points to another commit than the one its index line records.

    A published version never changes: the index line's ``source.rev`` is the commit that
    was published; a tag moved since (a force-push, a re-tag) is refused, naming both.
    """

    code = "tag-moved"

    def __init__(self, name: str, version: str, tag: str, url: str, published: str, now: str, *,
                 hint: str | None = None) -> None:
        super().__init__(
            f"{name} {version}: tag {tag} of {url} now points to commit {now}, but {name} {version} was "
            f"published from commit {published}",
            hint=hint or f"a published version never changes: publish the new commit as a new version (a new tag), "
                         f"or move tag {tag} back to {published[:12]}")
        self.name, self.version, self.tag, self.url = name, version, tag, url
        self.published, self.now = published, now

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "name": self.name, "version": self.version, "tag": self.tag, "url": self.url,
                "published_commit": self.published, "tag_commit": self.now}


class UnknownComponent(CkpmError, LookupError):
    code = "unknown-component"


class GitSourceError(CkpmError):
    code = "git"


class ResolutionError(CkpmError):
    """No set of versions satisfies the requirements (or the search gave up).

    ``conflict`` keeps the failure as data for ``--json`` and a registry: per key, the
    requirements with their chains back to the project, and every candidate considered
    with the reason it was rejected.
    """

    code = "resolution"
    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None,
                 conflict: list[dict[str, Any]] | None = None, target: str | None = None,
                 more: list[str] | None = None) -> None:
        super().__init__(message, hint=hint, details=details)
        self.conflict: list[dict[str, Any]] = list(conflict or [])
        self.target = target
        self.more: list[str] = list(more or [])  # full detail: shown with -v, always in --json

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "target": self.target, "conflict": self.conflict, "more": self.more}


class LockError(CkpmError):
    code = "lock"


class StaleLock(LockError):
    """The lock does not hold for the manifest, the indexes or the git tags any more."""

    code = "stale-lock"
    exit_code = 3


class UnverifiableLock(StaleLock):
    """A lock whose index lines cannot be read here (the index unreachable, not cached, and no
    vendored folder holds them): it is not verified, so nothing of it is run (exit 3, as Cargo's
    ``--locked`` fails when it cannot check)."""

    code = "unverifiable-lock"


class HostDriftError(LockError):
    """This host does not have what the lock's host pins recorded."""

    code = "host-drift"
    exit_code = 4


class FetchError(CkpmError):
    """A file could not be fetched from any mirror: ``attempts`` lists each URL tried and why it failed."""

    code = "fetch"

    def __init__(self, message: str, *, attempts: "list[tuple[str, str]] | None" = None, hint: str | None = None,
                 details: list[str] | None = None) -> None:
        self.attempts: list[tuple[str, str]] = list(attempts or [])
        super().__init__(message, hint=hint,
                         details=list(details or []) + [f"{url}: {why}" for url, why in self.attempts])

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "attempts": [{"url": u, "error": w} for u, w in self.attempts]}


class UnpackError(CkpmError):
    """An archive that was refused (a member escaping the destination, a bomb, a device file…)."""

    code = "unpack"


class StoreError(CkpmError):
    """The store cannot be used (unwritable, a prefix that cannot be installed)."""

    code = "store"


class BuildError(CkpmError):
    """A recipe failed: the message names the step; ``log`` is the build log, ``tail`` its last lines."""

    code = "build"

    def __init__(self, message: str, *, log: str | None = None, tail: "list[str] | None" = None,
                 hint: str | None = None) -> None:
        self.log = log
        self.tail: list[str] = list(tail or [])
        details = [f"| {line}" for line in self.tail]
        if log:
            details.append(f"the whole log: {log}")
        super().__init__(message, hint=hint, details=details)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "log": self.log}


#: every exit code the CLI uses, for the docs and for --json consumers
EXIT_CODES = {0: "success", 1: "a user error (bad input, unknown name, unreadable file)",
              2: "no resolution exists (or the search gave up)", 3: "the lock is stale",
              4: "this host differs from the lock", 5: "the program ran, but its output failed validation",
              6: "a replay found a configuration difference or a regression",
              7: "an artifact bundle is damaged or incomplete (not available)",
              8: "an artifact is available but not functional", 9: "an artifact is functional but not reproduced",
              10: "the program failed (it exited with an error or a signal)", 64: "the command line is wrong (usage)",
              130: "interrupted (Ctrl-C)"}


class ProjectError(CkpmError):
    code = "project"


class NotADependency(ProjectError):
    """``ckpm remove NAME`` of a name the manifest does not list."""

    code = "not-a-dependency"


def unknown_key_message(key: str, known: "list[str] | tuple[str, ...]", where: str) -> str:
    """``unknown key 'x' in [project]; did you mean 'y'?`` (or the list of known keys)."""
    from difflib import get_close_matches

    near = get_close_matches(key, list(known), n=1, cutoff=0.6)
    msg = f"unknown key {key!r} in {where}"
    return msg + (f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(known)})")
