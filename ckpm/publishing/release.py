"""The release: the index line of a tagged version of a component, checked before anything is written.

A component lives in its own git repository with a ``[component]`` ``ckpm.toml``; each
version is a tag. :func:`prepare_release` checks that the manifest at the tagged commit is
valid, that the tag names the manifest's version, that the working tree is clean and that
the tag is at the source URL on the same commit, then makes the line: ``source`` (``git``
URL, ``tag``, ``rev``: the full commit, ``subdir``), ``cksum`` (:mod:`ckpm.index.archive`:
sha256 of a reproducible tar of the tree) and ``pubtime`` (UTC, ISO 8601). The line's
recipes, detection rules and program are checked as their readers check them
(:func:`recipe_and_rule_problems`).
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ckpm.errors import CkpmError, ManifestError
from ckpm.settings import Settings

_LEADING_V = re.compile(r"^[vV](?=\d)")


class PublishError(CkpmError):
    """A release that cannot be published as it is (the checks before writing)."""

    code = "publish"


@dataclass
class Release:
    """A tagged version of a component, as it would be published: its index line and where it is from."""

    line: dict[str, Any]
    repo: Path  # the repository's working tree
    subdir: str | None
    tag: str
    commit: str

    @property
    def name(self) -> str:
        return str(self.line["name"])

    @property
    def version(self) -> str:
        return str(self.line["version"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "tag": self.tag, "commit": self.commit,
                "subdir": self.subdir, "line": self.line}


def _peel_commit(repo: Any, ref: str) -> str | None:
    import pygit2

    try:
        obj = repo.lookup_reference(ref).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return str(obj.id) if isinstance(obj, pygit2.Commit) else None


def _dirty(repo: Any, limit: int = 10) -> list[str]:
    import pygit2

    out = []
    for path, flags in sorted(repo.status().items()):
        if flags == pygit2.GIT_STATUS_CURRENT or flags & pygit2.GIT_STATUS_IGNORED:
            continue
        out.append(path)
        if len(out) >= limit:
            break
    return out


def _source_url(repo: Any, workdir: Path, explicit: str | None) -> str:
    url = explicit
    if url is None:
        try:
            url = repo.remotes["origin"].url
        except (KeyError, ValueError):
            url = None
        if not url:
            raise PublishError(f"{workdir} has no remote `origin`, so where others fetch the source is unknown",
                               hint="add it (`git remote add origin URL` and push the tag), or pass --source-url URL")
    if "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url):  # a local path: a file:// URL
        p = Path(url).expanduser()
        if not p.is_absolute():
            p = (workdir / p)
        url = p.resolve().as_uri()
    return url


def pubtime_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare_release(path: Path | str | None = None, *, tag: str | None = None, source_url: str | None = None,
                    settings: Settings | None = None, check_remote: bool = True,
                    allow_dirty: bool = False, deadline: float | None = None) -> Release:
    """The index line of the version tagged at ``HEAD`` (or ``tag``) of the component in ``path``.

    Checks: ``path`` is (in) a git working tree with ``ckpm.toml``; the tree is clean; the tag
    names a version, and the manifest at the tagged commit is valid and says that version (or
    none); the tag is at the source URL on the same commit (``check_remote``; not offline; its
    network reads stop at ``deadline``, a ``time.monotonic()`` value).
    """
    import pygit2

    from ckpm.index.archive import tree_cksum_of
    from ckpm.index.gitsource import tag_version
    from ckpm.model.entry import IndexDataError, check_entry
    from ckpm.model.manifest import parse_component_manifest
    from ckpm.model.version import try_version

    s = settings if settings is not None else Settings()
    comp_dir = Path(path or ".").resolve()
    if not (comp_dir / "ckpm.toml").is_file():
        raise PublishError(f"{comp_dir} has no ckpm.toml", hint="run `ckpm publish` in a component's folder "
                                                                 "(a ckpm.toml with a [component] table)")
    found = pygit2.discover_repository(str(comp_dir))
    if found is None:
        raise PublishError(f"{comp_dir} is not in a git repository",
                           hint="a component is published from a tag of its git repository: `git init`, commit, "
                                "`git tag v0.1.0`")
    repo = pygit2.Repository(found)
    try:
        if repo.is_bare or repo.workdir is None:
            raise PublishError(f"{found} is a bare repository; publish from a working tree")
        workdir = Path(repo.workdir).resolve()
        rel = comp_dir.relative_to(workdir).as_posix()
        subdir = None if rel in ("", ".") else rel
        manifest_rel = f"{subdir}/ckpm.toml" if subdir else "ckpm.toml"
        if repo.head_is_unborn:
            raise PublishError(f"{workdir} has no commit yet", hint="commit the component and tag the version")
        if not allow_dirty:
            dirty = _dirty(repo)
            if dirty:
                raise PublishError(f"the working tree of {workdir} is not clean: " + ", ".join(dirty),
                                   hint="commit (or stash) the changes, or add the files to .gitignore; "
                                        "a published version is exactly what its tag holds")
        head = str(repo.head.peel(pygit2.Commit).id)
        if tag is not None:
            tag = tag.removeprefix("refs/tags/")
            commit = _peel_commit(repo, f"refs/tags/{tag}")
            if commit is None:
                raise PublishError(f"{workdir} has no tag {tag!r}", hint=f"`git tag {tag}` tags HEAD")
            if tag_version(tag) is None:
                raise PublishError(f"tag {tag!r} does not name a version (v1.2.0 or 1.2.0)")
        else:
            at_head = sorted(r[len("refs/tags/"):] for r in repo.references
                             if r.startswith("refs/tags/") and _peel_commit(repo, r) == head)
            versions = {}
            for t in at_head:
                v = tag_version(t)
                if v is None:
                    continue
                if v not in versions or t.startswith(("v", "V")):
                    versions[v] = t
            if not versions:
                raise PublishError(f"HEAD ({head[:12]}) of {workdir} has no version tag"
                                   + (f" (it has {', '.join(at_head)})" if at_head else ""),
                                   hint="tag the release (`git tag v1.2.0`) and push the tag, or pass --tag TAG")
            if len(versions) > 1:
                raise PublishError(f"HEAD ({head[:12]}) has tags of several versions: "
                                   + ", ".join(sorted(versions.values())), hint="pass --tag TAG")
            (tag,) = versions.values()
            commit = head
        c = repo.get(commit)
        assert isinstance(c, pygit2.Commit)
        try:
            obj = c.tree[manifest_rel]
        except KeyError:
            raise PublishError(f"tag {tag} ({commit[:12]}) has no {manifest_rel}") from None
        blob = repo[obj.id]
        if not isinstance(blob, pygit2.Blob) or blob.size > (1 << 20):
            raise PublishError(f"{manifest_rel} at tag {tag} is not a file of at most 1 MiB")
        origin = f"{manifest_rel} at tag {tag}"
        try:
            text = bytes(blob.data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError(origin, f"not UTF-8 text ({e.reason})") from None
        data = parse_component_manifest(text, origin)
        version = _LEADING_V.sub("", tag)
        mv = data.get("version")
        if mv is not None and try_version(str(mv)) != tag_version(tag):
            raise PublishError(f"{origin} says version {mv}, but the tag is {tag}",
                               hint="the tag names the version: make them agree (fix ckpm.toml and tag again, "
                                    "or tag the version the manifest says)")
        url = _source_url(repo, workdir, source_url)
        cksum = tree_cksum_of(repo, commit, subdir)
    finally:
        repo.free()
    source: dict[str, Any] = {"git": url, "tag": tag, "rev": commit}
    if subdir:
        source["subdir"] = subdir
    line: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
    line.update({"version": version, "source": source, "cksum": cksum, "yanked": False, "pubtime": pubtime_now()})
    try:
        check_entry(line, name=line["name"])
    except IndexDataError as e:
        raise PublishError(f"{origin}: the index line would be invalid: {e.message}") from None
    problems = recipe_and_rule_problems(line)
    if problems:
        raise PublishError(f"{origin}: users of the index would refuse parts of it", details=problems,
                           hint="fix them in ckpm.toml and tag a new version")
    release = Release(line, workdir, subdir, tag, commit)
    if check_remote:
        _check_remote_tag(release, s, deadline)
    return release


def recipe_and_rule_problems(line: Mapping[str, Any]) -> list[str]:
    """What readers would refuse in a line's ``install`` recipes, ``detect`` rules and ``run``
    program (checked as ``ckpm sync``, detection and ``ckpm run`` check them)."""
    from ckpm.model.recipe_checks import check_recipe
    from ckpm.detect.trust import validate_rule
    from ckpm.model.program import parse_program

    from ckpm.model.source import local_file_sources

    out: list[str] = [f"{f} names a local file, which nobody else can read (use an http(s) URL)"
                      for f in local_file_sources(line)]
    for i, recipe in enumerate(line.get("install") or (), 1):
        out.extend(f"[[install]] {i}: {p}" for p in check_recipe(recipe))
    for i, rule in enumerate(line.get("detect") or (), 1):
        clean, problems = validate_rule(rule, component=str(line.get("name")), number=i)
        if clean is None:
            out.extend(problems or [f"[[detect]] {i}: not a valid rule"])
    if line.get("run") is not None:
        try:
            parse_program(line["run"], name=str(line.get("name")), where="[run]")
        except CkpmError as e:
            out.append(e.message)
    return out


def _check_remote_tag(rel: Release, s: Settings, deadline: float | None = None) -> None:
    """The tag must be at the source URL, on the released commit: that is what users fetch."""
    from ckpm.index.gitsource import GitComponentSource

    url = rel.line["source"]["git"]
    if s.offline:
        s.reporter.warning(f"offline: not checked that tag {rel.tag} is at {url}")
        return
    gs = GitComponentSource(url, subdir=rel.subdir, cache_dir=s.cache_dir, reporter=s.reporter, deadline=deadline)
    try:
        now = gs.commit_of(rel.tag)
    except CkpmError as e:
        raise PublishError(f"cannot check tag {rel.tag} at {url}: {e.message}",
                           hint="push the tag where users fetch it from, or pass --source-url URL") from None
    if now is None:
        raise PublishError(f"tag {rel.tag} is not at {url}", hint=f"push it: `git push origin {rel.tag}`")
    if now != rel.commit:
        raise PublishError(f"tag {rel.tag} points to {now} at {url}, but to {rel.commit} here",
                           hint="push the tag (a published tag never moves: if it was pushed before, "
                                "make a new version)")


