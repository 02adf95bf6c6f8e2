"""Git-native components: versions are the tags of a git repository.

A dependency ``mytool = { git = "https://…/mytool.git", version = ">=0.3" }`` needs no
index. :class:`GitComponentSource` keeps a bare mirror of the repository under
``<cache>/git/<key>`` and reads it without a checkout:

- every tag that is a version (``v1.2.0`` or ``1.2.0``; not ``latest``) is a candidate,
  annotated and lightweight tags alike, peeled to its commit;
- a version's metadata is the ``ckpm.toml`` blob at that commit (in ``subdir`` if given),
  turned into an index entry by :func:`ckpm.model.manifest.parse_component_manifest`;
- ``version`` is the tag's (minus a leading ``v``); ``source`` pins the commit;
- ``cksum`` is ``"sha256:" + sha256("git-tree:" + <hex id of the published tree>)``, where
  the published tree is the commit's root tree, or the tree at ``subdir``. Git tree ids
  already hash the content, so this names the exact content without reading it.

Parsed manifests are cached on disk under ``<cache>/git-meta/``, one JSON file per
(commit, subdir): keyed by content, never by name or version, because tags move.

Tags are fetched (forced, pruned) once per process per mirror on first use, so a lock
sees new and moved tags; :meth:`GitComponentSource.refresh` fetches again on demand.
``offline=True`` never clones or fetches.

A fetch moves and prunes refs but never deletes objects (libgit2 does not gc), so the
commit a lock pinned stays readable after its tag moved: :meth:`GitComponentSource.entry_at_commit`.

Clones and fetches are bounded (:mod:`ckpm.index.transfer`) and hold the mirror's file lock
(``<cache>/git/<key>.lock``); warnings go to the ``reporter`` (which keeps them, once each), and
clones and fetches are wrapped in ``reporter.progress("cloning <url>")`` / ``"fetching <url>"``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pygit2
from pygit2.enums import ObjectType

from ckpm.errors import GitSourceError, ManifestError
from ckpm.fsutil import atomic_write
from ckpm.index.cache import cache_key, cache_root
from ckpm.index.git import TIMEOUT_HINT, BareMirror, MirrorFetchFailed, strip_git_plus
from ckpm.index.transfer import GIT_LIMITS, Limits
from ckpm.model.entry import IndexDataError, IndexEntry, check_entry
from ckpm.model.manifest import parse_component_manifest
from ckpm.model.version import Version, try_version
from ckpm.report import Reporter

MANIFEST = "ckpm.toml"
TAG_PREFIX = "refs/tags/"
REFRESH_REFSPECS = ["+refs/tags/*:refs/tags/*", "+refs/heads/*:refs/remotes/origin/*"]
META_SCHEMA = 1
#: folders nested in an exported tree (the unpacker's MAX_DEPTH: deeper trees are refused, not walked)
MAX_EXPORT_DEPTH = 128
_LEADING_V = re.compile(r"^[vV](?=\d)")

def _escapes(path: PurePosixPath) -> bool:
    """Whether a relative path climbs above its root (``a/../../x``) when read left to right."""
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


# mirrors fetched by this process (a lock must see new tags, but once is enough)


@dataclass(frozen=True)
class TaggedVersion:
    """A tag that names a version, and the commit it points to (peeled)."""

    tag: str
    version: Version
    commit: str


def tag_version(tag: str) -> Version | None:
    """The version a tag names (``v1.2.0`` → 1.2.0), or None (``latest``)."""
    return try_version(_LEADING_V.sub("", tag))


def tree_cksum(tree_hex: str) -> str:
    """The ``cksum`` of a published git tree: ``sha256:`` + sha256 of ``"git-tree:" + tree_hex``."""
    return "sha256:" + hashlib.sha256(("git-tree:" + tree_hex).encode("ascii")).hexdigest()


def _norm_subdir(subdir: str | None) -> str | None:
    if not subdir:
        return None
    p = PurePosixPath(subdir.replace("\\", "/").strip("/"))
    if p.is_absolute() or ".." in p.parts:
        raise GitSourceError(f"subdir {subdir!r} must be a relative path inside the repository")
    s = p.as_posix()
    return None if s in ("", ".") else s


class GitComponentSource:
    """The versions of one component published as tags of a git repository.

    ``reporter`` receives every warning (kept there, once each), notes and progress;
    ``deadline`` (a ``time.monotonic()`` value, also settable as an attribute) bounds every
    clone and fetch of the command; ``limits`` sets the per-transfer timeout and low-speed limit.
    """

    def __init__(self, url: str, *, subdir: str | None = None, cache_dir: Path | None = None,
                 offline: bool = False, reporter: Reporter | None = None, deadline: float | None = None,
                 limits: Limits = GIT_LIMITS) -> None:
        self.url = strip_git_plus(url)
        self.subdir = _norm_subdir(subdir)
        self.offline = offline
        self.reporter = reporter if reporter is not None else Reporter()
        root = cache_root(cache_dir)
        self.path = root / "git" / cache_key(self.url)
        self.meta_dir = root / "git-meta"
        self.mirror = BareMirror(
            self.url, self.path, reporter=self.reporter, offline=offline,
            deadline=deadline, limits=limits, error=GitSourceError, label=self.url, what="", noun="mirror",
            clone_hint="check the git URL (a local repository is written file:///path/to/repo.git), "
                       "your network and credentials",
            offline_message="not in the cache, and ckpm is offline",
            offline_hint="run once with network access so that the repository is mirrored")
        self._versions: list[TaggedVersion] | None = None
        self._entries: list[IndexEntry] | None = None
        self._at: dict[tuple[str, str], IndexEntry] = {}
        self._refreshed = False
        self._fetch_failed: str | None = None  # why the last fetch of this instance failed

    @property
    def deadline(self) -> float | None:
        """Bounds every clone and fetch of the command (a ``time.monotonic()`` value)."""
        return self.mirror.deadline

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        self.mirror.deadline = value

    @property
    def manifest_path(self) -> str:
        """Where ``ckpm.toml`` lives in the repository (``ckpm.toml`` or ``<subdir>/ckpm.toml``)."""
        return f"{self.subdir}/{MANIFEST}" if self.subdir else MANIFEST

    # -- network --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Fetch tags (forced, pruned) and branches now; clones first if needed.

        Offline, this is an error. A failed fetch with a cached mirror is a warning: the
        cached tags are used.
        """
        if self.offline:
            raise GitSourceError(f"cannot fetch {self.url} while offline", hint="run again without --offline")
        self._open()
        try:
            self.mirror.fetch(list(REFRESH_REFSPECS))
            self._fetch_failed = None
        except MirrorFetchFailed as e:
            self._fetch_failed = e.reason
            self._warn(f"cannot fetch {self.url} ({e.reason}); using the tags cached on {self.path}")
        self._refreshed = True
        self._versions = None
        self._entries = None
        self._at.clear()

    # -- export ---------------------------------------------------------------------------

    def export(self, commit: str, dest: Path, *, max_bytes: int = 8 << 30, max_files: int = 200_000) -> int:
        """Write the tree of ``commit`` (at ``subdir`` when set) into the new folder ``dest``
        (no checkout, no hooks, no filters, no submodules); returns the tree entries read.

        The commit is content-addressed, so nothing else needs checking. Names are checked
        (no ``..``, no ``/``, no ``.git``); a symbolic link is kept only when its target is
        relative and stays inside ``dest``; submodules are left out with a warning. Fetches
        once when the commit is not in the mirror (and ckpm is not offline).
        """
        repo = self._open()
        obj = repo.get(commit) if re.fullmatch(r"[0-9a-f]{40}", commit) else None
        if not isinstance(obj, pygit2.Commit) and not self.offline:
            self.refresh()
            repo = self._open()
            obj = repo.get(commit)
        if not isinstance(obj, pygit2.Commit):
            raise GitSourceError(f"{self.url}: commit {commit} is not in the repository"
                                 + (" (offline: only the cached mirror was read)" if self.offline else ""))
        tree: Any = obj.tree
        if self.subdir:
            try:
                tree = obj.tree[self.subdir]
            except KeyError:
                raise GitSourceError(f"{self.url}: commit {commit[:12]} has no folder {self.subdir}") from None
            if tree.type != ObjectType.TREE:
                raise GitSourceError(f"{self.url}: {self.subdir} at commit {commit[:12]} is not a folder")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=False)
        budget = {"bytes": max_bytes, "files": max_files}
        self._write_tree(repo, tree, dest, PurePosixPath(), budget)
        return max_files - budget["files"]

    def _write_tree(self, repo: pygit2.Repository, top: Any, root: Path, top_rel: PurePosixPath,
                    budget: dict[str, int]) -> None:
        """Write ``top`` under ``root``: an explicit stack of folders (no recursion), at most
        :data:`MAX_EXPORT_DEPTH` deep (as the unpacker's cap)."""
        stack: list[tuple[Any, PurePosixPath]] = [(top, top_rel)]
        while stack:
            tree, rel = stack.pop()
            self._write_folder(repo, tree, root, rel, budget, stack)

    def _write_folder(self, repo: pygit2.Repository, tree: Any, root: Path, rel: PurePosixPath,
                      budget: dict[str, int], stack: list[tuple[Any, PurePosixPath]]) -> None:
        for entry in tree:
            name = entry.name
            if name in ("", ".", "..", ".git") or "/" in name or "\\" in name or "\0" in name:
                raise GitSourceError(f"{self.url}: refused a tree entry named {name!r} at {rel or '.'}")
            path = rel / name
            budget["files"] -= 1
            if budget["files"] < 0:
                raise GitSourceError(f"{self.url}: more files than the export allows")
            mode = entry.filemode
            if mode == pygit2.GIT_FILEMODE_TREE:
                if len(path.parts) > MAX_EXPORT_DEPTH:
                    raise GitSourceError(f"{self.url}: {str(path)[:200]}… is nested more than "
                                         f"{MAX_EXPORT_DEPTH} folders deep; not exported")
                (root / path).mkdir()
                stack.append((repo[entry.id], path))
            elif mode == pygit2.GIT_FILEMODE_LINK:
                link: Any = repo[entry.id]
                target = link.data.decode("utf-8", "replace")
                if not target or target.startswith("/") or "\0" in target or _escapes(PurePosixPath(path.parent, target)):
                    self._warn(f"{self.url}: link {path} -> {target} leads outside the tree; left out")
                    continue
                (root / path).symlink_to(target)
            elif mode in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
                blob: Any = repo[entry.id]
                budget["bytes"] -= blob.size
                if budget["bytes"] < 0:
                    raise GitSourceError(f"{self.url}: the tree is larger than the export allows")
                with open(root / path, "xb") as f:
                    f.write(blob.data)
                if mode == pygit2.GIT_FILEMODE_BLOB_EXECUTABLE:
                    (root / path).chmod(0o755)
            else:  # a submodule (a commit in the tree): not fetched
                self._warn(f"{self.url}: submodule {path} is not exported")

    # -- reads ----------------------------------------------------------------------------

    def versions(self) -> list[TaggedVersion]:
        """Every tag that names a version and has a manifest, oldest version first.

        Tags that are not versions are ignored silently; a version tag on a commit without
        ``ckpm.toml`` is skipped with a warning. When two tags name the same version
        (``v1.2.0`` and ``1.2.0``), the ``v`` one wins.
        """
        if self._versions is None:
            repo = self._ready()
            found: dict[Version, TaggedVersion] = {}
            for ref in sorted(r for r in repo.references if r.startswith(TAG_PREFIX)):
                tag = ref[len(TAG_PREFIX):]
                v = tag_version(tag)
                if v is None:
                    continue
                commit = self._peel(repo, ref)
                if commit is None:
                    self._warn(f"{self.url}: tag {tag} does not point to a commit; ignored")
                    continue
                if self._manifest_blob(repo, commit) is None:
                    self._warn(f"{self.url}: tag {tag} has no {self.manifest_path}; ignored")
                    continue
                tv = TaggedVersion(tag=tag, version=Version(_LEADING_V.sub("", tag)), commit=str(commit.id))
                old = found.get(v)
                if old is not None:
                    keep, drop = (tv, old) if tag.startswith(("v", "V")) else (old, tv)
                    if keep.commit != drop.commit:
                        self._warn(f"{self.url}: tags {keep.tag} and {drop.tag} name the same version "
                                   f"on different commits; using {keep.tag}")
                    tv = keep
                found[v] = tv
            self._versions = sorted(found.values(), key=lambda t: (t.version, t.tag))
        return self._versions

    def entry_at(self, tv: TaggedVersion) -> IndexEntry:
        """The index entry of one tagged version, read from ``ckpm.toml`` at its commit.

        Costs one blob read and one TOML parse the first time a commit is seen on this
        machine; afterwards one small JSON file. Raises GitSourceError when the commit has
        no manifest and ManifestError when it is invalid.
        """
        key = (tv.tag, tv.commit)
        hit = self._at.get(key)
        if hit is not None:
            return hit
        meta = self._meta(tv)
        manifest = meta.get("manifest")
        if manifest is None:
            raise GitSourceError(f"{self.url}: tag {tv.tag} ({tv.commit[:12]}) has no {self.manifest_path}",
                                 hint="a git-native component keeps ckpm.toml with a [component] table at each tag")
        origin = f"{self.url}@{tv.tag}:{self.manifest_path}"
        if not isinstance(manifest, dict):
            raise ManifestError(origin, "the cached manifest is not a table",
                                hint=f"delete {self._meta_file(tv.commit)}; it is read again from the tag")
        d: dict[str, Any] = dict(manifest)
        mv = d.get("version")
        if mv is not None and try_version(str(mv)) != tv.version:
            self._warn(f"{self.url}: tag {tv.tag} says version {tv.version.text} but its {self.manifest_path} "
                       f"says {mv}; the tag wins")
        d["version"] = tv.version.text
        source: dict[str, Any] = {"git": self.url, "rev": tv.commit, "tag": tv.tag}
        if self.subdir:
            source["subdir"] = self.subdir
        d["source"] = source
        d["cksum"] = tree_cksum(str(meta["tree"]))
        d.setdefault("yanked", False)
        try:  # what an index line is held to: types, sizes, names (a cached copy included)
            entry = check_entry(d, name=None)
        except IndexDataError as e:
            raise ManifestError(origin, f"as an index line: {e}") from None
        self._at[key] = entry
        return entry

    def entries(self) -> list[IndexEntry]:
        """Entries of every version, oldest first; a version whose manifest is invalid is
        skipped with a warning (an old broken tag must not hide the good ones)."""
        if self._entries is None:
            out = []
            for tv in self.versions():
                try:
                    out.append(self.entry_at(tv))
                except (ManifestError, GitSourceError) as e:
                    self._warn(f"{self.url}: tag {tv.tag} skipped: {e.message}")
            self._entries = out
        return self._entries

    def find(self, version: str) -> TaggedVersion | None:
        """The tagged version equal to ``version`` (``1.2``, ``v1.2.0``…), or None."""
        want = tag_version(version)
        if want is None:
            return None
        return next((tv for tv in self.versions() if tv.version == want), None)

    def entry_at_commit(self, tag: str, commit: str) -> IndexEntry | None:
        """The entry of ``tag`` as it was at ``commit`` (a full hex id), even if the tag moved since.

        For a lock that pinned ``commit``: the manifest is read from that commit (the parsed
        copy in ``git-meta/``, else the object in the mirror). None when ``tag`` names no
        version or the commit is in neither. Raises like :meth:`entry_at` when the commit
        has no manifest or an invalid one.
        """
        v = tag_version(tag)
        if v is None:
            return None
        tv = TaggedVersion(tag=tag, version=Version(_LEADING_V.sub("", tag)), commit=commit)
        if (tag, commit) not in self._at and self._cached_meta(tv) is None:
            repo = self._ready()
            try:
                obj = repo.get(commit)
            except (ValueError, pygit2.GitError):
                obj = None
            if not isinstance(obj, pygit2.Commit):
                return None
        return self.entry_at(tv)

    def commit_of(self, tag: str) -> str | None:
        """The commit ``tag`` points to now at the remote (after the refresh), or None if it is gone.

        Compare with a lock's ``rev`` to detect a tag that moved after locking. When that
        cannot be known, raises GitSourceError: offline (no fetch), or the fetch of this
        instance failed (the server is unreachable, too slow, …). :meth:`cached_commit_of`
        answers from the mirror as it is.
        """
        if self.offline:
            cached = self.cached_commit_of(tag)
            raise GitSourceError(
                f"{self.url}: ckpm is offline, so where tag {tag} points now is unknown "
                f"(the cached mirror says {cached[:12] if cached else 'nowhere'})",
                hint="run again without --offline to check the remote")
        repo = self._ready()
        if self._fetch_failed is not None:
            raise GitSourceError(f"cannot fetch {self.url} ({self._fetch_failed}), so where tag {tag} points now "
                                 "is unknown", hint=TIMEOUT_HINT)
        c = self._peel(repo, TAG_PREFIX + tag)
        return str(c.id) if c is not None else None

    def cached_commit_of(self, tag: str) -> str | None:
        """The commit ``tag`` points to in the mirror as it is (no fetch, never raises for the
        network), or None if the tag (or the mirror) is not there."""
        if not self.mirror.cached():
            return None
        try:
            repo = self._open()
        except GitSourceError:
            return None
        c = self._peel(repo, TAG_PREFIX + tag)
        return str(c.id) if c is not None else None

    # -- internals ------------------------------------------------------------------------

    def _warn(self, msg: str) -> None:
        self.reporter.warning(msg)

    def _open(self) -> pygit2.Repository:
        return self.mirror.open()

    def _ready(self) -> pygit2.Repository:
        """The mirror, fetched once per instance (one per command; unless offline)."""
        repo = self._open()
        if not self.offline and not self._refreshed:
            self.refresh()
        return repo

    @staticmethod
    def _peel(repo: pygit2.Repository, ref: str) -> pygit2.Commit | None:
        try:
            obj = repo.lookup_reference(ref).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return obj if isinstance(obj, pygit2.Commit) else None

    def _manifest_blob(self, repo: pygit2.Repository, commit: pygit2.Commit) -> pygit2.Blob | None:
        try:
            obj = commit.tree[self.manifest_path]
        except KeyError:
            return None
        return obj if obj.type == ObjectType.BLOB and isinstance(obj, pygit2.Blob) else None

    def _meta_file(self, commit: str) -> Path:
        if self.subdir:
            return self.meta_dir / f"{commit}-{hashlib.sha256(self.subdir.encode()).hexdigest()[:12]}.json"
        return self.meta_dir / f"{commit}.json"

    def _cached_meta(self, tv: TaggedVersion) -> dict[str, Any] | None:
        try:
            meta = json.loads(self._meta_file(tv.commit).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (isinstance(meta, dict) and meta.get("schema") == META_SCHEMA and meta.get("commit") == tv.commit
                and meta.get("subdir") == self.subdir):
            return meta
        return None

    def _meta(self, tv: TaggedVersion) -> dict[str, Any]:
        """The parsed manifest and published tree of a commit: disk cache, else the blob."""
        p = self._meta_file(tv.commit)
        cached = self._cached_meta(tv)
        if cached is not None:
            return cached
        repo = self._ready()
        commit = repo.get(tv.commit)
        if not isinstance(commit, pygit2.Commit):
            raise GitSourceError(f"{self.url}: commit {tv.commit} of tag {tv.tag} is not in the mirror",
                                 hint=f"delete {self.path}; it is cloned again on next use")
        tree: Any = commit.tree
        if self.subdir:
            try:
                tree = commit.tree[self.subdir]
            except KeyError:
                tree = None
        blob = self._manifest_blob(repo, commit)
        manifest = None
        if blob is not None and tree is not None and tree.type == ObjectType.TREE:
            origin = f"{self.url}@{tv.tag}:{self.manifest_path}"
            try:
                text = blob.data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ManifestError(origin, f"not UTF-8 text ({e.reason})") from None
            manifest = parse_component_manifest(text, origin)
        meta = {
            "schema": META_SCHEMA,
            "commit": tv.commit,
            "subdir": self.subdir,
            "tree": str(tree.id) if manifest is not None else None,
            "manifest": manifest,
        }
        try:
            atomic_write(p, json.dumps(meta, sort_keys=True, separators=(",", ":")) + "\n")
        except OSError as e:  # a read-only cache only costs speed
            self._warn(f"cannot write the manifest cache {p}: {e}")
        return meta
