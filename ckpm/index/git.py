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

import json
from pathlib import Path
from typing import Any, Iterator

import pygit2
from pygit2.enums import FetchPrune, ObjectType

from ckpm.errors import IndexError_
from ckpm.index.base import parse_lines, parse_summary
from ckpm.index.cache import build_dir_atomically, cache_key, cache_root
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.model.entry import ComponentSummary, IndexEntry, valid_name

BRANCH_REFS = ("refs/remotes/origin/HEAD", "refs/remotes/origin/main", "refs/remotes/origin/master",
               "HEAD", "refs/heads/main", "refs/heads/master")
HEADS_REFSPEC = "+refs/heads/*:refs/remotes/origin/*"
SUPPORTED_FORMAT = 1


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


class GitIndex:
    """Reads component files as blobs of a cached bare clone; memoises what it read."""

    def __init__(self, url: str, *, name: str | None = None, cache_dir: Path | None = None,
                 offline: bool = False) -> None:
        self.url = url
        self.remote_url = strip_git_plus(url)
        self.offline = offline
        self.path = cache_root(cache_dir) / "index-git" / cache_key(url)
        self._name = name
        self._repo: pygit2.Repository | None = None
        self._commit: pygit2.Commit | None = None
        self._config: dict[str, Any] | None = None
        self._entries: dict[str, list[IndexEntry]] = {}
        self._summaries: list[ComponentSummary] | None = None

    # -- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name given to the constructor, else config.json's ``name`` (reads the index)."""
        if self._name is None:
            cfg_name = self.config.get("name")
            tail = self.remote_url.rstrip("/").rsplit("/", 1)[-1]
            self._name = str(cfg_name or tail.removesuffix(".git") or "index")
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def config(self) -> dict[str, Any]:
        """The parsed config.json of the index (an error when it has none)."""
        if self._config is None:
            data = self._blob(CONFIG)
            if data is None:
                raise IndexError_(
                    f"{self.url}: not an index (no {CONFIG} on branch {self._branch_name()})",
                    hint="an index repository has config.json and one file per component; see docs/formats.md",
                )
            try:
                cfg = json.loads(data)
            except ValueError as e:
                raise IndexError_(f"{self.url}: malformed {CONFIG} ({e})") from None
            if not isinstance(cfg, dict):
                raise IndexError_(f"{self.url}: malformed {CONFIG} (not an object)")
            fmt = cfg.get("format", SUPPORTED_FORMAT)
            if not isinstance(fmt, int) or fmt > SUPPORTED_FORMAT:
                raise IndexError_(f"{self.url}: index format {fmt!r} is newer than this ckpm reads ({SUPPORTED_FORMAT})",
                                  hint="upgrade ckpm")
            self._config = cfg
        return self._config

    def revision(self) -> str:
        """The hex id of the commit being read (the fetched default branch)."""
        return str(self._head().id)

    # -- reads ----------------------------------------------------------------------------

    def entries(self, name: str) -> list[IndexEntry]:
        """Every version of ``name`` at the current commit, oldest first; [] when unknown."""
        n = name.lower()
        hit = self._entries.get(n)
        if hit is not None:
            return hit
        out: list[IndexEntry] = []
        if valid_name(n):
            self._check_config()  # a repository that is no index fails here, not as "unknown component"
            rel = entry_path(n)
            data = self._blob(rel)
            if data:
                out = parse_lines(self._decode(data, rel), f"{self.url}#{rel}")
        self._entries[n] = out
        return out

    def summaries(self) -> list[ComponentSummary]:
        """summary.jsonl when the index has one, else one summary per component file."""
        if self._summaries is None:
            self._check_config()
            data = self._blob(SUMMARY)
            if data is not None:
                try:
                    self._summaries = parse_summary(self._decode(data, SUMMARY))
                except (ValueError, KeyError, TypeError) as e:
                    raise IndexError_(f"{self.url}#{SUMMARY}: malformed summary ({e})") from None
            else:
                out = []
                for n in self.all_names():
                    es = self.entries(n)
                    if es:
                        out.append(ComponentSummary.from_entries(es))
                self._summaries = out
        return self._summaries

    def all_names(self) -> list[str]:
        """Every component that has a file at its layout path (walks the tree)."""
        names = []
        for rel, leaf in self._walk(self._head().tree, ""):
            if valid_name(leaf) and leaf not in (CONFIG, SUMMARY):
                try:
                    if entry_path(leaf) == rel:
                        names.append(leaf)
                except ValueError:
                    continue
        return sorted(names)

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
        self._config = None
        self._entries.clear()
        self._summaries = None
        return self.revision()

    # -- internals ------------------------------------------------------------------------

    def _check_config(self) -> None:
        self.config

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

    def _blob(self, rel: str) -> bytes | None:
        try:
            obj = self._head().tree[rel]
        except KeyError:
            return None
        if obj.type != ObjectType.BLOB:
            return None
        assert isinstance(obj, pygit2.Blob)
        return obj.data

    def _decode(self, data: bytes, rel: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise IndexError_(f"{self.url}#{rel}: not UTF-8 text ({e.reason})") from None

    def _walk(self, tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, str]]:
        for obj in tree:
            name = obj.name or ""
            if obj.type == ObjectType.TREE:
                assert isinstance(obj, pygit2.Tree)
                yield from self._walk(obj, f"{prefix}{name}/")
            elif obj.type == ObjectType.BLOB:
                yield f"{prefix}{name}", name
