"""The candidate factory: every piece of I/O the resolver needs, memoised.

It turns a key into candidates from, in preference order, the pins of an existing
lock, the host (detected software), and the indexes or a git repo's tags, newest
first. ``reasons_against`` says why a candidate does not satisfy a requirement; the
provider and the failure explanations share it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from ckpm.errors import CkpmError, GitSourceError, ResolutionError, UnknownComponent
from ckpm.index.base import Index
from ckpm.index.lookup import unknown_component
from ckpm.model.entry import IndexEntry
from ckpm.model.source import GitSource, Source
from ckpm.report import Reporter
from ckpm.resolve.candidates import ORIGIN_GIT, ORIGIN_HOST, ORIGIN_INDEX, Candidate, Origin, Req

ANY_TARGET = ("*",)  # an entry's usual targets: supports every target


class HostLookup(Protocol):
    """Software found on this machine, offered as candidates (see ckpm.detect; the records of
    where a locked package came from are ckpm.model.source.HostSource)."""

    def candidates_for(self, key: str, reqs: Sequence[Req], target: str, ident: str) -> list[Candidate]:
        ...


@dataclass(frozen=True)
class Pin:
    """A package of an existing lock, preferred while it still satisfies."""

    name: str
    version: str
    source_id: str
    source: Source | None = None


class BudgetExceeded(ResolutionError):
    code = "resolution-budget"


class CandidateFactory:
    """Finds and filters candidates; owns indexes, git sources and the host source."""

    def __init__(
        self,
        indexes: Sequence[Index],
        *,
        main_target: str,
        host_target: str,
        pins: dict[str, Pin] | None = None,
        prerelease: bool = False,
        git_source: Callable[[str, str | None], Any] | None = None,
        host: HostLookup | None = None,
        deadline: float | None = None,
        reporter: Reporter | None = None,
        stored: frozenset[tuple[str, str, str]] = frozenset(),
    ) -> None:
        self.reporter = reporter if reporter is not None else Reporter()
        self.stored = stored  # (name, version, target) already built in the store: preferred after the host
        self.indexes = list(indexes)
        self.main_target = main_target
        self.host_target = host_target
        self.pins = pins or {}
        self.prerelease = prerelease
        self._git_source = git_source
        self.host = host
        self.deadline = deadline
        self._entries: dict[tuple[str, str | None], list[tuple[IndexEntry, Index]]] = {}
        self._capability: dict[frozenset[str], list[tuple[IndexEntry, Index]]] = {}
        self._git_sources: dict[tuple[str, str | None], Any] = {}
        self._git_urls: dict[str, str] = {}
        self._made: dict[tuple[str, str | None, frozenset[str]], list[Candidate]] = {}
        self.missing: dict[str, list[Req]] = {}  # keys no index has, with the requirements that named them
        self.preferred: dict[str, Candidate] = {}  # the complete solver's assignment, tried first
        self._ordered: dict[tuple[Candidate, ...], list[Candidate]] = {}

    # -- budget ---------------------------------------------------------------------------
    def check_budget(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExceeded("resolution ran past its time budget")

    # -- lookups --------------------------------------------------------------------------
    def index_entries(self, key: str, index_name: str | None = None) -> list[tuple[IndexEntry, Index]]:
        """Every version of component ``key`` from the first index that knows it."""
        memo = self._entries.get((key, index_name))
        if memo is not None:
            return memo
        out: list[tuple[IndexEntry, Index]] = []
        for idx in self.indexes:
            if index_name is not None and idx.name != index_name:
                continue
            es = idx.entries(key)
            if es:
                out = [(e, idx) for e in es]
                break
        self._entries[(key, index_name)] = out
        return out

    def capability_entries(self, tags: frozenset[str]) -> list[tuple[IndexEntry, Index]]:
        """Every version of every component whose tags include ``tags``."""
        memo = self._capability.get(tags)
        if memo is not None:
            return memo
        out: list[tuple[IndexEntry, Index]] = []
        seen: set[str] = set()
        for idx in self.indexes:
            for s in idx.summaries():
                if tags <= s.tags and s.name not in seen:
                    seen.add(s.name)
                    try:
                        entries = idx.entries(s.name)
                    except CkpmError as e:  # one refused file must not hide every other provider
                        message = f"{e.message}; {s.name} is left out of {','.join(sorted(tags))}"
                        self.reporter.warning(message)
                        continue
                    out.extend((e, idx) for e in entries if tags <= e.tag_set)
        self._capability[tags] = out
        return out

    def git_entries(self, url: str, subdir: str | None, first: str | None = None,
                    pinned: GitSource | None = None) -> Iterator[IndexEntry]:
        """Entries of a git-native component, ``first`` (a pinned version) then newest tag first.

        Manifests are read lazily, one tag at a time, as the resolver asks. With ``pinned``
        (the lock's source), the locked tag is read at the locked commit even if it moved.
        """
        if self._git_source is None:
            raise GitSourceError("git dependencies are not available in this context")
        key = (url, subdir)
        src = self._git_sources.get(key)
        if src is None:
            src = self._git_sources[key] = self._git_source(url, subdir)
            self._git_urls[url] = src.url  # the manifest's spelling → the source's canonical URL
        tvs = sorted(src.versions(), key=lambda tv: tv.version, reverse=True)
        if first is not None:
            tvs.sort(key=lambda tv: tv.version.text != first)
        for tv in tvs:
            self.check_budget()
            try:
                e = self._locked_commit(src, tv, pinned) if pinned is not None else None
                if e is None:
                    e = src.entry_at(tv)
            except CkpmError as err:  # a broken tag must not hide the good ones, but the user hears of it
                self.reporter.warning(f"{src.url}: tag {tv.tag} skipped: {err.message}")
                continue
            if e is not None:
                yield e

    def _locked_commit(self, src: Any, tv: Any, pinned: GitSource) -> IndexEntry | None:
        """The entry at the lock's commit when ``tv`` is the locked tag and it has moved since.

        As Cargo and uv do, a plain re-lock keeps what the lock pinned and says so; only
        ``--upgrade-package`` (or ``--upgrade``) takes the tag's new commit.
        """
        if tv.tag != pinned.tag or tv.commit == pinned.rev:
            return None
        e = src.entry_at_commit(tv.tag, pinned.rev)
        if e is None:
            return None
        name = e.name
        message = (f"{name}: tag {tv.tag} of {src.url} moved from {pinned.rev[:12]} to {tv.commit[:12]}; "
                   f"keeping the locked {pinned.rev[:12]} (`ckpm lock --upgrade-package {name}` takes the new one)")
        self.reporter.warning(message)
        return e

    def unknown(self, key: str, reqs: Sequence[Req] = ()) -> UnknownComponent:
        """The error for a key no index has, saying who required it (when not the project)."""
        err = unknown_component(self.indexes, key)
        who = sorted({r.who() for r in reqs if r.parent is not None})
        if who:
            err.message += f", required by {', '.join(who)}"
            err.args = (err.message,)
        return err

    # -- candidates -----------------------------------------------------------------------
    def _make(self, ident: str, key: str, target: str, e: IndexEntry, origin: Origin, idx: Index | None) -> Candidate:
        c = Candidate(ident=ident, key=key, name=e.name, version=e.version, target=target, origin=origin, entry=e,
                      index_name=idx.name if idx else None, index_url=idx.url if idx else None)
        pin = self.pins.get(ident)
        if pin is not None and pin.name == c.name and pin.version == c.version.text and pin.source_id == c.source_id():
            c.locked = True
        return c

    def all_candidates(self, ident: str, reqs: Sequence[Req]) -> Iterator[Candidate]:
        """Every candidate for ``ident`` before filtering, in no particular order (lazy for git)."""
        self.check_budget()
        first = reqs[0]
        key, target = first.key, first.target
        if key.startswith("__"):  # a host fact: only the host can satisfy it
            if self.host is not None and target == self.host_target:
                yield from self.host.candidates_for(key, reqs, target, ident)
            return
        if self.host is not None and target == self.host_target and not any(r.req.prefer == "build" for r in reqs):
            yield from self.host.candidates_for(key, reqs, target, ident)
        gits = {(r.req.git, r.req.subdir) for r in reqs if r.req.git}
        if len(gits) > 1:
            raise ResolutionError(f"{key!r} is asked for from more than one git repository: "
                                  + ", ".join(sorted(g for g, _ in gits)))
        if gits:
            url, subdir = next(iter(gits))
            pin = self.pins.get(ident)
            pinned = pin.source if pin is not None and isinstance(pin.source, GitSource) else None
            for e in self.git_entries(url, subdir, first=pin.version if pin else None, pinned=pinned):
                yield self._make(ident, key, target, e, ORIGIN_GIT, None)
            return
        index_name = next((r.req.index for r in reqs if r.req.index), None)
        entries = self.index_entries(key, index_name)
        memo_key: tuple[str, str | None, frozenset[str]] = (ident, index_name, frozenset())
        if not entries:
            tags = frozenset().union(*(r.req.tags for r in reqs))
            if tags:
                entries = self.capability_entries(tags)
                memo_key = (ident, index_name, tags)
            elif self.host is None or not self.host.candidates_for(key, reqs, target, ident):
                if all(r.parent is None for r in reqs):
                    raise self.unknown(key, reqs)
                # a dependency on a name no index has is a dead end the search can back away from
                # (an older version of the dependent may not need it); explain.py names it if not
                self.missing.setdefault(ident, []).extend(r for r in reqs if r not in self.missing.get(ident, ()))
                return
        made = self._made.get(memo_key)
        if made is None:
            made = self._made[memo_key] = [self._make(ident, key, target, e, ORIGIN_INDEX, idx) for e, idx in entries]
        yield from made

    def reasons_against(self, r: Req, c: Candidate) -> str | None:
        """Why ``c`` does not satisfy ``r`` (None when it does)."""
        req = r.req
        if req.git and (c.origin is not ORIGIN_GIT or c.entry.source.get("git") != self._git_urls.get(req.git, req.git)):
            return f"not from {req.git}"
        allow_pre = self.prerelease or c.locked or req.spec.names_prerelease
        if not req.spec.contains(c.version, prereleases=allow_pre):
            if c.version.is_prerelease and req.spec.contains(c.version, prereleases=True):
                return "is a pre-release (use --prerelease, or name one in the range)"
            return f"outside {req.spec.text}"
        if req.tags:  # (guarded: the usual requirement has none, and this runs millions of times)
            missing = req.tags - c.tags
            if missing:
                return f"lacks tags {', '.join(sorted(missing))}"
        if req.no_tags and req.no_tags & c.tags:
            return f"carries excluded tags {', '.join(sorted(req.no_tags & c.tags))}"
        if c.entry.targets != ANY_TARGET and not c.entry.supports(r.target):
            return f"does not support target {r.target} (supports {', '.join(c.entry.targets)})"
        if c.entry.yanked and not c.locked:
            return "is yanked"
        return None

    def admitted(self, r: Req, cands: Iterable[Candidate]) -> list[Candidate]:
        """The candidates that ``r`` admits (:meth:`reasons_against` is None), in order.

        The usual requirement (a range, no git, no tags) is checked inline: the complete
        search asks this for every requirement of every candidate of the closure (150,000
        pairs on a 2,000-component conflict graph).
        """
        req = r.req
        if req.git or req.tags or req.no_tags:
            return [c for c in cands if self.reasons_against(r, c) is None]
        contains, target = req.spec.contains, r.target
        pre = self.prerelease or req.spec.names_prerelease
        return [c for c in cands
                if contains(c.version, prereleases=pre or c.locked)
                and (c.entry.targets == ANY_TARGET or c.entry.supports(target))
                and (c.locked or not c.entry.yanked)]

    def satisfies(self, requirement: Req, candidate: Candidate) -> bool:
        """``reasons_against(...) is None``, memoised (resolvelib asks the same pairs again and again).

        The parameter names are resolvelib's: the provider hands this method over as its
        ``is_satisfied_by``, which resolvelib calls with keywords.
        """
        memo = requirement.memo
        hit = memo.get(candidate)
        if hit is None:
            hit = memo[candidate] = self.reasons_against(requirement, candidate) is None
        return hit

    def ordered(self, cands: Iterable[Candidate]) -> list[Candidate]:
        """Preference order: lock pins, then host, then versions already in the store, then
        newest version first (name breaks ties).

        Memoised on the exact sequence: resolvelib asks again for the same key's candidates
        each time a requirement is added to it.
        """
        seq = tuple(cands)
        hit = self._ordered.get(seq)
        if hit is None:
            hit = self._ordered[seq] = self.preference_order(seq)
        return list(hit)

    def preference_order(self, cands: Iterable[Candidate]) -> list[Candidate]:
        """The order of :meth:`ordered`, computed afresh."""
        lst = sorted(cands, key=lambda c: (c.name, c.origin))
        lst.sort(key=lambda c: c.version.sort_key, reverse=True)  # packaging's order, compared in C
        stored = self.stored
        if stored:
            lst.sort(key=lambda c: (not c.locked, c.origin is not ORIGIN_HOST,
                                    (c.name, c.version.text, c.target) not in stored))
        else:
            lst.sort(key=lambda c: (not c.locked, c.origin is not ORIGIN_HOST))
        return lst
