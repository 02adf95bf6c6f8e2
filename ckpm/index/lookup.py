"""Looking names up across several indexes: which one has a component, and near names.

Shared by the resolver's candidate factory and the read-only queries, so that an
unknown name is worded the same everywhere: what was searched, and what is close.
"""
from __future__ import annotations

from typing import Sequence

from ckpm.errors import CkpmError, UnknownComponent
from ckpm.index.base import Index


def known_names(indexes: Sequence[Index]) -> list[str]:
    """Every component name the indexes' summaries list (an unreadable summary is skipped)."""
    names: set[str] = set()
    for idx in indexes:
        try:
            names.update(s.name for s in idx.summaries())
        except CkpmError:
            continue
    return sorted(names)


def suggestions(indexes: Sequence[Index], key: str, n: int = 3) -> list[str]:
    """Names close to ``key`` that really exist (a stale summary may list a deleted component)."""
    from difflib import get_close_matches

    out = []
    for name in get_close_matches(key, [x for x in known_names(indexes) if x != key], n=n + 2, cutoff=0.6):
        if any(idx.entries(name) for idx in indexes):
            out.append(name)
        if len(out) == n:
            break
    return out


def unknown_component(indexes: Sequence[Index], key: str) -> UnknownComponent:
    """The error for a name no index has: what was searched and what is near."""
    near = suggestions(indexes, key)
    where = ", ".join(f"{i.name} ({i.url})" for i in indexes) or "no index"
    hint = (f"did you mean {', '.join(near)}?" if near
            else "check the name with `ckpm search`, or add tags to ask for a capability")
    return UnknownComponent(f"no component named {key!r} in {where}", hint=hint)
