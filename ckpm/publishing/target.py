"""Where a release goes (a git index or a registry) and what is there already.

:func:`resolve_target` reads ``--index``/``--registry``; :func:`check_target` refuses a version
the target has (a :class:`~ckpm.errors.TagMoved` naming both commits when it was published
from another one) or a dependency it lacks. The target is read through
:func:`ckpm.index.open.open_index`, as every other command reads an index: offline it reads the
cached copy (and says so), and every network read stops at the command's deadline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ckpm.errors import CkpmError, TagMoved, UsageError
from ckpm.index.transfer import is_local
from ckpm.publishing.registry_client import api_base, check_registry_url, is_http
from ckpm.publishing.release import PublishError, Release
from ckpm.settings import Settings

if TYPE_CHECKING:
    from ckpm.index.base import Index


@dataclass
class Target:
    """Where a release goes: a git index (``url``) or a registry (``url`` as given, ``api`` its base)."""

    kind: str  # "git" or "registry"
    url: str
    api: str | None = None

    def describe(self) -> str:
        return f"registry {self.api}" if self.kind == "registry" else f"git index {self.url}"


def resolve_target(index: str | None, registry: str | None, settings: Settings) -> Target:
    """The target of a publish or yank: ``--registry`` (a base URL or the index URL it serves),
    else ``--index``: an ``http(s)://`` index is its registry, anything else a git index."""
    if registry and index:
        raise UsageError("give --index or --registry, not both")
    if registry:
        return Target("registry", registry, api_base(check_registry_url(registry), settings))
    if index:
        if is_http(index):
            return Target("registry", index, api_base(index, settings))
        return Target("git", index)
    raise UsageError("say where to publish: --index GIT_URL (a git index) or --registry URL",
                     hint="`ckpm publish --index git+file:///srv/ckpm-index.git` or "
                          "`ckpm publish --registry https://registry.example.org`")


def _published_commit(line: Mapping[str, Any]) -> str | None:
    src = line.get("source")
    if not isinstance(src, Mapping):
        return None
    c = src.get("rev") or src.get("commit")
    return c if isinstance(c, str) else None


def existing_error(rel: Release, existing: Mapping[str, Any], where: str) -> CkpmError:
    """The version is there already: TagMoved when from another commit, else AlreadyPublished."""
    from ckpm.index.gitwriter import AlreadyPublished

    was = _published_commit(existing)
    if was is not None and was != rel.commit:
        return TagMoved(rel.name, rel.version, rel.tag, str(rel.line["source"]["git"]), was, rel.commit)
    return AlreadyPublished(f"{rel.name} {rel.version} is already published in {where}"
                            + (f" (from the same commit {rel.commit[:12]})" if was == rel.commit else ""),
                            existing=dict(existing),
                            hint="a published version never changes: publish a new version (a new tag)")


def open_target(target: Target, s: Settings, *, deadline: float | None = None) -> "Index":
    """An index client on the target, brought up to date (offline: its cached copy, with a warning)."""
    from ckpm.index.open import git_index_url, open_index

    if target.kind == "registry":
        assert target.api is not None
        url = target.api
    else:
        url = git_index_url(target.url)
    idx = open_index(url, cache_dir=s.cache_dir, offline=s.offline, reporter=s.reporter, deadline=deadline)
    if s.offline:
        s.reporter.warning(f"offline: {target.describe()} is read from this machine's cached copy")
    else:
        idx.update()
    return idx


def refresh_target(target: Target, s: Settings, *, deadline: float | None = None) -> None:
    """After a write: bring this machine's cached copy of the index up to date, so that the
    next `ckpm lock` here sees the change (others run `ckpm index update` or wait for theirs)."""
    if s.offline:
        s.reporter.warning(f"offline: the cached copy of {target.url} was not updated")
        return
    try:
        open_target(target, s, deadline=deadline).close()
    except CkpmError as e:
        s.reporter.warning(f"the cached copy of {target.url} was not updated: {e.message}")


def check_target(rel: Release, target: Target, s: Settings, *, deadline: float | None = None) -> list[str]:
    """Refuse a version the target has (TagMoved when from another commit) or a dependency it
    lacks; returns notes (a dependency whose range no published version meets yet). ``deadline``
    (a ``time.monotonic()`` value) bounds the reads of the target."""
    from ckpm.model.requirement import requirement_from_index_dep

    idx = open_target(target, s, deadline=deadline)
    try:
        where = target.describe()
        if target.kind == "git" and not (s.offline and not is_local(target.url.removeprefix("git+"))):
            from ckpm.index.gitwriter import read_line

            existing = read_line(target.url, rel.name, rel.version, settings=s, deadline=deadline)
        else:  # a registry, or a remote git index offline: the copy just read
            e = idx.find_entry(rel.name, rel.version)
            existing = e.to_json() if e is not None else None
        if existing is not None:
            raise existing_error(rel, existing, where)
        missing: list[str] = []
        notes: list[str] = []
        summaries = None
        for raw in rel.line.get("deps", []):
            name = str(raw.get("name"))
            if name.startswith("__") or raw.get("git"):
                continue  # a host fact; a git dependency needs no index
            entries = idx.entries(name)
            if entries:
                req = requirement_from_index_dep(raw)
                if not any(req.spec.contains(en.version, prereleases=True) for en in entries if not en.yanked):
                    notes.append(f"no published version of {name} meets {req.spec.text} yet")
                continue
            tags = set(raw.get("tags") or ())
            if tags:
                if summaries is None:
                    summaries = idx.summaries()
                if any(tags <= set(sm.tags) for sm in summaries):
                    continue
            missing.append(name + (f" (tags {', '.join(sorted(tags))})" if tags else ""))
        if missing:
            raise PublishError(f"{rel.name} {rel.version} depends on what {where} does not have: "
                               + ", ".join(missing),
                               hint="publish those first, or depend on them by git URL "
                                    "(`name = { git = URL, version = ... }`)")
        for n in notes:
            s.reporter.warning(f"{rel.name} {rel.version}: {n}")
        return notes
    finally:
        idx.close()


