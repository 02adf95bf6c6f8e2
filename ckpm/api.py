"""The library API that the CLI, ``access()`` and the tests call.

Each public function takes plain values, does one job, and returns a dataclass (or
raises a CkpmError). Nothing here imports click or prints. This module holds the
commands that change a project (init, add, remove, lock) and ``check``; the read-only
queries live in ``ckpm.queries`` and the project model in ``ckpm.workspace``; both are
re-exported here so that callers need one import.

Commands that write take the project's write lock (:meth:`Workspace.writing`) around the
whole read-resolve-write, so concurrent ckpm processes serialise and none loses an edit.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ckpm import __version__
from ckpm.errors import (CkpmError, HostDriftError, LockError, NotADependency, ProjectError, StaleLock, TagMoved,
                         UnverifiableLock)
from ckpm.fsutil import atomic_write
from ckpm.lazy import lazy_exports
from ckpm.model.lockfile import Lock, LockedPackage
from ckpm.model.manifest import MANIFEST, parse_project_manifest
from ckpm.model.requirement import split_tags
from ckpm.model.source import GitSource, HostSource, IndexSource
from ckpm.model.version import parse_specifier, try_version
from ckpm.settings import Settings
from ckpm.workspace import (  # noqa: F401  (re-exported)
    INDEX_ENV, LockOptions, Workspace, make_indexes, resolve_workspace,
)

_QUERIES = ("SearchHit", "TreeNode", "WhyNot", "detect_host", "index_update", "require_lock", "search", "show",
            "tree", "why", "why_not")
if TYPE_CHECKING:
    from ckpm.fetch.vendor import VendorResult
    from ckpm.provision import SyncOptions, SyncResult
    from ckpm.queries import (  # noqa: F401  (re-exported)
        SearchHit, TreeNode, WhyNot, detect_host, index_update, require_lock, search, show, tree, why, why_not,
    )


# the read-only questions of ckpm.queries, re-exported here and imported when first asked for
# (a warm `ckpm run` never needs them)
__getattr__ = lazy_exports(__name__, dict.fromkeys(_QUERIES, "ckpm.queries"))


__all__ = [
    "INDEX_ENV", "Settings", "Workspace", "make_indexes",
    "init_project", "parse_add_spec", "AddRequest", "LockOutcome", "add", "remove",
    "LockOptions", "lock", "resolve_workspace", "HostDrift", "CheckResult", "check", "host_drift", "verify_packages",
    "SearchHit", "TreeNode", "WhyNot", "detect_host", "index_update", "require_lock", "search", "show", "tree",
    "why", "why_not",
]

# -- init / add / remove ------------------------------------------------------------------

def init_project(directory: Path | str, name: str | None = None, *, description: str = "") -> Path:
    """Create ``directory/ckpm.toml`` with a [project] table; refuses to overwrite."""
    d = Path(directory)
    p = d / MANIFEST
    if p.exists():
        raise ProjectError(f"{p} already exists", hint="edit it, or use `ckpm add` to add dependencies")
    name = name or d.resolve().name
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "project"
    desc = description.replace("\\", "\\\\").replace('"', '\\"')
    text = (
        "[project]\n"
        f'name = "{slug}"\n'
        'version = "0.1.0"\n'
        f'description = "{desc}"\n'
        "\n"
        "[dependencies]\n"
    )
    try:
        d.mkdir(parents=True, exist_ok=True)
        atomic_write(p, text)
    except OSError as e:
        raise ProjectError(f"cannot create {p}: {e.strerror or e}",
                           hint="choose a folder you can write to") from None
    return p


_SPEC_SPLIT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:@\s*(.*)|((?:==|!=|>=|<=|~=|>|<|\^|~).*))?$")


def _shell_redirect_hint(spec: str) -> str:
    """The hint for ``NAME@`` with nothing after it: most often the shell read ``>=1.13`` as a
    redirection and has just created a file named ``=1.13`` in the current folder."""
    quoted = f"ckpm add '{spec}>=1.0'"
    try:
        now = time.time()
        made = sorted(q.name for q in Path.cwd().iterdir()
                      if q.name.startswith("=") and q.is_file() and now - q.stat().st_mtime < 120)
    except OSError:
        made = []
    if made:
        return (f"the shell read '>' as a redirection and created the file {made[0]!r} here; "
                f"quote the spec, e.g. {quoted}, and remove that file")
    return f"give a range after '@', quoted so that the shell keeps '>' and '<', e.g. {quoted}"


def parse_add_spec(spec: str) -> tuple[str, str | None]:
    """``lib-a@>=1.2`` / ``lib-a>=1.2`` / ``lib-a`` → (name, range or None)."""
    m = _SPEC_SPLIT.match(spec.strip())
    if not m:
        raise ProjectError(f"cannot read {spec!r} as NAME or NAME@RANGE", hint="e.g. `ckpm add 'lib-tensorflow@>=1.13'`")
    name = m.group(1).lower()
    rng = m.group(2) if m.group(2) is not None else m.group(3)
    if rng is not None:
        rng = rng.strip()
        if not rng:
            raise ProjectError(f"{spec!r}: empty version range after '@'", hint=_shell_redirect_hint(spec))
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
    resolved: bool = True  # False: the lock still held, so nothing was resolved

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock": str(self.path), "changed": self.changed, "added": self.added, "removed": self.removed,
            "updated": self.updated, "packages": len(self.lock.packages), "targets": self.lock.targets,
            "resolved": self.resolved,
        }


def add(ws: Workspace, requests: Sequence[AddRequest], *, lock_options: LockOptions | None = None) -> LockOutcome:
    """Add (or change) dependencies in ckpm.toml, resolve, and write both files.

    An existing dependency keeps everything the request does not change (its table, its
    comments). Nothing is written when resolution fails. With no range given, the newest
    version that resolves is written as ``>=X`` (as uv does).
    """
    import tomlkit

    parsed = [(rq, *parse_add_spec(rq.spec)) for rq in requests]  # a bad spec fails before any lock
    options = lock_options or LockOptions()
    ws.set_deadline(options.timeout)
    with ws.writing():
        original = _read_manifest_text(ws)
        text = original.text
        ws.manifest  # validate the current file first
        doc = tomlkit.parse(text)
        if "dependencies" not in doc:
            doc["dependencies"] = tomlkit.table()
        deps = doc["dependencies"]
        open_ranges: list[str] = []
        for rq, name, rng in parsed:
            if rng is None and not rq.git and not rq.tags and name not in deps:
                open_ranges.append(name)
            _set_dependency(deps, name, rq, rng)
        new_text = tomlkit.dumps(doc)
        manifest = parse_project_manifest(new_text, ws.manifest_path)
        ws.set_manifest(manifest)
        outcome = _lock(ws, options)
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
        atomic_write(ws.manifest_path, original.restore(new_text))
        outcome.manifest_changed = new_text != text
        _write_lock(ws, outcome)
    return outcome


@dataclass(frozen=True)
class _ManifestText:
    """ckpm.toml as an editor saved it: its text with plain ``\n`` line ends and no BOM for
    tomlkit, and how to write an edited text back the way the user keeps the file."""

    text: str
    crlf: bool = False
    bom: bool = False

    def restore(self, new_text: str) -> str:
        """``new_text`` with the file's own line endings and BOM."""
        if self.crlf:
            new_text = new_text.replace("\r\n", "\n").replace("\n", "\r\n")
        return ("\ufeff" if self.bom else "") + new_text


def _read_manifest_text(ws: Workspace) -> _ManifestText:
    try:
        with open(ws.manifest_path, encoding="utf-8", newline="") as f:
            raw = f.read()
    except (OSError, UnicodeDecodeError):
        ws.manifest  # raises the manifest's own one-line error
        raise
    bom = raw.startswith("\ufeff")
    if bom:
        raw = raw[1:]
    crlf = "\r\n" in raw
    return _ManifestText(raw.replace("\r\n", "\n") if crlf else raw, crlf=crlf, bom=bom)


def _set_dependency(deps: Any, name: str, rq: AddRequest, rng: str | None) -> None:
    """Write ``name`` into ``[dependencies]``: a new entry, or only what ``rq`` changes of an old one."""
    import tomlkit

    changes: dict[str, Any] = {}
    if rng is not None:
        changes["version"] = rng
    if rq.tags:
        changes["tags"] = ",".join(sorted(split_tags(rq.tags)))
    if rq.no_tags:
        changes["no-tags"] = ",".join(sorted(split_tags(rq.no_tags)))
    if rq.git:
        changes["git"] = rq.git
    if rq.subdir:
        changes["subdir"] = rq.subdir
    if rq.targets:
        changes["targets"] = list(rq.targets)
    if rq.kind and rq.kind != "run":
        changes["kind"] = rq.kind
    if rq.index:
        changes["index"] = rq.index
    if rq.prefer:
        changes["prefer"] = rq.prefer
    key = next((k for k in deps if k.lower() == name), None)
    if key is not None:
        old = deps[key]
        if isinstance(old, dict):  # a table: change only the keys the request names
            for k, v in changes.items():
                old[k] = v
            return
        if set(changes) <= {"version"}:  # a plain range: replace it, keep the line's comment
            if "version" in changes:
                deps[key] = changes["version"]
            return
        changes = {"version": str(old), **changes}
        del deps[key]
    if set(changes) <= {"version"}:
        deps[name] = changes.get("version", "*")
        return
    table = tomlkit.inline_table()
    table.update({"version": "*", **changes})
    deps[name] = table


def remove(ws: Workspace, names: Sequence[str], *, lock_options: LockOptions | None = None) -> LockOutcome:
    """Remove dependencies from ckpm.toml and re-lock."""
    from difflib import get_close_matches
    import tomlkit

    options = lock_options or LockOptions()
    ws.set_deadline(options.timeout)
    with ws.writing():
        original = _read_manifest_text(ws)
        current = ws.manifest
        doc = tomlkit.parse(original.text)
        deps = doc.get("dependencies", {})
        for n in names:
            key = n.lower()
            if key not in current.dependencies:
                near = get_close_matches(key, list(current.dependencies), n=1)
                raise NotADependency(f"{n!r} is not a dependency in {ws.manifest_path}",
                                   hint=f"did you mean {near[0]!r}?" if near else "see `ckpm tree` for what is there")
            for k in list(deps):
                if k.lower() == key:
                    del deps[k]
        new_text = tomlkit.dumps(doc)
        ws.set_manifest(parse_project_manifest(new_text, ws.manifest_path))
        outcome = _lock(ws, options)
        atomic_write(ws.manifest_path, original.restore(new_text))
        outcome.manifest_changed = True
        _write_lock(ws, outcome)
    return outcome


# -- lock -----------------------------------------------------------------------------------

def lock(ws: Workspace, options: LockOptions | None = None) -> LockOutcome:
    """Resolve the project and write ckpm.lock (only when it changes).

    With ``locked``, nothing is resolved or written: the lock must hold as :func:`check`
    defines it (StaleLock, exit 3, if not; HostDriftError, exit 4, on host drift unless
    ``allow_host_drift``).
    """
    options = options or LockOptions()
    ws.set_deadline(options.timeout)
    if options.locked:
        res = check(ws, targets=options.targets, allow_host_drift=options.allow_host_drift)
        res.raise_for_status(ws, locked=True)
        for n in res.vendored:  # verified, from a vendored folder: said, not warned
            ws.reporter.note(f"note: {n}")
        lk = ws.read_lock()
        assert lk is not None
        return LockOutcome(lock=lk, path=ws.lock_path, changed=False)
    try:  # the common case, an unchanged lock, needs no write lock (readers never need one)
        current = ws.read_lock()
    except LockError:
        current = None
    if current is not None and _still_holds(ws, current, options):
        return LockOutcome(lock=current, path=ws.lock_path, changed=False, resolved=False)
    with ws.writing():
        outcome = _lock(ws, options)
        _write_lock(ws, outcome)
    return outcome


def _lock(ws: Workspace, options: LockOptions) -> LockOutcome:
    """Resolve and build the new lock (nothing written)."""
    from ckpm.resolve.resolve import build_lock

    try:
        old = ws.read_lock()
    except LockError as e:
        ws.reporter.warning(f"{e.message}; it is rewritten")
        old = None
    if old is not None and _still_holds(ws, old, options):
        return LockOutcome(lock=old, path=ws.lock_path, changed=False, resolved=False)
    results, prerelease = resolve_workspace(ws, options, old=old)
    new = build_lock(
        results, manifest_hash=ws.manifest.content_hash(),
        indexes=[{"name": i.name, "url": i.url, "revision": i.revision()} for i in ws.indexes],
        ckpm_version=__version__, prerelease=prerelease,
    )
    new.carry_pins(old)
    _verify_published_tags(ws, new, old, upgrade=options.upgrade, upgrade_packages=options.upgrade_packages)
    outcome = LockOutcome(lock=new, path=ws.lock_path, changed=True)
    _diff(old, new, outcome)
    _warn_unprovidable(ws, new)
    return outcome


#: kinds that are used as installed software: locked from an index line, they need a recipe
_INSTALLED_KINDS = ("compiler", "tool", "lib")


def _warn_unprovidable(ws: Workspace, new: Lock) -> None:
    """Say at lock time what `ckpm sync` could not provide: a compiler, tool or library that is
    not on this machine and whose index line has no install recipe for its target (a capability
    such as `compiler = { tags = "compiler,lang-c" }` on a machine without gcc)."""
    from ckpm.provision import recipe_for

    for p in new.packages:
        if isinstance(p.source, HostSource) or p.kind not in _INSTALLED_KINDS:
            continue
        missing = [t for t in p.targets if recipe_for(p, t) is None]
        if missing:
            ws.reporter.warning(
                f"{p.name} {p.version} is not on this machine and its index line has no install recipe for "
                f"{', '.join(missing)}: `ckpm sync` cannot provide it; install it (detection will find it), "
                f"or ask for a component that this machine has")


def _still_holds(ws: Workspace, old: Lock, options: LockOptions) -> bool:
    """True when a plain re-lock would write ``old`` again, so resolving can be skipped.

    A resolution keeps every locked pin that still satisfies; when the manifest is the
    one the lock was made from, every locked package is still in its index (or git tag)
    with the dependencies it had, and the host still has what the lock took from it, the
    resolution would choose exactly the lock. Options that change the answer (--upgrade,
    --upgrade-package, other targets, another pre-release policy, --no-host over host
    pins) always resolve.
    """
    if options.upgrade or options.upgrade_packages:
        return False
    if options.targets and sorted(set(options.targets)) != sorted(old.targets):
        return False
    if options.prerelease is not None and options.prerelease != old.prerelease:
        return False
    if ws.settings.no_host and any(isinstance(p.source, HostSource) and not p.source.fact for p in old.packages):
        return False
    res = check(ws, targets=options.targets or None, lock=old, verify_published_tags=False)
    # a line read from a vendored folder verifies as the index's would (the index is not reachable here)
    return res.ok and not res.problems and not res.drift and all(n in res.vendored for n in res.notes)


def _describe_source(p: LockedPackage) -> str:
    src = p.source
    if isinstance(src, HostSource):
        return f"host {src.path}" if src.path else "host"
    if isinstance(src, GitSource):
        return f"git {src.rev[:12]}"
    return src.kind


def _diff(old: Lock | None, new: Lock, outcome: LockOutcome) -> None:
    """What changed between two locks, per name: versions, and for the same version, its source."""
    def versions(lk: Lock | None) -> dict[str, dict[str, LockedPackage]]:
        out: dict[str, dict[str, LockedPackage]] = {}
        for p in lk.packages if lk else []:
            out.setdefault(p.name, {})[p.version] = p
        return out

    def vtext(vs: dict[str, LockedPackage]) -> str:
        return ", ".join(sorted(vs, key=lambda v: try_version(v) or v))  # type: ignore[arg-type,return-value]

    before, after = versions(old), versions(new)
    outcome.added = sorted(f"{n} {vtext(v)}" for n, v in after.items() if n not in before)
    outcome.removed = sorted(f"{n} {vtext(v)}" for n, v in before.items() if n not in after)
    updated = []
    for n, vs in after.items():
        if n not in before:
            continue
        if set(vs) != set(before[n]):
            updated.append(f"{n} {vtext(before[n])} -> {vtext(vs)}")
            continue
        for v, p in sorted(vs.items()):
            q = before[n][v]
            if q.source.identity() != p.source.identity():
                updated.append(f"{n} {v}: {_describe_source(q)} -> {_describe_source(p)}")
            elif q.source != p.source:
                what = "the file changed" if isinstance(p.source, HostSource) else "its source record changed"
                updated.append(f"{n} {v}: {what}")
    outcome.updated = sorted(updated)
    outcome.changed = old is None or old.dumps() != new.dumps()


def _change_lines(o: LockOutcome) -> list[str]:
    return [f"+ {x}" for x in o.added] + [f"- {x}" for x in o.removed] + [f"~ {x}" for x in o.updated]


def _write_lock(ws: Workspace, outcome: LockOutcome) -> None:
    text = outcome.lock.dumps()
    try:
        current: str | None = ws.lock_path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        current = None
    outcome.changed = current != text
    if outcome.changed:
        atomic_write(ws.lock_path, text)


# -- check ----------------------------------------------------------------------------------

@dataclass
class HostDrift:
    """One host-satisfied package that is not on this machine as the lock recorded it.

    ``severity`` is ``error`` (missing, another version, cannot be checked) or ``note``
    (the same version, found at another path or with a changed file).
    """

    name: str
    expected: str
    found: str
    action: str
    severity: str = "error"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CheckResult:
    """Whether a lock holds: no problems and no (disallowed) host drift.

    This is the one definition of "the lock is current": ``lock --check`` prints it, and
    ``lock --locked`` raises it (:meth:`raise_for_status`).
    """

    ok: bool
    problems: list[str]
    lock_path: Path
    drift: list[HostDrift] = field(default_factory=list)
    drift_allowed: bool = False
    notes: list[str] = field(default_factory=list)
    moved: list[TagMoved] = field(default_factory=list)  # published versions whose tag moved (also in problems)
    upgrade: list[str] = field(default_factory=list)  # git components whose tag moved: --upgrade-package takes it
    # lines read from a vendored folder (the index unreachable): also in notes, and the lock holds
    vendored: list[str] = field(default_factory=list)
    # indexes ("name (url)") whose lines could not be read at all: their packages are not verifiable
    unverifiable: list[str] = field(default_factory=list)
    unverified: int = 0  # how many of the problems are packages without a line (not verifiable)

    @property
    def hint(self) -> str:
        """The command that makes the lock hold again (what ``lock --check`` and ``--locked`` print)."""
        parts = []
        if self.upgrade:
            parts.append("run `ckpm lock " + " ".join(f"--upgrade-package {n}" for n in self.upgrade)
                         + "` to take the commit the moved tag points to now (a plain `ckpm lock` keeps the locked one)")
        if self.moved:
            m = self.moved[0]
            parts.append(f"a published version never changes, and `ckpm lock` keeps the published commit: ask its "
                         f"publisher to move tag {m.tag} back to {m.published[:12]}, or to publish the new commit as "
                         f"a new version and run `ckpm lock --upgrade-package {m.name}`")
        if self.unverifiable:
            parts.append(f"no line of {', '.join(self.unverifiable)} can be read here: run `ckpm vendor DIR` on a "
                         "machine that reaches it and pass `--mirror DIR` (or name DIR in [mirrors]), or run once "
                         "online so that the index is cached")
        if not parts or len(self.problems) > len(self.upgrade) + len(self.moved) + self.unverified:
            parts.append("run `ckpm lock` to write the lock a resolution gives")
        return "; ".join(parts)

    @property
    def exit_code(self) -> int:
        if self.problems:
            return StaleLock.exit_code
        if self.errors and not self.drift_allowed:
            return HostDriftError.exit_code
        return 0

    @property
    def errors(self) -> list[HostDrift]:
        return [d for d in self.drift if d.severity == "error"]

    def raise_for_status(self, ws: Workspace, *, locked: bool = False) -> None:
        why = " and --locked forbids changing it" if locked else ""
        if self.moved:
            first = self.moved[0]
            first.details = [p for p in self.problems if p != first.message]
            first.hint = self.hint
            first.exit_code = StaleLock.exit_code  # the lock does not hold: the documented exit code
            raise first
        if self.problems and self.unverified == len(self.problems):
            raise UnverifiableLock(f"{self.lock_path} cannot be verified here: the index lines of {self.unverified} "
                                   "package(s) cannot be read, so none of their recipes runs",
                                   details=self.problems, hint=self.hint)
        if self.problems:
            raise StaleLock(f"{self.lock_path} is not up to date{why}", details=self.problems,
                            hint=self.hint + (" (without --locked)" if locked else ""))
        if self.errors and not self.drift_allowed:
            raise HostDriftError(f"this host differs from what {self.lock_path.name} recorded",
                                 details=[f"{d.name}: expected {d.expected}, found {d.found}; {d.action}"
                                          for d in self.errors],
                                 hint="install what the lock expects, or pass --allow-host-drift to go on")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "lock": str(self.lock_path),
                "host_drift": [d.to_dict() for d in self.drift], "drift_allowed": self.drift_allowed,
                "notes": self.notes, "tags_moved": [m.to_dict() for m in self.moved], "upgrade": self.upgrade,
                "unverifiable": self.unverifiable, "hint": self.hint if self.problems else None}


def check(ws: Workspace, *, targets: Sequence[str] | None = None, allow_host_drift: bool = False,
          lock: Lock | None = None, verify_published_tags: bool = True) -> CheckResult:
    """Is ckpm.lock still valid for ckpm.toml, the indexes, the git tags and this host? Never writes.

    A source that cannot be reached (a git remote, an HTTP index) is a problem ("could not
    verify"), unless ckpm is offline, where what is cached is trusted and a note says so.
    ``lock`` is the lock when the caller has read it already.

    ``verify_published_tags``: also ask the repository of every index package published from a
    git tag whether the tag still points to the published commit (a fetch per repository, as
    for git dependencies). ``lock --check`` and ``--locked`` do; the quick "does the lock still
    hold" of every other command does not, so that a project on a registry does not fetch each
    component's repository on every command (what is installed is the published commit either
    way; ``sync`` checks the tag when it fetches that commit).
    """
    problems: list[str] = []
    notes: list[str] = []
    moved: list[TagMoved] = []
    upgrade: list[str] = []
    lk = lock if lock is not None else ws.read_lock()
    if lk is None:
        return CheckResult(False, [f"{ws.lock_path} does not exist; run `ckpm lock`"], ws.lock_path)
    if lk.manifest_hash != ws.manifest.content_hash():
        problems.append(f"{ws.manifest_path.name} changed since the lock was written (dependencies, indexes or targets)")
    want = ws.targets(targets, lk)
    missing_t = sorted(set(want) - set(lk.targets))
    if missing_t:
        problems.append(f"the lock has no resolution for target(s) {', '.join(missing_t)}")
    from ckpm.resolve.verify import host_line

    drift: list[HostDrift] = []
    htarget = ws.host_target
    entries: dict[tuple[str, str, str], Any] = {}  # each package's line, for the verification of the lock
    lines = _Lines()
    for p in sorted(lk.packages, key=lambda p: p.ident):
        if isinstance(p.source, HostSource):
            if htarget in p.targets:
                d = host_drift(ws, p)
                if d is not None:
                    drift.append(d)
            entries[p.ident] = host_line(ws, p)
            continue
        found, entries[p.ident] = _check_package(ws, p, notes, moved if verify_published_tags else None, upgrade,
                                                 lines)
        problems.extend(found)
    problems.extend(_verify(ws, lk, entries))
    errors = [d for d in drift if d.severity == "error"]
    ok = not problems and (not errors or allow_host_drift)
    return CheckResult(ok, problems, ws.lock_path, drift, allow_host_drift, notes, moved, sorted(set(upgrade)),
                       lines.vendored, sorted(set(lines.unverifiable)), lines.unverified)


def host_drift(ws: Workspace, p: LockedPackage) -> HostDrift | None:
    """Re-probe one host-satisfied package with the index's rule; None when it is there as locked."""
    from ckpm.resolve.host import recheck_pin

    return recheck_pin(ws.host_source_for_check(), p, HostDrift)


def _unreachable(ws: Workspace, p: LockedPackage, where: str, e: CkpmError, notes: list[str]) -> list[str]:
    if ws.settings.offline:
        notes.append(f"{p.name} {p.version}: not verified against {where} (offline): {e.message}")
        return []
    return [f"{p.name} {p.version}: could not verify against {where}: {e.message} "
            "(pass --offline to trust the cached copy)"]


@dataclass
class _Lines:
    """Where the index lines of a check came from, when not from the index itself."""

    vendored: list[str] = field(default_factory=list)  # one note per package verified from a vendored folder
    unverifiable: list[str] = field(default_factory=list)  # "index (url)" whose lines could not be read
    unverified: int = 0  # packages without a line


def _check_package(ws: Workspace, p: LockedPackage, notes: list[str], moved: list[TagMoved] | None,
                   upgrade: list[str], lines: _Lines | None = None) -> tuple[list[str], Any]:
    """Problems of one locked package's source, and its line (the index line, or the git
    component's ``ckpm.toml`` at the locked commit; None when it cannot be read), which
    :func:`_verify` compares with the lock. ``moved`` collects moved tags of published
    versions (None: those are not checked); ``upgrade`` the git components whose tag moved.
    An index line that neither the cache nor the index gives is read from a vendored folder
    (:func:`_vendored_line`); with none, the package is not verifiable: a problem, so that
    no recipe of it runs."""
    src = p.source
    if isinstance(src, GitSource):
        gs = ws.git_source(src.git, src.subdir)
        try:
            if src.tag is None:  # a lock names the tag of every git source; without one nothing matches
                now = None
            else:
                now = gs.cached_commit_of(src.tag) if ws.settings.offline else gs.commit_of(src.tag)
        except CkpmError as e:
            return _unreachable(ws, p, src.git, e, notes), None
        if now is None and ws.settings.offline:
            notes.append(f"{p.name} {p.version}: not verified against {src.git} (offline, and not in the cache)")
            return [], None
        try:
            entry = gs.entry_at_commit(src.tag, src.rev) if src.tag else None
        except CkpmError as e:
            return [f"{p.name} {p.version}: source: commit {src.rev[:12]} of {src.git}: {e.message}"], None
        if entry is None:
            return [f"{p.name} {p.version}: source: {src.git} has no commit {src.rev} for tag {src.tag}"], None
        if now is None:
            return [f"{p.name} {p.version}: source: tag {src.tag} no longer exists in {src.git}"], entry
        if now != src.rev:
            upgrade.append(p.name)
            return [f"{p.name} {p.version}: source: tag {src.tag} of {src.git} moved from {src.rev[:12]} to "
                    f"{now[:12]} since the lock was written; `ckpm lock --upgrade-package {p.name}` takes the "
                    "new commit"], entry
        return [], entry
    if isinstance(src, IndexSource):
        idx = next((i for i in ws.indexes if i.name == src.index), None)
        if idx is None:
            return [f"{p.name} {p.version}: source: index {src.index!r} is no longer configured"], None
        try:
            entry = idx.find_entry(p.name, p.version)
        except CkpmError as e:
            found, entry = _vendored_line(ws, p, idx, e, notes, lines if lines is not None else _Lines())
            if entry is None:
                return found, None
        if entry is None:
            return [f"{p.name} {p.version}: source: no longer in index {idx.name} ({idx.url})"], None
        if src.cksum and entry.cksum != src.cksum:
            return [f"{p.name} {p.version}: checksum in index {idx.name} changed "
                    f"({src.cksum} -> {entry.cksum}); a published version must not change"], None
        if moved is not None:
            try:
                tag_moved = published_tag_moved(ws, p.name, p.version, entry)
            except CkpmError as e:
                return _unreachable(ws, p, str(entry.source.get("git")), e, notes), entry
            if tag_moved is not None:
                moved.append(tag_moved)
                return [tag_moved.message], entry
        return [], entry
    # an archive or store source: no resolution writes one, so no line can vouch for it
    return [f"{p.name} {p.version}: source: a {src.kind} source, which no resolution writes"], None


def _vendored_line(ws: Workspace, p: LockedPackage, idx: Any, e: CkpmError, notes: list[str],
                   lines: _Lines) -> tuple[list[str], Any]:
    """``p``'s line from the vendored folders of this command (``--mirror DIR``, ``[mirrors]``
    folders with ``ckpm-vendor.json``: ``provision.vendor_roots``), for an index that could not
    give it (``e``); read as an index folder (``ckpm.index.vendored``). (problems, line): a
    damaged or oversized vendored line is a problem, never trusted; no line at all makes the
    package not verifiable (a problem too: its recipe must not run)."""
    from ckpm.fetch.vendor import vendored_index
    from ckpm.index.vendored import read_line
    from ckpm.provision import vendor_roots

    label = f"{p.name} {p.version}"
    where = f"index {idx.name} ({idx.url})"
    for root in vendor_roots(ws, ws.mirror_dirs):
        folder = vendored_index(root, idx.name, idx.url)
        if folder is None:
            continue
        try:
            line = read_line(folder, idx.name, p.name, p.version)
        except CkpmError as bad:  # damaged or oversized: not trusted, so the package has no line
            lines.unverifiable.append(where)
            lines.unverified += 1
            return [f"{label}: not verifiable: its line of {where} vendored in {root} is refused, not trusted: "
                    f"{bad.message.removesuffix('; line skipped')}"], None
        if line is not None:
            lines.vendored.append(f"{label}: verified against its line of {where} vendored in {root} (the index "
                                  f"cannot be read here: {e.message})")
            notes.append(lines.vendored[-1])
            return [], line
    lines.unverifiable.append(where)
    lines.unverified += 1
    return [f"{label}: not verifiable: {where} cannot be read here ({e.message}), and no vendored folder holds "
            "its line; nothing of it is run"], None


def verify_packages(ws: Workspace, lk: Lock, *, what: str = "the lock") -> None:
    """Raise StaleLock unless every package of ``lk`` says what its line says (sources,
    recipes, kind, run table: ``resolve/verify.py``), for a lock that is not the project's
    current one (a replay's recorded lock), where the graph is not the manifest's to check."""
    from ckpm.resolve.verify import host_line, line_origin, package_problems

    problems: list[str] = []
    notes: list[str] = []
    lines = _Lines()
    for p in sorted(lk.packages, key=lambda p: p.ident):
        if isinstance(p.source, HostSource):
            entry = host_line(ws, p)
        else:
            found, entry = _check_package(ws, p, notes, None, [], lines)
            problems.extend(found)
        if entry is not None:
            problems.extend(x.line() for x in package_problems(p, entry, line_origin(p)))
    ws.reporter.warn_all([n for n in notes if n not in lines.vendored])
    for n in lines.vendored:
        ws.reporter.note(f"note: {n}")
    if problems and lines.unverified == len(problems):
        raise UnverifiableLock(f"{what} cannot be verified here: the index lines of {lines.unverified} package(s) "
                               "cannot be read, so none of their recipes runs", details=problems,
                               hint=CheckResult(False, problems, ws.lock_path, unverifiable=sorted(set(lines.unverifiable)),
                                                unverified=lines.unverified).hint)
    if problems:
        raise StaleLock(f"{what} does not say what its index lines say", details=problems,
                        hint="nothing was provisioned from it; lock again (`ckpm lock`) and record anew")


def _verify(ws: Workspace, lk: Lock, entries: dict[tuple[str, str, str], Any]) -> list[str]:
    """The lock against what a resolution would write: each package against its line, the graph
    against the manifest (``resolve/verify.py``); one line per package and field."""
    from ckpm.resolve.verify import lock_problems

    return [f.line() for f in lock_problems(ws, lk, entries)]


def published_tag_moved(ws: Workspace, name: str, version: str, entry: Any) -> TagMoved | None:
    """A :class:`TagMoved` when ``entry`` (an index line) was published from a git tag that now
    points to another commit than its ``source.rev``; None when it does not (or the line has no
    git tag, or the tag is gone: the published commit is still what is installed).

    Offline, the cached mirror of the repository is asked (nothing when it is not cached).
    Raises CkpmError (GitSourceError) when the repository cannot be reached.
    """
    src = entry.source or {}
    url, tag, rev = src.get("git"), src.get("tag"), src.get("rev")
    if not (isinstance(url, str) and isinstance(tag, str) and isinstance(rev, str) and re.fullmatch(r"[0-9a-f]{40}", rev)):
        return None
    subdir = src.get("subdir") if isinstance(src.get("subdir"), str) else None
    gs = ws.git_source(url, subdir)
    now = gs.cached_commit_of(tag) if ws.settings.offline else gs.commit_of(tag)
    if now is None or now == rev:
        return None
    return TagMoved(name, version, tag, url, rev, now)


def _verify_published_tags(ws: Workspace, lk: Lock, old: Lock | None, *, upgrade: bool = False,
                           upgrade_packages: Sequence[str] = ()) -> None:
    """Refuse a new lock that takes an index version whose git tag moved after publication.

    Only the versions this lock adds are asked (a fetch of each one's repository): a pin
    carried over from the old lock was asked when it was added, and installs the published
    commit whatever its tag does now. A package the command upgrades (``--upgrade``,
    ``--upgrade-package``) is asked again, so that ``lock --upgrade-package NAME`` never writes
    the lock that ``lock --check`` refuses.
    """
    by_name = {i.name: i for i in ws.indexes}
    asked = {n.lower() for n in upgrade_packages}
    before = {(q.name, q.version, q.source.identity()) for q in old.packages
              if not upgrade and q.name not in asked and not asked & set(q.keys)} if old is not None else set()
    for p in lk.packages:
        src = p.source
        if not isinstance(src, IndexSource) or src.index not in by_name:
            continue
        if (p.name, p.version, src.identity()) in before:
            continue
        try:
            entry = by_name[src.index].find_entry(p.name, p.version)
            if entry is None:
                continue
            moved = published_tag_moved(ws, p.name, p.version, entry)
        except CkpmError as e:
            ws.reporter.warning(f"{p.name} {p.version}: not checked that its published tag is where it was "
                                f"({e.message})")
            continue
        if moved is not None:
            raise moved


# -- provisioning -----------------------------------------------------------------------------

def _lock_for_target(ws: Workspace, target: str, lock_options: LockOptions | None) -> LockOutcome:
    """The lock, made or refreshed so that it holds a resolution for ``target`` (with
    ``locked``, only checked: nothing is resolved or written)."""
    opts = replace(lock_options) if lock_options is not None else LockOptions()
    if opts.locked:
        out = lock(ws, opts)
        if target not in out.lock.targets:
            raise StaleLock(f"{ws.lock_path.name} has no resolution for {target} "
                            f"(it has {', '.join(out.lock.targets) or 'none'})",
                            hint=f"run `ckpm lock --target {target}` with the other targets you need")
        return out
    if opts.targets is None:
        try:
            old = ws.read_lock()
        except LockError:
            old = None
        base = list(old.targets) if old is not None else list(ws.manifest.targets or [ws.host_target])
        if target not in base:
            opts.targets = sorted(set(base) | {target})
    return lock(ws, opts)


def sync(ws: Workspace, options: SyncOptions | None = None,
         lock_options: LockOptions | None = None) -> tuple[LockOutcome, SyncResult]:
    """``ckpm sync``: lock (unless ``locked``), then provision every locked package for one target."""
    from ckpm import provision

    options = options or provision.SyncOptions()
    target = options.target or ws.host_target
    provision.use_vendored(ws, options.mirror_dirs)  # vendored git commits into the cache, for the check
    outcome = _lock_for_target(ws, target, lock_options)
    result = provision.sync(ws, outcome.lock, replace(options, target=target))
    return outcome, result


def fetch(ws: Workspace, names: Sequence[str] = (), *, target: str | None = None,
          mirror_dirs: Sequence[Path] = (), lock_options: LockOptions | None = None,
          deadline: float | None = None) -> SyncResult:
    """``ckpm fetch [NAME…]``: download and verify the sources of the named packages (all when
    none are named) and their dependencies; nothing is built. ``deadline`` (``time.monotonic()``)
    bounds the downloads."""
    from ckpm import provision

    target = target or ws.host_target
    provision.use_vendored(ws, tuple(mirror_dirs))
    outcome = _lock_for_target(ws, target, lock_options)
    opts = provision.SyncOptions(target=target, only=tuple(names), fetch_only=True, mirror_dirs=tuple(mirror_dirs),
                                 deadline=deadline)
    return provision.sync(ws, outcome.lock, opts)


def vendor(ws: Workspace, dest: Path, *, mirror_dirs: Sequence[Path] = (),
           lock_options: LockOptions | None = None, targets: Sequence[str] | None = None) -> VendorResult:
    """``ckpm vendor DIR``: every source a sync of ``targets`` (default: the lock's) needs (archives,
    git repositories, python distributions), in a folder that works as a mirror. Returns a
    :class:`ckpm.fetch.vendor.VendorResult` (``counts()``, ``summary()``); raises
    ``VendorIncomplete`` (carrying it) when some source cannot be vendored."""
    from ckpm import provision

    provision.use_vendored(ws, tuple(mirror_dirs))
    opts = replace(lock_options, allow_host_drift=True) if lock_options is not None else None
    lk = lock(ws, opts).lock  # with --locked, verified (api.check), never resolved; the host is not vendored
    return provision.vendor(ws, lk, Path(dest), tuple(mirror_dirs), targets=targets)


def environment(ws: Workspace, target: str | None = None) -> dict[str, str]:
    """``ckpm env``: the variables that make what sync provisioned usable (nothing is built)."""
    from ckpm import provision

    lk = ws.read_lock()
    if lk is None:
        raise StaleLock(f"no {ws.lock_path.name}", hint="run `ckpm sync` first")
    return provision.env(ws, lk, target)
