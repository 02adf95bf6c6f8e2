"""Provisioning: the lock made real (``ckpm sync``, ``fetch``, ``vendor``, ``store``, ``env``).

For one target, every package the lock needs there is walked in dependency order
(dependencies first) and gets one of these actions:

| action | when |
| --- | --- |
| ``host`` | the lock pins it to this machine (a detected compiler, library, tool) |
| ``store`` | its store prefix is already complete: nothing is fetched or built |
| ``built`` | its sources were fetched, verified, unpacked and its recipe run into a new prefix |
| ``venv`` | a ``pip`` recipe: python packages in the project's environment (``.ckpm/venv``) |
| ``fetched`` | ``ckpm fetch``: its sources were downloaded and verified (nothing is built) |
| ``nothing`` | no install recipe for the target (a host-only or virtual component); ``ckpm fetch``
  still downloads its sources |

Where the lock gives no sha256 for a file, the first download pins it into the lock and
says so once (trust on first use); from then on it is verified. The lock never records
which mirror served a file. A prefix's key hashes the package, its target, its recipe
(with the sha256 of every source) and its dependencies' keys, so a change to any of them
builds a new prefix and never alters an old one.

Recipes run only here, only for what the user asked to provision (``ckpm sync``), in a
clean environment, outside the source tree and the store's finished prefixes.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ckpm.errors import BuildError, CkpmError, FetchError, LockError, ManifestError, UnpackError
from ckpm.fsutil import atomic_write, build_dir_atomically, copy_tree, remove_tree, sha256_file
from ckpm.model.lockfile import Lock, LockedDep, LockedPackage, read_lock
from ckpm.model.source import GitSource, HostSource
from ckpm.model.targets import matches
from ckpm.settings import Settings
from ckpm.workspace import Workspace

#: where a project's own provisioned state lives (the python environment, build logs)
STATE_DIR = ".ckpm"
#: the marker of the project environment's pip installs: requirement set → what was installed
PIP_MARKER = ".ckpm-pip.json"


@dataclass
class Provisioned:
    """What sync did for one package on one target."""

    name: str
    version: str
    target: str
    action: str  # host | store | built | venv | fetched | nothing
    path: str | None = None
    key: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "target": self.target, "action": self.action,
                "path": self.path, "key": self.key, "detail": self.detail}


@dataclass
class SyncResult:
    target: str
    packages: list[Provisioned] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)  # "name version: url sha256" learnt on first use
    lock_changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "packages": [p.to_dict() for p in self.packages], "pinned": self.pinned,
                "lock_changed": self.lock_changed}


@dataclass
class SyncOptions:
    target: str | None = None  # default: the host
    only: tuple[str, ...] = ()  # names to provision (and their dependencies); empty: everything
    fetch_only: bool = False  # `ckpm fetch`: download and verify, build nothing
    mirror_dirs: tuple[Path, ...] = ()  # `--mirror DIR`: vendored folders tried first for http(s) URLs
    jobs: int = 0  # parallel jobs of a build (0: the CPU count)
    deadline: float | None = None  # `--timeout`: a time.monotonic() value that bounds downloads and builds
    low_speed: tuple[int, float] | None = None  # (bytes, seconds) of a download; None: the index transfers' limit


# -- the graph of one target ---------------------------------------------------------------

def needed(lock: Lock, target: str, host_target: str, only: tuple[str, ...] = ()) -> list[tuple[LockedPackage, str]]:
    """The packages the lock needs on ``target``, each with the target it is provisioned for
    (build tools of a cross target: the host), dependencies before their dependents."""
    if target not in lock.targets:
        raise LockError(f"the lock has no resolution for {target} (it has {', '.join(lock.targets) or 'none'})",
                        hint=f"run `ckpm lock --target {target}` (with the other targets you need), "
                             f"or `ckpm sync --target {target}` without --locked")
    by_nv: dict[tuple[str, str], list[LockedPackage]] = {}
    for p in lock.packages:
        by_nv.setdefault((p.name, p.version), []).append(p)

    def find(d: LockedDep, t: str) -> tuple[LockedPackage, str] | None:
        cands = by_nv.get((d.name, d.version), [])
        for want in (t, host_target):
            for p in cands:
                if want in p.targets:
                    return p, want
        return (cands[0], cands[0].targets[0]) if cands and cands[0].targets else None

    order: list[tuple[LockedPackage, str]] = []
    state: dict[tuple[int, str], int] = {}  # 1: visiting, 2: done

    def visit_deps(deps: list[LockedDep], t: str) -> None:
        for d in sorted(deps, key=lambda d: (d.key, d.name)):
            if d.targets is not None and t not in d.targets:
                continue
            hit = find(d, t)
            if hit is not None:
                visit(*hit)

    def visit(p: LockedPackage, t: str) -> None:
        k = (id(p), t)
        if state.get(k):
            return  # done, or a cycle (kept in the order it was met)
        state[k] = 1
        visit_deps(p.dependencies, t)
        state[k] = 2
        order.append((p, t))

    visit_deps(lock.roots, target)
    wanted = {n.lower() for n in only}
    if not wanted:
        return order
    chosen = [(p, t) for p, t in order if p.name in wanted or wanted & set(p.keys)]
    missing = sorted(wanted - {p.name for p, _ in chosen} - {k for p, _ in chosen for k in p.keys})
    if missing:
        from difflib import get_close_matches

        known = sorted({p.name for p in lock.packages})
        near = sorted({m for n in missing for m in get_close_matches(n, known, n=3)})
        raise LockError(f"the lock has no package {', '.join(missing)} on {target}",
                        hint=f"did you mean {', '.join(near)}?" if near else "see `ckpm tree`")
    order, state = [], {}  # again, from the named packages only: they and their dependencies
    for p, t in chosen:
        visit(p, t)
    return order


def recipe_for(p: LockedPackage, target: str) -> dict[str, Any] | None:
    """The first of the package's recipes whose ``targets`` match ``target``."""
    for r in p.install:
        ts = r.get("targets")
        if ts is None or (isinstance(ts, list) and matches(target, [str(t) for t in ts])):
            return r
    return None


def sources_of(p: LockedPackage, recipe: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The files a recipe builds from: its own ``sources``, else the package's."""
    if recipe is not None and isinstance(recipe.get("sources"), list) and recipe["sources"]:
        return [s for s in recipe["sources"] if isinstance(s, dict)]
    return list(p.sources)


# -- mirrors and settings ------------------------------------------------------------------

def mirrors_for(ws: Workspace) -> Any:
    """The mirror rules in force: the project's ``[mirrors]``, then the user's."""
    from ckpm.fetch.mirrors import Mirrors

    rules = Mirrors()
    table = ws.manifest.data.get("mirrors")
    if table is not None:
        try:
            rules = rules.then(Mirrors.from_table(table, where=f"{ws.manifest_path} [mirrors]", base=ws.root))
        except ValueError as e:
            from ckpm.model.manifest import _line_of

            text = ws.manifest_path.read_text(encoding="utf-8")
            raise ManifestError(str(ws.manifest_path), str(e), _line_of(text, None, "mirrors")) from None
    user = ws.settings.config_table("mirrors")
    if user:
        cfg = ws.settings.config_path
        try:
            rules = rules.then(Mirrors.from_table(user, where=f"{cfg} [mirrors]",
                                                  base=cfg.parent if cfg is not None else None))
        except ValueError as e:
            from ckpm.settings import SettingsError

            raise SettingsError(str(e)) from None
    return rules


def pip_args(ws: Workspace) -> list[str]:
    """Where the pip recipe takes python packages from: the user config's ``[pip]``."""
    cfg = ws.settings.config_table("pip")
    out: list[str] = []
    url = cfg.get("index-url")
    if isinstance(url, str) and url:
        out += ["--index-url", url]
    links = cfg.get("find-links", [])
    if isinstance(links, str):
        links = [links]
    for link in links if isinstance(links, list) else []:
        if isinstance(link, str) and link:
            out += ["--find-links", link]
    if cfg.get("no-index") is True:
        out.append("--no-index")
    if ws.settings.offline and "--no-index" not in out:
        out.append("--no-index")
    return out


#: the user's own variables a pip step keeps: where and how pip downloads is the user's choice,
#: as with pip itself (its config files under HOME, proxies, CA bundles, PIP_* settings)
PIP_PASSTHROUGH = ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
                   "http_proxy", "https_proxy", "no_proxy", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
                   "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def pip_env(settings: Settings) -> dict[str, str]:
    """The variables of the user's environment that pip steps see (PIP_PASSTHROUGH and PIP_*)."""
    return {k: v for k, v in settings.environ.items() if k in PIP_PASSTHROUGH or k.startswith("PIP_")}


def open_store(settings: Settings) -> Any:
    from ckpm.store.store import Store

    assert settings.store_dir is not None
    return Store(Path(settings.store_dir), reporter=settings.reporter)


# -- sync ----------------------------------------------------------------------------------

class SyncSession:
    """One sync: the lock, the store, what was learnt (TOFU pins), the prefixes made."""

    def __init__(self, ws: Workspace, lock: Lock, options: SyncOptions) -> None:
        self.ws = ws
        self.lock = lock
        self.options = options
        self.host = ws.host_target
        self.target = options.target or self.host
        self.store = open_store(ws.settings)
        self._mirrors: Any = None
        self._vendor_roots: list[Path] | None = None
        self.learnt: list[tuple[LockedPackage, dict[str, Any], str, int, str]] = []  # pkg, source, sha, size, url
        self.learnt_pip: list[tuple[LockedPackage, list[dict[str, Any]]]] = []  # first pip installs
        self.keys: dict[tuple[int, str], str] = {}  # (id(package), target) → prefix key or host path
        self.prefixes: dict[tuple[int, str], Path] = {}
        self.result = SyncResult(self.target)
        self._toolchains: dict[str, Any] = {}
        self.using = contextlib.ExitStack()  # shared locks on the cached files this sync builds from

    @property
    def mirrors(self) -> Any:
        """The mirror rules, read when the first file is fetched (a warm sync fetches nothing)."""
        if self._mirrors is None:
            self._mirrors = mirrors_for(self.ws)
        return self._mirrors

    # the files ------------------------------------------------------------------------
    def fetch(self, p: LockedPackage, src: dict[str, Any]) -> Path:
        """One source, verified (from the download cache when it is there)."""
        from ckpm.fetch.download import fetch_file

        if "git" in src:
            return self.export_git(p, src)
        urls = src.get("urls")
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise FetchError(f"{p.name} {p.version}: a source in the lock has no list of URLs")
        sha = src.get("sha256")
        size = src.get("size")
        if len(urls) > 64 or any(len(u) > 2048 for u in urls):
            raise FetchError(f"{p.name} {p.version}: a source in the lock has too many or too long URLs")
        if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"(?:sha256:)?[0-9a-fA-F]{64}", sha)):
            raise FetchError(f"{p.name} {p.version}: the lock's sha256 for {urls[0]} is not 64 hex digits",
                             hint="the lock was edited or damaged: restore it, or delete the source's sha256 "
                                  "and run `ckpm sync` to pin it again")
        if isinstance(sha, str):
            sha = sha.removeprefix("sha256:")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise FetchError(f"{p.name} {p.version}: the lock's size for {urls[0]} is not a byte count")
        urls = self.checked_urls(p, src, urls)  # index data names no local file outside its folder
        got = fetch_file(self.vendored(urls) + list(urls), sha256=sha if isinstance(sha, str) else None,
                         size=size if isinstance(size, int) else None,
                         cache_dir=self.ws.settings.cache_root, mirrors=self.mirrors, offline=self.ws.settings.offline,
                         reporter=self.ws.reporter, label=f"{p.name} {p.version}",
                         low_speed_bytes=self.low_speed[0], low_speed_seconds=self.low_speed[1],
                         deadline=self.options.deadline)
        if got.pinned:
            src["sha256"] = got.sha256
            src["size"] = got.size
            self.learnt.append((p, src, got.sha256, got.size, urls[0]))
            self.ws.reporter.warning(
                f"{p.name} {p.version}: the lock gives no sha256 for {urls[0]}; pinned sha256:{got.sha256[:16]}… from "
                "this first download (trust on first use); later syncs verify it")
        return Path(got.path)

    @property
    def low_speed(self) -> tuple[int, float]:
        """The low-speed limit of a source download: the index transfers' (HTTP_LIMITS), unless set."""
        if self.options.low_speed is not None:
            return self.options.low_speed
        from ckpm.index.transfer import HTTP_LIMITS

        return HTTP_LIMITS.low_speed_bytes, HTTP_LIMITS.low_speed_seconds

    def checked_urls(self, p: LockedPackage, src: dict[str, Any], urls: list[str]) -> list[str]:
        """The source's URLs as :func:`ckpm.fetch.local.data_urls` lets them be fetched: a local
        file only from an index that is a local folder, inside that folder."""
        from ckpm.fetch.local import data_urls, is_local
        from ckpm.model.source import IndexSource

        if not any(is_local(u) for u in urls):
            return urls
        field = "source.urls"
        for i, r in enumerate(p.install):
            for j, s in enumerate(r.get("sources") or ()):
                if s is src:
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

    def time_left(self) -> float | None:
        """Seconds a recipe may run before ``--timeout`` ends the command (None: no limit)."""
        if self.options.deadline is None:
            return None
        import time

        left = self.options.deadline - time.monotonic()
        if left <= 0:
            raise BuildError("the command's time limit (--timeout) ran out before the build",
                             hint="raise --timeout; what was built so far is kept")
        return left

    def use(self, p: LockedPackage, src: dict[str, Any]) -> Path:
        """One source a build reads: fetched (:meth:`fetch`), then held in use until the sync
        ends (a shared lock that ``ckpm cache clean`` respects) and its time refreshed (so
        ``cache clean --older-than`` counts from the last use)."""
        from ckpm.fetch.cache import DownloadCache
        from ckpm.fsutil import shared_lock

        cache = DownloadCache(Path(self.ws.settings.cache_root))
        path = self.fetch(p, src)
        for _ in range(2):
            if path.parent == cache.base / "sha256":
                key = path.name
            elif path.parent == cache.root / "git-export":
                key = f"git-{path.name}"
            else:
                return path  # not in the cache (a vendored folder's file): nobody cleans it
            self.using.enter_context(shared_lock(cache.use_lock(key)))
            if path.exists():
                break
            path = self.fetch(p, src)  # cleaned between the fetch and the lock: once more
        with contextlib.suppress(OSError):
            os.utime(path)
        return path

    def interpreter(self) -> str | None:
        """The python that makes the project's environment: the one whose version the lock's
        ``__python`` pin describes (so the packages chosen for that version fit), else the
        settings' (``CKPM_PYTHON``), else the one running ckpm."""
        for q in self.lock.packages:
            if q.name == "__python" and isinstance(q.source, HostSource) and q.source.path:
                path = Path(q.source.path)
                if not path.is_absolute():
                    path = self.ws.root / path
                if path.is_file():
                    return str(path)
        return self.ws.settings.python

    def check_git_url(self, p: LockedPackage, url: str) -> None:
        """A git source of an index line may name a repository on this machine (``file://``, a
        path) only when the index is on this machine too (a folder, or ``git+file://``): a
        remote index must not make ckpm export a private local repository into the store. A
        git dependency that the user wrote in ckpm.toml is not index data (its source is git)."""
        from ckpm.fetch.local import LocalFileRefused, is_local
        from ckpm.model.source import IndexSource

        if not isinstance(p.source, IndexSource) or not is_local(url):
            return
        found = [i for i in self.ws.indexes if i.name == p.source.index]
        where = found[0].url if found else ""
        if found and where and (is_local(where.removeprefix("git+")) or _on_loopback(where)) or where == "embedded":
            return  # an index on this machine: a folder, git+file://, or served from loopback
        raise LocalFileRefused(
            f"index {p.source.index}: {p.name} {p.version}: source.git names the repository {url[:200]!r} on "
            "this machine, and the index is not on this machine",
            hint="an index that another machine serves may not name your local repositories; "
                 "to use such a repository, add it yourself: ckpm add NAME --git URL")

    def export_git(self, p: LockedPackage, src: dict[str, Any]) -> Path:
        """A git source: the tree of its pinned commit (content-addressed by the commit),
        exported once into the cache (``CACHE/git-export/<commit>[-<subdir hash>]``)."""
        import hashlib

        from ckpm.errors import GitSourceError

        url, rev, subdir = src.get("git"), src.get("rev"), src.get("subdir")
        if not isinstance(url, str) or not isinstance(rev, str) or not re.fullmatch(r"[0-9a-f]{40}", rev) or (
                subdir is not None and not isinstance(subdir, str)):
            raise FetchError(f"{p.name} {p.version}: a git source in the lock needs a URL and a full 40-hex commit")
        self.check_git_url(p, url)
        name = rev + (f"-{hashlib.sha256(subdir.encode()).hexdigest()[:12]}" if subdir else "")
        done = self.ws.settings.cache_root / "git-export" / name
        if done.is_dir():
            return done
        tag = src.get("tag")
        if self.vendor_roots:
            use_vendored_git(self.ws, {url: [(rev, tag if isinstance(tag, str) and _TAG_RE.fullmatch(tag) else None)]},
                             self.vendor_roots)

        def export(tmp: Path) -> None:
            with self.ws.reporter.progress(f"exporting {url} at {rev[:12]}"):
                gs = self.ws.git_source(url, subdir)
                gs.export(rev, tmp)
            if isinstance(tag, str) and 0 < len(tag) <= 255 and re.fullmatch(r"[A-Za-z0-9._/+@-]+", tag):
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
        return done

    @property
    def vendor_roots(self) -> list[Path]:
        """The vendored folders this sync reads (``--mirror DIR``, and those ``[mirrors]`` names)."""
        if self._vendor_roots is None:
            self._vendor_roots = vendor_roots(self.ws, self.options.mirror_dirs)
        return self._vendor_roots

    def vendored(self, urls: list[str]) -> list[str]:
        """``--mirror DIR``: where each URL's file would be in a vendored folder, tried first."""
        from ckpm.fetch.vendor import archive_relpath

        out = []
        for d in self.vendor_roots:
            for u in urls:
                try:
                    out.append((d / archive_relpath(u)).as_uri())
                except ValueError:
                    continue
        return out

    # one package ----------------------------------------------------------------------
    def provision(self, p: LockedPackage, t: str) -> Provisioned:
        from ckpm.build.checks import check_recipe

        if isinstance(p.source, HostSource):
            self.keys[(id(p), t)] = f"host:{p.source.path or p.name}"
            if p.source.path:
                self.prefixes[(id(p), t)] = _host_prefix(Path(p.source.path))
            return Provisioned(p.name, p.version, t, "host", p.source.path)
        recipe = recipe_for(p, t)
        sources = sources_of(p, recipe)
        if recipe is not None:
            problems = check_recipe(recipe)
            if problems:
                raise BuildError(f"{p.name} {p.version}: its install recipe is not valid: {problems[0]}",
                                 hint="the index (or the lock copied from it) holds a broken recipe; "
                                      "report it to the index's maintainers")
        if recipe is not None and _is_pip(recipe):
            if self.options.fetch_only:
                return Provisioned(p.name, p.version, t, "nothing", detail="python packages: pip fetches them at sync")
            return self.pip(p, t, recipe)
        if recipe is None and not self.options.fetch_only:
            return Provisioned(p.name, p.version, t, "nothing",
                               detail=f"no install recipe for {t}" + (" (`ckpm fetch` downloads its sources)"
                                                                      if sources else ""))
        if self.options.fetch_only or recipe is None:
            got = [self.fetch(p, s) for s in sources]
            if not sources:
                return Provisioned(p.name, p.version, t, "nothing", detail="no sources and no recipe")
            return Provisioned(p.name, p.version, t, "fetched", path=str(got[0]),
                               detail=f"{len(got)} source{'s' if len(got) > 1 else ''} verified")
        for s in sources:  # every hash known before the key is computed (trust on first use)
            if "urls" in s and not s.get("sha256"):
                self.fetch(p, s)
        key = self.key_of(p, t, recipe, sources)
        self.keys[(id(p), t)] = key
        entry = self.store.complete(key)
        if entry is not None:
            self.prefixes[(id(p), t)] = entry.path
            return Provisioned(p.name, p.version, t, "store", str(entry.path), key)
        files = [self.use(p, s) for s in sources]
        self.store.register_root(self.ws.root, self.lock_keys() | {key})  # before building: gc keeps it
        built: list[bool] = []
        declared = [s.get("unpacked-size") for s in sources]

        def build(destdir: Path, prefix: Path) -> dict[str, Any]:
            built.append(True)
            return self.build(p, t, recipe, files, destdir, prefix, declared)

        entry = self.store.install(key, build, meta={"name": p.name, "version": p.version, "target": t,
                                                     "kind": p.kind, "recipe": recipe})
        self.prefixes[(id(p), t)] = entry.path
        if not built:  # another process built it while this one waited for the prefix's lock
            return Provisioned(p.name, p.version, t, "store", str(entry.path), key,
                               detail="built by another ckpm meanwhile")
        return Provisioned(p.name, p.version, t, "built", str(entry.path), key)

    def key_of(self, p: LockedPackage, t: str, recipe: Mapping[str, Any], sources: list[dict[str, Any]]) -> str:
        from ckpm.store.store import prefix_key

        deps: dict[str, str] = {}
        for d, child_t in self.children(p, t):
            k = self.keys.get((id(d), child_t))
            if k is not None:
                deps[d.name] = k
        full = dict(recipe)
        full["sources"] = [{k: v for k, v in s.items() if k in ("sha256", "git", "rev", "subdir")} for s in sources]
        return str(prefix_key(p.name, p.version, t, full, deps))

    def lock_keys(self) -> set[str]:
        """The prefix keys the whole lock uses, on every target, as far as they can be known
        without fetching (a source with no sha256 yet has no key)."""
        saved = self.keys
        out: set[str] = set()
        try:
            for target in self.lock.targets:
                self.keys = {}
                for p, t in needed(self.lock, target, self.host):
                    if isinstance(p.source, HostSource):
                        self.keys[(id(p), t)] = f"host:{p.source.path or p.name}"
                        continue
                    recipe = recipe_for(p, t)
                    if recipe is None or _is_pip(recipe):
                        continue
                    sources = sources_of(p, recipe)
                    if all(_pinned(s) for s in sources):
                        key = self.key_of(p, t, recipe, sources)
                        self.keys[(id(p), t)] = key
                        out.add(key)
        finally:
            self.keys = saved
        return out

    def children(self, p: LockedPackage, t: str) -> Iterator[tuple[LockedPackage, str]]:
        for d in p.dependencies:
            if d.targets is not None and t not in d.targets:
                continue
            for q in self.lock.packages:
                if q.name == d.name and q.version == d.version:
                    yield q, (t if t in q.targets else self.host)
                    break

    def toolchain(self, t: str) -> Any:
        tc = self._toolchains.get(t)
        if tc is None:
            from ckpm.build.toolchain import find_toolchain

            tc = self._toolchains[t] = find_toolchain(t, settings=self.ws.settings, host_target=self.host)
        return tc

    def build(self, p: LockedPackage, t: str, recipe: Mapping[str, Any], files: list[Path], destdir: Path,
              prefix: Path, declared: list[Any] | None = None) -> dict[str, Any]:
        import tempfile
        from ckpm.build.recipes import BuildContext, run_recipe
        from ckpm.build.toolchain import host_only

        logs = self.ws.root / STATE_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{_safe(p.name)}-{_safe(p.version)}-{t}.log"
        log.write_text("", encoding="utf-8")
        work = Path(tempfile.mkdtemp(prefix=f"build-{_safe(p.name)}-", dir=destdir.parent))
        try:
            src = work / "src"
            _unpack_all(files, src, declared)
            deps: dict[str, Path] = {}
            tools: list[str] = []
            for d, child_t in self.children(p, t):
                pre = self.prefixes.get((id(d), child_t))
                if pre is None:
                    continue
                if child_t == t:
                    deps[d.name] = pre
                if (pre / "bin").is_dir() and (child_t == self.host):
                    tools.append(str(pre / "bin"))
            ctx = BuildContext(source=src, build_dir=work / "build", prefix=prefix, destdir=destdir,
                               toolchain=self.toolchain(t) if _compiles(recipe) else host_only(t, self.host),
                               log=log, deps=deps, tool_paths=tools,
                               jobs=self.options.jobs or os.cpu_count() or 1,
                               env={str(k): str(v) for k, v in (recipe.get("env") or {}).items()},
                               timeout=self.time_left())
            (work / "build").mkdir(exist_ok=True)
            with self.ws.reporter.progress(f"building {p.name} {p.version} for {t}"):
                return run_recipe(recipe, ctx) or {}
        finally:
            with contextlib.suppress(OSError):
                remove_tree(work)  # iterative: an unpacked tree may be deep

    def pip(self, p: LockedPackage, t: str, recipe: Mapping[str, Any]) -> Provisioned:
        """Python packages into the project's environment. The first install records every
        distribution pip installed (name, version, sha256) in the lock; later installs take
        exactly those, hashes required, dependencies not re-resolved (``--no-deps``)."""
        import tempfile
        from ckpm.build.recipes import BuildContext, run_recipe
        from ckpm.build.toolchain import host_only

        if t != self.host:
            raise BuildError(f"{p.name} {p.version}: python packages are installed for this host only, not for {t}",
                             hint="sync python packages without --target")
        venv = self.ws.root / STATE_DIR / "venv"
        marker = venv / PIP_MARKER
        want = json.dumps({"name": p.name, "version": p.version, "recipe": recipe, "pip": p.pip}, sort_keys=True)
        done = _read_json(marker)
        if done.get(p.name, {}).get("want") == want and (venv / "pyvenv.cfg").is_file():
            return Provisioned(p.name, p.version, t, "venv", str(venv), detail="already installed")
        args = pip_args(self.ws)
        vendored: set[str] = set()
        for root in self.vendor_roots:  # the distributions `ckpm vendor` wrote
            from ckpm.fetch.vendor import PYTHON_DIR, python_hashes

            if (root / PYTHON_DIR).is_dir():
                args += ["--find-links", str(root / PYTHON_DIR)]
                vendored |= python_hashes(root)
        if p.pip and "--no-index" not in args and all(
                str(d.get("sha256") or "").removeprefix("sha256:").lower() in vendored for d in p.pip):
            args.append("--no-index")  # every file is vendored: no index to wait for (pip checks each hash)
        if p.pip:  # the locked distributions, each with its hash
            recorded = [d for d in p.pip if isinstance(d.get("name"), str) and isinstance(d.get("version"), str)]
            step = {"kind": "pip", "requirements": [f"{d['name']}=={d['version']}" for d in recorded],
                    "hashes": {d["name"]: [str(d["sha256"])] for d in recorded if d.get("sha256")}}
            recipe = {**{k: v for k, v in recipe.items() if k != "steps"}, "steps": [step]}
            args = [*args, "--no-deps"]
        logs = self.ws.root / STATE_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{_safe(p.name)}-{_safe(p.version)}-pip.log"
        log.write_text("", encoding="utf-8")
        with tempfile.TemporaryDirectory(prefix="ckpm-pip-") as tmp:
            ctx = BuildContext(source=Path(tmp), build_dir=Path(tmp), prefix=venv, destdir=Path(tmp),
                               toolchain=host_only(t, self.host), log=log, python=self.interpreter(),
                               venv=venv, pip_args=args, pip_env=pip_env(self.ws.settings),
                               timeout=self.time_left())
            with self.ws.reporter.progress(f"installing {p.name} {p.version} into {venv}"):
                info = run_recipe(recipe, ctx) or {}
        installed = [{k: d[k] for k in ("name", "version", "sha256") if d.get(k)} for d in info.get("pip", [])]
        if not p.pip and installed:
            self.learnt_pip.append((p, installed))
            p.pip = installed
            want = json.dumps({"name": p.name, "version": p.version, "recipe": recipe_for(p, t), "pip": p.pip},
                              sort_keys=True)
        done = _read_json(marker)
        done[p.name] = {"want": want, "installed": installed}
        atomic_write(marker, json.dumps(done, indent=1, sort_keys=True) + "\n")
        return Provisioned(p.name, p.version, t, "venv", str(venv),
                           detail=", ".join(f"{x.get('name')} {x.get('version')}" for x in installed))


def vendor_roots(ws: Workspace, mirror_dirs: Sequence[Path] = ()) -> list[Path]:
    """The folders made by ``ckpm vendor`` that a sync reads: each ``--mirror DIR``, then each
    folder with a ``ckpm-vendor.json`` that a ``[mirrors]`` rule names (``"https://" = ["vendor/"]``).
    Their archives, git repositories and python distributions all serve the sync."""
    roots = [Path(d).absolute() for d in mirror_dirs]
    if ws.manifest.data.get("mirrors") is None and not ws.settings.config_table("mirrors"):
        return roots
    # here, after the common case returned: urllib.request imports http.client, ssl and email
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    from ckpm.fetch.vendor import is_vendor_root

    for _, reps in mirrors_for(ws).rules:
        for rep in reps:
            if rep[:7].lower() != "file://":
                continue
            folder = Path(url2pathname(urlsplit(rep).path))
            if folder not in roots and is_vendor_root(folder):
                roots.append(folder)
    return roots


def git_pins(lock: Lock) -> dict[str, list[tuple[str, str | None]]]:
    """Every git commit the lock pins (a git component's own, and its recipes' sources), by URL,
    with the tag that names it (or None)."""
    out: dict[str, list[tuple[str, str | None]]] = {}
    for p in lock.packages:
        srcs = _all_sources(p)
        if isinstance(p.source, GitSource):
            srcs.append({"git": p.source.git, "rev": p.source.rev, "tag": p.source.tag})
        for s in srcs:
            url, rev, tag = s.get("git"), s.get("rev"), s.get("tag")
            if isinstance(url, str) and isinstance(rev, str) and _REV_RE.fullmatch(rev):
                pin = (rev, tag if isinstance(tag, str) and _TAG_RE.fullmatch(tag) else None)
                if pin not in out.setdefault(url, []):
                    out[url].append(pin)
    return out


def use_vendored_git(ws: Workspace, pins: Mapping[str, Sequence[tuple[str, str | None]]],
                     roots: Sequence[Path]) -> None:
    """Bring the pinned commits (and tags) of each git URL from the vendored folders ``roots``
    into the cache's mirror of that URL, where the cache lacks them; so that the lock check and
    the export read them as if the repository had been reached. A vendored copy that cannot
    be read, or lacks a commit, is a warning: the sync then fails where it needs the commit."""
    from ckpm.errors import GitSourceError
    from ckpm.fetch.vendor import git_relpath
    from ckpm.index.gitvendor import mirror_holds, seed_mirror

    for url, want in pins.items():
        try:
            rel = git_relpath(url)
        except ValueError:
            continue
        found = [r / rel for r in roots if (r / rel / "HEAD").is_file()]
        if not found:
            continue
        gs = ws.git_source(url, None)
        if mirror_holds(gs.path, want):
            continue
        problems: list[str] = []
        for repo in found:
            try:
                problems = seed_mirror(repo, gs.path, gs.url, want, on_wait=ws.reporter.note)
            except GitSourceError as e:
                problems = [e.message]
            if not problems:
                break
        for line in problems:
            ws.reporter.warning(f"{url}: the vendored copy in {found[-1]} does not serve the lock: {line}")


def use_vendored(ws: Workspace, mirror_dirs: Sequence[Path] = (), lock: Lock | None = None) -> None:
    """Before a sync checks the lock: the git commits it pins, from the vendored folders into
    the cache (see :func:`use_vendored_git`). Nothing when no vendored folder is in use."""
    ws.mirror_dirs = tuple(dict.fromkeys([*ws.mirror_dirs, *(Path(d).absolute() for d in mirror_dirs)]))
    roots = vendor_roots(ws, mirror_dirs)
    if not roots:
        return
    if lock is None:
        try:
            lock = ws.read_lock()
        except LockError:
            return
        if lock is None:
            return
    pins = git_pins(lock)
    if pins:
        use_vendored_git(ws, pins, roots)


def sync(ws: Workspace, lock: Lock, options: SyncOptions | None = None) -> SyncResult:
    """Provision what ``lock`` needs on one target (see the module docstring)."""
    options = options or SyncOptions()
    run = SyncSession(ws, lock, options)
    ws.mirror_dirs = tuple(dict.fromkeys([*ws.mirror_dirs, *(Path(d).absolute() for d in options.mirror_dirs)]))
    if run.vendor_roots:
        use_vendored_git(ws, git_pins(lock), run.vendor_roots)
    with run.using:
        return _sync(ws, run, options)


def _sync(ws: Workspace, run: "SyncSession", options: SyncOptions) -> SyncResult:
    lock = run.lock
    for p, t in needed(lock, run.target, run.host, options.only):
        try:
            run.result.packages.append(run.provision(p, t))
        except (FetchError, UnpackError, BuildError) as e:
            _save_learnt(ws, run)  # what was learnt stays learnt
            if p.name not in e.message:
                e.message = f"{p.name} {p.version} ({t}): {e.message}"
                e.args = (e.message,)
            raise
    _save_learnt(ws, run)
    if not options.fetch_only:
        run.store.register_root(ws.root, sorted(run.lock_keys()))
    return run.result


def _save_learnt(ws: Workspace, run: SyncSession) -> None:
    """Write the sha256 learnt on first use into ckpm.lock (under the project's write lock)."""
    if not run.learnt and not run.learnt_pip:
        return
    with ws.writing():
        current = read_lock(ws.lock_path)
        if current is None:
            return
        changed = False
        by_ident = {q.ident: q for q in current.packages}
        for p, src, sha, size, url in run.learnt:
            q = by_ident.get(p.ident)
            if q is None:
                continue
            for s in _all_sources(q):
                if s.get("urls") == src.get("urls") and not s.get("sha256"):
                    s["sha256"], s["size"] = sha, size
                    changed = True
            run.result.pinned.append(f"{p.name} {p.version}: {url} sha256:{sha}")
        for p, installed in run.learnt_pip:
            q = by_ident.get(p.ident)
            if q is not None and not q.pip:
                q.pip = installed
                changed = True
                run.result.pinned.append(f"{p.name} {p.version}: python " + ", ".join(
                    f"{d.get('name')} {d.get('version')}" for d in installed))
        if changed:
            atomic_write(ws.lock_path, current.dumps())
            run.result.lock_changed = True
    run.learnt.clear()
    run.learnt_pip.clear()


def _all_sources(p: LockedPackage) -> list[dict[str, Any]]:
    from ckpm.model.lockfile import _all_sources as all_sources

    return all_sources(p)


# -- helpers --------------------------------------------------------------------------------

def _unpack_all(files: list[Path], dest: Path, declared: list[Any] | None = None) -> None:
    """The fetched files as one source folder ``dest`` (which must not exist): the first
    archive unpacked into it (a single top folder stripped), further archives into
    ``source-N/``, other files copied in. ``declared[i]``: the ``unpacked-size`` the
    source of ``files[i]`` declares (it replaces the default ratio of the unpack budget)."""
    import shutil
    from ckpm.store.unpack import UnpackBudget, archive_kind, unpack

    for i, f in enumerate(files):
        if f.is_dir():  # an exported git tree
            copy_tree(f, dest if i == 0 else dest / f"source-{i}", dirs_exist_ok=i == 0)
        elif archive_kind(f) is not None:
            size = declared[i] if declared is not None and i < len(declared) else None
            try:
                budget = UnpackBudget.for_declared(size)
            except ValueError as e:
                raise UnpackError(f"cannot unpack {f.name}: {e}",
                                  hint="the lock or the index line was edited or damaged") from None
            unpack(f, dest if i == 0 else dest / f"source-{i}", budget=budget)
            _keep_private(f, dest if i == 0 else dest / f"source-{i}")
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest / _file_name(f, i))
            # the umask's mode, less the read bits the cached file lacks (a private file stays private)
            from ckpm.fsutil import current_umask

            os.chmod(dest / _file_name(f, i), 0o644 & ~current_umask() & ((f.stat().st_mode & 0o044) | 0o600))
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


def _file_name(f: Path, i: int) -> str:
    return f.name if i == 0 else f"{i}-{f.name}"


def _host_prefix(path: Path) -> Path:
    """The prefix of a host file: ``/usr`` for ``/usr/bin/gcc``, the folder itself for a folder."""
    if path.is_dir() and not path.name == "bin":
        return path
    parent = path.parent
    return parent.parent if parent.name in ("bin", "lib", "lib64", "include") else parent


def _pinned(src: Mapping[str, Any]) -> bool:
    """A source whose content is known from the lock alone: a sha256, or a git commit."""
    return bool(src.get("sha256") or (src.get("git") and src.get("rev")))


def _compiles(recipe: Mapping[str, Any]) -> bool:
    """A recipe with a step that may run a compiler (script, make, cmake): it gets the target's toolchain."""
    steps = recipe.get("steps")
    return isinstance(steps, list) and any(isinstance(s, dict) and s.get("kind") in ("script", "make", "cmake")
                                           for s in steps)


def _is_pip(recipe: Mapping[str, Any]) -> bool:
    """A recipe that installs python packages into the project's environment (not the store)."""
    steps = recipe.get("steps")
    return isinstance(steps, list) and any(isinstance(s, dict) and s.get("kind") == "pip" for s in steps)


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in s)[:80] or "_"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(1 << 20))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


# -- fetch, vendor, env, store --------------------------------------------------------------

def vendor(ws: Workspace, lock: Lock, dest: Path, mirror_dirs: tuple[Path, ...] = (),
           targets: Sequence[str] | None = None) -> Any:
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
        _save_learnt(ws, run)
    atomic_write(dest / MANIFEST, json.dumps(res.manifest(__version__), indent=1, sort_keys=True) + "\n")
    if res.problems:
        raise VendorIncomplete(res)
    return res


@dataclass
class _VendorPlan:
    archives: dict[tuple[str, ...], tuple[dict[str, Any], list[LockedPackage]]] = field(default_factory=dict)
    git: dict[str, list[tuple[LockedPackage, str, str, str | None, str | None]]] = field(default_factory=dict)
    python: list[tuple[LockedPackage, dict[str, Any]]] = field(default_factory=list)


_TAG_RE = re.compile(r"[A-Za-z0-9._/+@-]{1,255}")
_REV_RE = re.compile(r"[0-9a-f]{40}")


def _vendor_plan(lock: Lock, targets: list[str], host: str, res: Any) -> _VendorPlan:
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
            if recipe is not None and _is_pip(recipe):
                if t != host:
                    continue  # sync refuses python packages for another target
                if not p.pip:
                    res.problems.append(f"{label}: the lock lists none of its python distributions yet "
                                        "(run `ckpm sync` on this host once, so that the lock records them)")
                for d in p.pip:
                    plan.python.append((p, d))
                continue
            srcs = sources_of(p, recipe) if recipe is not None else list(p.sources)
            if isinstance(p.source, GitSource):  # the lock's check reads the tag from the repository
                srcs = srcs + [{"git": p.source.git, "rev": p.source.rev, "tag": p.source.tag,
                                "subdir": p.source.subdir}]
            for s in srcs:
                if s.get("git") is not None:
                    url, rev, tag, subdir = s.get("git"), s.get("rev"), s.get("tag"), s.get("subdir")
                    if not (isinstance(url, str) and isinstance(rev, str) and _REV_RE.fullmatch(rev)):
                        res.problems.append(f"{label}: a git source in the lock has no URL or no full commit id")
                        continue
                    tag = tag if isinstance(tag, str) and _TAG_RE.fullmatch(tag) else None
                    plan.git.setdefault(url, []).append((p, url, rev, tag, subdir if isinstance(subdir, str) else None))
                elif isinstance(s.get("urls"), list) and s["urls"]:
                    key = tuple(str(u) for u in s["urls"])
                    plan.archives.setdefault(key, (s, []))[1].append(p)
                else:
                    res.problems.append(f"{label}: a source in the lock has neither URLs nor a git repository")
    return plan


def _vendor_archives(run: SyncSession, archives: dict[tuple[str, ...], tuple[dict[str, Any], list[LockedPackage]]],
                     dest: Path, res: Any) -> None:
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
            got = run.fetch(p, src)
        except CkpmError as e:
            res.problems.append(f"{p.name} {p.version}: {e.message}" if p.name not in e.message else e.message)
            continue
        sha = str(src.get("sha256") or "").removeprefix("sha256:")
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


def _vendor_index_lines(ws: Workspace, lock: Lock, dest: Path, res: Any) -> None:
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


def _vendored_lines_of(ws: Workspace, index: str, url: str) -> Any:
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
                dest: Path, res: Any) -> None:
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


_DIST_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,200}[A-Za-z0-9])?")
_DIST_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,100}")
_SHA_RE = re.compile(r"[0-9a-f]{64}")


def _vendor_python(ws: Workspace, run: SyncSession, dists: list[tuple[LockedPackage, dict[str, Any]]], dest: Path,
                   res: Any) -> None:
    """The exact files of the lock's ``pip`` lists, from pip (its cache, or the index it is
    configured with: ``pip download --no-deps --require-hashes``), checked by sha256."""
    import shutil
    import tempfile

    from ckpm.fetch.vendor import PYTHON_DIR, VendoredItem

    want: dict[str, tuple[str, str, list[str]]] = {}  # sha → name, version, packages
    for p, d in dists:
        name, version = d.get("name"), d.get("version")
        sha = str(d.get("sha256") or "").removeprefix("sha256:").lower()
        label = f"{p.name} {p.version}"
        if not (isinstance(name, str) and _DIST_NAME_RE.fullmatch(name) and isinstance(version, str)
                and _DIST_VERSION_RE.fullmatch(version)):
            res.problems.append(f"{label}: a python distribution in the lock has no valid name and version")
            continue
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
            failed = _pip_download(ws, run, list(missing.values()), list(missing), Path(tmp))
            if failed is not None and len(missing) > 1:  # one by one, to name each that fails
                for sha, w in missing.items():
                    _pip_download(ws, run, [w], [sha], Path(tmp))
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


def _pip_download(ws: Workspace, run: SyncSession, dists: list[tuple[str, str, list[str]]], shas: list[str],
                  into: Path) -> str | None:
    """``pip download --no-deps --require-hashes`` of exact pins into ``into``; the error, or None."""
    import sys
    import time

    from ckpm.build.process import run_command

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
    env = {**(pip_env(ws.settings) or {"PIP_CONFIG_FILE": os.devnull}), "PIP_NO_INPUT": "1", "PYTHONNOUSERSITE": "1",
           "PATH": ws.settings.environ.get("PATH", "/usr/bin:/bin")}
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


def env(ws: Workspace, lock: Lock, target: str | None = None) -> dict[str, str]:
    """The environment that makes the provisioned packages usable (PATH, CFLAGS, LDFLAGS,
    PKG_CONFIG_PATH, ``<NAME>_ROOT``…): only what is already provisioned, nothing is built."""
    from ckpm.build.recipes import deps_env

    run = SyncSession(ws, lock, SyncOptions(target=target))
    prefixes: dict[str, Path] = {}
    tc = None
    for p, t in needed(lock, run.target, run.host):
        if isinstance(p.source, HostSource):
            continue
        recipe = recipe_for(p, t)
        if recipe is None:
            continue
        if _is_pip(recipe):
            venv = ws.root / STATE_DIR / "venv"
            if (venv / "bin").is_dir():
                prefixes[p.name] = venv
            continue
        sources = sources_of(p, recipe)
        if not all(_pinned(s) for s in sources):
            continue  # never fetched: not provisioned
        key = run.key_of(p, t, recipe, sources)
        run.keys[(id(p), t)] = key
        entry = run.store.complete(key)
        if entry is not None and t == run.target:
            prefixes[p.name] = entry.path
    try:
        tc = run.toolchain(run.target)  # the compilers a build for the target would use: CC, CXX, AR, RANLIB
    except CkpmError:
        tc = None
    out = dict(deps_env(prefixes, toolchain=tc if tc is not None and tc.cross else None,
                        base_path=ws.settings.environ.get("PATH", "/usr/bin:/bin")))
    if tc is not None:
        out.update({k: v for k, v in tc.env().items() if k in ("CC", "CXX", "AR", "RANLIB")})
    return out


def store_entries(settings: Settings) -> list[Any]:
    """The complete prefixes of the store."""
    return list(open_store(settings).entries())


def store_path(settings: Settings, name: str, target: str | None = None) -> list[Any]:
    """The complete prefixes of ``name`` (for ``target`` when given)."""
    return [e for e in open_store(settings).entries()
            if e.name == name.lower() and (target is None or e.target == target)]


def store_gc(settings: Settings, *, dry_run: bool = False) -> list[str]:
    """Remove the prefixes no registered project's current ``ckpm.lock`` uses (see Store.gc),
    and the staging folders of builds whose process is gone."""
    return list(open_store(settings).gc(dry_run=dry_run, keys_of_lock=lambda p: lock_keys_of(settings, p)))


def cache_usage(settings: Settings) -> list[Any]:
    """The areas of the cache folder with their entries and sizes (``ckpm cache ls``)."""
    from ckpm.fetch.cache import usage

    return usage(Path(settings.cache_root))


def cache_clean(settings: Settings, *, downloads_only: bool = False, older_than_days: float | None = None,
                dry_run: bool = False) -> Any:
    """Remove cached downloads and exported git trees (``ckpm cache clean``), never one a
    running command uses (:func:`ckpm.fetch.cache.clean`)."""
    from ckpm.fetch.cache import clean

    if older_than_days is not None and older_than_days < 0:
        raise CkpmError(f"--older-than must be a number of days >= 0, not {older_than_days}")
    return clean(Path(settings.cache_root), downloads_only=downloads_only, dry_run=dry_run,
                 older_than=None if older_than_days is None else older_than_days * 86400)


def lock_keys_of(settings: Settings, project: str) -> set[str] | None:
    """The store keys that ``project``'s ``ckpm.lock`` uses now (None when it cannot be read)."""
    try:
        ws = Workspace(project, settings, search_up=False)
        lock = read_lock(ws.lock_path)
        if lock is None:
            return None
        return SyncSession(ws, lock, SyncOptions()).lock_keys()
    except (CkpmError, OSError, ValueError):
        return None


def _on_loopback(url: str) -> bool:
    """Whether ``url`` is served from this machine (127.0.0.0/8, ``localhost``, ``[::1]``)."""
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url.removeprefix("git+")).hostname or "").lower()
    except ValueError:
        return False
    return host in ("localhost", "::1") or host.startswith("127.")

