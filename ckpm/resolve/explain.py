"""Words for resolution failures: who asked for what, why each candidate was rejected, what to try."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from ckpm.errors import CkpmError, ResolutionError
from ckpm.resolve.candidates import Req
from ckpm.resolve.provider import Provider, ResolutionReporter

MAX_CANDIDATES_SHOWN = 12


def chain(provider: Provider, req: Req, limit: int = 12) -> str:
    """``lib-a >=2 ← lib-b 1.0 ← the project``: the path of requirements from the project to ``req``."""
    parts = [req.req.describe()]
    parent = req.parent
    seen: set[str] = set()
    while parent is not None and len(parts) < limit:
        parts.append(parent.label())
        if parent.ident in seen:
            break
        seen.add(parent.ident)
        reqs = provider.reqs_seen.get(parent.ident) or []
        if not reqs:
            parts.append("…")
            return " ← ".join(parts)
        up = next((r for r in reqs if provider.factory.satisfies(r, parent)), reqs[0])
        parent = up.parent
    parts.append("the project")
    return " ← ".join(parts)


def ranges(ordered: Sequence[str], chosen: Iterable[str]) -> str:
    """``1.0–1.4, 2.1``: the ``chosen`` versions as runs of consecutive items of ``ordered`` (ascending)."""
    want = set(chosen)
    runs: list[list[str]] = []
    prev_in = False
    for v in ordered:
        if v in want:
            if prev_in:
                runs[-1].append(v)
            else:
                runs.append([v])
        prev_in = v in want
    extra = sorted(want - set(ordered))
    parts = [r[0] if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs] + extra
    if len(parts) > 6:
        parts = parts[:5] + [f"… ({len(parts) - 5} more ranges)"]
    return ", ".join(parts)


def _versions_known(provider: Provider, ident: str) -> list[str]:
    """Every version of ``ident`` the factory has made, ascending (for ranges)."""
    f = provider.factory
    reqs = provider.reqs_seen.get(ident) or []
    if not reqs:
        return []
    try:
        cands = f.ordered(f.all_candidates(ident, reqs[:1]))
    except CkpmError:
        return []
    return sorted({c.version.text for c in cands}, key=_vkey)


def _group_chains(provider: Provider, reqs: Sequence[Req]) -> list[str]:
    """Chains that differ only in the parent's version, as one line with the versions as ranges."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for r in reqs:
        c = chain(provider, r)
        if r.parent is None:
            grouped.setdefault((c, "", ""), [])
            continue
        head, _, rest = c.partition(" ← ")
        _, _, above = rest.partition(" ← ")
        p = r.parent
        where = p.label()[len(f"{p.name} {p.version.text}"):]
        grouped.setdefault((head, "\0".join((p.name, p.ident, where)), above), []).append(p.version.text)
    out = []
    for (head, parent, above), versions in grouped.items():
        if not parent:
            out.append(head)
            continue
        name, ident, where = parent.split("\0")
        known = _versions_known(provider, ident) or sorted(set(versions), key=_vkey)
        line = f"{head} ← {name} {ranges(known, versions)}{where}"
        out.append(line + (f" ← {above}" if above else ""))
    return out


def considered(provider: Provider, ident: str, reqs: Sequence[Req]) -> tuple[list[dict[str, Any]], int, str | None]:
    """Each candidate of ``ident`` (the first few) with the reasons it fails, the count, and an error."""
    f = provider.factory
    try:
        cands = f.ordered(f.all_candidates(ident, list(reqs)))
    except CkpmError as e:
        return [], 0, e.message
    out = []
    for c in cands[:MAX_CANDIDATES_SHOWN]:
        why = []
        for r in reqs:
            reason = f.reasons_against(r, c)
            if reason:
                why.append({"reason": reason, "asked_by": r.who()})
        out.append({"name": c.name, "version": c.version.text, "origin": c.origin.value, "label": c.label(),
                    "rejected": why})
    return out, len(cands), None


def rejected(provider: Provider, ident: str, reqs: Sequence[Req]) -> list[str]:
    """One line per candidate of ``ident`` with the reason it fails (or that it fits)."""
    cands, total, error = considered(provider, ident, reqs)
    if error is not None:
        return [f"(no candidates: {error})"]
    by_reasons: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for c in cands:
        by_reasons.setdefault((_reason_text(provider, c["rejected"]), c["name"], c["origin"]), []).append(c)
    every = sorted({c["version"] for c in cands}, key=_vkey)
    lines = []
    for (text, name, _origin), cs in by_reasons.items():
        where = cs[0]["label"][len(f"{name} {cs[0]['version']}"):]
        versions = [c["version"] for c in cs]
        label = cs[0]["label"] if len(cs) == 1 else f"{name} {ranges(every, versions)}{where}"
        lines.append(f"{label}: {text}")
    if total > MAX_CANDIDATES_SHOWN:
        lines.append(f"... and {total - MAX_CANDIDATES_SHOWN} more")
    if not total and ident.startswith("__"):
        lines.append(f"host fact {ident} was not found on this host (or the target is not the host)"
                     f"; set CKPM_OVERRIDE_{ident[2:].upper()}=VERSION to lock for a machine that has it")
    elif not total and any(r.req.git for r in reqs):
        url = next(r.req.git for r in reqs if r.req.git)
        lines.append(f"{url} has no version tag (like v1.2.0 or 1.2.0) whose commit has a ckpm.toml")
    elif not total:
        lines.append("(no version of it exists for these filters)")
    return lines


def _vkey(text: str) -> Any:
    from ckpm.model.version import parse_version

    return parse_version(text)


def _reason_text(provider: Provider, rejected: list[dict[str, Any]]) -> str:
    """``outside <2 (asked by lib-b 1.0–1.4); …``: one reason once, with the askers' versions as ranges."""
    if not rejected:
        return "fits each requirement alone, but not with the rest"
    grouped: dict[tuple[str, str], list[str]] = {}
    for w in rejected:
        asker = w["asked_by"]
        name, _, version = asker.rpartition(" ")
        if asker == "the project" or not name or " (" in asker:
            grouped.setdefault((w["reason"], asker), [])
        else:
            grouped.setdefault((w["reason"], name), []).append(version)
    parts = []
    for (reason, who), versions in grouped.items():
        if versions:
            who = f"{who} {ranges(sorted(set(versions), key=_vkey), versions)}"
        parts.append(f"{reason} (asked by {who})")
    return "; ".join(parts)


def _key_detail(provider: Provider, ident: str, reqs: list[Req], lines: list[str], *,
                remember: bool = False) -> dict[str, Any]:
    """Append the detail of one key in conflict to ``lines``; return it as data for --json.

    Every requirement seen on the key counts, not only those of the last conflict.
    """
    all_reqs = list({id(r): r for r in [*reqs, *provider.reqs_seen.get(ident, [])]}.values())
    if remember:
        provider.reqs_seen.setdefault(ident, all_reqs)
    lines.append(f"{ident} is required as:")
    lines.extend(f"  {c}" for c in _group_chains(provider, all_reqs))
    lines.append("candidates considered:")
    lines.extend(f"  {line}" for line in rejected(provider, ident, all_reqs))
    cands, total, error = considered(provider, ident, all_reqs)
    return {
        "key": ident,
        "requirements": [{"requirement": r.req.describe(), "asked_by": r.who(), "chain": chain(provider, r)}
                         for r in all_reqs],
        "candidates": cands, "candidates_total": total, "error": error,
    }


def impossible(provider: Provider, target: str, causes: Iterable[Any]) -> ResolutionError:
    """A ResolutionError for resolvelib's ResolutionImpossible, with the conflict as data."""
    by_ident: dict[str, list[Req]] = {}
    for info in causes:
        by_ident.setdefault(info.requirement.ident, []).append(info.requirement)
    details: list[str] = []
    conflict: list[dict[str, Any]] = []
    names = []
    for ident, reqs in sorted(by_ident.items()):
        names.append(ident)
        conflict.append(_key_detail(provider, ident, reqs, details))
    first = names[0] if names else "?"
    hint = (f"relax one of the ranges on {', '.join(names)}, or run `ckpm why-not {first}@VERSION` "
            "to see why a version you expected was not chosen")
    return ResolutionError(f"no set of versions satisfies every requirement on {', '.join(names)} "
                           f"(target {target})", details=details, hint=hint, conflict=conflict, target=target)


def too_deep(reporter: ResolutionReporter, target: str, why: str, stage: str | None = None) -> ResolutionError:
    """The search stopped at a budget: say where it was and which keys it kept failing on."""
    spots = reporter.hot_spots()
    details = [f"gave up after {reporter.rounds} rounds ({why})" + (f", during {stage}" if stage else "")]
    if spots:
        details.append("the search was stuck on:")
        details.extend(f"  {ident}: {n} candidates rejected" for ident, n in spots)
        keys = ", ".join(ident for ident, _ in spots)
        hint = (f"narrow the version ranges of {keys} (a lower bound on a newer version helps most), "
                "or raise the budget with --max-rounds / --timeout")
    else:
        last = list(dict.fromkeys(reversed(reporter.pinned)))[:5]
        if last:
            details.append(f"{len(set(reporter.pinned))} keys were decided; the last: {', '.join(last)}")
        hint = "raise the budget with --max-rounds / --timeout (no key was rejecting candidates: the graph is large)"
    return ResolutionError(f"resolution for {target} did not finish", details=details, hint=hint, target=target,
                           conflict=[{"key": ident, "rejections": n} for ident, n in spots])


def from_core(provider: Provider, problem: Any, groups: Sequence[Any], target: str) -> ResolutionError:
    """The ResolutionError for an unsatisfiable closure: the core's requirements, versions as ranges.

    Each line is one requirement of the core, with the versions that carry it merged:
    ``lib-tensorflow 2.0.0–2.19.0 require lib-numpy <2.2 (in 9 ranges): 1.14.5–2.1.3``.
    ``more`` keeps the full detail (every chain and candidate) for -v and --json.
    """
    f = provider.factory
    cands = problem.cands

    def versions_of(ident: str) -> list[str]:
        return sorted({cands[v - 1].version.text for v in problem.by_ident.get(ident, [])}, key=_vkey)

    seen: dict[str, list[Req]] = {}
    for r, _ms in problem.roots:
        seen.setdefault(r.ident, []).append(r)
    for deps in problem.deps.values():
        for r, _ms in deps:
            seen.setdefault(r.ident, []).append(r)
    for ident, reqs in seen.items():  # the first search may not have met every key: chains need them
        provider.reqs_seen.setdefault(ident, reqs)
    merged: dict[tuple[str | None, str], list[Any]] = {}
    for g in groups:
        merged.setdefault((g.parent_ident, g.ident), []).append(g)
    lines: list[str] = []
    idents: list[str] = []
    reqs_by_ident: dict[str, list[Req]] = {}
    for (parent_ident, ident), gs in merged.items():
        if ident not in idents:
            idents.append(ident)
        reqs = [r for g in gs for _, r in g.reqs]
        reqs_by_ident.setdefault(ident, []).extend(reqs)
        matches: set[int] = set().union(*(g.matches for g in gs))
        if parent_ident is None:
            who = "the project requires"
        else:
            parents = [cands[v - 1] for g in gs for v, _ in g.reqs]
            pv = list(dict.fromkeys(c.version.text for c in parents))
            who = f"{parents[0].name} {ranges(versions_of(parent_ident), pv)} require{'s' if len(pv) == 1 else ''}"
        if len(gs) == 1:
            what = gs[0].reqs[0][1].req.describe()
        else:  # one parent key asks in several ways: each range with the versions that ask it
            key = gs[0].reqs[0][1].req.key
            pall = versions_of(parent_ident or "")
            by_low = sorted(gs, key=lambda g: min(_vkey(cands[v - 1].version.text) for v, _ in g.reqs))
            per = [f"{g.reqs[0][1].req.describe()[len(key):].strip() or '*'} "
                   f"({ranges(pall, [cands[v - 1].version.text for v, _ in g.reqs])})"
                   for g in by_low]
            what = f"{key} " + (", ".join(per) if len(per) <= 3 else f"in {len(per)} different ranges (-v lists them)")
        if ident in f.missing:
            lines.append(f"{who} {what}, which no index has: {_unknown_words(f, ident)}")
        elif not matches:
            lines.append(f"{who} {what}, which no version satisfies:")
            lines.extend(f"  {line}" for line in rejected(provider, ident, reqs))
        else:
            allowed = ranges(versions_of(ident), [cands[v - 1].version.text for v in matches])
            lines.append(f"{who} {what}: {'together ' if len(gs) > 1 else ''}{allowed}")
    more: list[str] = []
    conflict: list[dict[str, Any]] = []
    for ident in idents:
        conflict.append(_key_detail(provider, ident, reqs_by_ident[ident], more, remember=True))
    counts = {i: sum(1 for _, d in merged if d == i) for i in idents}
    clash = [i for i in idents if counts[i] > 1] or idents
    missing = [i for i in idents if i in f.missing]
    if missing:
        message = (f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required but no index has "
                   f"{'it' if len(missing) == 1 else 'them'}, and no other choice of versions avoids "
                   f"{'it' if len(missing) == 1 else 'them'} (target {target})")
    else:
        message = f"no set of versions satisfies every requirement on {', '.join(clash)} (target {target})"
    hint = (f"relax one of the requirements above, or run `ckpm why-not {clash[0]}@VERSION` "
            "to see why a version you expected was not chosen")
    return ResolutionError(message, details=["these requirements cannot all hold:", *lines], hint=hint,
                           conflict=conflict, target=target, more=more)


def _unknown_words(f: Any, ident: str) -> str:
    err = f.unknown(ident.partition("@")[0])
    return err.message + (f" ({err.hint})" if err.hint else "")
