"""A lock is verified, never trusted: what each locked package must say, derived again.

``ckpm.lock`` is data that someone else may have written: a pull request that touches only
the lock must not make ``sync --locked`` run a script the index never published, pin a host
tool outside the manifest's range, or leave a package out by pointing an edge at nothing.
So ``api.check`` (the one definition of "this lock holds", behind ``lock --check``,
``--locked`` and every command that reuses a lock) compares the lock with what a resolution
would write:

- :func:`package_problems`: one package against its index line (or the git component's
  ``ckpm.toml`` at the pinned commit): ``kind``, ``sources``, ``install`` (the recipes for
  its targets), the program's ``run`` table and the targets its line supports. Only a sha256
  (and size) learnt on first use where the line has none, and the ``pip`` distributions list,
  may differ.
- :func:`graph_problems`: the graph. Walked from the manifest's dependencies per target, as
  the resolver walks it: every requirement (the manifest's, and each locked line's ``deps``)
  has exactly one edge, the edge points at a locked package, and the package satisfies the
  requirement (its range, tags, git repository, index, target); every package is reached,
  on exactly the targets it is locked for, under exactly the keys it lists; no edge or root
  is left over.

Every problem is one :class:`LockProblem`: a package, a field and what differs. The two
comparisons read no file and no network: the caller (``api.check``) hands over the lines it read
(cached index lines and git metadata, what a no-op ``lock`` reads anyway). :func:`lock_problems`
adds what the project answers from memory or its cached index files (the line a host pin stands
for, which index comes first, a git URL's spelling), so verifying costs O(packages + edges).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from ckpm.errors import CkpmError
from ckpm.index.base import Index
from ckpm.model.entry import IndexEntry
from ckpm.model.manifest import ProjectManifest
from ckpm.model.lockfile import Lock, LockedDep, LockedPackage, provisioning_of, recipe_applies, without_learnt
from ckpm.model.requirement import Requirement
from ckpm.model.source import GitSource, HostSource, IndexSource, LockTable
from ckpm.model.targets import matches
from ckpm.model.version import try_version

Ident = tuple[str, str, str]


class Project(Protocol):
    """What the verification asks of a project (``ckpm.workspace.Workspace``)."""

    manifest_path: Path

    @property
    def manifest(self) -> ProjectManifest: ...

    @property
    def indexes(self) -> list[Index]: ...

    @property
    def host_target(self) -> str: ...

    def git_source(self, url: str, subdir: str | None) -> Any: ...


def lock_problems(ws: Project, lk: Lock, entries: Mapping[Ident, IndexEntry | None]) -> list[LockProblem]:
    """Every difference between ``lk`` and what a resolution of ``ws`` would write, given each
    package's line (``entries``: None where it could not be read, which the caller reports)."""
    found: list[LockProblem] = []
    for p in sorted(lk.packages, key=lambda p: p.ident):
        entry = entries.get(p.ident)
        if entry is not None:
            found.extend(package_problems(p, entry, line_origin(p)))
    found.extend(graph_problems(lk, ws.manifest.dependencies, host_target=ws.host_target,
                                project=ws.manifest_path.name, entries=entries,
                                git_url=lambda url, subdir: _git_spelling(ws, url, subdir),
                                earlier_index=lambda name, index: _earlier_index(ws, name, index)))
    found.sort(key=lambda f: (f.name, f.version))  # stable: each package's lines together, fields in order
    return found


def line_origin(p: LockedPackage) -> str:
    """Where ``p``'s line comes from, for a message."""
    src = p.source
    if isinstance(src, IndexSource):
        return f"index {src.index}"
    if isinstance(src, GitSource):
        return f"the ckpm.toml of {src.git} at {src.rev[:12]}"
    return "the index"


def host_line(ws: Project, p: LockedPackage) -> IndexEntry | None:
    """The line a host candidate of ``p`` carries (as ``resolve/host.py`` makes it): a host
    fact's, or the newest line of the first index that has the component; None if none has."""
    src = p.source
    if (isinstance(src, HostSource) and src.fact) or p.name.startswith("__"):
        return IndexEntry(name=p.name, version_text=p.version, kind="tool", tags=("host-fact",),
                          targets=tuple(p.targets), description="a fact of this host")
    for idx in ws.indexes:
        try:
            es = idx.entries(p.name)
        except CkpmError:
            return None
        if es:
            latest = es[-1]
            return IndexEntry(name=p.name, version_text=p.version, kind=latest.kind, tags=latest.tags,
                              targets=latest.targets, description=latest.description)
    return None


def _earlier_index(ws: Project, name: str, index: str) -> str | None:
    """An index before ``index`` in the project's order that has component ``name`` (a
    resolution would have taken it from there); None when ``index`` comes first."""
    for idx in ws.indexes:
        if idx.name == index:
            return None
        try:
            if idx.entries(name):
                return idx.name
        except CkpmError:
            continue
    return None


def _git_spelling(ws: Project, url: str, subdir: str | None) -> tuple[str, str | None]:
    """A git URL and subdir as the resolver compares them (relative paths made absolute, ``sub/``
    as ``sub``); as given when they cannot be read as such (the difference is then reported)."""
    try:
        gs = ws.git_source(url, subdir)
    except CkpmError:
        return url, subdir
    return str(gs.url), gs.subdir


@dataclass(frozen=True)
class LockProblem:
    """One difference between the lock and what a resolution would write."""

    name: str  # the package (or the manifest file, for a requirement of the project)
    version: str
    field: str  # kind, sources, install, run, targets, keys, dependencies, version, source, root
    message: str

    def line(self) -> str:
        who = f"{self.name} {self.version}" if self.version else self.name
        return f"{who}: {self.field}: {self.message}"


# -- one package against its line ----------------------------------------------------------------

def package_problems(p: LockedPackage, entry: IndexEntry, where: str) -> list[LockProblem]:
    """What ``p`` says that its line (``entry``, read from ``where``) does not."""
    out: list[LockProblem] = []

    def bad(field: str, message: str) -> None:
        out.append(LockProblem(p.name, p.version, field, message))

    if entry.name != p.name:
        bad("name", f"{where} names it {entry.name!r}")
    if entry.version_text != p.version:
        bad("version", f"{where} gives version {entry.version_text}")
    if p.kind != entry.kind:
        bad("kind", f"{p.kind!r} in the lock, {entry.kind!r} in {where}")
    if isinstance(p.source, HostSource):
        # a host pin is used as it is: it carries no sources, recipes or program of its own
        for field, value in (("sources", p.sources), ("install", p.install), ("run", p.run)):
            if value:
                bad(field, "a package found on the host has none, and the lock gives some")
        return out
    if isinstance(p.source, GitSource) and p.source.cksum is not None and p.source.cksum != entry.cksum:
        bad("source", f"cksum {p.source.cksum} in the lock, {entry.cksum} for the tree of commit "
                      f"{p.source.rev[:12]}")
    try:
        sources, install = provisioning_of(entry)
    except CkpmError as e:  # the line's recipe or source is broken: the lock's (which was read) differs
        bad("install" if "install[" in e.message else "sources", f"{where} has no usable line: {e.message}")
        return out
    install = [r for r in install if recipe_applies(r, p.targets)]
    mine_sources, mine_install = without_learnt(p, sources, install)
    if mine_sources != sources:
        bad("sources", _difference(_tables(mine_sources), _tables(sources), where))
    if mine_install != install:
        bad("install", _difference(_tables(mine_install), _tables(install), where))
    run = _run_of(entry)
    mine_run = p.run.raw if p.run is not None else {}
    if mine_run != run:
        bad("run", _difference(mine_run, run, where))
    unsupported = [t for t in p.targets if not entry.supports(t)]
    if unsupported:
        bad("targets", f"{where} does not support {', '.join(unsupported)} (it supports {', '.join(entry.targets)})")
    return out


def _run_of(entry: IndexEntry) -> dict[str, Any]:
    """The program's ``run`` table as ``build_lock`` copies it from a line (the table a
    ``Program`` keeps: compared as data, so that a broken line's table is a difference too)."""
    from ckpm.model.recipe import plain_data

    run = (entry.raw or {}).get("run")
    out = plain_data(run) if isinstance(run, dict) else {}
    return out if isinstance(out, dict) else {}


def _tables(values: Sequence[LockTable]) -> list[dict[str, Any]]:
    """Typed lock values as the tables the lock writes (to describe a difference key by key)."""
    return [v.to_lock() for v in values]


def _difference(mine: Any, theirs: Any, where: str, path: str = "", depth: int = 0) -> str:
    """The first place where ``mine`` (the lock) and ``theirs`` (the line) differ, in words
    (keys and values shortened; no deeper than a recipe needs)."""
    if depth < 16 and isinstance(mine, dict) and isinstance(theirs, dict):
        for k in sorted(set(mine) | set(theirs), key=str):
            name = k if isinstance(k, str) and _PLAIN_KEY.fullmatch(k) else _shown(k)
            if k not in theirs:
                return f"{path}{name} is in the lock but not in {where}"
            if k not in mine:
                return f"{path}{name} is in {where} but not in the lock"
            if mine[k] != theirs[k]:
                return _difference(mine[k], theirs[k], where, f"{path}{name}.", depth + 1)
    elif depth < 16 and isinstance(mine, list) and isinstance(theirs, list):
        for i, (a, b) in enumerate(zip(mine, theirs)):
            if a != b:
                return _difference(a, b, where, f"{path.rstrip('.')}[{i}].", depth + 1)
        if len(mine) != len(theirs):
            at = f"{path.rstrip('.')} has " if path else ""
            return f"{at}{len(mine)} item(s) in the lock, {len(theirs)} in {where}"
    at = path.rstrip(".") or "the value"
    return f"{at} is {_shown(mine)} in the lock, {_shown(theirs)} in {where}"


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _shown(v: Any) -> str:
    try:
        text = repr(v)
    except RecursionError:  # pragma: no cover - the lock's reader refuses deeper data
        return "(nested too deeply to show)"
    return text if len(text) <= 80 else text[:77] + "..."


# -- the graph -------------------------------------------------------------------------------------

@dataclass
class _Walk:
    """What the walk of every target found."""

    targets: dict[Ident, set[str]]
    keys: dict[Ident, set[str]]
    used_edges: set[tuple[Ident, LockedDep]]
    used_roots: set[LockedDep]


def graph_problems(lk: Lock, deps: Mapping[str, Requirement], *, host_target: str, project: str,
                   entries: Mapping[Ident, IndexEntry | None],
                   git_url: Callable[[str, str | None], tuple[str, str | None]],
                   earlier_index: Callable[[str, str], str | None] = lambda name, index: None) -> list[LockProblem]:
    """Whether the lock's graph is one the resolver would write for ``deps`` (the manifest's).

    ``entries`` gives each package's line (a host package: a line made from its index's
    newest one, as the host adapter makes it; None where it could not be read: that package's
    edges are followed as they are and not checked against a line). ``git_url`` maps a git URL
    and subdir as written (a manifest's relative path, ``sub/``) to their canonical spelling;
    ``earlier_index(name, index)`` names an index before ``index`` in the project's order that has
    component ``name`` (the resolver takes a component from the first index that has it).
    """
    out: list[LockProblem] = []
    seen: set[LockProblem] = set()

    def bad(name: str, version: str, field: str, message: str) -> None:
        pr = LockProblem(name, version, field, message)
        if pr not in seen:
            seen.add(pr)
            out.append(pr)

    by_nv: dict[tuple[str, str], list[LockedPackage]] = {}
    for p in lk.packages:
        by_nv.setdefault((p.name, p.version), []).append(p)
    walk = _Walk({}, {}, set(), set())

    def follow(parent: tuple[str, str], req: Requirement, edges: Sequence[LockedDep], t: str,
               queue: list[tuple[LockedPackage, str]]) -> LockedDep | None:
        """The one edge for ``req`` (on the child's target ``t``), checked; the child is queued."""
        pname, pversion = parent
        if not edges:
            if not req.key.startswith("__"):  # host facts are checked as host drift
                bad(pname, pversion, "dependencies", f"{req.describe()} has no locked package (target {t})")
            return None
        if len(edges) > 1:
            bad(pname, pversion, "dependencies", f"{req.key} has {len(edges)} edges on target {t} "
                                                 f"({', '.join(f'{e.name} {e.version}' for e in edges)}), a "
                                                 "resolution gives one")
        e = edges[0]
        cands = by_nv.get((e.name, e.version), [])
        q = next((c for c in cands if t in c.targets), None)
        if q is None:
            held = f"holds {e.name} {e.version} only for {', '.join(sorted({x for c in cands for x in c.targets}))}" \
                if cands else f"does not hold {e.name} {e.version}"
            bad(pname, pversion, "dependencies", f"{req.key} points at {e.name} {e.version}, and the lock {held}")
            return e
        who = "ckpm.toml" if pname == project and not pversion else f"{pname} {pversion}"
        for field, why in _reasons_against(req, q, entries.get(q.ident), t, host_target, git_url, earlier_index):
            bad(q.name, q.version, field, f"{why}, which {who} requires ({req.describe()})")
        walk.keys.setdefault(q.ident, set()).add(req.key)
        reached = walk.targets.setdefault(q.ident, set())
        if t not in reached:
            reached.add(t)
            queue.append((q, t))
        return e

    for T in sorted(lk.targets):
        queue: list[tuple[LockedPackage, str]] = []
        roots: dict[str, list[LockedDep]] = {}
        for r in lk.roots:
            if r.targets is None or T in r.targets:
                roots.setdefault(r.key, []).append(r)
        for key in sorted(deps):
            req = deps[key]
            if req.optional or not matches(T, req.targets):
                continue
            t = host_target if req.kind == "build" else T
            e = follow((project, ""), req, roots.get(key, []), t, queue)
            if e is not None:
                walk.used_roots.add(e)
        while queue:
            q, t = queue.pop()
            edges: dict[str, list[LockedDep]] = {}
            for d in q.dependencies:
                if d.targets is None or T in d.targets:
                    edges.setdefault(d.key, []).append(d)
            entry = entries.get(q.ident)
            if entry is None:  # not verified (reported by the caller): follow its edges as they are
                for key, es in edges.items():
                    for d in es:
                        walk.used_edges.add((q.ident, d))
                    follow((q.name, q.version), Requirement(key), es[:1], t, queue)
                continue
            for req in entry.deps:
                if req.optional or not matches(t, req.targets):
                    continue
                child_t = host_target if req.kind == "build" else t
                e = follow((q.name, q.version), req, edges.get(req.key, []), child_t, queue)
                if e is not None:
                    walk.used_edges.add((q.ident, e))

    for p in sorted(lk.packages, key=lambda p: p.ident):
        reached = walk.targets.get(p.ident)
        if not reached:
            bad(p.name, p.version, "targets", "no dependency of ckpm.toml leads to it on any target: "
                                              "a resolution would not lock it")
            continue
        if set(p.targets) != reached:
            bad(p.name, p.version, "targets", f"locked for {', '.join(sorted(p.targets))}; the dependencies "
                                              f"reach it on {', '.join(sorted(reached))}")
        keys = walk.keys.get(p.ident, set())
        if set(p.keys) != keys:
            bad(p.name, p.version, "keys", f"{', '.join(sorted(p.keys))} in the lock; it is required as "
                                           f"{', '.join(sorted(keys))}")
        for d in p.dependencies:
            if (p.ident, d) not in walk.used_edges:
                bad(p.name, p.version, "dependencies", f"{d.key} -> {d.name} {d.version} is not a dependency "
                                                       "its line gives on the targets of the edge")
    for r in lk.roots:
        if r not in walk.used_roots:
            bad(project, "", "root", f"{r.key} -> {r.name} {r.version} is not a dependency of ckpm.toml on "
                                     "the targets of the root")
    return out


def _reasons_against(req: Requirement, q: LockedPackage, entry: IndexEntry | None, t: str, host_target: str,
                     git_url: Callable[[str, str | None], tuple[str, str | None]],
                     earlier_index: Callable[[str, str], str | None]) -> Iterable[tuple[str, str]]:
    """Why the resolver would not take ``q`` for ``req`` on target ``t`` (field, reason); the
    same tests as ``CandidateFactory.reasons_against`` (a locked pin is never refused for being a
    pre-release or yanked)."""
    v = try_version(q.version)
    if v is None:
        yield "version", f"{q.version!r} is not a version"
    elif not req.spec.contains(v, prereleases=True):
        yield "version", f"outside {req.spec.text}"
    src = q.source
    if req.git:
        if not isinstance(src, GitSource) or git_url(src.git, src.subdir) != git_url(req.git, req.subdir):
            yield "source", f"not from {req.git}" + (f" ({req.subdir})" if req.subdir else "")
    elif isinstance(src, GitSource):
        yield "source", "a git source where no git repository is named"
    if req.index and not (isinstance(src, IndexSource) and src.index == req.index):
        yield "source", f"not from index {req.index}"
    elif not req.index and isinstance(src, IndexSource):
        first = earlier_index(q.name, src.index)
        if first is not None:
            yield "source", f"from index {src.index}, but index {first} comes first and has {q.name}"
    if isinstance(src, HostSource) and t != host_target:
        yield "source", f"found on this host ({host_target}), locked for target {t}"
    if entry is not None:
        missing = req.tags - entry.tag_set
        if missing:
            yield "tags", f"lacks tags {', '.join(sorted(missing))}"
        if req.no_tags & entry.tag_set:
            yield "tags", f"carries excluded tags {', '.join(sorted(req.no_tags & entry.tag_set))}"
        if not isinstance(src, HostSource) and not entry.supports(t):
            yield "targets", f"does not support target {t}"
