"""Software found on this machine, offered to the resolver as candidates of origin ``host``.

The adapter between ``ckpm.detect`` (which yields records and knows nothing of the
resolver) and the candidate factory. A key that names a component uses that component's
``detect`` rules; a capability key (tags) uses the rules of every component carrying the
tags; a ``__name`` key is a host fact (``__os``, ``__arch``, ``__libc``, ``__cpu``,
``__cuda``, ``__python``). Detection runs lazily, once per component, through the cached
host profile.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from ckpm.index.base import Index
from ckpm.model.entry import IndexEntry
from ckpm.model.version import try_version
from ckpm.resolve.candidates import Candidate, Req


# DESIGN.md spells the C library fact __glibc; detection reports __libc with its name.
FACT_ALIASES = {"__glibc": ("__libc", "glibc"), "__musl": ("__libc", "musl")}
PYTHON_ENV = "CKPM_PYTHON"  # the interpreter whose packages python_package rules look at


class DetectedHost:
    """A HostSource over the detect rules of the project's indexes."""

    def __init__(self, indexes: Sequence[Index], *, host_target: str, cache_dir: os.PathLike[str] | str | None = None,
                 refresh: bool = False, timeout: float = 3.0, env: Mapping[str, str] | None = None) -> None:
        self.indexes = list(indexes)
        self.host_target = host_target
        self.cache_dir = cache_dir
        self.refresh = refresh
        self.timeout = timeout
        self.env = env
        self.warnings: list[str] = []
        self._found: dict[str, list[Any]] = {}
        self._facts: dict[str, Any] | None = None
        self._cands: dict[str, list[Candidate]] = {}

    # -- detection ----------------------------------------------------------------------
    def facts(self) -> dict[str, Any]:
        if self._facts is None:
            from ckpm.detect import host_facts

            self._facts = host_facts(self.env, cache_dir=self.cache_dir, timeout=self.timeout)
        return self._facts

    def _entries(self, name: str) -> list[IndexEntry]:
        for idx in self.indexes:
            es = idx.entries(name)
            if es:
                return es
        return []

    def detected(self, names: Sequence[str]) -> dict[str, list[Any]]:
        """Detection records per component name (each component probed at most once)."""
        from ckpm.detect import detect
        from ckpm.detect.rules import rules_of_entries

        todo = {n: rules_of_entries(self._entries(n)) for n in names if n not in self._found}
        todo = {n: r for n, r in todo.items() if r}
        if todo:
            env = self.env if self.env is not None else os.environ
            res = detect(todo, refresh=self.refresh, cache_dir=self.cache_dir, timeout=self.timeout, env=self.env,
                         python=env.get(PYTHON_ENV) or None)
            self.warnings.extend(res.warnings)
            if self._facts is None:
                self._facts = res.facts
            for n in todo:
                self._found[n] = list(res.found.get(n, []))
        return {n: self._found.get(n, []) for n in names}

    # -- candidates ---------------------------------------------------------------------
    def candidates_for(self, key: str, reqs: Sequence[Req], target: str, ident: str) -> list[Candidate]:
        memo = self._cands.get(ident)
        if memo is not None:
            return memo
        out: list[Candidate] = []
        if key.startswith("__"):
            fact = self.facts().get(key)
            if fact is None and key in FACT_ALIASES:
                alias, libc = FACT_ALIASES[key]
                fact = self.facts().get(alias)
                if fact is not None and fact.extra.get("name") != libc:
                    fact = None
            if fact is not None and try_version(fact.version) is not None:
                e = IndexEntry(name=fact.name, version_text=fact.version, kind="tool", tags=("host-fact",),
                               targets=(target,), description="a fact of this host")
                out.append(_candidate(ident, key, target, e, fact))
            self._cands[ident] = out
            return out
        names: list[str]
        capability = False
        if self._entries(key):
            names = [key]
        else:
            tags = frozenset().union(*(r.req.tags for r in reqs))
            if not tags:
                self._cands[ident] = out
                return out
            capability = True
            names = []
            for idx in self.indexes:
                names.extend(s.name for s in idx.summaries() if tags <= s.tags)
            names = sorted(set(names))
        for name, recs in self.detected(names).items():
            latest = self._entries(name)[-1]
            for d in recs:
                if try_version(d.version) is None:
                    self.warnings.append(f"{name}: detected version {d.version!r} at {d.path} is not a version; ignored")
                    continue
                if capability and d.extra.get("cross"):
                    continue  # a cross compiler does not build for this host
                e = IndexEntry(name=name, version_text=d.version, kind=latest.kind, tags=latest.tags,
                               description=latest.description, targets=(target,))
                out.append(_candidate(ident, key, target, e, d))
        self._cands[ident] = out
        return out


def _candidate(ident: str, key: str, target: str, e: IndexEntry, d: Any) -> Candidate:
    return Candidate(ident=ident, key=key, name=e.name, version=e.version, target=target, origin="host", entry=e,
                     host=d.to_json())
