"""Words for resolution failures: who asked for what, why each candidate was rejected, what to try."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from ckpm.errors import CkpmError, ResolutionError
from ckpm.resolve.candidates import Req
from ckpm.resolve.provider import Provider, Reporter

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
        up = next((r for r in reqs if provider.factory.satisfies(r, parent)), reqs[0] if reqs else None)
        parent = up.parent if up is not None else None
    parts.append("the project")
    return " ← ".join(parts)


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
        out.append({"name": c.name, "version": c.version.text, "origin": c.origin, "label": c.label(),
                    "rejected": why})
    return out, len(cands), None


def rejected(provider: Provider, ident: str, reqs: Sequence[Req]) -> list[str]:
    """One line per candidate of ``ident`` with the reason it fails (or that it fits)."""
    cands, total, error = considered(provider, ident, reqs)
    if error is not None:
        return [f"(no candidates: {error})"]
    lines = [f"{c['label']}: " + ("; ".join(f"{w['reason']} (asked by {w['asked_by']})" for w in c["rejected"])
                                  if c["rejected"] else "fits each requirement alone, but not with the rest")
             for c in cands]
    if total > MAX_CANDIDATES_SHOWN:
        lines.append(f"... and {total - MAX_CANDIDATES_SHOWN} more")
    if not total and ident.startswith("__"):
        lines.append(f"host fact {ident} was not found on this host (or --no-host was given, or the target is "
                     f"not the host); set CKPM_OVERRIDE_{ident[2:].upper()}=VERSION to lock for a machine that has it")
    elif not total and any(r.req.git for r in reqs):
        url = next(r.req.git for r in reqs if r.req.git)
        lines.append(f"{url} has no version tag (like v1.2.0 or 1.2.0) whose commit has a ckpm.toml")
    elif not total:
        lines.append("(no version of it exists for these filters)")
    return lines


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
        # include every requirement seen on this key, not only the last conflict
        all_reqs = list({id(r): r for r in [*reqs, *provider.reqs_seen.get(ident, [])]}.values())
        chains = [chain(provider, r) for r in all_reqs]
        details.append(f"{ident} is required as:")
        details.extend(f"  {c}" for c in chains)
        details.append("candidates considered:")
        details.extend(f"  {line}" for line in rejected(provider, ident, all_reqs))
        cands, total, error = considered(provider, ident, all_reqs)
        conflict.append({
            "key": ident,
            "requirements": [{"requirement": r.req.describe(), "asked_by": r.who(), "chain": c}
                             for r, c in zip(all_reqs, chains)],
            "candidates": cands, "candidates_total": total, "error": error,
        })
    first = names[0] if names else "?"
    hint = (f"relax one of the ranges on {', '.join(names)}, or run `ckpm why-not {first}@VERSION` "
            "to see why a version you expected was not chosen")
    return ResolutionError(f"no set of versions satisfies every requirement on {', '.join(names)} "
                           f"(target {target})", details=details, hint=hint, conflict=conflict, target=target)


def too_deep(reporter: Reporter, target: str, why: str) -> ResolutionError:
    spots = reporter.hot_spots()
    details = [f"gave up after {reporter.rounds} rounds ({why})"]
    if spots:
        details.append("the search was stuck on:")
        details.extend(f"  {ident}: {n} candidates rejected" for ident, n in spots)
    hint = ("narrow the version ranges of the components above (a lower bound on a newer version "
            "helps most), or raise the budget with --max-rounds / --timeout")
    return ResolutionError(f"resolution for {target} did not finish", details=details, hint=hint, target=target,
                           conflict=[{"key": ident, "rejections": n} for ident, n in spots])
