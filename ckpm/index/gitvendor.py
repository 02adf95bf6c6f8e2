"""Git repositories in a vendored folder: written from the cache's mirror, read back into it.

``ckpm vendor`` writes one bare repository per git URL of the lock
(:func:`write_vendored`): a pack of everything reachable from the locked commits (their
history and trees, and the annotated tag objects of their tags), with
``refs/ckpm/locked/<commit>`` and ``refs/tags/<tag>`` refs. Every locked commit is then read
back from the new repository, tree and blobs included, before the folder is renamed into
place; libgit2 checks each object's id against its content as it reads it (strict hash
verification, its default), so what lands in the folder is verified by commit id.

An offline sync reads them back (:func:`seed_mirror`): the vendored repository is fetched
into the cache's mirror of the original URL (``<cache>/git/<key>``, made when missing, with
``origin`` set to the original URL, as a clone would), under the mirror's lock, and each
locked tag is created there when the mirror lacks it. A tag the mirror already has is
never moved: the mirror says where the original's tags are. Everything downstream (the
lock check, the export of a commit's tree) then reads the cache as if the original had been
reached; nothing in the original's URL is contacted.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

import pygit2

from ckpm.errors import GitSourceError
from ckpm.fsutil import build_dir_atomically
from ckpm.index.git import git_reason, locked_entry, remove_stale_git_locks

LOCKED_REFS = "refs/ckpm/locked/"
TAG_REFS = "refs/tags/"
#: where the refs of a vendored repository land in the cache's mirror
SEEDED_REFS = "refs/ckpm-vendored/"

Pin = tuple[str, "str | None"]  # (commit, tag or None)


def has_commits(repo_path: Path, commits: Iterable[str]) -> list[str]:
    """The ``commits`` the bare repository at ``repo_path`` lacks (all of them when it is not a repository)."""
    commits = list(commits)
    try:
        repo = pygit2.Repository(str(repo_path))
    except (pygit2.GitError, KeyError, OSError):
        return commits
    try:
        return [c for c in commits if not isinstance(_get(repo, c), pygit2.Commit)]
    finally:
        repo.free()


def mirror_holds(mirror: Path, pins: Sequence[Pin]) -> bool:
    """Whether the cache mirror at ``mirror`` has every commit and every tag of ``pins`` (a quick
    look: no lock, nothing read beyond the refs and the commit objects)."""
    if not (mirror / "HEAD").is_file():
        return False
    try:
        repo = pygit2.Repository(str(mirror))
    except (pygit2.GitError, KeyError, OSError):
        return False
    try:
        return all(isinstance(_get(repo, rev), pygit2.Commit) and (not tag or TAG_REFS + tag in repo.references)
                   for rev, tag in pins)
    finally:
        repo.free()


def _get(repo: pygit2.Repository, rev: str) -> Any:
    try:
        return repo.get(rev)
    except (ValueError, pygit2.GitError):
        return None


def verify_commits(repo: pygit2.Repository, commits: Iterable[str]) -> list[str]:
    """Read every locked commit, its tree and every blob of it from ``repo`` (each object's id
    checked against its content by libgit2); the problems found, one line each."""
    problems: list[str] = []
    seen: set[str] = set()
    for rev in commits:
        obj = _get(repo, rev)
        if not isinstance(obj, pygit2.Commit) or str(obj.id) != rev:
            problems.append(f"commit {rev} is not in the repository")
            continue
        try:
            _read_tree(repo, obj.tree, seen)
        except (pygit2.GitError, KeyError, ValueError) as e:
            problems.append(f"commit {rev[:12]}: its tree cannot be read back ({git_reason(e)})")
    return problems


def _read_tree(repo: pygit2.Repository, tree: Any, seen: set[str]) -> None:
    stack = [tree]
    while stack:
        t = stack.pop()
        for entry in t:
            oid = str(entry.id)
            if oid in seen or entry.filemode == pygit2.GIT_FILEMODE_COMMIT:
                continue  # a submodule's commit is not part of the repository
            seen.add(oid)
            if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                stack.append(repo[entry.id])
            else:
                repo.odb.read(entry.id)  # the raw object: hashed and compared by libgit2


def write_vendored(dest: Path, sources: Sequence[tuple[Path, Sequence[Pin]]]) -> dict[str, Any]:
    """Write the bare repository ``dest`` from the cache mirrors in ``sources`` (each with the
    commits, and their tags, to keep). Replaces ``dest`` atomically; returns ``{"commits",
    "tags", "objects"}``. GitSourceError when a mirror lacks a commit or the result does not
    read back."""
    dest = Path(dest)
    wanted = sorted({rev for _, pins in sources for rev, _ in pins})
    tags = {tag: rev for _, pins in sources for rev, tag in pins if tag}
    if (dest / "HEAD").is_file() and _holds(dest, wanted, tags):
        return {"commits": wanted, "tags": tags, "objects": 0}
    objects = 0

    def build(tmp: Path) -> None:
        nonlocal objects
        pygit2.init_repository(str(tmp), bare=True)
        refs: dict[str, Any] = {}
        for mirror, pins in sources:
            src = pygit2.Repository(str(mirror))
            try:
                revs = sorted({rev for rev, _ in pins})
                missing = [r for r in revs if not isinstance(_get(src, r), pygit2.Commit)]
                if missing:
                    raise GitSourceError(f"the cached mirror {mirror} lacks commit {missing[0]}")
                pb = pygit2.PackBuilder(src)
                walker = src.walk(revs[0])
                for r in revs[1:]:
                    walker.push(r)
                for commit in walker:
                    pb.add_recur(commit.id)
                for rev, tag in pins:
                    refs[LOCKED_REFS + rev] = pygit2.Oid(hex=rev)
                    if not tag:
                        continue
                    target: Any = pygit2.Oid(hex=rev)
                    try:
                        ref = src.lookup_reference(TAG_REFS + tag)
                        if str(ref.peel(pygit2.Commit).id) == rev and isinstance(src[ref.target], pygit2.Tag):
                            target = ref.target  # the annotated tag object, as the original has it
                            pb.add(target)
                    except (KeyError, ValueError, pygit2.GitError):
                        pass
                    refs[TAG_REFS + tag] = target
                pack_dir = tmp / "objects" / "pack"
                pack_dir.mkdir(parents=True, exist_ok=True)
                pb.write(str(pack_dir))
                objects += pb.written_objects_count
            finally:
                src.free()
        repo = pygit2.Repository(str(tmp))
        try:
            for name, oid in sorted(refs.items()):
                repo.references.create(name, oid, force=True)
            problems = verify_commits(repo, wanted)
        finally:
            repo.free()
        if problems:
            raise GitSourceError(f"the vendored repository does not read back: {problems[0]}")

    try:
        _replace_dir(dest, build)
    except pygit2.GitError as e:
        raise GitSourceError(f"cannot write the vendored repository {dest}: {git_reason(e)}") from None
    return {"commits": wanted, "tags": tags, "objects": objects}


def _holds(path: Path, commits: Sequence[str], tags: dict[str, str]) -> bool:
    """Whether the vendored repository at ``path`` already holds every commit (read back), each
    kept by its ref, and every tag where the lock has it."""
    try:
        repo = pygit2.Repository(str(path))
    except (pygit2.GitError, KeyError, OSError):
        return False
    try:
        for name, rev in [*((TAG_REFS + t, r) for t, r in tags.items()), *((LOCKED_REFS + c, c) for c in commits)]:
            try:
                if str(repo.lookup_reference(name).peel(pygit2.Commit).id) != rev:
                    return False
            except (KeyError, ValueError, pygit2.GitError):
                return False
        return not verify_commits(repo, commits)
    finally:
        repo.free()


def _replace_dir(dest: Path, build: Any) -> None:
    """Build a folder beside ``dest`` and put it in ``dest``'s place (the old one removed after)."""
    if not dest.exists():
        if build_dir_atomically(dest, build):
            return
    old = dest.with_name(f".{dest.name}.old.{os.getpid()}")
    tmp = dest.with_name(f".{dest.name}.new.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.rename(dest, old)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def seed_mirror(vendored: Path, mirror: Path, url: str, pins: Sequence[Pin], *,
                on_wait: Any = None) -> list[str]:
    """Bring the locked commits and tags of ``pins`` from the vendored repository into the
    cache mirror of ``url`` at ``mirror`` (made when missing). Returns the problems left, one
    line per commit (empty: each commit that was missing is there now, read back by id, tree
    and blobs). Raises GitSourceError when the vendored repository cannot be read."""
    revs = sorted({rev for rev, _ in pins})
    with locked_entry(mirror, on_wait=on_wait, what=f"adding the vendored copy of {url}"):
        if not (mirror / "HEAD").is_file():
            def init(tmp: Path) -> None:
                repo = pygit2.init_repository(str(tmp), bare=True)
                repo.remotes.create("origin", url)
                repo.config["remote.origin.tagopt"] = "--no-tags"  # as clone_bare sets it
                repo.free()

            build_dir_atomically(mirror, init)
        remove_stale_git_locks(mirror)
        repo = pygit2.Repository(str(mirror))
        try:
            missing = [r for r in revs if not isinstance(_get(repo, r), pygit2.Commit)]
            absent_tags = [t for _, t in pins if t and TAG_REFS + t not in repo.references]
            if not missing and not absent_tags:
                return []
            try:
                remote = repo.remotes.create_anonymous(str(vendored))
                remote.fetch([f"+{TAG_REFS}*:{SEEDED_REFS}tags/*", f"+{LOCKED_REFS}*:{SEEDED_REFS}locked/*"])
            except pygit2.GitError as e:
                raise GitSourceError(f"cannot read the vendored repository {vendored}: {git_reason(e)}") from None
            for rev, tag in pins:
                if not tag or TAG_REFS + tag in repo.references:
                    continue
                seeded = repo.references.get(f"{SEEDED_REFS}tags/{tag}")
                if seeded is not None:
                    repo.references.create(TAG_REFS + tag, seeded.target)
            return verify_commits(repo, missing)
        finally:
            repo.free()
