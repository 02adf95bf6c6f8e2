"""The library API that the CLI, ``access()`` and the tests call.

Each public function takes plain values, does one job, and returns a dataclass (or
raises a CkpmError). Nothing here imports click or prints.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Iterable, Sequence

from ckpm import __version__
from ckpm.errors import CkpmError, LockError, ProjectError, ResolutionError, UnknownComponent
from ckpm.index.base import Index, open_index
from ckpm.model.lockfile import LOCKFILE, Lock, LockedPackage, read_lock
from ckpm.model.manifest import MANIFEST, ProjectManifest, find_project, load_project, parse_project_manifest
from ckpm.model.requirement import Requirement, split_tags
from ckpm.model.targets import host_target, validate_target
from ckpm.model.version import parse_specifier, try_version

INDEX_ENV = "CKPM_INDEX"


@dataclass
class Options:
    """Settings shared by every command (from the CLI's global flags or the caller)."""

    index_url: str | None = None  # overrides the project's [[index]] list (also $CKPM_INDEX)
    cache_dir: Path | None = None
    offline: bool = False
    no_host: bool = False  # pretend nothing is installed
    refresh_host: bool = False  # ignore the host-profile cache

    def effective_index_url(self) -> str | None:
        return self.index_url or os.environ.get(INDEX_ENV) or None


class Workspace:
    """A project folder: its manifest, its indexes and its lock."""

    def __init__(self, root: Path | str | None = None, options: Options | None = None, *, search_up: bool = True) -> None:
        self.options = options or Options()
        start = Path(root or ".").resolve()
        if search_up:
            self.manifest_path = find_project(start)
        else:
            self.manifest_path = start / MANIFEST
        self.root = self.manifest_path.parent
        self._manifest: ProjectManifest | None = None
        self._indexes: list[Index] | None = None
        self._git_sources: dict[tuple[str, str | None], Any] = {}
        self._host: Any = None

    @property
    def lock_path(self) -> Path:
        return self.root / LOCKFILE

    @property
    def manifest(self) -> ProjectManifest:
        if self._manifest is None:
            self._manifest = load_project(self.manifest_path)
        return self._manifest

    def set_manifest(self, m: ProjectManifest) -> None:
        self._manifest = m
        self._indexes = None

    def read_lock(self) -> Lock | None:
        return read_lock(self.lock_path)

    @property
    def indexes(self) -> list[Index]:
        if self._indexes is None:
            self._indexes = make_indexes(self.manifest, self.options)
        return self._indexes

    def git_source(self, url: str, subdir: str | None) -> Any:
        key = (url, subdir)
        src = self._git_sources.get(key)
        if src is None:
            from ckpm.index.gitsource import GitComponentSource

            src = GitComponentSource(_abs_git_url(url, self.root), subdir=subdir, cache_dir=self.options.cache_dir,
                                     offline=self.options.offline)
            self._git_sources[key] = src
        return src

    def host_source(self) -> Any:
        """Software on this machine as resolution candidates (None with --no-host)."""
        if self.options.no_host:
            return None
        if self._host is None:
            from ckpm.resolve.host import DetectedHost

            self._host = DetectedHost(self.indexes, host_target=host_target(), cache_dir=self.options.cache_dir,
                                      refresh=self.options.refresh_host)
        return self._host

    def targets(self, override: Sequence[str] | None = None) -> list[str]:
        ts = list(override or self.manifest.targets or [host_target()])
        for t in ts:
            validate_target(t)
        return sorted(set(ts))


def _abs_git_url(url: str, root: Path) -> str:
    """Relative paths in a manifest's ``git =`` are relative to the project folder."""
    if "://" in url or url.startswith("git@") or os.path.isabs(url):
        return url
    return str((root / url).resolve())


def make_indexes(manifest: ProjectManifest | None, options: Options) -> list[Index]:
    """The indexes a project reads, in order: --index/$CKPM_INDEX, else [[index]], else the embedded one."""
    url = options.effective_index_url()
    if url:
        return [open_index(url, cache_dir=options.cache_dir, offline=options.offline)]
    if manifest is not None and manifest.indexes:
        out = []
        for ref in manifest.indexes:
            u = ref.url
            if "://" not in u and not os.path.isabs(u) and u != "embedded":
                u = str((manifest.root / u).resolve())
            out.append(open_index(u, name=ref.name, cache_dir=options.cache_dir, offline=options.offline))
        return out
    return [open_index(None)]


# -- init / add / remove ------------------------------------------------------------------

def init_project(directory: Path | str, name: str | None = None, *, description: str = "") -> Path:
    """Create ``directory/ckpm.toml`` with a [project] table; refuses to overwrite."""
    from ckpm.index.writer import atomic_write

    d = Path(directory)
    p = d / MANIFEST
    if p.exists():
        raise ProjectError(f"{p} already exists", hint="edit it, or use `ckpm add` to add dependencies")
    name = name or d.resolve().name
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "project"
    text = (
        "[project]\n"
        f'name = "{slug}"\n'
        'version = "0.1.0"\n'
        f'description = "{description}"\n'
        "\n"
        "[dependencies]\n"
    )
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(p, text)
    return p


_SPEC_SPLIT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:@\s*(.*)|((?:==|!=|>=|<=|~=|>|<|\^|~).*))?$")


def parse_add_spec(spec: str) -> tuple[str, str | None]:
    """``lib-a@>=1.2`` / ``lib-a>=1.2`` / ``lib-a`` → (name, range or None)."""
    m = _SPEC_SPLIT.match(spec.strip())
    if not m:
        raise ProjectError(f"cannot read {spec!r} as NAME or NAME@RANGE", hint="e.g. `ckpm add lib-tensorflow@>=1.13`")
    name = m.group(1).lower()
    rng = m.group(2) if m.group(2) is not None else m.group(3)
    if rng is not None:
        rng = rng.strip()
        if not rng:
            raise ProjectError(f"{spec!r}: empty version range after '@'")
        try:
            parse_specifier(rng)
        except CkpmError as e:
            raise ProjectError(f"{spec!r}: {e.message}", hint=e.hint) from None
    return name, rng


@dataclass
class AddRequest:
    """One dependency to add, as the user gave it."""

    spec: str
    tags: str | None = None
    no_tags: str | None = None
    git: str | None = None
    subdir: str | None = None
    targets: Sequence[str] = ()
    kind: str | None = None
    index: str | None = None
    prefer: str | None = None


@dataclass
class LockOutcome:
    """What a lock-writing command did."""

    lock: Lock
    path: Path
    changed: bool
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    manifest_changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock": str(self.path), "changed": self.changed, "added": self.added, "removed": self.removed,
            "updated": self.updated, "packages": len(self.lock.packages), "targets": self.lock.targets,
        }


def add(ws: Workspace, requests: Sequence[AddRequest], *, lock_options: "LockOptions | None" = None) -> LockOutcome:
    """Add (or change) dependencies in ckpm.toml, resolve, and write both files.

    Nothing is written when resolution fails. With no range given, the newest version
    that resolves is written as ``>=X`` (as uv does).
    """
    import tomlkit

    text = ws.manifest_path.read_text(encoding="utf-8")
    ws.manifest  # validate the current file first
    doc = tomlkit.parse(text)
    if "dependencies" not in doc:
        doc["dependencies"] = tomlkit.table()
    deps = doc["dependencies"]
    open_ranges: list[str] = []
    for rq in requests:
        name, rng = parse_add_spec(rq.spec)
        value = _dep_value(rq, rng)
        if rng is None and not rq.git and not rq.tags:
            open_ranges.append(name)
        if name in deps:
            del deps[name]
        deps[name] = value
    new_text = tomlkit.dumps(doc)
    manifest = parse_project_manifest(new_text, ws.manifest_path)
    ws.set_manifest(manifest)
    outcome = _lock(ws, lock_options or LockOptions(), write=False)
    if open_ranges:  # pin a lower bound at what was chosen, like `uv add`
        doc = tomlkit.parse(new_text)
        for name in open_ranges:
            chosen = [r for r in outcome.lock.roots if r.key == name]
            if chosen:
                lower = min((r.version for r in chosen), key=lambda v: try_version(v) or v)  # type: ignore[arg-type]
                doc["dependencies"][name] = f">={lower}"
        new_text = tomlkit.dumps(doc)
        manifest = parse_project_manifest(new_text, ws.manifest_path)
        ws.set_manifest(manifest)
        outcome.lock.manifest_hash = manifest.content_hash()
        from ckpm.resolve.resolve import original_of

        outcome.lock.roots = [
            replace(r, original=original_of(manifest.dependencies[r.key])) if r.key in open_ranges else r
            for r in outcome.lock.roots
        ]
    _write(ws.manifest_path, new_text)
    outcome.manifest_changed = new_text != text
    _write_lock(ws, outcome)
    return outcome


def _dep_value(rq: AddRequest, rng: str | None) -> Any:
    import tomlkit

    table: dict[str, Any] = {}
    if rng is not None:
        table["version"] = rng
    if rq.tags:
        table["tags"] = ",".join(sorted(split_tags(rq.tags)))
    if rq.no_tags:
        table["no-tags"] = ",".join(sorted(split_tags(rq.no_tags)))
    if rq.git:
        table["git"] = rq.git
    if rq.subdir:
        table["subdir"] = rq.subdir
    if rq.targets:
        table["targets"] = list(rq.targets)
    if rq.kind and rq.kind != "run":
        table["kind"] = rq.kind
    if rq.index:
        table["index"] = rq.index
    if rq.prefer:
        table["prefer"] = rq.prefer
    if set(table) <= {"version"}:
        return table.get("version", "*")
    if "version" not in table:
        table = {"version": "*", **table}
    it = tomlkit.inline_table()
    it.update(table)
    return it


def remove(ws: Workspace, names: Sequence[str], *, lock_options: "LockOptions | None" = None) -> LockOutcome:
    """Remove dependencies from ckpm.toml and re-lock."""
    import tomlkit

    text = ws.manifest_path.read_text(encoding="utf-8")
    current = ws.manifest
    doc = tomlkit.parse(text)
    deps = doc.get("dependencies", {})
    for n in names:
        key = n.lower()
        if key not in current.dependencies:
            near = get_close_matches(key, list(current.dependencies), n=1)
            raise ProjectError(f"{n!r} is not a dependency in {ws.manifest_path}",
                               hint=f"did you mean {near[0]!r}?" if near else "see `ckpm tree` for what is there")
        for k in list(deps):
            if k.lower() == key:
                del deps[k]
    new_text = tomlkit.dumps(doc)
    ws.set_manifest(parse_project_manifest(new_text, ws.manifest_path))
    outcome = _lock(ws, lock_options or LockOptions(), write=False)
    _write(ws.manifest_path, new_text)
    outcome.manifest_changed = True
    _write_lock(ws, outcome)
    return outcome


def _write(path: Path, text: str) -> None:
    from ckpm.index.writer import atomic_write

    atomic_write(path, text)


# -- lock -----------------------------------------------------------------------------------

@dataclass
class LockOptions:
    """How ``lock`` resolves."""

    upgrade: bool = False
    upgrade_packages: Sequence[str] = ()
    targets: Sequence[str] | None = None
    prerelease: bool | None = None  # None: keep what the lock says
    max_rounds: int = 50_000
    timeout: float = 120.0
    locked: bool = False  # fail instead of changing the lock (and on host drift)
    allow_host_drift: bool = False  # with locked: host drift is a warning


def lock(ws: Workspace, options: LockOptions | None = None) -> LockOutcome:
    """Resolve the project and write ckpm.lock (only when it changes)."""
    if options is not None and options.locked and not options.allow_host_drift:
        lk = ws.read_lock()
        drift = [d for p in (lk.packages if lk else []) if p.source_kind == "host" and host_target() in p.targets
                 for d in [host_drift(p)] if d is not None]
        if drift:
            from ckpm.errors import HostDriftError

            raise HostDriftError(f"this host differs from what {ws.lock_path.name} recorded",
                                 details=[f"{d.name}: expected {d.expected}, found {d.found}; {d.action}" for d in drift],
                                 hint="install what the lock expects, or pass --allow-host-drift to go on")
    outcome = _lock(ws, options or LockOptions(), write=False)
    if options is not None and options.locked and outcome.changed:
        raise LockError(f"{ws.lock_path} is not up to date and --locked forbids changing it",
                        details=_change_lines(outcome), hint="run `ckpm lock` without --locked")
    _write_lock(ws, outcome)
    return outcome


def _pins(old: Lock | None, targets: Sequence[str], upgrade: bool, upgrade_packages: Iterable[str]):
    from ckpm.model.lockfile import _source_id
    from ckpm.resolve.factory import Pin

    per_target: dict[str, dict[str, Pin]] = {}
    if old is None or upgrade:
        return per_target
    skip = {n.lower() for n in upgrade_packages}
    for p in old.packages:
        if p.name in skip or skip & set(p.keys):
            continue
        pin = Pin(p.name, p.version, _source_id(p.source))
        for t in p.targets:
            for k in p.keys:
                per_target.setdefault(t, {})[k] = pin
    return per_target


def resolve_workspace(ws: Workspace, options: LockOptions, *, extra: Sequence[Requirement] = (), old: Lock | None = None):
    """Resolve for every target; returns (results, prerelease flag)."""
    from ckpm.resolve.resolve import Budget, resolve_target

    targets = ws.targets(options.targets)
    prerelease = options.prerelease if options.prerelease is not None else bool(old and old.prerelease)
    per_target = _pins(old, targets, options.upgrade, options.upgrade_packages)
    known = {p.lower() for p in options.upgrade_packages}
    if known and old is not None:
        names = {p.name for p in old.packages} | {k for p in old.packages for k in p.keys}
        for n in known - names:
            near = get_close_matches(n, sorted(names), n=1)
            raise ProjectError(f"--upgrade-package {n}: no such package in {ws.lock_path}",
                               hint=f"did you mean {near[0]!r}?" if near else "see `ckpm tree`")
    htarget = host_target()
    results = []
    for t in targets:
        pins = dict(per_target.get(t, {}))
        if t != htarget:
            pins.update({f"{k}@{htarget}": v for k, v in per_target.get(htarget, {}).items()})
        results.append(resolve_target(
            ws.manifest.dependencies, t, ws.indexes, host_target=htarget, pins=pins, prerelease=prerelease,
            git_source=ws.git_source, host=ws.host_source(),
            budget=Budget(max_rounds=options.max_rounds, seconds=options.timeout), extra=extra,
        ))
    return results, prerelease


def _lock(ws: Workspace, options: LockOptions, *, write: bool) -> LockOutcome:
    from ckpm.resolve.resolve import build_lock

    try:
        old = ws.read_lock()
    except LockError:
        old = None  # an unreadable lock is replaced
    results, prerelease = resolve_workspace(ws, options, old=old)
    new = build_lock(
        results, manifest_hash=ws.manifest.content_hash(),
        indexes=[{"name": i.name, "url": i.url, "revision": i.revision()} for i in ws.indexes],
        ckpm_version=__version__, prerelease=prerelease,
    )
    outcome = LockOutcome(lock=new, path=ws.lock_path, changed=True)
    _diff(old, new, outcome)
    if write:
        _write_lock(ws, outcome)
    return outcome


def _diff(old: Lock | None, new: Lock, outcome: LockOutcome) -> None:
    before = {p.name: p.version for p in old.packages} if old else {}
    after = {p.name: p.version for p in new.packages}
    outcome.added = sorted(f"{n} {v}" for n, v in after.items() if n not in before)
    outcome.removed = sorted(f"{n} {v}" for n, v in before.items() if n not in after)
    outcome.updated = sorted(f"{n} {before[n]} -> {v}" for n, v in after.items() if n in before and before[n] != v)
    outcome.changed = old is None or old.dumps() != new.dumps()


def _change_lines(o: LockOutcome) -> list[str]:
    return [f"+ {x}" for x in o.added] + [f"- {x}" for x in o.removed] + [f"~ {x}" for x in o.updated]


def _write_lock(ws: Workspace, outcome: LockOutcome) -> None:
    text = outcome.lock.dumps()
    try:
        current = ws.lock_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    outcome.changed = current != text
    if outcome.changed:
        _write(ws.lock_path, text)


# -- check ----------------------------------------------------------------------------------

@dataclass
class HostDrift:
    """One host-satisfied package that is not on this machine as the lock recorded it."""

    name: str
    expected: str
    found: str
    action: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CheckResult:
    """What ``lock --check`` found: no problems and no (disallowed) drift means the lock holds."""

    ok: bool
    problems: list[str]
    lock_path: Path
    drift: list[HostDrift] = field(default_factory=list)
    drift_allowed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "lock": str(self.lock_path),
                "host_drift": [d.to_dict() for d in self.drift], "drift_allowed": self.drift_allowed}


def check(ws: Workspace, *, targets: Sequence[str] | None = None, allow_host_drift: bool = False) -> CheckResult:
    """Is ckpm.lock still valid for ckpm.toml, the indexes, the git tags and this host? Never writes."""
    problems: list[str] = []
    lk = ws.read_lock()
    if lk is None:
        return CheckResult(False, [f"{ws.lock_path} does not exist; run `ckpm lock`"], ws.lock_path)
    if lk.manifest_hash != ws.manifest.content_hash():
        problems.append(f"{ws.manifest_path.name} changed since the lock was written (dependencies, indexes or targets)")
    want = ws.targets(targets)
    missing_t = sorted(set(want) - set(lk.targets))
    if missing_t:
        problems.append(f"the lock has no resolution for target(s) {', '.join(missing_t)}")
    drift: list[HostDrift] = []
    htarget = host_target()
    for p in sorted(lk.packages, key=lambda p: p.ident):
        if p.source_kind == "host":
            if htarget in p.targets:
                d = host_drift(p)
                if d is not None:
                    drift.append(d)
            continue
        problems.extend(_check_package(ws, p))
    ok = not problems and (not drift or allow_host_drift)
    return CheckResult(ok, problems, ws.lock_path, drift, allow_host_drift)


def host_drift(p: LockedPackage) -> HostDrift | None:
    """Re-probe one host-satisfied package; None when it is still there as locked."""
    from ckpm.detect import recheck

    src = p.source
    record = {"name": p.name, "version": p.version, "path": src.get("path"), "detector": src.get("host"),
              "fingerprint": src.get("fingerprint") or "", "extra": {"rule": src["rule"]} if src.get("rule") else {}}
    where = f" at {src['path']}" if src.get("path") else ""
    now = recheck(record)
    if now is None:
        return HostDrift(p.name, f"{p.version}{where}", "missing",
                         f"install {p.name} {p.version}, or run `ckpm lock` to choose another candidate")
    if now.version != p.version:
        return HostDrift(p.name, f"{p.version}{where}", f"{now.version}{where}",
                         f"install {p.name} {p.version}, or run `ckpm lock` to pin {now.version}")
    if src.get("fingerprint") and now.fingerprint and now.fingerprint != src.get("fingerprint"):
        return HostDrift(p.name, f"{p.version}{where}", f"{now.version}{where} (the file changed)",
                         "run `ckpm lock` to record the new file")
    return None


def _check_package(ws: Workspace, p: LockedPackage) -> list[str]:
    src = p.source
    if "git" in src:
        gs = ws.git_source(src["git"], src.get("subdir"))
        try:
            now = gs.commit_of(src.get("tag"))
        except CkpmError as e:
            return [f"{p.name} {p.version}: cannot read {src['git']}: {e.message}"]
        if now is None:
            return [f"{p.name} {p.version}: tag {src.get('tag')} no longer exists in {src['git']}"]
        if now != src.get("rev"):
            return [f"{p.name} {p.version}: tag {src.get('tag')} of {src['git']} moved from "
                    f"{str(src.get('rev'))[:12]} to {now[:12]} since the lock was written"]
        return []
    if "index" in src:
        idx = next((i for i in ws.indexes if i.name == src["index"]), None)
        if idx is None:
            return [f"{p.name} {p.version}: index {src['index']!r} is no longer configured"]
        entry = next((e for e in idx.entries(p.name) if e.version_text == p.version), None)
        if entry is None:
            return [f"{p.name} {p.version}: no longer in index {idx.name} ({idx.url})"]
        if src.get("cksum") and entry.cksum != src.get("cksum"):
            return [f"{p.name} {p.version}: checksum in index {idx.name} changed "
                    f"({src.get('cksum')} -> {entry.cksum}); a published version must not change"]
    return []


# -- queries --------------------------------------------------------------------------------

def require_lock(ws: Workspace) -> Lock:
    lk = ws.read_lock()
    if lk is None:
        raise LockError(f"{ws.lock_path} does not exist", hint="run `ckpm lock` first")
    return lk


@dataclass
class TreeNode:
    key: str
    name: str
    version: str
    source: str
    children: list["TreeNode"] = field(default_factory=list)
    repeated: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"key": self.key, "name": self.name, "version": self.version, "source": self.source}
        if self.repeated:
            d["repeated"] = True
        d["dependencies"] = [c.to_dict() for c in self.children]
        return d


def tree(ws: Workspace, target: str | None = None) -> dict[str, list[TreeNode]]:
    """The locked graph per target: roots and their dependencies (repeats marked, not expanded)."""
    lk = require_lock(ws)
    targets = [target] if target else lk.targets
    for t in targets:
        if t not in lk.targets:
            raise LockError(f"the lock has no resolution for {t}", hint=f"locked targets: {', '.join(lk.targets)}")
    out: dict[str, list[TreeNode]] = {}
    for t in targets:
        seen: set[tuple[str, str]] = set()

        def node(key: str, name: str, version: str) -> TreeNode:
            pkg = next((p for p in lk.packages if p.name == name and p.version == version and t in p.targets), None)
            src = pkg.source_kind if pkg else "?"
            n = TreeNode(key, name, version, src)
            if (name, version) in seen:
                n.repeated = bool(pkg and pkg.dependencies)
                return n
            seen.add((name, version))
            if pkg:
                for d in sorted(pkg.dependencies, key=lambda d: d.key):
                    if d.targets is None or t in d.targets:
                        n.children.append(node(d.key, d.name, d.version))
            return n

        out[t] = [node(r.key, r.name, r.version) for r in sorted(lk.roots, key=lambda r: r.key)
                  if r.targets is None or t in r.targets]
    return out


def why(ws: Workspace, name: str) -> list[list[str]]:
    """Every chain from the project to ``name`` in the lock: ``["the project", "a 1.0 (key)", ...]``."""
    lk = require_lock(ws)
    key = name.lower()
    found = [p for p in lk.packages if p.name == key or key in p.keys]
    if not found:
        names = sorted({p.name for p in lk.packages})
        near = get_close_matches(key, names, n=1)
        raise UnknownComponent(f"{name!r} is not in {ws.lock_path}",
                               hint=f"did you mean {near[0]!r}?" if near else "see `ckpm tree`")
    parents: dict[tuple[str, str], list[tuple[LockedPackage, str]]] = {}
    for p in lk.packages:
        for d in p.dependencies:
            parents.setdefault((d.name, d.version), []).append((p, d.key))
    roots = {(r.name, r.version): r for r in lk.roots}
    chains: list[list[str]] = []

    def walk(nm: str, ver: str, path: list[str], seen: set[tuple[str, str]]) -> None:
        if (nm, ver) in roots:
            r = roots[(nm, ver)]
            chains.append(["the project", f"requires {r.key} {r.original or '*'}", *path])
        for parent, k in sorted(parents.get((nm, ver), []), key=lambda x: (x[0].name, x[0].version)):
            if (parent.name, parent.version) in seen:
                continue
            walk(parent.name, parent.version, [f"{parent.name} {parent.version} requires {k}", *path],
                 seen | {(parent.name, parent.version)})

    for p in found:
        walk(p.name, p.version, [f"{p.name} {p.version}"], {(p.name, p.version)})
    return chains


@dataclass
class WhyNot:
    name: str
    version: str
    possible: bool
    lines: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "possible": self.possible, "explanation": self.lines}


def why_not(ws: Workspace, name: str, version: str, *, target: str | None = None) -> WhyNot:
    """Explain why ``name`` ``version`` is not in the lock (or could not be)."""
    from ckpm.resolve.factory import CandidateFactory
    from ckpm.resolve.candidates import Req

    key = name.lower()
    t = target or ws.targets()[0]
    v = try_version(version)
    if v is None:
        raise ProjectError(f"{version!r} is not a version")
    lines: list[str] = []
    req = ws.manifest.dependencies.get(key)
    factory = CandidateFactory(ws.indexes, main_target=t, host_target=host_target(), git_source=ws.git_source)
    probe = Requirement(key=key, spec=parse_specifier(f"=={version}"),
                        git=req.git if req else None, subdir=req.subdir if req else None)
    cands = [c for c in factory.all_candidates(key, [Req(probe, t, key)]) if c.version == v]
    if not cands:
        have = sorted({c.version.text for c in factory.all_candidates(key, [Req(probe, t, key)])},
                      key=lambda s: try_version(s))  # type: ignore[arg-type,return-value]
        lines.append(f"{key} {version} does not exist in " + ", ".join(i.name for i in ws.indexes)
                     + (f" (known versions: {', '.join(have[-8:])})" if have else ""))
        return WhyNot(key, version, False, lines)
    c = cands[0]
    if c.entry.yanked:
        lines.append(f"{key} {version} is yanked: new resolutions skip it")
    if not c.entry.supports(t):
        lines.append(f"{key} {version} does not support target {t} (supports {', '.join(c.entry.targets)})")
    if c.version.is_prerelease:
        lines.append(f"{key} {version} is a pre-release: chosen only with --prerelease or a range that names one")
    if req is not None:
        reason = factory.reasons_against(Req(req, t, key), c)
        if reason:
            lines.append(f"ckpm.toml asks for {req.describe()}: {reason}")
    extra = Requirement(key=key, spec=parse_specifier(f"=={version}"), git=req.git if req else None,
                        subdir=req.subdir if req else None, tags=req.tags if req else frozenset())
    try:
        results, _ = resolve_workspace(ws, LockOptions(targets=[t], prerelease=True), extra=[extra])
    except ResolutionError as e:
        lines.append(e.message)
        lines.extend(e.details)
        return WhyNot(key, version, False, lines)
    if lines:
        return WhyNot(key, version, False, lines)
    lk = ws.read_lock()
    chosen = [p for p in (lk.packages if lk else []) if p.name == key or key in p.keys]
    if chosen:
        lines.append(f"{key} {version} would resolve; the lock has {', '.join(p.name + ' ' + p.version for p in chosen)} "
                     "because ckpm keeps locked pins and otherwise prefers the newest version")
        locked = {p.name: p.version for p in (lk.packages if lk else []) if t in p.targets}
        moves = sorted(f"{c.name} {locked[c.name]} -> {c.version.text}" for c in results[0].mapping.values()
                       if c.name != key and c.name in locked and locked[c.name] != c.version.text)
        if moves:
            lines.append("taking it would also change: " + ", ".join(moves))
        lines.append(f"to move to it: ckpm add {key}@=={version}  (or widen the range and run `ckpm lock --upgrade-package {key}`)")
    else:
        lines.append(f"{key} {version} would resolve, but nothing in the project depends on {key}")
    return WhyNot(key, version, True, lines)


# -- search / show --------------------------------------------------------------------------

@dataclass
class SearchHit:
    name: str
    kind: str
    latest: str
    tags: list[str]
    description: str
    index: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def search(indexes: Sequence[Index], *, text: str | None = None, tags: str | None = None,
           kind: str | None = None, limit: int | None = None) -> list[SearchHit]:
    """Components whose tags include ``tags`` and whose name/description contain ``text``."""
    want = split_tags(tags)
    needle = (text or "").lower()
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for idx in indexes:
        for s in idx.summaries():
            if s.name in seen or not want <= s.tags or (kind and s.kind != kind):
                continue
            if needle and needle not in s.name and needle not in s.description.lower() and needle not in s.tags:
                continue
            seen.add(s.name)
            rel = [v for v in s.versions if (tv := try_version(v)) is not None and not tv.is_prerelease] or list(s.versions)
            latest = max(rel, key=lambda v: try_version(v) or try_version("0")) if rel else ""  # type: ignore[arg-type,return-value]
            hits.append(SearchHit(s.name, s.kind, latest, sorted(s.tags), s.description, idx.name))
    hits.sort(key=lambda h: (not (needle and h.name.startswith(needle)), h.name))
    return hits[:limit] if limit else hits


def show(indexes: Sequence[Index], name: str) -> dict[str, Any]:
    """Everything the indexes say about one component: versions, tags, deps, targets, source."""
    key = name.lower()
    for idx in indexes:
        es = idx.entries(key)
        if es:
            return {
                "name": key, "index": idx.name, "index_url": idx.url,
                "kind": es[-1].kind, "description": es[-1].description,
                "versions": [
                    {"version": e.version_text, "tags": list(e.tags), "targets": list(e.targets),
                     "deps": [dict(d) for d in e.deps_raw], "source": dict(e.source), "cksum": e.cksum,
                     "yanked": e.yanked, "pubtime": e.pubtime, "detect": [dict(d) for d in e.detect]}
                    for e in es
                ],
            }
    from ckpm.resolve.factory import CandidateFactory

    raise CandidateFactory(indexes, main_target=host_target(), host_target=host_target()).unknown(key)


def index_update(indexes: Sequence[Index]) -> list[dict[str, Any]]:
    """Fetch git indexes (and revalidate HTTP ones); returns each index's revision."""
    out = []
    for idx in indexes:
        upd = getattr(idx, "update", None)
        if callable(upd):
            upd()
        out.append({"name": idx.name, "url": idx.url, "revision": idx.revision()})
    return out


# -- detect ---------------------------------------------------------------------------------

def detect_host(indexes: Sequence[Index], *, key: str | None = None, manifest: ProjectManifest | None = None,
                refresh: bool = False, cache_dir: Path | None = None) -> Any:
    """Host facts and the software that the indexes' detect rules find (all, or for one key).

    ``key`` is a component name or, inside a project, a dependency key (a capability key
    detects every component that carries its tags).
    """
    from ckpm.detect import detect
    from ckpm.detect.rules import rules_from_index, rules_of_entries

    rules: dict[str, Any] = {}
    if key is None:
        for idx in reversed(list(indexes)):
            rules.update(rules_from_index(idx))
    else:
        k = key.lower()
        names: list[str] = []
        if any(idx.entries(k) for idx in indexes):
            names = [k]
        else:
            req = manifest.dependencies.get(k) if manifest else None
            if req is None or not req.tags:
                from ckpm.resolve.factory import CandidateFactory

                raise CandidateFactory(indexes, main_target=host_target(), host_target=host_target()).unknown(k)
            for idx in indexes:
                names.extend(s.name for s in idx.summaries() if req.tags <= s.tags)
        for n in sorted(set(names)):
            es = next((idx.entries(n) for idx in indexes if idx.entries(n)), [])
            r = rules_of_entries(es)
            if r:
                rules[n] = r
        if not rules:
            raise UnknownComponent(f"nothing in the index says how to detect {key!r}",
                                   hint="an index entry needs `detect` rules; see docs/detection.md")
    from ckpm.resolve.host import PYTHON_ENV

    return detect(rules, refresh=refresh, cache_dir=cache_dir, python=os.environ.get(PYTHON_ENV) or None)
