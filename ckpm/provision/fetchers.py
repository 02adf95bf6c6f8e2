"""One fetcher per kind of source (as spack's ``fetch_strategy.py``): each gets a locked
source's bytes onto this machine, verified, and expands them into a build's source folder.

| fetcher | source | fetch | check | expand |
| --- | --- | --- | --- | --- |
| :class:`ArchiveFetcher` | ``ArchiveSource`` (``{urls, sha256?, size?, unpacked-size?}``) | a vendored folder's copy, then the mirrors and URLs, into the download cache | the sha256 (pinned on first use when the lock has none) and size; a local file only from a local index, inside its folder | unpacked member by member within its budget (``unpacked-size``), or copied in |
| :class:`GitTreeFetcher` | ``GitSource`` (``{git, rev, tag?, subdir?}``) | the tree of the commit, exported once into ``CACHE/git-export`` | the commit is the id; a repository on this machine only from an index on this machine; a moved tag is refused | the tree copied in |
| :class:`PipFetcher` | a ``pip`` recipe and the lock's ``pip`` list | pip's own download (``pip download --require-hashes`` of the exact pins, for ``ckpm vendor``) | pip checks every hash | the build step installs into the project's environment |

The sources are typed and checked when the lock is read (``ckpm/model/recipe.py``): a fetcher
checks only what needs this machine (the files, the index the lock came from).
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ckpm.errors import BuildError, CkpmError, FetchError, UnpackError
from ckpm.fsutil import build_dir_atomically, copy_tree
from ckpm.model.lockfile import LockedPackage
from ckpm.model.recipe import FetchSource, PipDist
from ckpm.model.source import ArchiveSource, GitSource, IndexSource

if TYPE_CHECKING:
    from ckpm.provision.session import SyncSession

#: a tag the lock may name (anything else is ignored where a tag is only a hint)
TAG_RE = re.compile(r"[A-Za-z0-9._/+@-]{1,255}")


@dataclass(frozen=True)
class Fetched:
    """A source on this machine: its file (or exported tree) and the source as the lock now
    says it (with the sha256 and size learnt when this was its first download)."""

    path: Path
    source: FetchSource


class Fetcher:
    """Base of the fetchers: the sync session they serve (its settings, mirrors, deadline)."""

    def __init__(self, session: "SyncSession") -> None:
        self.session = session
        self.ws = session.ws

    def fetch(self, p: LockedPackage, src: FetchSource) -> Fetched:
        raise NotImplementedError

    def expand(self, fetched: Path, dest: Path, number: int, unpacked_size: int | None) -> None:
        """Put the ``number``-th fetched file or tree into the build's source folder ``dest``
        (the first one into ``dest`` itself, further ones into ``dest/source-N``)."""
        raise NotImplementedError


class ArchiveFetcher(Fetcher):
    """Files downloaded from URLs, verified by sha256 (trust on first use when the lock has none)."""

    def fetch(self, p: LockedPackage, src: FetchSource) -> Fetched:
        from ckpm.fetch.download import fetch_file

        assert isinstance(src, ArchiveSource)
        urls = self.checked_urls(p, src)  # index data names no local file outside its folder
        low_speed = self.session.low_speed
        got = fetch_file(self.vendored(urls) + list(urls), sha256=src.digest, size=src.size,
                         cache_dir=self.ws.settings.cache_root, mirrors=self.session.mirrors,
                         offline=self.ws.settings.offline, reporter=self.ws.reporter, label=f"{p.name} {p.version}",
                         low_speed_bytes=low_speed[0], low_speed_seconds=low_speed[1],
                         deadline=self.session.options.deadline)
        if not got.pinned:
            return Fetched(Path(got.path), src)
        pinned = src.pinned(got.sha256, got.size)
        p.map_sources(lambda s: pinned if s == src else s)
        self.session.learnt.append((p, pinned, urls[0]))
        self.ws.reporter.warning(
            f"{p.name} {p.version}: the lock gives no sha256 for {urls[0]}; pinned sha256:{got.sha256[:16]}… from "
            "this first download (trust on first use); later syncs verify it")
        return Fetched(Path(got.path), pinned)

    def checked_urls(self, p: LockedPackage, src: ArchiveSource) -> list[str]:
        """The source's URLs as :func:`ckpm.fetch.local.data_urls` lets them be fetched: a local
        file only from an index that is a local folder, inside that folder."""
        from ckpm.fetch.local import data_urls, is_local

        urls = list(src.urls)
        if not any(is_local(u) for u in urls):
            return urls
        field = "source.urls"
        for i, r in enumerate(p.install):
            for j, s in enumerate(r.sources or ()):
                if s == src:
                    field = f"install[{i}].sources[{j}].urls"
        root: Path | None = None
        index = f"git component {p.source.get('git')}" if p.source.kind == "git" else f"({p.source.kind})"
        if isinstance(p.source, IndexSource):
            from ckpm.index.folder import FolderIndex

            index = p.source.index
            try:
                found = [i for i in self.ws.indexes if i.name == p.source.index]
            except CkpmError:
                found = []
            if found and isinstance(found[0], FolderIndex):
                root = found[0].root
        return data_urls(urls, root=root, index=index, component=f"{p.name} {p.version}", field=field)

    def vendored(self, urls: Sequence[str]) -> list[str]:
        """``--mirror DIR``: where each URL's file would be in a vendored folder, tried first."""
        from ckpm.fetch.vendor import archive_relpath

        out = []
        for d in self.session.vendor_roots:
            for u in urls:
                try:
                    out.append((d / archive_relpath(u)).as_uri())
                except ValueError:
                    continue
        return out

    def expand(self, fetched: Path, dest: Path, number: int, unpacked_size: int | None) -> None:
        """An archive unpacked (a single top folder stripped) within its budget (``unpacked-size``
        replaces the default ratio); another file copied into ``dest`` (``N-<name>`` after the first)."""
        from ckpm.store.unpack import UnpackBudget, archive_kind, unpack

        if archive_kind(fetched) is not None:
            try:
                budget = UnpackBudget.for_declared(unpacked_size)
            except ValueError as e:
                raise UnpackError(f"cannot unpack {fetched.name}: {e}",
                                  hint="the lock or the index line was edited or damaged") from None
            into = dest if number == 0 else dest / f"source-{number}"
            unpack(fetched, into, budget=budget)
            _keep_private(fetched, into)
            return
        from ckpm.fsutil import current_umask

        dest.mkdir(parents=True, exist_ok=True)
        target = dest / (fetched.name if number == 0 else f"{number}-{fetched.name}")
        import shutil

        shutil.copyfile(fetched, target)
        # the umask's mode, less the read bits the cached file lacks (a private file stays private)
        os.chmod(target, 0o644 & ~current_umask() & ((fetched.stat().st_mode & 0o044) | 0o600))


class GitTreeFetcher(Fetcher):
    """The tree of a pinned commit (content-addressed by the commit), exported once into the
    cache (``CACHE/git-export/<commit>[-<subdir hash>]``)."""

    def fetch(self, p: LockedPackage, src: FetchSource) -> Fetched:
        from ckpm.errors import GitSourceError

        assert isinstance(src, GitSource)
        url, rev, subdir, tag = src.git, src.rev, src.subdir, src.tag
        self.check_url(p, url)
        name = rev + (f"-{hashlib.sha256(subdir.encode()).hexdigest()[:12]}" if subdir else "")
        done = self.ws.settings.cache_root / "git-export" / name
        if done.is_dir():
            return Fetched(done, src)
        if self.session.vendor_roots:
            from ckpm.provision.mirrors import use_vendored_git

            use_vendored_git(self.ws, {url: [(rev, tag if tag is not None and TAG_RE.fullmatch(tag) else None)]},
                             self.session.vendor_roots)

        def export(tmp: Path) -> None:
            with self.ws.reporter.progress(f"exporting {url} at {rev[:12]}"):
                gs = self.ws.git_source(url, subdir)
                gs.export(rev, tmp)
            if tag is not None and TAG_RE.fullmatch(tag):
                # the mirror was just fetched for the export: a published version whose tag
                # points elsewhere now is refused, as publish and lock refuse it
                from ckpm.errors import TagMoved

                now = gs.cached_commit_of(tag)
                if now is not None and now != rev:
                    raise TagMoved(p.name, str(p.version), tag, url, rev, now)

        try:
            build_dir_atomically(done, export)  # another process's finished export is kept
        except GitSourceError as e:
            raise FetchError(f"{p.name} {p.version}: {e.message}", hint=e.hint) from None
        return Fetched(done, src)

    def check_url(self, p: LockedPackage, url: str) -> None:
        """A git source of an index line may name a repository on this machine (``file://``, a
        path) only when the index is on this machine too (a folder, or ``git+file://``): a
        remote index must not make ckpm export a private local repository into the store. A
        git dependency that the user wrote in ckpm.toml is not index data (its source is git)."""
        from ckpm.fetch.local import LocalFileRefused, is_local

        if not isinstance(p.source, IndexSource) or not is_local(url):
            return
        found = [i for i in self.ws.indexes if i.name == p.source.index]
        where = found[0].url if found else ""
        if found and where and (is_local(where.removeprefix("git+")) or on_loopback(where)) or where == "embedded":
            return  # an index on this machine: a folder, git+file://, or served from loopback
        raise LocalFileRefused(
            f"index {p.source.index}: {p.name} {p.version}: source.git names the repository {url[:200]!r} on "
            "this machine, and the index is not on this machine",
            hint="an index that another machine serves may not name your local repositories; "
                 "to use such a repository, add it yourself: ckpm add NAME --git URL")

    def expand(self, fetched: Path, dest: Path, number: int, unpacked_size: int | None) -> None:
        """The exported tree copied (the cache's export is never built in)."""
        copy_tree(fetched, dest if number == 0 else dest / f"source-{number}", dirs_exist_ok=number == 0)


class PipFetcher:
    """Python distributions: pip fetches them itself (its cache, the index and find-links it is
    configured with, and the folders ``ckpm vendor`` wrote), checking every hash the lock gives."""

    def __init__(self, session: "SyncSession") -> None:
        self.session = session
        self.ws = session.ws

    def install_args(self, locked: Sequence[PipDist]) -> list[str]:
        """pip's options for an install: the user's ``[pip]`` settings, the vendored folders as
        ``--find-links``; ``--no-index`` when every locked file is vendored (nothing to wait for)."""
        from ckpm.fetch.vendor import PYTHON_DIR, python_hashes
        from ckpm.provision.mirrors import pip_args

        args = pip_args(self.ws)
        vendored: set[str] = set()
        for root in self.session.vendor_roots:  # the distributions `ckpm vendor` wrote
            if (root / PYTHON_DIR).is_dir():
                args += ["--find-links", str(root / PYTHON_DIR)]
                vendored |= python_hashes(root)
        if locked and "--no-index" not in args and all(d.digest in vendored for d in locked):
            args.append("--no-index")  # every file is vendored: no index to wait for (pip checks each hash)
        return args

    def download(self, dists: Sequence[tuple[str, str, list[str]]], shas: Sequence[str], into: Path) -> str | None:
        """``pip download --no-deps --require-hashes`` of exact pins into ``into``; the error, or None."""
        import sys

        from ckpm.build.process import run_command
        from ckpm.provision.mirrors import pip_args, pip_env
        from ckpm.provision.session import STATE_DIR

        ws = self.ws
        logs = ws.root / STATE_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / "vendor-pip.log"
        hashes: dict[tuple[str, str], list[str]] = {}
        for (name, version, _), sha in zip(dists, shas):
            hashes.setdefault((name, version), []).append(sha)
        reqs = into / "requirements.txt"
        reqs.write_text("".join(f"{n}=={v} " + " ".join(f"--hash=sha256:{h}" for h in hs) + "\n"
                                for (n, v), hs in sorted(hashes.items())), encoding="utf-8")
        venv_python = ws.root / STATE_DIR / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        python = str(venv_python) if venv_python.is_file() else sys.executable
        files = into / "files"
        argv = [python, "-m", "pip", "download", "--no-deps", "--no-input", "--disable-pip-version-check",
                "--dest", str(files), "--require-hashes", "-r", str(reqs), *pip_args(ws)]
        env = {**(pip_env(ws.settings) or {"PIP_CONFIG_FILE": os.devnull}), "PIP_NO_INPUT": "1",
               "PYTHONNOUSERSITE": "1", "PATH": ws.settings.environ.get("PATH", "/usr/bin:/bin")}
        try:
            with ws.reporter.progress(f"downloading {len(hashes)} python distribution(s) with pip"):
                run_command(argv, cwd=into, env=env, log=log, step="pip download", deadline=time.monotonic() + 3600)
            return None
        except BuildError as e:
            return e.message
        finally:
            if files.is_dir():
                for f in files.iterdir():
                    if f.is_file():
                        os.replace(f, into / f.name)
                files.rmdir()


def fetcher_for(session: "SyncSession", src: FetchSource) -> Fetcher:
    """The fetcher of ``src``'s kind (one of each per session)."""
    return session.fetchers[type(src)]


def expand_all(session: "SyncSession", files: Sequence[tuple[Path, FetchSource]], dest: Path) -> None:
    """The fetched sources as one source folder ``dest`` (which must not exist): the first
    expanded into it, further ones into ``source-N/`` (a plain file: copied in, named
    ``N-<name>`` after the first)."""
    for i, (f, src) in enumerate(files):
        declared = src.unpacked_size if isinstance(src, ArchiveSource) else None
        fetcher_for(session, src).expand(f, dest, i, declared)
    dest.mkdir(parents=True, exist_ok=True)


def _keep_private(archive: Path, tree: Path) -> None:
    """The read bits for group and others that ``archive`` lacks, taken from everything
    unpacked from it (a walk with a stack: no recursion, however deep the tree)."""
    lacks = 0o044 & ~archive.stat().st_mode
    if not lacks:
        return
    stack = [tree]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_symlink():
                    continue
                os.chmod(e.path, e.stat().st_mode & 0o7777 & ~lacks & ~(lacks >> 2))
                if e.is_dir():
                    stack.append(Path(e.path))
    os.chmod(tree, tree.stat().st_mode & 0o7777 & ~lacks & ~(lacks >> 2))


def on_loopback(url: str) -> bool:
    """Whether ``url`` is served from this machine (127.0.0.0/8, ``localhost``, ``[::1]``)."""
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url.removeprefix("git+")).hostname or "").lower()
    except ValueError:
        return False
    return host in ("localhost", "::1") or host.startswith("127.")
