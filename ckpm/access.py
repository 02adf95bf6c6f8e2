"""``ckpm.access({...})``: the Collective Knowledge unified I/O over the library API.

A request is a dict with an ``action`` and that action's inputs; the answer is a dict
with ``return`` 0 and the outputs, or ``return`` > 0 and ``error`` (never an exception
for a user's mistake).
"""
from __future__ import annotations

from typing import Any, Callable

from ckpm.errors import CkpmError


def _ws(r: dict[str, Any]) -> Any:
    from ckpm.api import Options, Workspace

    return Workspace(r.get("project"), Options(index_url=r.get("index"), cache_dir=r.get("cache_dir"),
                                              offline=bool(r.get("offline", False))))


def _lock(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import LockOptions, lock

    out = lock(_ws(r), LockOptions(upgrade=bool(r.get("upgrade")), upgrade_packages=r.get("upgrade_packages", ()),
                                   targets=r.get("targets")))
    return out.to_dict()


def _check(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import check

    return check(_ws(r)).to_dict()


def _add(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import AddRequest, add

    specs = r.get("specs") or [r["spec"]]
    reqs = [AddRequest(s, tags=r.get("tags"), no_tags=r.get("no_tags"), git=r.get("git")) for s in specs]
    return add(_ws(r), reqs).to_dict()


def _remove(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import remove

    return remove(_ws(r), r.get("names") or [r["name"]]).to_dict()


def _tree(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import tree

    return {"tree": {t: [n.to_dict() for n in ns] for t, ns in tree(_ws(r), r.get("target")).items()}}


def _search(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import Options, make_indexes, search

    idx = make_indexes(None, Options(index_url=r.get("index")))
    return {"hits": [h.to_dict() for h in search(idx, text=r.get("text"), tags=r.get("tags"), kind=r.get("kind"))]}


def _show(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import Options, make_indexes, show

    return show(make_indexes(None, Options(index_url=r.get("index"))), r["name"])


ACTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "lock": _lock, "check": _check, "add": _add, "remove": _remove, "tree": _tree, "search": _search, "show": _show,
}


def access(request: dict[str, Any]) -> dict[str, Any]:
    """Run ``request["action"]``; returns ``{"return": 0, ...}`` or ``{"return": N, "error": ...}``."""
    action = request.get("action")
    fn = ACTIONS.get(str(action))
    if fn is None:
        return {"return": 1, "error": f"unknown action {action!r}; known: {', '.join(sorted(ACTIONS))}"}
    try:
        return {"return": 0, **fn(request)}
    except CkpmError as e:
        return {"return": e.exit_code or 1, "error": e.message, "hint": e.hint, "details": e.details, "code": e.code}
    except KeyError as e:
        return {"return": 1, "error": f"action {action!r} needs {e}"}
