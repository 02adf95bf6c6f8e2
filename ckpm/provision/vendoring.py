"""``ckpm vendor``: every source a sync needs, written into a folder that works as a mirror
(laid out by ``ckpm/fetch/vendor.py``): archives through the archive fetcher (verified by
sha256), one bare git repository per git URL (the locked commits, verified by id), the python
distributions of each ``pip`` list (pip's download, verified by sha256), and the index lines
the lock's check reads offline.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ckpm.errors import CkpmError, LockError
from ckpm.fsutil import atomic_write, sha256_file
from ckpm.model.lockfile import Lock, LockedPackage
from ckpm.model.recipe import PipDist
from ckpm.model.source import ArchiveSource, GitSource, HostSource
from ckpm.provision.fetchers import TAG_RE
from ckpm.provision.mirrors import vendor_roots
from ckpm.provision.session import SyncOptions, SyncSession, needed, recipe_for, save_learnt, sources_of
from ckpm.workspace import Workspace

if TYPE_CHECKING:
    from ckpm.fetch.vendor import VendorResult
    from ckpm.index.folder import FolderIndex

_REV_RE = re.compile(r"[0-9a-f]{40}")
_SHA_RE = re.compile(r"[0-9a-f]{64}")


def vendor(ws: Workspace, lock: Lock, dest: Path, mirror_dirs: tuple[Path, ...] = (),
           targets: Sequence[str] | None = None) -> "VendorResult":
    """Write every source a sync of ``targets`` (default: every target of the lock) needs into
    ``dest``, laid out so that the folder works as a mirror (see :mod:`ckpm.fetch.vendor`):
    archives (verified by sha256), one bare git repository per git URL (the locked commits,
    verified by id), the python distributions of each ``pip`` list (verified by sha256).

    Returns a :class:`~ckpm.fetch.vendor.VendorResult`; raises
    :class:`~ckpm.fetch.vendor.VendorIncomplete` (with that result) after writing everything
    else when something cannot be vendored. ``ckpm-vendor.json`` is written last either way.
    """
    from ckpm import __version__
    from ckpm.fetch.vendor import MANIFEST, VendorIncomplete, VendorResult

    chosen = list(targets) if targets else list(lock.targets)
    for t in chosen:
        if t not in lock.targets:
            raise LockError(f"the lock has no resolution for {t} (it has {', '.join(lock.targets) or 'none'})",
                            hint=f"run `ckpm lock --target {t}` with the other targets you need")
    dest = Path(os.path.abspath(dest))
    dest.mkdir(parents=True, exist_ok=True)
    run = SyncSession(ws, lock, SyncOptions(mirror_dirs=mirror_dirs))
    res = VendorResult(dest, chosen)
    plan = _vendor_plan(lock, chosen, run.host, res)
    try:
        _vendor_archives(run, plan.archives, dest, res)
        _vendor_git(ws, plan.git, dest, res)
        _vendor_python(ws, run, plan.python, dest, res)
        _vendor_index_lines(ws, lock, dest, res)
    finally:
        save_learnt(ws, run)
    atomic_write(dest / MANIFEST, json.dumps(res.manifest(__version__), indent=1, sort_keys=True) + "\n")
    if res.problems:
        raise VendorIncomplete(res)
    return res


@dataclass
class _VendorPlan:
    archives: dict[tuple[str, ...], tuple[ArchiveSource, list[LockedPackage]]] = field(default_factory=dict)
    git: dict[str, list[tuple[LockedPackage, str, str, str | None, str | None]]] = field(default_factory=dict)
    python: list[tuple[LockedPackage, PipDist]] = field(default_factory=list)


def _vendor_plan(lock: Lock, targets: list[str], host: str, res: "VendorResult") -> _VendorPlan:
    """What a sync of ``targets`` fetches: archives by URLs, git pins by URL, python distributions."""
    plan = _VendorPlan()
    done: set[tuple[int, str]] = set()
    for target in targets:
        for p, t in needed(lock, target, host):
            if isinstance(p.source, HostSource) or (id(p), t) in done:
                continue
            done.add((id(p), t))
            label = f"{p.name} {p.version}"
            recipe = recipe_for(p, t)
            if recipe is not None and recipe.is_pip:
                if t != host:
                    continue  # sync refuses python packages for another target
                if not p.pip:
                    res.problems.append(f"{label}: the lock lists none of its python distributions yet "
                                        "(run `ckpm sync` on this host once, so that the lock records them)")
                for d in p.pip:
                    plan.python.append((p, d))
                continue
            srcs = sources_of(p, recipe) if recipe is not None else list(p.sources)
            gits = [s for s in srcs if isinstance(s, GitSource)]
            if isinstance(p.source, GitSource):  # the lock's check reads the tag from the repository
                gits.append(p.source)
            for g in gits:
                if not _REV_RE.fullmatch(g.rev):
                    res.problems.append(f"{label}: a git source in the lock has no URL or no full commit id")
                    continue
                tag = g.tag if g.tag is not None and TAG_RE.fullmatch(g.tag) else None
                plan.git.setdefault(g.git, []).append((p, g.git, g.rev, tag, g.subdir))
            for s in srcs:
                if isinstance(s, ArchiveSource):
                    plan.archives.setdefault(s.urls, (s, []))[1].append(p)
    return plan


def _vendor_archives(run: SyncSession, archives: dict[tuple[str, ...], tuple[ArchiveSource, list[LockedPackage]]],
                     dest: Path, res: "VendorResult") -> None:
    from ckpm.fetch.vendor import VendoredItem, archive_relpath

    written: dict[str, VendoredItem] = {}
    for urls, (src, pkgs) in archives.items():
        p = pkgs[0]
        rel = None
        for u in urls:
            try:
                rel = archive_relpath(u)
                break
            except ValueError:
                continue
        if rel is None:
            res.problems.append(f"{p.name} {p.version}: {urls[0]}: only http://, https:// and file:// URLs "
                                "can be vendored")
            continue
        try:
            fetched = run.fetch(p, src)
        except CkpmError as e:
            res.problems.append(f"{p.name} {p.version}: {e.message}" if p.name not in e.message else e.message)
            continue
        got = fetched.path
        sha = str(fetched.source.get("sha256") or "").removeprefix("sha256:")
        _place(got, dest / rel, sha)
        item = written.get(rel)
        if item is None:
            item = written[rel] = VendoredItem("archive", rel, urls[0], sha256=sha or None, size=got.stat().st_size)
            res.items.append(item)
        item.packages.extend(f"{q.name} {q.version}" for q in pkgs)


def _place(src: Path, target: Path, sha: str) -> None:
    """Copy the verified file ``src`` to ``target`` (atomically), unless ``target`` has its bytes already."""
    import shutil

    if target.is_file() and sha and sha256_file(target) == sha:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _vendor_index_lines(ws: Workspace, lock: Lock, dest: Path, res: "VendorResult") -> None:
    """The index lines of every locked package from an index (all of the lock's targets: the lock
    check reads each package's line), so that an offline check on another machine verifies the
    lock from them (``api.check``). The embedded index ships with ckpm and is not vendored."""
    from ckpm.fetch.vendor import VendoredIndex, index_relpath
    from ckpm.index.open import EMBEDDED
    from ckpm.index.vendored import write_lines
    from ckpm.model.source import IndexSource

    wanted: dict[str, list[LockedPackage]] = {}
    for p in sorted(lock.packages, key=lambda p: p.ident):
        if isinstance(p.source, IndexSource):
            wanted.setdefault(p.source.index, []).append(p)
    for index, pkgs in sorted(wanted.items()):
        idx = next((i for i in ws.indexes if i.name == index), None)
        if idx is None:
            res.problems.extend(f"{p.name} {p.version}: index {index} is not configured; its line cannot be "
                                "vendored" for p in pkgs)
            continue
        if idx.url == EMBEDDED:
            continue
        rel = index_relpath(index)
        try:
            try:
                source = idx
                for p in pkgs:  # the locked line is there (the lock was checked against it)
                    if idx.find_entry(p.name, p.version) is None:
                        raise CkpmError(f"{p.name} {p.version}: index {index} ({idx.url}) has no such line")
            except CkpmError:  # the index cannot be read here: the lines of a vendored folder in use, if any
                source = _vendored_lines_of(ws, index, idx.url) or idx
                if source is idx:
                    raise
            files = write_lines(dest / rel, source, [p.name for p in pkgs])
        except CkpmError as e:
            res.problems.append(f"the lines of index {index} ({idx.url}) cannot be vendored: {e.message}")
            continue
        vi = VendoredIndex(index, idx.url, rel)
        for p in pkgs:
            comp = vi.components.setdefault(p.name.lower(), {**files[p.name.lower()], "versions": [], "packages": []})
            if p.version not in comp["versions"]:
                comp["versions"].append(p.version)
            if f"{p.name} {p.version}" not in comp["packages"]:
                comp["packages"].append(f"{p.name} {p.version}")
        res.indexes.append(vi)


def _vendored_lines_of(ws: Workspace, index: str, url: str) -> "FolderIndex | None":
    """The vendored lines of index ``index`` at ``url`` in the first vendored folder this command
    uses that has them, as an index folder (read with its caps); None when none has."""
    from ckpm.fetch.vendor import vendored_index
    from ckpm.index.folder import FolderIndex

    for root in vendor_roots(ws, ws.mirror_dirs):
        folder = vendored_index(root, index, url)
        if folder is not None:
            try:
                return FolderIndex(folder, name=index, url=url)
            except CkpmError:
                continue
    return None


def _vendor_git(ws: Workspace, git: dict[str, list[tuple[LockedPackage, str, str, str | None, str | None]]],
                dest: Path, res: "VendorResult") -> None:
    """One bare repository per git URL, holding its locked commits (fetched into the cache first)."""
    from ckpm.errors import GitSourceError
    from ckpm.fetch.vendor import VendoredItem, git_relpath
    from ckpm.index.gitvendor import has_commits, write_vendored

    by_rel: dict[str, list[tuple[Path, list[tuple[str, str | None]]]]] = {}
    users: dict[str, list[str]] = {}
    urls: dict[str, str] = {}
    for url, pins in git.items():
        p = pins[0][0]
        try:
            rel = git_relpath(url)
        except ValueError as e:
            res.problems.append(f"{p.name} {p.version}: {e}")
            continue
        revs = sorted({rev for _, _, rev, _, _ in pins})
        gs = ws.git_source(url, None)
        try:
            if has_commits(gs.path, revs):
                if ws.settings.offline:
                    gs._open()  # a clear error when the repository is not cached at all
                else:
                    with ws.reporter.progress(f"fetching {url}"):
                        gs.refresh()
            lacking = has_commits(gs.path, revs)
        except GitSourceError as e:
            res.problems.append(f"{p.name} {p.version}: {e.message}")
            continue
        if lacking:
            res.problems.append(f"{p.name} {p.version}: {url} has no commit {lacking[0]}"
                                + (" in the cache (offline)" if ws.settings.offline else ""))
            continue
        by_rel.setdefault(rel, []).append((gs.path, sorted({(rev, tag) for _, _, rev, tag, _ in pins},
                                                           key=lambda x: (x[0], x[1] or ""))))
        users.setdefault(rel, []).extend(f"{q.name} {q.version}" for q, *_ in pins)
        urls.setdefault(rel, url)
    for rel, sources in sorted(by_rel.items()):
        try:
            with ws.reporter.progress(f"vendoring {urls[rel]}"):
                out = write_vendored(dest / rel, sources)
        except GitSourceError as e:
            res.problems.append(f"{urls[rel]}: {e.message}")
            continue
        res.items.append(VendoredItem("git", rel, urls[rel], packages=sorted(set(users[rel])),
                                      commits=list(out["commits"]), tags=dict(out["tags"])))


def _vendor_python(ws: Workspace, run: SyncSession, dists: list[tuple[LockedPackage, PipDist]], dest: Path,
                   res: "VendorResult") -> None:
    """The exact files of the lock's ``pip`` lists, from pip (its cache, or the index it is
    configured with: ``pip download --no-deps --require-hashes``), checked by sha256."""
    import shutil
    import tempfile

    from ckpm.fetch.vendor import PYTHON_DIR, VendoredItem

    want: dict[str, tuple[str, str, list[str]]] = {}  # sha → name, version, packages
    for p, d in dists:  # names and versions were checked when the lock was read
        name, version, sha = d.name, d.version, d.digest
        label = f"{p.name} {p.version}"
        if not _SHA_RE.fullmatch(sha):
            res.problems.append(f"{label}: python {name} {version} has no sha256 in the lock (pip did not install "
                                "it from an archive), so no file can be vendored for it")
            continue
        want.setdefault(sha, (name, version, []))[2].append(label)
    if not want:
        return
    folder = dest / PYTHON_DIR
    folder.mkdir(parents=True, exist_ok=True)
    have: dict[str, Path] = {}

    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            have.setdefault(sha256_file(f), f)
    missing = {sha: w for sha, w in want.items() if sha not in have}
    if missing:
        with tempfile.TemporaryDirectory(prefix=".pip-", dir=dest) as tmp:
            failed = run.pip_fetcher.download(list(missing.values()), list(missing), Path(tmp))
            if failed is not None and len(missing) > 1:  # one by one, to name each that fails
                for sha, w in missing.items():
                    run.pip_fetcher.download([w], [sha], Path(tmp))
            for f in sorted(Path(tmp).iterdir()):
                if not f.is_file():
                    continue
                h = sha256_file(f)
                if h in missing and h not in have:
                    target = folder / f.name
                    shutil.move(str(f), str(target))
                    have[h] = target
    for sha, (name, version, labels) in want.items():
        path = have.get(sha)
        if path is None:
            res.problems.append(f"{', '.join(sorted(set(labels)))}: python {name} {version} with sha256:{sha[:16]}… "
                                "was not found by pip (its cache, or the index and find-links it is configured "
                                "with); see .ckpm/logs/vendor-pip.log")
            continue
        res.items.append(VendoredItem("python", f"{PYTHON_DIR}/{path.name}", path.name, packages=sorted(set(labels)),
                                      sha256=sha, size=path.stat().st_size))
