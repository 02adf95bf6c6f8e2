"""``ckpm publish`` and ``ckpm yank``: a release written to a git index or a registry.

- a **git index** (``--index PATH|file://…|git+…``): through :func:`ckpm.index.gitwriter.publish_line`
  (the only code that writes a git index: one commit, pushed and retried when rejected);
- a **registry** (``--registry URL``, or an ``http(s)://`` index whose ``config.json``
  names its ``api``): ``PUT /api/v1/publish`` with a bearer token.

Everything is checked before anything is written (:func:`~ckpm.publishing.release.prepare_release`
and :func:`~ckpm.publishing.target.check_target`). ``timeout`` bounds every network read of the
command (the target index, the tag at the source URL, the clone and fetches of a git index that
is pushed to; not the push itself), as ``lock --timeout`` does.
"""
from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ckpm.errors import UsageError
from ckpm.publishing.credentials import require_token, token_for
from ckpm.publishing.registry_client import RegistryError, request_json
from ckpm.publishing.release import Release, prepare_release
from ckpm.publishing.target import Target, check_target, existing_error, open_target, refresh_target, resolve_target
from ckpm.settings import RESOLVE_SECONDS, Settings


@dataclass
class PublishResult:
    release: Release
    target: Target
    dry_run: bool
    commit: str | None = None  # the index commit (a git index or the registry's)
    attempts: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.release.to_dict(), "target": self.target.describe(), "index": self.target.api or self.target.url,
                "dry_run": self.dry_run, "index_commit": self.commit, "attempts": self.attempts, "notes": self.notes}


def publish(path: Path | str | None = None, *, index: str | None = None, registry: str | None = None,
            token: str | None = None, tag: str | None = None, source_url: str | None = None,
            dry_run: bool = False, settings: Settings | None = None, check_remote: bool = True,
            before_push: Callable[[], None] | None = None, direct: bool | None = None,
            timeout: float | None = RESOLVE_SECONDS) -> PublishResult:
    """Publish the tagged version of the component in ``path`` to a git index or a registry.

    Everything is checked first (:func:`prepare_release`, :func:`check_target`); with
    ``dry_run`` nothing is written. ``before_push`` and ``direct`` are handed to
    :func:`ckpm.index.gitwriter.publish_line` (``direct=False`` pushes even to a local bare
    index; tests use both to race another publish). ``timeout`` (seconds; None: no bound
    but each transfer's own) bounds the network reads of the checks.
    """
    s = settings if settings is not None else Settings()
    deadline = None if timeout is None else time.monotonic() + timeout
    target = resolve_target(index, registry, s)
    auth = None
    if target.kind == "registry":
        assert target.api is not None
        auth = token_for(target.api, s, token) if dry_run else require_token(target.api, s, token)
    rel = prepare_release(path, tag=tag, source_url=source_url, settings=s, check_remote=check_remote,
                          deadline=deadline)
    notes = check_target(rel, target, s, deadline=deadline)
    result = PublishResult(rel, target, dry_run, notes=notes)
    if dry_run:
        return result
    if target.kind == "git":
        from ckpm.index.gitwriter import AlreadyPublished, publish_line

        try:
            change = publish_line(target.url, rel.line, settings=s, before_push=before_push, direct=direct,
                                  deadline=deadline,
                                  message=f"Publish {rel.name} {rel.version}\n\nfrom {rel.line['source']['git']} "
                                          f"tag {rel.tag} ({rel.commit})")
        except AlreadyPublished as e:  # published meanwhile (after our check)
            raise existing_error(rel, e.existing, target.describe()) from None
        result.commit, result.attempts = change.commit, change.attempts
        refresh_target(target, s, deadline=deadline)
        return result
    assert target.api is not None and auth is not None
    try:
        out = request_json(s, "PUT", f"{target.api}/api/v1/publish", auth=auth, body={"line": rel.line},
                           what=f"publishing to {target.api}")
    except RegistryError as e:
        if e.status == 409:
            idx = open_target(target, s, deadline=deadline)
            try:
                en = idx.find_entry(rel.name, rel.version)
            finally:
                idx.close()
            if en is not None:
                raise existing_error(rel, en.to_json(), target.describe()) from None
        raise
    pub = out.get("published") if isinstance(out, dict) else None
    if isinstance(pub, dict) and isinstance(pub.get("commit"), str):
        result.commit = pub["commit"][:64]
    return result


def parse_spec(spec: str) -> tuple[str, str]:
    """``NAME@VERSION`` → (name, version)."""
    from ckpm.model.entry import valid_name
    from ckpm.model.version import try_version

    name, sep, version = spec.partition("@")
    if not sep or not valid_name(name) or try_version(version) is None:
        raise UsageError(f"{spec!r} is not NAME@VERSION (e.g. lib-foo@1.2.0)")
    return name, version


@dataclass
class YankResult:
    name: str
    version: str
    yanked: bool
    target: Target
    changed: bool = True
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "yanked": self.yanked, "changed": self.changed,
                "target": self.target.describe(), "index_commit": self.commit}


def yank(spec: str, *, undo: bool = False, index: str | None = None, registry: str | None = None,
         token: str | None = None, settings: Settings | None = None,
         timeout: float | None = RESOLVE_SECONDS) -> YankResult:
    """Mark ``NAME@VERSION`` yanked (``undo``: not yanked): new resolutions skip it; locks that
    pin it keep installing it. ``timeout`` bounds the reads of a git index (as for :func:`publish`)."""
    s = settings if settings is not None else Settings()
    deadline = None if timeout is None else time.monotonic() + timeout
    name, version = parse_spec(spec)
    target = resolve_target(index, registry, s)
    if target.kind == "git":
        from ckpm.index.gitwriter import set_yanked

        ch = set_yanked(target.url, name, version, not undo, settings=s, deadline=deadline)
        refresh_target(target, s, deadline=deadline)
        return YankResult(name, version, not undo, target, ch.changed, ch.commit)
    assert target.api is not None
    auth = require_token(target.api, s, token)
    path = f"{target.api}/api/v1/components/{urllib.parse.quote(name)}/{urllib.parse.quote(version, safe='')}"
    if undo:
        out = request_json(s, "PUT", f"{path}/unyank", auth=auth, what=f"unyanking {name} {version}")
    else:
        out = request_json(s, "DELETE", f"{path}/yank", auth=auth, what=f"yanking {name} {version}")
    y = out.get("yanked") if isinstance(out, dict) else None
    return YankResult(name, version, bool(y) if isinstance(y, bool) else not undo, target)
