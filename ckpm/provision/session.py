"""One sync (:class:`SyncSession`): the lock walked per target in dependency order, each
package from the host, the store, or fetched (``fetchers.py``) and built (``build.py``).

The walk and the actions are described in ``ckpm/provision/__init__.py``.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ckpm.errors import BuildError, FetchError, LockError, UnpackError
from ckpm.fsutil import atomic_write
from ckpm.model.lockfile import Lock, LockedDep, LockedPackage, read_lock
from ckpm.model.recipe import FetchSource, PipDist, Recipe
from ckpm.model.recipe import recipe_for as first_recipe_for
from ckpm.model.source import ArchiveSource, GitSource, HostSource
from ckpm.settings import Settings
from ckpm.workspace import Workspace
from ckpm.provision.fetchers import ArchiveFetcher, Fetched, Fetcher, GitTreeFetcher, PipFetcher, fetcher_for

if TYPE_CHECKING:
    from ckpm.build.toolchain import Toolchain
    from ckpm.fetch.mirrors import Mirrors
    from ckpm.store.store import Store

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


def recipe_for(p: LockedPackage, target: str) -> Recipe | None:
    """The first of the package's recipes whose ``targets`` match ``target``."""
    return first_recipe_for(p.install, target)


def sources_of(p: LockedPackage, recipe: Recipe | None) -> list[FetchSource]:
    """The files a recipe builds from: its own ``sources``, else the package's."""
    if recipe is not None and recipe.sources:
        return list(recipe.sources)
    return list(p.sources)


def open_store(settings: Settings) -> "Store":
    from ckpm.store.store import Store

    assert settings.store_dir is not None
    return Store(Path(settings.store_dir), reporter=settings.reporter)


# -- sync ----------------------------------------------------------------------------------

class SyncSession:
    """One sync: the lock, the store, what was learnt (TOFU pins), the prefixes made; one
    fetcher per kind of source (``fetchers.py``); the build step is ``build.py``."""

    def __init__(self, ws: Workspace, lock: Lock, options: SyncOptions) -> None:
        self.ws = ws
        self.lock = lock
        self.options = options
        self.host = ws.host_target
        self.target = options.target or self.host
        self.store = open_store(ws.settings)
        self._mirrors: Mirrors | None = None
        self._vendor_roots: list[Path] | None = None
        self.learnt: list[tuple[LockedPackage, ArchiveSource, str]] = []  # pkg, pinned source, url
        self.learnt_pip: list[tuple[LockedPackage, list[PipDist]]] = []  # first pip installs
        self.keys: dict[tuple[int, str], str] = {}  # (id(package), target) → prefix key or host path
        self.prefixes: dict[tuple[int, str], Path] = {}
        self.result = SyncResult(self.target)
        self._toolchains: dict[str, Toolchain] = {}
        self.using = contextlib.ExitStack()  # shared locks on the cached files this sync builds from
        self.fetchers: dict[type, Fetcher] = {ArchiveSource: ArchiveFetcher(self), GitSource: GitTreeFetcher(self)}
        self.pip_fetcher = PipFetcher(self)

    @property
    def mirrors(self) -> "Mirrors":
        """The mirror rules, read when the first file is fetched (a warm sync fetches nothing)."""
        if self._mirrors is None:
            from ckpm.provision.mirrors import mirrors_for

            self._mirrors = mirrors_for(self.ws)
        return self._mirrors

    @property
    def vendor_roots(self) -> list[Path]:
        """The vendored folders this sync reads (``--mirror DIR``, and those ``[mirrors]`` names)."""
        if self._vendor_roots is None:
            from ckpm.provision.mirrors import vendor_roots

            self._vendor_roots = vendor_roots(self.ws, self.options.mirror_dirs)
        return self._vendor_roots

    @property
    def low_speed(self) -> tuple[int, float]:
        """The low-speed limit of a source download: the index transfers' (HTTP_LIMITS), unless set."""
        if self.options.low_speed is not None:
            return self.options.low_speed
        from ckpm.index.transfer import HTTP_LIMITS

        return HTTP_LIMITS.low_speed_bytes, HTTP_LIMITS.low_speed_seconds

    def time_left(self) -> float | None:
        """Seconds a recipe may run before ``--timeout`` ends the command (None: no limit)."""
        if self.options.deadline is None:
            return None
        left = self.options.deadline - time.monotonic()
        if left <= 0:
            raise BuildError("the command's time limit (--timeout) ran out before the build",
                             hint="raise --timeout; what was built so far is kept")
        return left

    # the files ------------------------------------------------------------------------
    def fetch(self, p: LockedPackage, src: FetchSource) -> Fetched:
        """One source, verified (from the download cache when it is there), by its kind's fetcher."""
        return fetcher_for(self, src).fetch(p, src)

    def use(self, p: LockedPackage, src: FetchSource) -> Path:
        """One source a build reads: fetched (:meth:`fetch`), then held in use until the sync
        ends (a shared lock that ``ckpm cache clean`` respects) and its time refreshed (so
        ``cache clean --older-than`` counts from the last use)."""
        from ckpm.fetch.cache import DownloadCache
        from ckpm.fsutil import shared_lock

        cache = DownloadCache(Path(self.ws.settings.cache_root))
        path = self.fetch(p, src).path
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
            path = self.fetch(p, src).path  # cleaned between the fetch and the lock: once more
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

    # one package ----------------------------------------------------------------------
    def provision(self, p: LockedPackage, t: str) -> Provisioned:
        from ckpm.provision.build import build_prefix, install_python

        if isinstance(p.source, HostSource):
            self.keys[(id(p), t)] = f"host:{p.source.path or p.name}"
            if p.source.path:
                self.prefixes[(id(p), t)] = host_prefix(Path(p.source.path))
            return Provisioned(p.name, p.version, t, "host", p.source.path)
        recipe = recipe_for(p, t)
        sources = sources_of(p, recipe)
        if recipe is not None and recipe.is_pip:
            if self.options.fetch_only:
                return Provisioned(p.name, p.version, t, "nothing", detail="python packages: pip fetches them at sync")
            return install_python(self, p, t, recipe)
        if recipe is None and not self.options.fetch_only:
            return Provisioned(p.name, p.version, t, "nothing",
                               detail=f"no install recipe for {t}" + (" (`ckpm fetch` downloads its sources)"
                                                                      if sources else ""))
        if self.options.fetch_only or recipe is None:
            got = [self.fetch(p, s).path for s in sources]
            if not sources:
                return Provisioned(p.name, p.version, t, "nothing", detail="no sources and no recipe")
            return Provisioned(p.name, p.version, t, "fetched", path=str(got[0]),
                               detail=f"{len(got)} source{'s' if len(got) > 1 else ''} verified")
        if not all(is_pinned(s) for s in sources):  # every hash known before the key is computed (TOFU)
            for s in sources:
                if not is_pinned(s):
                    self.fetch(p, s)
            recipe = recipe_for(p, t)  # the lock's values now carry what was learnt
            assert recipe is not None
            sources = sources_of(p, recipe)
        key = self.key_of(p, t, recipe, sources)
        self.keys[(id(p), t)] = key
        entry = self.store.complete(key)
        if entry is not None:
            self.prefixes[(id(p), t)] = entry.path
            return Provisioned(p.name, p.version, t, "store", str(entry.path), key)
        files = [(self.use(p, s), s) for s in sources]
        self.store.register_root(self.ws.root, self.lock_keys() | {key})  # before building: gc keeps it
        built: list[bool] = []
        ready = recipe

        def build(destdir: Path, prefix: Path) -> dict[str, Any]:
            built.append(True)
            return build_prefix(self, p, t, ready, files, destdir, prefix)

        entry = self.store.install(key, build, meta={"name": p.name, "version": p.version, "target": t,
                                                     "kind": p.kind, "recipe": recipe.to_lock()})
        self.prefixes[(id(p), t)] = entry.path
        if not built:  # another process built it while this one waited for the prefix's lock
            return Provisioned(p.name, p.version, t, "store", str(entry.path), key,
                               detail="built by another ckpm meanwhile")
        return Provisioned(p.name, p.version, t, "built", str(entry.path), key)

    def key_of(self, p: LockedPackage, t: str, recipe: Recipe, sources: list[FetchSource]) -> str:
        from ckpm.store.store import prefix_key

        deps: dict[str, str] = {}
        for d, child_t in self.children(p, t):
            k = self.keys.get((id(d), child_t))
            if k is not None:
                deps[d.name] = k
        full = recipe.to_lock()
        full["sources"] = [{k: v for k, v in s.to_lock().items() if k in ("sha256", "git", "rev", "subdir")}
                           for s in sources]
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
                    if recipe is None or recipe.is_pip:
                        continue
                    sources = sources_of(p, recipe)
                    if all(is_pinned(s) for s in sources):
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

    def toolchain(self, t: str) -> "Toolchain":
        tc = self._toolchains.get(t)
        if tc is None:
            from ckpm.build.toolchain import find_toolchain

            tc = self._toolchains[t] = find_toolchain(t, settings=self.ws.settings, host_target=self.host)
        return tc


def sync(ws: Workspace, lock: Lock, options: SyncOptions | None = None) -> SyncResult:
    """Provision what ``lock`` needs on one target (see the package docstring)."""
    from ckpm.provision.mirrors import git_pins, use_vendored_git

    options = options or SyncOptions()
    run = SyncSession(ws, lock, options)
    ws.mirror_dirs = tuple(dict.fromkeys([*ws.mirror_dirs, *(Path(d).absolute() for d in options.mirror_dirs)]))
    if run.vendor_roots:
        use_vendored_git(ws, git_pins(lock), run.vendor_roots)
    with run.using:
        return _sync(ws, run, options)


def _sync(ws: Workspace, run: SyncSession, options: SyncOptions) -> SyncResult:
    lock = run.lock
    for p, t in needed(lock, run.target, run.host, options.only):
        try:
            run.result.packages.append(run.provision(p, t))
        except (FetchError, UnpackError, BuildError) as e:
            save_learnt(ws, run)  # what was learnt stays learnt
            if p.name not in e.message:
                e.message = f"{p.name} {p.version} ({t}): {e.message}"
                e.args = (e.message,)
            raise
    save_learnt(ws, run)
    if not options.fetch_only:
        run.store.register_root(ws.root, sorted(run.lock_keys()))
    return run.result


def save_learnt(ws: Workspace, run: SyncSession) -> None:
    """Write the sha256 learnt on first use into ckpm.lock (under the project's write lock)."""
    if not run.learnt and not run.learnt_pip:
        return
    with ws.writing():
        current = read_lock(ws.lock_path)
        if current is None:
            return
        changed = False
        by_ident = {q.ident: q for q in current.packages}
        for p, src, url in run.learnt:
            q = by_ident.get(p.ident)
            if q is None:
                continue
            before = (q.sources, q.install)

            def pin(s: FetchSource, src: ArchiveSource = src) -> FetchSource:
                if isinstance(s, ArchiveSource) and s.urls == src.urls and not s.sha256 and src.sha256:
                    return s.pinned(src.sha256, src.size)
                return s

            q.map_sources(pin)
            changed = changed or (q.sources, q.install) != before
            run.result.pinned.append(f"{p.name} {p.version}: {url} sha256:{src.sha256}")
        for p, installed in run.learnt_pip:
            q = by_ident.get(p.ident)
            if q is not None and not q.pip:
                q.pip = installed
                changed = True
                run.result.pinned.append(f"{p.name} {p.version}: python " + ", ".join(
                    f"{d.name} {d.version}" for d in installed))
        if changed:
            atomic_write(ws.lock_path, current.dumps())
            run.result.lock_changed = True
    run.learnt.clear()
    run.learnt_pip.clear()


def host_prefix(path: Path) -> Path:
    """The prefix of a host file: ``/usr`` for ``/usr/bin/gcc``, the folder itself for a folder."""
    if path.is_dir() and not path.name == "bin":
        return path
    parent = path.parent
    return parent.parent if parent.name in ("bin", "lib", "lib64", "include") else parent


def is_pinned(src: FetchSource) -> bool:
    """A source whose content is known from the lock alone: a sha256, or a git commit."""
    return isinstance(src, GitSource) or bool(src.sha256)


def safe_name(s: str) -> str:
    """``s`` as a file name part (log files)."""
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in s)[:80] or "_"
