"""An index kept in a git repository (``git+file:///…/index.git``, ``git+https://…``).

The repository is cloned once, bare, into ``<cache>/index-git/<key>`` and read as blobs
from the tree of its default branch (``origin/HEAD``, else ``main``, else ``master``):
there is no checkout. Opening an index never touches the network when a clone is cached;
:meth:`GitIndex.update` fetches (``ckpm index update``). Nothing happens until the first
read, so an index that the resolution never needs costs nothing.

With ``offline=True`` nothing is ever cloned or fetched, whatever the URL scheme: a cached
clone is used as it is, and a missing one is an error.

Clones and fetches are bounded in time, speed and size (:mod:`ckpm.index.transfer`: over
the network they run in a child process that is killed at the deadline or on Ctrl-C), and
hold a file lock on the cache entry (``<cache>/index-git/<key>.lock``), so concurrent ckpm
processes take turns; one that waits says so through the reporter. A clone is built in a
temporary folder and renamed into place, so an interrupted one leaves nothing behind.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

import pygit2
from pygit2.enums import ObjectType

from ckpm.errors import CkpmError, IndexReadError
from ckpm.fsutil import LockTimeout, build_dir_atomically, file_lock
from ckpm.index.base import FileIndex, layout_names, limit_of, size_error
from ckpm.index.cache import cache_key, cache_root
from ckpm.index.layout import CONFIG, entry_path
from ckpm.index.parsed_cache import cache_dir as parsed_cache_dir
from ckpm.index.summary_cache import cache_path as summary_cache_path
from ckpm.index.transfer import (GIT_LIMITS, GitTransferError, Limits, TransferError, TransferTimeout, git_clone,
                                 git_fetch, git_reason, remove_stale_git_locks, time_left)
from ckpm.report import Reporter

BRANCH_REFS = ("refs/remotes/origin/HEAD", "refs/remotes/origin/main", "refs/remotes/origin/master",
               "HEAD", "refs/heads/main", "refs/heads/master")
HEADS_REFSPEC = "+refs/heads/*:refs/remotes/origin/*"


def strip_git_plus(url: str) -> str:
    """``git+https://x`` → ``https://x`` (other URLs unchanged)."""
    return url[4:] if url.startswith("git+") else url


def entry_lock(path: Path) -> Path:
    """The file lock of a cache entry (a clone or a mirror): ``<path>.lock`` beside it."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def locked_entry(path: Path, *, on_wait: Callable[[str], None] | None, what: str,
                 limits: Limits = GIT_LIMITS, deadline: float | None = None) -> Iterator[None]:
    """Hold the lock of the cache entry at ``path`` (waiting at most until the deadline).

    Raises :class:`~ckpm.index.transfer.TransferTimeout` when the deadline passes while waiting.
    """
    wait = None if deadline is None else max(0.0, time_left(limits.timeout, deadline))
    try:
        with file_lock(entry_lock(path), on_wait=on_wait, what=what, timeout=wait):
            yield
    except LockTimeout:
        raise TransferTimeout("another ckpm process held the cache entry past the time limit") from None


def clone_bare(remote_url: str, dest: Path, *, limits: Limits = GIT_LIMITS, deadline: float | None = None,
               on_wait: Callable[[str], None] | None = None) -> bool:
    """Clone ``remote_url`` bare into ``dest`` atomically; False if another process made it first.

    Holds ``dest``'s lock while cloning. Raises :class:`~ckpm.index.transfer.GitTransferError`
    when the URL cannot be cloned, and
    :class:`~ckpm.index.transfer.TransferError` when a bound stops the clone. Automatic tag
    following is switched off in the clone (``tagopt = --no-tags``) so that explicit, forced
    tag refspecs are the only thing that writes tags (libgit2 otherwise keeps a moved tag).
    """

    def build(tmp: Path) -> None:
        git_clone(remote_url, tmp, limits=limits, deadline=deadline)

    with locked_entry(dest, on_wait=on_wait, what=f"cloning {remote_url}", limits=limits, deadline=deadline):
        if (dest / "HEAD").is_file():
            return False
        return build_dir_atomically(dest, build)


def fetch_mirror(remote_url: str, path: Path, refspecs: list[str], *, limits: Limits = GIT_LIMITS,
                 deadline: float | None = None, on_wait: Callable[[str], None] | None = None) -> None:
    """Fetch ``refspecs`` (forced, pruned) into the bare clone at ``path``, holding its lock.

    Lock files that a killed git process left in the clone are removed first (under our
    lock no other ckpm process writes it). Errors as :func:`clone_bare`.
    """
    with locked_entry(path, on_wait=on_wait, what=f"fetching {remote_url}", limits=limits, deadline=deadline):
        remove_stale_git_locks(path)
        try:
            git_fetch(remote_url, path, refspecs, limits=limits, deadline=deadline)
        except BaseException:
            remove_stale_git_locks(path)
            raise


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


TIMEOUT_HINT = ("the server did not answer in time or sent too little; check the URL and your network, "
                "or allow more time with --timeout")


class MirrorFetchFailed(Exception):
    """A fetch into a :class:`BareMirror` failed; the mirror is as it was. ``bound``: a limit
    (time, speed, size) stopped it, rather than the remote or git."""

    def __init__(self, reason: str, *, bound: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bound = bound


class BareMirror:
    """A bare clone of a remote in the cache, opened without a checkout: cloned when first
    needed (into a temporary folder renamed into place), fetched on demand, under the cache
    entry's file lock (git lock files a killed process left are removed first).

    The one open-or-clone of :class:`GitIndex` (``<cache>/index-git/<key>``) and
    :class:`~ckpm.index.gitsource.GitComponentSource` (``<cache>/git/<key>``). The owner
    words the errors: ``error`` is raised naming ``label`` (the URL as the user wrote it);
    ``what`` is put before the URL of a failed clone (``"index "``); ``noun`` names the
    cached copy in the message for a damaged one (``clone``, ``mirror``). ``deadline`` (a
    ``time.monotonic()`` value) and ``limits`` bound each clone and fetch.
    """

    def __init__(self, remote_url: str, path: Path, *, reporter: Reporter, offline: bool, deadline: float | None,
                 limits: Limits, error: type[CkpmError], label: str, what: str, noun: str, clone_hint: str,
                 offline_message: str, offline_hint: str) -> None:
        self.remote_url = remote_url
        self.path = path
        self.reporter = reporter
        self.offline = offline
        self.deadline = deadline
        self.limits = limits
        self.error = error
        self.label = label
        self.what = what
        self.noun = noun
        self.clone_hint = clone_hint
        self.offline_message = offline_message
        self.offline_hint = offline_hint
        self._repo: pygit2.Repository | None = None

    def cached(self) -> bool:
        """Whether the clone is in the cache (or already open)."""
        return self._repo is not None or (self.path / "HEAD").is_file()

    def open(self) -> pygit2.Repository:
        """The repository, cloned first when it is not cached (offline: ``error`` instead)."""
        if self._repo is None:
            if not (self.path / "HEAD").is_file():
                if self.offline:
                    raise self.error(f"{self.label}: {self.offline_message}", hint=self.offline_hint)
                self._clone()
            try:
                self._repo = pygit2.Repository(str(self.path))
            except pygit2.GitError as e:
                raise self.error(f"{self.label}: the cached {self.noun} at {self.path} is damaged ({git_reason(e)})",
                                 hint=f"delete {self.path}; it is cloned again on next use") from None
        return self._repo

    def fetch(self, refspecs: list[str]) -> None:
        """Fetch ``refspecs`` (forced, pruned) under ``fetching <url>``; raises
        :class:`MirrorFetchFailed`. The repository is opened afresh on next use (the fetch wrote
        it from outside this object)."""
        try:
            with self.reporter.progress(f"fetching {self.remote_url}"):
                fetch_mirror(self.remote_url, self.path, refspecs, limits=self.limits, deadline=self.deadline,
                             on_wait=self.reporter.note)
        except TransferError as e:
            raise MirrorFetchFailed(e.reason, bound=True) from None
        except (GitTransferError, pygit2.GitError) as e:
            raise MirrorFetchFailed(git_reason(e), bound=False) from None
        finally:
            self._repo = None

    def _clone(self) -> None:
        """:func:`clone_bare` under ``cloning <url>``; a failure is ``error`` naming the URL and why."""
        url = self.remote_url
        try:
            with self.reporter.progress(f"cloning {url}"):
                clone_bare(url, self.path, limits=self.limits, deadline=self.deadline, on_wait=self.reporter.note)
        except TransferError as e:
            raise self.error(f"cannot clone {self.what}{url}: {e.reason}", hint=TIMEOUT_HINT) from None
        except (GitTransferError, pygit2.GitError) as e:
            raise self.error(f"cannot clone {self.what}{url}: {git_reason(e)}", hint=self.clone_hint) from None


class GitIndex(FileIndex):
    """Reads component files as blobs of a cached bare clone; memoises what it read.

    ``reporter`` receives warnings, notes (waiting for another process) and progress
    (``cloning <url>``, ``fetching <url>``); ``deadline`` (a ``time.monotonic()`` value, also
    settable as an attribute) bounds every clone and fetch of the command; ``limits`` sets the
    per-transfer timeout and low-speed limit.
    """

    def __init__(self, url: str, *, name: str | None = None, cache_dir: Path | None = None,
                 offline: bool = False, reporter: Reporter | None = None, deadline: float | None = None,
                 limits: Limits = GIT_LIMITS) -> None:
        super().__init__(name, reporter=reporter)
        self.url = url
        self.remote_url = strip_git_plus(url)
        self.offline = offline
        self.path = cache_root(cache_dir) / "index-git" / cache_key(url)
        self.summary_cache = (summary_cache_path(cache_root(cache_dir), url), url)
        self.parsed_cache = parsed_cache_dir(cache_root(cache_dir), url)
        self.mirror = BareMirror(
            self.remote_url, self.path, reporter=self.reporter,
            offline=offline, deadline=deadline, limits=limits, error=IndexReadError, label=url, what="index ",
            noun="clone", clone_hint="check the URL (a local repository is written git+file:///path/to/index.git), "
                                     "your network and credentials",
            offline_message="no cached copy of this index, and ckpm is offline",
            offline_hint="run `ckpm index update` once with network access")
        self._commit: pygit2.Commit | None = None

    @property
    def deadline(self) -> float | None:
        """Bounds every clone and fetch of the command (a ``time.monotonic()`` value)."""
        return self.mirror.deadline

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        self.mirror.deadline = value

    def revision(self) -> str:
        """The hex id of the commit being read (the fetched default branch)."""
        return str(self._head().id)

    def all_names(self) -> list[str]:
        """Every component that has a file at its layout path (walks the tree)."""
        return layout_names(self._blobs(self._head().tree, ""))

    # -- network --------------------------------------------------------------------------

    def update(self) -> str:
        """Fetch the remote (clone it if not cached yet); returns the new revision.

        Memoised reads are dropped, so the next read sees the fetched commit.
        """
        if self.offline:
            raise IndexReadError(f"{self.url}: cannot update the index while offline",
                              hint="run again without --offline")
        self.mirror.open()
        try:
            self.mirror.fetch([HEADS_REFSPEC])
        except MirrorFetchFailed as e:
            if e.bound:
                raise IndexReadError(f"cannot fetch index {self.remote_url}: {e.reason}; the cached copy is unchanged",
                                     hint=TIMEOUT_HINT) from None
            raise IndexReadError(
                f"cannot fetch index {self.remote_url}: {e.reason}",
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
        limit, what = limit_of(rel)
        if obj.size > limit:  # refused from the object's header, before its data is read
            raise size_error(self._where(rel), f"{obj.size:,} bytes", limit, what)
        return self._decode(obj.data, rel)

    def _content_key(self, rel: str) -> str | None:
        """The blob id of ``rel`` (its content's hash), None when the tree has no blob there."""
        try:
            obj = self._head().tree[rel]
        except KeyError:
            return None
        return str(obj.id) if obj.type == ObjectType.BLOB else None

    def _where(self, rel: str) -> str:
        return f"{self.url}#{rel}"

    def _default_name(self) -> str:
        tail = self.remote_url.rstrip("/").rsplit("/", 1)[-1]
        return tail.removesuffix(".git") or "index"

    def _not_an_index(self) -> IndexReadError:
        return IndexReadError(
            f"{self.url}: not an index (no {CONFIG} on branch {self._branch_name()})",
            hint="an index repository has config.json and one file per component; see docs/formats.md",
        )

    def _file_keys(self) -> dict[str, str]:
        """Walks the commit's tree; the key is the blob id."""
        blobs = self._blobs(self._head().tree, "")
        return {n: blobs[entry_path(n)] for n in layout_names(blobs)}

    # -- internals ------------------------------------------------------------------------

    def _open_repo(self) -> pygit2.Repository:
        return self.mirror.open()

    def _head(self) -> pygit2.Commit:
        if self._commit is None:
            commit = resolve_branch(self._open_repo())
            if commit is None:
                raise IndexReadError(f"{self.url}: the repository has no commit on HEAD, main or master",
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

    def _blobs(self, tree: pygit2.Tree, prefix: str) -> dict[str, str]:
        """path → blob id of every blob below ``tree`` (iterative: a deep tree needs no recursion)."""
        out: dict[str, str] = {}
        todo = [(tree, prefix)]
        while todo:
            t, pre = todo.pop()
            for obj in t:
                name = obj.name or ""
                if obj.type == ObjectType.TREE:
                    assert isinstance(obj, pygit2.Tree)
                    todo.append((obj, f"{pre}{name}/"))
                elif obj.type == ObjectType.BLOB:
                    out[f"{pre}{name}"] = str(obj.id)
        return out
