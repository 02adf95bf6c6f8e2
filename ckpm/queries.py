"""Read-only questions about a project and the indexes: tree, why, why-not, search, show, detect."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ckpm.errors import LockError, ProjectError, ResolutionError, UnknownComponent
from ckpm.index.base import Index
from ckpm.index.lookup import unknown_component
from ckpm.model.entry import KINDS
from ckpm.model.manifest import ProjectManifest
from ckpm.model.requirement import Requirement, split_tags
from ckpm.model.version import parse_specifier, try_version
from ckpm.settings import Settings
from ckpm.workspace import LockOptions, Workspace, resolve_workspace

if TYPE_CHECKING:
    from ckpm.model.lockfile import Lock, LockedPackage


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
            same = [p for p in lk.packages if p.name == name and p.version == version]
            # a build dependency of a cross target is locked for the host, not for t
            pkg = next((p for p in same if t in p.targets), same[0] if same else None)
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


def default_target(ws: Workspace, lk: Lock | None) -> str:
    """The target a question is about when none is given: the host's if locked, else the first locked."""
    if lk is not None and lk.targets:
        return ws.host_target if ws.host_target in lk.targets else sorted(lk.targets)[0]
    return ws.targets()[0]


def _check_target(lk: Lock, target: str) -> None:
    if target not in lk.targets:
        raise LockError(f"the lock has no resolution for {target}", hint=f"locked targets: {', '.join(lk.targets)}")


def why(ws: Workspace, name: str, *, target: str | None = None) -> list[list[str]]:
    """Every chain from the project to ``name`` in the lock: ``["the project", "a 1.0 (key)", ...]``.

    With ``target``, only what the lock resolved for that target.
    """
    from difflib import get_close_matches

    lk = require_lock(ws)
    if target is not None:
        _check_target(lk, target)
    key = name.lower()
    found = [p for p in lk.packages if (p.name == key or key in p.keys) and (target is None or target in p.targets)]
    if not found:
        names = sorted({p.name for p in lk.packages})
        near = get_close_matches(key, names, n=1)
        raise UnknownComponent(f"{name!r} is not in {ws.lock_path}",
                               hint=f"did you mean {near[0]!r}?" if near else "see `ckpm tree`")
    parents: dict[tuple[str, str], list[tuple[LockedPackage, str]]] = {}
    for p in lk.packages:
        for d in p.dependencies:
            if target is None or d.targets is None or target in d.targets:
                parents.setdefault((d.name, d.version), []).append((p, d.key))
    roots = {(r.name, r.version): r for r in lk.roots if target is None or r.targets is None or target in r.targets}
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
    locked: bool = False  # the version asked about is the one in the lock
    exists: bool = True  # False: no index or repository has that version at all

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "possible": self.possible, "locked": self.locked,
                "exists": self.exists, "explanation": self.lines}


def why_not(ws: Workspace, name: str, version: str, *, target: str | None = None) -> WhyNot:
    """Explain why ``name`` ``version`` is not in the lock (or could not be)."""
    from ckpm.resolve.factory import CandidateFactory
    from ckpm.resolve.candidates import Req

    key = name.lower()
    lk = ws.read_lock()
    if target is not None and lk is not None:
        _check_target(lk, target)
    t = target or default_target(ws, lk)
    v = try_version(version)
    if v is None:
        raise ProjectError(f"{version!r} is not a version")
    lines: list[str] = []
    here = [p for p in (lk.packages if lk else []) if (p.name == key or key in p.keys) and t in p.targets]
    if any(try_version(p.version) == v for p in here):
        p = next(p for p in here if try_version(p.version) == v)
        chains = why(ws, key, target=t)
        lines.append(f"{p.name} {p.version} is in the lock for {t} (from {p.source_kind})")
        lines.extend(" → ".join(c) for c in chains)
        return WhyNot(key, version, True, lines, locked=True)
    req = ws.manifest.dependencies.get(key)
    factory = CandidateFactory(ws.indexes, main_target=t, host_target=ws.host_target, git_source=ws.git_source)
    probe = Requirement(key=key, spec=parse_specifier(f"=={version}"),
                        git=req.git if req else None, subdir=req.subdir if req else None)
    cands = [c for c in factory.all_candidates(key, [Req(probe, t, key)]) if c.version == v]
    if not cands:
        have = sorted({c.version.text for c in factory.all_candidates(key, [Req(probe, t, key)])},
                      key=lambda s: try_version(s))  # type: ignore[arg-type,return-value]
        shown = ", ".join(have[-8:])
        known = (f" (known versions: {shown})" if len(have) <= 8
                 else f" (the newest 8 of {len(have)} known versions: {shown}; `ckpm show {key}` lists all)")
        lines.append(f"{key} {version} does not exist in " + ", ".join(i.name for i in ws.indexes)
                     + (known if have else ""))
        return WhyNot(key, version, False, lines, exists=False)
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
        lines.extend(e.more)  # why-not is where a person asks for the whole story
        return WhyNot(key, version, False, lines)
    if lines:
        return WhyNot(key, version, False, lines)
    chosen = here
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
    if kind is not None and kind not in KINDS:
        from difflib import get_close_matches

        near = get_close_matches(kind, list(KINDS), n=1)
        raise ProjectError(f"unknown kind {kind!r}", hint=(f"did you mean {near[0]!r}? " if near else "")
                           + f"kinds are {', '.join(KINDS)}")
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
            es = sorted(es, key=lambda e: e.version)  # version order, whatever order they were published in
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
    raise unknown_component(indexes, key)


def index_update(indexes: Sequence[Index]) -> list[dict[str, Any]]:
    """Fetch git indexes (and revalidate HTTP ones); returns each index's revision."""
    out = []
    for idx in indexes:
        idx.update()
        out.append({"name": idx.name, "url": idx.url, "revision": idx.revision()})
    return out


# -- detect ---------------------------------------------------------------------------------

def detect_host(indexes: Sequence[Index], *, key: str | None = None, manifest: ProjectManifest | None = None,
                refresh: bool = False, cache_dir: Path | None = None, settings: Settings | None = None) -> Any:
    """Host facts and the software that the indexes' detect rules find (all, or for one key).

    ``key`` is a component name, a dependency key of the project (a capability key detects
    every component that carries its tags), or else a tag (``compiler``: every compiler).
    """
    from ckpm.detect import detect
    from ckpm.detect.rules import rules_from_index, rules_of_entries

    settings = settings if settings is not None else Settings(cache_dir=cache_dir)
    reporter = settings.reporter
    said = len(reporter.warnings)  # the result lists what this detection said (rejected rules first)
    rules: dict[str, Any] = {}
    if key is None:
        for idx in reversed(list(indexes)):
            rules.update(rules_from_index(idx, origin=f"index {idx.name}", reporter=reporter))
    else:
        k = key.lower()
        names: list[str] = []
        if any(idx.entries(k) for idx in indexes):
            names = [k]
        else:
            req = manifest.dependencies.get(k) if manifest else None
            # a capability key of the project detects what carries its tags; else KEY as a tag
            tags = req.tags if req is not None and req.tags else frozenset({k})
            for idx in indexes:
                names.extend(s.name for s in idx.summaries() if tags <= s.tags)
            if not names:
                raise unknown_component(indexes, k)
        for n in sorted(set(names)):
            idx_of = next((idx for idx in indexes if idx.entries(n)), None)
            es = idx_of.entries(n) if idx_of is not None else []
            r = rules_of_entries(es, origin=f"index {idx_of.name if idx_of else '?'}", reporter=reporter)
            if r:
                rules[n] = r
        if not rules:
            raise UnknownComponent(f"nothing in the index says how to detect {key!r}",
                                   hint="an index entry needs `detect` rules; see docs/detection.md")
    with reporter.progress("detecting software on this host"):
        res = detect(rules, refresh=refresh or settings.refresh_host, cache_dir=cache_dir or settings.cache_dir,
                     python=settings.python, env=settings.environ, path_roots=settings.roots(), owned=True,
                     reporter=reporter)
    res.warnings = reporter.warnings[said:]
    return res
