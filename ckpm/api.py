"""The library API that the CLI, ``access()`` and the tests call.

Each public function takes plain values, does one job, and returns a dataclass (or
raises a CkpmError). Nothing here imports click or prints. This module holds the
commands that change a project (init, add, remove, lock) and ``check``; the read-only
queries live in ``ckpm.queries`` and the project model in ``ckpm.workspace``; both are
re-exported here so that callers need one import.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Iterable, Sequence

from ckpm import __version__
from ckpm.errors import CkpmError, LockError, ProjectError
from ckpm.model.lockfile import Lock, LockedPackage
from ckpm.model.manifest import MANIFEST, parse_project_manifest
from ckpm.model.requirement import Requirement, split_tags
from ckpm.model.targets import host_target
from ckpm.model.version import parse_specifier, try_version
from ckpm.queries import (  # noqa: F401  (re-exported)
    SearchHit, TreeNode, WhyNot, detect_host, index_update, require_lock, search, show, tree, why, why_not,
)
from ckpm.workspace import INDEX_ENV, Options, Workspace, make_indexes  # noqa: F401  (re-exported)

__all__ = [
    "INDEX_ENV", "Options", "Workspace", "make_indexes",
    "init_project", "parse_add_spec", "AddRequest", "LockOutcome", "add", "remove",
    "LockOptions", "lock", "resolve_workspace", "HostDrift", "CheckResult", "check", "host_drift",
    "SearchHit", "TreeNode", "WhyNot", "detect_host", "index_update", "require_lock", "search", "show", "tree",
    "why", "why_not",
]

# -- init / add / remove ------------------------------------------------------------------

def init_project(directory: Path | str, name: str | None = None, *, description: str = "") -> Path:
    """Create ``directory/ckpm.toml`` with a [project] table; refuses to overwrite."""
    from ckpm.fsutil import atomic_write

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
    from ckpm.fsutil import atomic_write

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
    def versions(lk: Lock | None) -> dict[str, str]:
        """name → its locked version(s); a name can have one per target set (host vs index)."""
        out: dict[str, list[str]] = {}
        for p in lk.packages if lk else []:
            out.setdefault(p.name, []).append(p.version)
        return {n: ", ".join(sorted(set(vs), key=lambda v: try_version(v) or v)) for n, vs in out.items()}  # type: ignore[arg-type,return-value]

    before, after = versions(old), versions(new)
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
