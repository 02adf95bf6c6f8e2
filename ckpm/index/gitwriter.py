"""Write a git index: publish a version line, yank or unyank one, one commit per change.

This is the only code that writes an index kept in git (``ckpm publish --index``, the
registry service). A change is computed from the files of the branch tip and committed on
top of it, with no checkout:

- a **local bare repository** (a path, ``file://…``, ``git+file://…``) is written directly: a
  new commit on the branch ``HEAD`` names, made under the file lock
  ``<gitdir>/ckpm-publish.lock`` so that processes and threads take turns. The branch is
  moved with libgit2's compare-and-swap (the new commit's parent must still be the tip), so a
  push from outside ckpm in between makes us re-read and retry instead of losing it.
- **anything else** (or ``direct=False``) goes through a bare clone of ours in
  ``<cache>/index-publish/<key>``: fetch, commit, push with pygit2; a rejected push (someone
  published meanwhile) is fetched, the change re-applied on the new tip, and pushed again.

Published lines are appended, never rewritten; :func:`set_yanked` rewrites only the
``yanked`` field of one line. Every line is checked as readers check it, and
``summary.jsonl`` (when the index has one) is kept current in the same commit. Nothing read
from the repository is trusted: files are read with the readers' size caps.
"""
from __future__ import annotations

import contextlib
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pygit2
from pygit2.enums import FileMode, ObjectType

from ckpm.errors import IndexReadError
from ckpm.fsutil import file_lock
from ckpm.index.base import parse_component
from ckpm.index.cache import cache_key
from ckpm.index.git import clone_bare, fetch_mirror, git_reason, strip_git_plus
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.index.transfer import GitTransferError, TransferError, is_local
from ckpm.index.writer import appended_text, summary_text_with
from ckpm.model.entry import (MAX_FILE_BYTES, MAX_SUMMARY_BYTES, IndexDataError, load_json_line, shown,
                              valid_name)
from ckpm.model.version import try_version
from ckpm.settings import Settings

PUBLISH_BRANCH = "refs/heads/ckpm-publish"  # in our clone: the commit we push
LOCK_NAME = "ckpm-publish.lock"
DEFAULT_SIGNATURE = ("ckpm", "ckpm@localhost")
MAX_CONFIG_BYTES = 64 << 10

Reader = Callable[[str], "str | None"]
Change = Callable[[Reader], "tuple[dict[str, str], str] | None"]  # None: nothing to change


@dataclass
class IndexChange:
    """What a write did: the index commit that holds it, and how many tries it took."""

    name: str
    version: str
    commit: str
    attempts: int
    yanked: bool | None = None
    changed: bool = True  # False when the index already said so (a yank of a yanked version)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "version": self.version, "commit": self.commit,
                             "attempts": self.attempts, "changed": self.changed}
        if self.yanked is not None:
            d["yanked"] = self.yanked
        return d


class AlreadyPublished(IndexReadError):
    """The version is in the index already; ``existing`` is its line there."""

    code = "already-published"

    def __init__(self, message: str, *, existing: dict[str, Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.existing = existing


class NotPublished(IndexReadError):
    """A yank or unyank of a version the index does not have."""

    code = "not-published"


# -- the changes ---------------------------------------------------------------------------


def _same_version(a: Any, b: str) -> bool:
    if not isinstance(a, str):
        return False
    if a == b:
        return True
    va, vb = try_version(a), try_version(b)
    return va is not None and vb is not None and va == vb


def _lines(text: str | None) -> list[str]:
    return [] if not text else text.split("\n")


def _find(text: str | None, version: str) -> tuple[int, dict[str, Any]] | None:
    """The position and the object of ``version``'s line in a component file's text."""
    for i, raw in enumerate(_lines(text)):
        if not raw.strip():
            continue
        try:
            d = load_json_line(raw)
        except (ValueError, IndexDataError):
            continue
        if isinstance(d, dict) and _same_version(d.get("version"), version):
            return i, d
    return None


def _require_index(read: Reader, where: str) -> None:
    if read(CONFIG) is None:
        raise IndexReadError(f"{where} is not a ckpm index: its branch has no {CONFIG}",
                          hint="an index repository holds config.json at its root (`ckpm index init`)")


def _name_version(line: Mapping[str, Any]) -> tuple[str, str]:
    name, version = line.get("name"), line.get("version")
    if not isinstance(name, str) or not valid_name(name):
        raise IndexDataError(f"name {shown(name)} is not a valid component name; nothing written")
    if not isinstance(version, str) or try_version(version) is None:
        raise IndexDataError(f"{name}: version {shown(version)} is not a version; nothing written")
    return name, version


def _with_summary(read: Reader, name: str, rel: str, text: str, where: str, settings: Settings) -> dict[str, str]:
    """The component file's new ``text``, and summary.jsonl made current when the index has one."""
    files = {rel: text}
    summary = read(SUMMARY)
    if summary is not None:
        files[SUMMARY] = summary_text_with(summary, name, text, origin=f"{where}:{SUMMARY}",
                                           reporter=settings.reporter)
    return files


def _publish_change(line: Mapping[str, Any], where: str, message: str | None, settings: Settings) -> Change:
    name, version = _name_version(line)
    rel = entry_path(name)

    def change(read: Reader) -> tuple[dict[str, str], str]:
        _require_index(read, where)
        old = read(rel)
        found = _find(old, version)
        if found is not None:
            raise AlreadyPublished(f"{name} {version} is already published in {where}", existing=found[1],
                                   hint="a published version never changes: publish a new version (a new tag)")
        text = appended_text(old, line, f"{where}:{rel}")
        return _with_summary(read, name, rel, text, where, settings), message or f"Publish {name} {version}"

    return change


def _yank_change(name: str, version: str, yanked: bool, where: str, message: str | None,
                 settings: Settings) -> Change:
    if not valid_name(name):
        raise IndexDataError(f"name {shown(name)} is not a valid component name")
    rel = entry_path(name)
    verb = "Yank" if yanked else "Unyank"

    def change(read: Reader) -> tuple[dict[str, str], str] | None:
        _require_index(read, where)
        old = read(rel)
        found = _find(old, version)
        if found is None:
            raise NotPublished(f"{where} has no version {version} of {name}" if old is not None
                               else f"{where} has no component {name}",
                               hint=f"`ckpm search {name} --index …` lists what is published")
        i, d = found
        if bool(d.get("yanked", False)) == yanked:
            return None
        d["yanked"] = yanked
        lines = _lines(old)
        lines[i] = json.dumps(d, separators=(",", ":"))
        text = "\n".join(lines)
        entries, problems = parse_component(text, f"{where}:{rel}", name)
        before, _ = parse_component(old or "", f"{where}:{rel}", name)
        if len(entries) != len(before):
            raise IndexDataError(f"{where}:{rel}: {verb.lower()}ing {version} would make a line unreadable; "
                                 "nothing written")
        return _with_summary(read, name, rel, text, where, settings), message or f"{verb} {name} {version}"

    return change


# -- trees and commits ---------------------------------------------------------------------


def _reader(repo: pygit2.Repository, commit: pygit2.Commit | None, where: str) -> Reader:
    tree = commit.tree if commit is not None else None

    def read(rel: str) -> str | None:
        if tree is None:
            return None
        try:
            obj = tree[rel]
        except KeyError:
            return None
        if obj.type != ObjectType.BLOB:
            raise IndexReadError(f"{where}:{rel} is not a file")
        limit = MAX_SUMMARY_BYTES if rel == SUMMARY else MAX_CONFIG_BYTES if rel == CONFIG else MAX_FILE_BYTES
        blob = repo[obj.id]
        assert isinstance(blob, pygit2.Blob)
        if blob.size > limit:
            raise IndexReadError(f"{where}:{rel} is {blob.size:,} bytes, over the {limit:,} bytes a reader accepts")
        try:
            return bytes(blob.data).decode("utf-8")
        except UnicodeDecodeError:
            raise IndexReadError(f"{where}:{rel} is not UTF-8 text") from None

    return read


def _write_tree(repo: pygit2.Repository, tree: pygit2.Tree | None, files: Mapping[str, str]) -> pygit2.Oid:
    """The id of ``tree`` with ``files`` (path → text) written in, nested folders made as needed."""
    tb = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    below: dict[str, dict[str, str]] = {}
    for path, text in files.items():
        head, _, rest = path.partition("/")
        if rest:
            below.setdefault(head, {})[rest] = text
        else:
            tb.insert(head, repo.create_blob(text.encode("utf-8")), FileMode.BLOB)
    for head, sub in below.items():
        subtree: pygit2.Tree | None = None
        if tree is not None:
            try:
                obj = tree[head]
            except KeyError:
                obj = None
            if obj is not None and obj.type == ObjectType.TREE:
                t = repo[obj.id]
                assert isinstance(t, pygit2.Tree)
                subtree = t
        tb.insert(head, _write_tree(repo, subtree, sub), FileMode.TREE)
    return tb.write()


def _signature(repo: pygit2.Repository, signature: tuple[str, str] | None) -> pygit2.Signature:
    if signature is not None:
        return pygit2.Signature(*signature)
    try:
        name, email = repo.config["user.name"], repo.config["user.email"]
    except (KeyError, pygit2.GitError):
        name = email = None
    if not name or not email:
        name, email = DEFAULT_SIGNATURE
    return pygit2.Signature(name, email)


def _tip(repo: pygit2.Repository, ref: str) -> pygit2.Commit | None:
    try:
        target = repo.lookup_reference(ref).resolve().target
    except (KeyError, pygit2.GitError):
        return None
    obj = repo[target].peel(pygit2.Commit)
    assert isinstance(obj, pygit2.Commit)
    return obj


def _head_branch(repo: pygit2.Repository) -> str:
    """The branch ``HEAD`` names (``refs/heads/main``), born or not."""
    try:
        head = repo.lookup_reference("HEAD")
    except (KeyError, pygit2.GitError):
        return "refs/heads/main"
    target = head.target
    return target if isinstance(target, str) else "refs/heads/main"


# -- where the index is --------------------------------------------------------------------


def _local_gitdir(index: str) -> Path | None:
    """The git folder of a local index repository, or None for a remote URL."""
    url = strip_git_plus(index)
    if url.startswith("file://"):
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    elif "://" in url or not is_local(url):
        return None
    else:
        path = url
    p = Path(path).expanduser()
    try:
        repo = pygit2.Repository(str(p))
    except (pygit2.GitError, KeyError):
        raise IndexReadError(f"no git repository at {p}",
                          hint="make one with `git init --bare` and commit config.json (`ckpm index init`)") from None
    try:
        if not repo.is_bare:
            raise IndexReadError(f"{p} is a git repository with a working tree; ckpm writes only bare index repositories",
                              hint=f"publish to a bare clone (`git clone --bare {p} index.git`) and pull from it, "
                                   "as with any repository people push to")
        return Path(repo.path)
    finally:
        repo.free()


def _publish_settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else Settings()


def _apply(index: str, change: Change, *, signature: tuple[str, str] | None, settings: Settings,
           max_attempts: int, before_push: Callable[[], None] | None,
           direct: bool | None, deadline: float | None = None) -> tuple[str, int, bool]:
    """Apply ``change`` to the index's branch; (commit, attempts, changed)."""
    gitdir = _local_gitdir(index) if direct is not False else None
    if gitdir is not None:
        return _apply_direct(gitdir, index, change, signature=signature, settings=settings,
                             max_attempts=max_attempts, before_push=before_push)
    if direct is True:
        raise IndexReadError(f"{index} is not a local repository; it can only be pushed to")
    return _apply_pushed(index, change, signature=signature, settings=settings, max_attempts=max_attempts,
                         before_push=before_push, deadline=deadline)


def _prepare(repo: pygit2.Repository, ref: str, where: str, change: Change, signature: tuple[str, str] | None
             ) -> tuple[pygit2.Commit, tuple[pygit2.Signature, pygit2.Signature, str, pygit2.Oid] | None]:
    """The tip of ``ref`` and the commit to make on it (author, committer, message, tree), or
    None when ``change`` finds nothing to change."""
    tip = _tip(repo, ref)
    if tip is None:
        raise IndexReadError(f"{where} has no commit on {ref.rsplit('/', 1)[-1]}",
                          hint="an index repository needs a first commit with config.json")
    out = change(_reader(repo, tip, where))
    if out is None:
        return tip, None
    files, message = out
    sig = _signature(repo, signature)
    return tip, (sig, sig, message + "\n", _write_tree(repo, tip.tree, files))


def _apply_direct(gitdir: Path, where: str, change: Change, *, signature: tuple[str, str] | None,
                  settings: Settings, max_attempts: int,
                  before_push: Callable[[], None] | None) -> tuple[str, int, bool]:
    with file_lock(gitdir / LOCK_NAME, on_wait=settings.reporter.note, what=f"the index {where}"):
        repo = pygit2.Repository(str(gitdir))
        try:
            branch = _head_branch(repo)
            for attempt in range(1, max_attempts + 1):
                tip, made = _prepare(repo, branch, where, change, signature)
                if made is None:
                    return str(tip.id), attempt, False
                if before_push is not None:
                    before_push()
                try:
                    # libgit2 moves the branch only if ``tip`` is still its tip (compare-and-swap)
                    oid = repo.create_commit(branch, *made, [tip.id])
                except pygit2.GitError:
                    now = _tip(repo, branch)
                    if now is not None and now.id != tip.id:
                        continue  # the branch moved under us (a push from outside ckpm): read it again
                    raise
                return str(oid), attempt, True
        finally:
            repo.free()
    raise IndexReadError(f"{where}: the branch kept moving; gave up after {max_attempts} tries",
                      hint="try again; if it keeps happening, something rewrites the index branch in a loop")


def _work_clone(index: str, settings: Settings) -> Path:
    return settings.cache_root / "index-publish" / cache_key(strip_git_plus(index))


def _open_clone(index: str, settings: Settings, deadline: float | None = None) -> pygit2.Repository:
    """Our bare clone of a remote index, fetched now (offline: refused; ``deadline``, a
    ``time.monotonic()`` value, bounds the clone and the fetch)."""
    url = strip_git_plus(index)
    if settings.offline and not is_local(url):
        raise IndexReadError(f"cannot reach the index {url} while offline", hint="run again without --offline")
    path = _work_clone(index, settings)
    try:
        if not (path / "HEAD").is_file():
            with settings.reporter.progress(f"cloning {url}"):
                clone_bare(url, path, on_wait=settings.reporter.note, deadline=deadline)
        with settings.reporter.progress(f"fetching {url}"):
            fetch_mirror(url, path, ["+refs/heads/*:refs/remotes/origin/*"], on_wait=settings.reporter.note,
                         deadline=deadline)
    except TransferError as e:
        raise IndexReadError(f"cannot reach the index {url}: {e.reason}") from None
    except (GitTransferError, pygit2.GitError) as e:
        raise IndexReadError(f"cannot reach the index {url}: {git_reason(e)}",
                          hint="check the URL and your credentials") from None
    return pygit2.Repository(str(path))


# libgit2's words for "someone else pushed first" (a non-fast-forward, a remote ref ahead of us)
# and for a ref the remote side was writing at that moment: all mean fetch and try again
_RETRY_MARKERS = ("fastforward", "fast forward", "not present locally", "failed to lock", "locked")


def _retryable_push(reason: str) -> bool:
    r = reason.lower().replace("-", "")
    return any(m in r for m in _RETRY_MARKERS)


class _PushCallbacks(pygit2.RemoteCallbacks):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.rejected: str | None = None

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejected = f"{refname}: {message}"


@contextlib.contextmanager
def _remote_side_lock(index: str, settings: Settings) -> Iterator[None]:
    """For a push to a repository on this machine: hold its write lock while pushing.

    libgit2's local transport checks for a fast-forward and then moves the remote's ref
    without a compare-and-swap, so two local pushes (or a push and a direct write) could
    lose one; under the lock that direct writers hold they take turns. A server's
    ``receive-pack`` does this itself, so remote URLs need nothing.
    """
    try:
        gitdir = _local_gitdir(index)
    except IndexReadError:
        gitdir = None
    if gitdir is None:
        yield
        return
    with file_lock(gitdir / LOCK_NAME, on_wait=settings.reporter.note, what=f"the index {index}"):
        yield


def _apply_pushed(index: str, change: Change, *, signature: tuple[str, str] | None, settings: Settings,
                  max_attempts: int, before_push: Callable[[], None] | None,
                  deadline: float | None = None) -> tuple[str, int, bool]:
    url = strip_git_plus(index)
    path = _work_clone(index, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".publish.lock"), on_wait=settings.reporter.note,
                   what=f"publishing to {url}"):
        last = ""
        for attempt in range(1, max_attempts + 1):
            repo = _open_clone(index, settings, deadline)
            try:
                branch = _head_branch(repo)
                short = branch.removeprefix("refs/heads/")
                tip, made = _prepare(repo, f"refs/remotes/origin/{short}", url, change, signature)
                if made is None:
                    return str(tip.id), attempt, False
                oid = repo.create_commit(None, *made, [tip.id])
                repo.references.create(PUBLISH_BRANCH, oid, force=True)
                if before_push is not None:
                    before_push()
                cb = _PushCallbacks()
                try:
                    with _remote_side_lock(index, settings):
                        repo.remotes["origin"].push([f"{PUBLISH_BRANCH}:{branch}"], callbacks=cb)
                except pygit2.GitError as e:
                    reason = git_reason(e)
                    if not _retryable_push(reason):
                        raise IndexReadError(f"cannot push to the index {url}: {reason}",
                                          hint="check that you may push to it") from None
                    last = reason
                    continue
                if cb.rejected:
                    last = cb.rejected
                    continue
                repo.references.create(f"refs/remotes/origin/{short}", oid, force=True)
                return str(oid), attempt, True
            finally:
                repo.free()
    raise IndexReadError(f"{url}: the push was rejected {max_attempts} times ({last}); nothing published",
                      hint="others are publishing right now; try again")


# -- the API -------------------------------------------------------------------------------


def publish_line(index: str, line: Mapping[str, Any], *, message: str | None = None,
                 signature: tuple[str, str] | None = None, settings: Settings | None = None,
                 max_attempts: int = 8, before_push: Callable[[], None] | None = None,
                 direct: bool | None = None, deadline: float | None = None) -> IndexChange:
    """Append ``line`` (one version of one component) to the git index ``index``.

    ``deadline`` (a ``time.monotonic()`` value) bounds the clone and fetches of a remote index
    (not the push); offline, a remote index is refused.

    Raises :class:`AlreadyPublished` when that version is there already,
    :class:`~ckpm.model.entry.IndexDataError` when the line is one readers would refuse, and
    :class:`~ckpm.errors.IndexReadError` when the repository cannot be written.
    """
    s = _publish_settings(settings)
    line = dict(line)
    name, version = _name_version(line)
    commit, attempts, _ = _apply(index, _publish_change(line, strip_git_plus(index), message, s),
                                 signature=signature, settings=s, max_attempts=max_attempts,
                                 before_push=before_push, direct=direct, deadline=deadline)
    return IndexChange(name, version, commit, attempts)


def set_yanked(index: str, name: str, version: str, yanked: bool, *, message: str | None = None,
               signature: tuple[str, str] | None = None, settings: Settings | None = None,
               max_attempts: int = 8, before_push: Callable[[], None] | None = None,
               direct: bool | None = None, deadline: float | None = None) -> IndexChange:
    """Mark ``name`` ``version`` yanked (or not); nothing is committed when it already is
    (``deadline`` as for :func:`publish_line`).

    Raises :class:`NotPublished` when the index has no such version.
    """
    s = _publish_settings(settings)
    commit, attempts, changed = _apply(index, _yank_change(name, version, yanked, strip_git_plus(index), message, s),
                                       signature=signature, settings=s, max_attempts=max_attempts,
                                       before_push=before_push, direct=direct, deadline=deadline)
    return IndexChange(name, version, commit, attempts, yanked=yanked, changed=changed)


def read_line(index: str, name: str, version: str, *, settings: Settings | None = None,
              deadline: float | None = None) -> dict[str, Any] | None:
    """The line of ``name`` ``version`` at the tip of the index's branch (None when absent;
    ``deadline`` as for :func:`publish_line`)."""
    if not valid_name(name):
        return None
    s = _publish_settings(settings)
    gitdir = _local_gitdir(index)
    with contextlib.ExitStack() as stack:
        if gitdir is not None:
            repo = pygit2.Repository(str(gitdir))
            stack.callback(repo.free)
            tip = _tip(repo, _head_branch(repo))
        else:
            repo = _open_clone(index, s, deadline)
            stack.callback(repo.free)
            short = _head_branch(repo).removeprefix("refs/heads/")
            tip = _tip(repo, f"refs/remotes/origin/{short}")
        found = _find(_reader(repo, tip, strip_git_plus(index))(entry_path(name)), version)
        return None if found is None else found[1]


@contextlib.contextmanager
def index_write_lock(gitdir: Path | str, settings: Settings | None = None) -> Iterator[None]:
    """Hold the lock that direct writes of the local index ``gitdir`` take (for callers that
    keep files beside the repository, such as the registry's owners, in step with it)."""
    s = _publish_settings(settings)
    with file_lock(Path(gitdir) / LOCK_NAME, on_wait=s.reporter.note, what=f"the index {gitdir}"):
        yield
