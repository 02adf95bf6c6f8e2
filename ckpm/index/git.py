"""An index kept in a git repository (``git+file:///…/index.git``, ``git+https://…``).

The repository is cloned once, bare, into ``<cache>/index-git/<key>`` and read as blobs
from the tree of its default branch (``origin/HEAD``, else ``main``, else ``master``):
there is no checkout. Opening an index never touches the network when a clone is cached;
:meth:`GitIndex.update` fetches (``ckpm index update``). Nothing happens until the first
read, so an index that the resolution never needs costs nothing.

With ``offline=True`` nothing is ever cloned or fetched, whatever the URL scheme: a cached
clone is used as it is, and a missing one is an error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pygit2
from pygit2.enums import FetchPrune, ObjectType

from ckpm.errors import IndexError_
from ckpm.index.base import FileIndex, layout_names, summaries_from_entries
from ckpm.index.cache import build_dir_atomically, cache_key, cache_root
from ckpm.index.layout import CONFIG
from ckpm.model.entry import ComponentSummary

BRANCH_REFS = ("refs/remotes/origin/HEAD", "refs/remotes/origin/main", "refs/remotes/origin/master",
               "HEAD", "refs/heads/main", "refs/heads/master")
HEADS_REFSPEC = "+refs/heads/*:refs/remotes/origin/*"


def strip_git_plus(url: str) -> str:
    """``git+https://x`` → ``https://x`` (other URLs unchanged)."""
    return url[4:] if url.startswith("git+") else url


def clone_bare(remote_url: str, dest: Path) -> bool:
    """Clone ``remote_url`` bare into ``dest`` atomically; False if another process won the race.

    Raises pygit2.GitError when the URL cannot be cloned. Automatic tag following is
    switched off in the clone (``tagopt = --no-tags``) so that explicit, forced tag
    refspecs are the only thing that writes tags (libgit2 otherwise keeps a moved tag).
    """

    def build(tmp: Path) -> None:
        repo = pygit2.clone_repository(remote_url, str(tmp), bare=True)
        repo.config["remote.origin.tagopt"] = "--no-tags"
        repo.free()

    return build_dir_atomically(dest, build)


def git_reason(e: BaseException) -> str:
    """The useful part of a libgit2 error message."""
    msg = str(e).strip() or type(e).__name__
    return msg.rstrip(".")


def resolve_branch(repo: pygit2.Repository, candidates: tuple[str, ...] = BRANCH_REFS) -> pygit2.Commit | None:
    """The commit of the first of ``candidates`` that resolves to a commit, or None."""
    for name in candidates:
        try:
            ref = repo.lookup_reference(name).resolve()
            obj = repo[ref.target].peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError):
            continue
        return obj
    return None


class GitIndex(FileIndex):
    """Reads component files as blobs of a cached bare clone; memoises what it read."""

    def __init__(self, url: str, *, name: str | None = None, cache_dir: Path | None = None,
                 offline: bool = False) -> None:
        super().__init__(name)
        self.url = url
        self.remote_url = strip_git_plus(url)
        self.offline = offline
        self.path = cache_root(cache_dir) / "index-git" / cache_key(url)
        self._repo: pygit2.Repository | None = None
        self._commit: pygit2.Commit | None = None

    def revision(self) -> str:
        """The hex id of the commit being read (the fetched default branch)."""
        return str(self._head().id)

    def all_names(self) -> list[str]:
        """Every component that has a file at its layout path (walks the tree)."""
        return layout_names(self._walk(self._head().tree, ""))

    # -- network --------------------------------------------------------------------------

    def update(self) -> str:
        """Fetch the remote (clone it if not cached yet); returns the new revision.

        Memoised reads are dropped, so the next read sees the fetched commit.
        """
        if self.offline:
            raise IndexError_(f"{self.url}: cannot update the index while offline",
                              hint="run again without --offline")
        if self._repo is None and not self._cached():
            self._clone()
        repo = self._open_repo()
        try:
            repo.remotes["origin"].fetch([HEADS_REFSPEC], prune=FetchPrune.PRUNE)
        except (pygit2.GitError, KeyError) as e:
            raise IndexError_(
                f"cannot fetch index {self.remote_url}: {git_reason(e)}",
                hint="check the URL, your network and credentials; the cached copy is unchanged",
            ) from None
        self._commit = None
        self._forget()
        return self.revision()

    # -- FileIndex ------------------------------------------------------------------------

    def _read(self, rel: str) -> str | None:
        try:
            obj = self._head().tree[rel]
        except KeyError:
            return None
        if obj.type != ObjectType.BLOB:
            return None
        assert isinstance(obj, pygit2.Blob)
        return self._decode(obj.data, rel)

    def _where(self, rel: str) -> str:
        return f"{self.url}#{rel}"

    def _default_name(self) -> str:
        tail = self.remote_url.rstrip("/").rsplit("/", 1)[-1]
        return tail.removesuffix(".git") or "index"

    def _not_an_index(self) -> IndexError_:
        return IndexError_(
            f"{self.url}: not an index (no {CONFIG} on branch {self._branch_name()})",
            hint="an index repository has config.json and one file per component; see docs/formats.md",
        )

    def _scan_summaries(self) -> list[ComponentSummary]:
        return summaries_from_entries(self.entries(n) for n in self.all_names())

    # -- internals ------------------------------------------------------------------------

    def _cached(self) -> bool:
        return (self.path / "HEAD").is_file()

    def _clone(self) -> None:
        try:
            clone_bare(self.remote_url, self.path)
        except pygit2.GitError as e:
            raise IndexError_(
                f"cannot clone index {self.remote_url}: {git_reason(e)}",
                hint="check the URL (a local repository is written git+file:///path/to/index.git), "
                     "your network and credentials",
            ) from None

    def _open_repo(self) -> pygit2.Repository:
        if self._repo is None:
            if not self._cached():
                if self.offline:
                    raise IndexError_(
                        f"{self.url}: no cached copy of this index, and ckpm is offline",
                        hint="run `ckpm index update` once with network access",
                    )
                self._clone()
            try:
                self._repo = pygit2.Repository(str(self.path))
            except pygit2.GitError as e:
                raise IndexError_(f"{self.url}: the cached clone at {self.path} is damaged ({git_reason(e)})",
                                  hint=f"delete {self.path}; it is cloned again on next use") from None
        return self._repo

    def _head(self) -> pygit2.Commit:
        if self._commit is None:
            commit = resolve_branch(self._open_repo())
            if commit is None:
                raise IndexError_(f"{self.url}: the repository has no commit on HEAD, main or master",
                                  hint="an index repository needs at least one commit with config.json")
            self._commit = commit
        return self._commit

    def _branch_name(self) -> str:
        repo = self._open_repo()
        for name in BRANCH_REFS:
            try:
                return repo.lookup_reference(name).resolve().shorthand
            except (KeyError, ValueError, pygit2.GitError):
                continue
        return "HEAD"

    def _walk(self, tree: pygit2.Tree, prefix: str) -> Iterator[str]:
        """The paths of every blob below ``tree``."""
        for obj in tree:
            name = obj.name or ""
            if obj.type == ObjectType.TREE:
                assert isinstance(obj, pygit2.Tree)
                yield from self._walk(obj, f"{prefix}{name}/")
            elif obj.type == ObjectType.BLOB:
                yield f"{prefix}{name}"
