"""``ckpm.access({...})``: the Collective Knowledge unified I/O over the library's facade.

An adapter, as the CLI is: it checks a request's inputs, calls one function of ``ckpm.api``,
``ckpm.queries`` or ``ckpm.ops`` (the same one the CLI's command calls) and returns its answer
as plain data (``tests/test_layers.py`` keeps it from importing anything else of the library).

A request is a dict with an ``action`` and that action's inputs; the answer is a dict
with ``return`` 0 and the outputs, or ``return`` > 0 and ``error`` (never an exception
for a caller's mistake). Every answer carries the ``warnings`` the action produced.

Common inputs: ``project`` (folder), ``index`` (URL), ``cache_dir``, ``offline``,
``no_host``. Actions and their own inputs:

| action | inputs |
| --- | --- |
| ``init`` | ``path``, ``name``, ``description`` |
| ``add`` | ``spec`` or ``specs``, ``tags``, ``no_tags``, ``git``, ``subdir``, ``targets``, ``kind`` |
| ``remove`` | ``name`` or ``names`` |
| ``lock`` | ``upgrade``, ``upgrade_packages``, ``targets``, ``locked``, ``allow_host_drift`` |
| ``check`` | ``targets``, ``allow_host_drift`` |
| ``tree`` | ``target`` |
| ``why`` | ``name``, ``target`` |
| ``why_not`` | ``name``, ``version``, ``target`` |
| ``search`` | ``text``, ``tags``, ``kind``, ``limit`` |
| ``show`` | ``name`` |
| ``detect`` | ``key``, ``refresh`` |
| ``sync`` | ``target``, ``locked``, ``allow_host_drift``, ``mirrors`` (vendored folders), ``jobs`` |
| ``fetch`` | ``names``, ``target``, ``locked``, ``mirrors`` |
| ``vendor`` | ``dest``, ``locked``, ``mirrors``, ``targets`` |
| ``env`` | ``target`` |
| ``store`` | ``op`` (``ls``, ``path`` with ``name``, ``gc`` with ``dry_run``) |
| ``cache`` | ``op`` (``ls``; ``clean`` with ``downloads_only``, ``older_than_days``, ``dry_run``) |
| ``index`` | ``op`` (``update``; ``reindex`` with ``path``, an index folder) |
| ``run`` | ``component``, ``command``, ``flags``, ``cflags``, ``env``, ``params``, ``input``, ``target``, ``repeat``, ``record``, ``locked``, ``scheduler`` |
| ``replay`` | ``name``, ``id``, ``tolerance``, ``record`` |
| ``results`` | ``op``: ``ls``; ``show`` with ``name`` (``NAME`` or ``NAME@ID``); ``compare`` with ``a``, ``b``, ``metrics``; ``plot`` with ``names``, ``x``, ``y``, ``out``; ``report`` with ``out``, ``names``; ``export`` with ``name``, ``out``; ``import`` with ``path``, ``name`` |
| ``tune`` | ``space`` (a file), ``objectives``, ``budget``, ``jobs``, ``strategy``, ``record``, ``scheduler``, ``seed``, ``push`` (with ``registry``, ``token``) |
| ``publish`` | ``path`` (the component's folder), ``index`` (a git index) or ``registry``, ``token``, ``tag``, ``source_url``, ``dry_run`` |
| ``yank`` | ``spec`` (``NAME@VERSION``), ``undo``, ``index`` or ``registry``, ``token`` |
| ``login`` | ``registry``, ``token`` |
| ``logout`` | ``registry`` (default: every registry) |
| ``import_ck`` | ``src`` (a CK repository folder, local git repository or git URL), ``into`` (the index folder, default ``ck-index``), ``rev``, ``modules`` |
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ckpm.errors import CkpmError


class RequestError(CkpmError):
    """A request dict that is not what its action takes."""

    code = "request"


def _strs(r: dict[str, Any], key: str) -> list[str] | None:
    """A list of strings from ``r[key]``; one string is a list of one (never its characters)."""
    v = r.get(key)
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return list(v)
    raise RequestError(f"{key!r} must be a string or a list of strings")


def _str(r: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    v = r.get(key)
    if v is None:
        if required:
            raise RequestError(f"action {r.get('action')!r} needs {key!r}")
        return None
    if not isinstance(v, str):
        raise RequestError(f"{key!r} must be a string")
    return v


def _settings(r: dict[str, Any]) -> Any:
    """The request's settings (made once per request; its reporter collects the warnings)."""
    s = r.get("_settings")
    if s is None:
        from ckpm.ops.session import make_settings

        cache_dir = r.get("cache_dir")
        if cache_dir is not None and not isinstance(cache_dir, str):
            raise RequestError("'cache_dir' must be a string")
        s = make_settings(index_url=_str(r, "index"), cache_dir=Path(cache_dir) if cache_dir else None,
                          offline=bool(r.get("offline", False)), no_host=bool(r.get("no_host", False)))
        r["_settings"] = s
    return s


def _ws(r: dict[str, Any]) -> Any:
    from ckpm.ops.session import open_workspace

    return open_workspace(_str(r, "project"), _settings(r))


def _init(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import init_project

    p = init_project(_str(r, "path") or _str(r, "project") or ".", _str(r, "name"),
                     description=_str(r, "description") or "")
    return {"manifest": str(p)}


def _lock(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import LockOptions, lock

    out = lock(_ws(r), LockOptions(upgrade=bool(r.get("upgrade")), upgrade_packages=_strs(r, "upgrade_packages") or (),
                                   targets=_strs(r, "targets"), locked=bool(r.get("locked")),
                                   allow_host_drift=bool(r.get("allow_host_drift"))))
    return out.to_dict()


def _check(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import check

    res = check(_ws(r), targets=_strs(r, "targets"), allow_host_drift=bool(r.get("allow_host_drift")))
    return {**res.to_dict(), "exit_code": res.exit_code}


def _add(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import AddRequest, add

    specs = _strs(r, "specs") or [_str(r, "spec", required=True) or ""]
    reqs = [AddRequest(s, tags=_str(r, "tags"), no_tags=_str(r, "no_tags"), git=_str(r, "git"),
                       subdir=_str(r, "subdir"), targets=_strs(r, "targets") or (), kind=_str(r, "kind"))
            for s in specs]
    return add(_ws(r), reqs).to_dict()


def _remove(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import remove

    return remove(_ws(r), _strs(r, "names") or [_str(r, "name", required=True) or ""]).to_dict()


def _tree(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import tree

    return {"tree": {t: [n.to_dict() for n in ns] for t, ns in tree(_ws(r), _str(r, "target")).items()}}


def _why(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import why

    name = _str(r, "name", required=True) or ""
    return {"name": name, "chains": why(_ws(r), name, target=_str(r, "target"))}


def _why_not(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import why_not

    res = why_not(_ws(r), _str(r, "name", required=True) or "", _str(r, "version", required=True) or "",
                  target=_str(r, "target"))
    return res.to_dict()


def _indexes(r: dict[str, Any]) -> Sequence[Any]:
    from ckpm.ops.session import indexes

    project = _str(r, "project")
    return indexes(_settings(r), project, look_for_project=project is not None)


def _search(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import search

    limit = r.get("limit")
    if limit is not None and not isinstance(limit, int):
        raise RequestError("'limit' must be an integer")
    hits = search(_indexes(r), text=_str(r, "text"), tags=_str(r, "tags"), kind=_str(r, "kind"), limit=limit)
    return {"hits": [h.to_dict() for h in hits]}


def _show(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import show

    return show(_indexes(r), _str(r, "name", required=True) or "")


def _detect(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.api import detect_host
    from ckpm.ops.session import manifest_or_none

    settings = _settings(r)
    project = _str(r, "project")
    manifest = manifest_or_none(project, settings) if project is not None else None
    res = detect_host(_indexes(r), key=_str(r, "key"), manifest=manifest, refresh=bool(r.get("refresh")),
                      settings=settings)
    return res.to_json()  # type: ignore[no-any-return]


def _mirror_dirs(r: dict[str, Any]) -> tuple[Path, ...]:
    return tuple(Path(m) for m in _strs(r, "mirrors") or ())


def _sync(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.sync import sync

    jobs = r.get("jobs", 0)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 0:
        raise RequestError("'jobs' must be a non-negative integer")
    outcome, res = sync(_ws(r), target=_str(r, "target"), jobs=jobs, mirrors=_mirror_dirs(r),
                        locked=bool(r.get("locked")), allow_host_drift=bool(r.get("allow_host_drift")))
    return {"lock": outcome.to_dict(), **res.to_dict()}


def _fetch(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.sync import fetch

    return fetch(_ws(r), _strs(r, "names") or (), target=_str(r, "target"), mirrors=_mirror_dirs(r),
                 locked=bool(r.get("locked"))).to_dict()


def _vendor(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.sync import vendor

    dest = _str(r, "dest", required=True) or ""
    return vendor(_ws(r), Path(dest), targets=_strs(r, "targets"), mirrors=_mirror_dirs(r),
                  locked=bool(r.get("locked"))).to_dict()


def _env(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.sync import environment

    return {"env": environment(_ws(r), _str(r, "target"))}


def _store(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops import store

    op = _str(r, "op") or "ls"
    settings = _settings(r)
    if op == "ls":
        return {"entries": [store.entry_dict(e) for e in store.store_ls(settings)]}
    if op == "path":
        name = _str(r, "name", required=True) or ""
        return {"paths": [str(p) for p in store.store_paths(settings, name, _str(r, "target"))]}
    if op == "gc":
        return {"removed": store.store_gc(settings, dry_run=bool(r.get("dry_run")))}
    raise RequestError(f"store: unknown op {op!r} (ls, path, gc)")


def _cache(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops import store

    op = _str(r, "op") or "ls"
    settings = _settings(r)
    if op == "ls":
        return store.cache_ls(settings)
    if op == "clean":
        days = r.get("older_than_days")
        if days is not None and (not isinstance(days, (int, float)) or isinstance(days, bool)):
            raise RequestError("'older_than_days' must be a number")
        dry_run = bool(r.get("dry_run"))
        res = store.cache_clean(settings, downloads_only=bool(r.get("downloads_only")), older_than_days=days,
                                dry_run=dry_run)
        return store.clean_dict(res, dry_run=dry_run)
    raise RequestError(f"cache: unknown op {op!r} (ls, clean)")


def _run(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops import run

    req = run.run_request({k: v for k, v in r.items() if k in (
        "component", "command", "flags", "cflags", "env", "params", "input", "target", "repeat", "record", "locked")})
    return run.run(_ws(r), req, scheduler=_str(r, "scheduler"))  # with a scheduler, on a worker of a Dask cluster


def _replay(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.run import replay

    tol = r.get("tolerance")
    if tol is not None and (not isinstance(tol, (int, float)) or isinstance(tol, bool) or tol < 0):
        raise RequestError("'tolerance' must be a non-negative number")
    return replay(_ws(r), _str(r, "name", required=True) or "", record_id=_str(r, "id"),
                  tolerance=None if tol is None else float(tol), save_as=_str(r, "record")).to_dict()


def _results(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops import results as res
    from ckpm.ops.session import project_root

    project = project_root(_str(r, "project"))
    reporter = _settings(r).reporter
    op = _str(r, "op") or "ls"
    if op == "ls":
        return {"experiments": res.ls(project, reporter=reporter)}
    if op == "show":
        return res.show(project, _str(r, "name", required=True) or "", reporter=reporter)
    if op == "compare":
        return res.compare(project, _str(r, "a", required=True) or "", _str(r, "b", required=True) or "",
                           metrics=_strs(r, "metrics"), reporter=reporter)
    if op == "plot":
        out = res.plot(project, _strs(r, "names") or [], x=_str(r, "x") or "time", y=_str(r, "y") or "size",
                       out=Path(_str(r, "out") or "pareto.png"), reporter=reporter)
        return {"out": str(out)}
    if op == "report":
        out = res.report(project, Path(_str(r, "out") or "report.html"), names=_strs(r, "names"), reporter=reporter)
        return {"out": str(out)}
    if op == "export":
        return res.export(project, _str(r, "name", required=True) or "", Path(_str(r, "out", required=True) or ""))
    if op == "import":
        return res.import_(project, Path(_str(r, "path", required=True) or ""), name=_str(r, "name"))
    raise RequestError(f"results: unknown op {op!r} (ls, show, compare, plot, report, export, import)")


def _tune(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.tune import tune

    def integer(key: str, default: int) -> int:
        v = r.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise RequestError(f"{key!r} must be a whole number")
        return v

    out = tune(_ws(r), Path(_str(r, "space", required=True) or ""), objectives=_strs(r, "objectives") or ["time"],
               budget=integer("budget", 20), jobs=max(1, integer("jobs", 1)), strategy=_str(r, "strategy") or "random",
               record=_str(r, "record"), scheduler=_str(r, "scheduler"), seed=integer("seed", 0),
               push=_str(r, "push"), registry=_str(r, "registry"), token=_str(r, "token"))
    return out.to_dict()


def _publish(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.publish import publish

    return publish(_str(r, "path"), index=_str(r, "index"), registry=_str(r, "registry"), token=_str(r, "token"),
                   tag=_str(r, "tag"), source_url=_str(r, "source_url"), dry_run=bool(r.get("dry_run", False)),
                   settings=_settings(r)).to_dict()


def _yank(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.publish import yank

    return yank(_str(r, "spec", required=True) or "", undo=bool(r.get("undo", False)), index=_str(r, "index"),
                registry=_str(r, "registry"), token=_str(r, "token"), settings=_settings(r)).to_dict()


def _login(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.publish import login

    return login(_str(r, "registry", required=True) or "", _str(r, "token", required=True) or "",
                 settings=_settings(r)).to_dict()


def _logout(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.publish import logout

    return {"forgotten": logout(_str(r, "registry"), settings=_settings(r))}


def _import_ck(r: dict[str, Any]) -> dict[str, Any]:
    from ckpm.ops.ck import import_ck

    report = import_ck(_str(r, "src", required=True) or "", Path(_str(r, "into") or "ck-index"), rev=_str(r, "rev"),
                       settings=_settings(r), modules=_strs(r, "modules"))
    return report.to_dict()


def _index(r: dict[str, Any]) -> dict[str, Any]:
    op = _str(r, "op") or "update"
    if op == "update":
        from ckpm.api import index_update

        return {"indexes": index_update(_indexes(r))}
    if op == "reindex":
        from ckpm.ops.index import reindex

        path = Path(_str(r, "path", required=True) or "")
        return {"path": str(path / "summary.jsonl"), "components": reindex(path, reporter=_settings(r).reporter)}
    raise RequestError(f"index: unknown op {op!r} (update, reindex)")


ACTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "init": _init, "lock": _lock, "check": _check, "add": _add, "remove": _remove, "tree": _tree, "why": _why,
    "why_not": _why_not, "search": _search, "show": _show, "detect": _detect, "sync": _sync, "fetch": _fetch,
    "vendor": _vendor, "env": _env, "store": _store, "cache": _cache, "index": _index, "run": _run,
    "replay": _replay, "tune": _tune, "results": _results, "publish": _publish, "yank": _yank, "login": _login,
    "logout": _logout, "import_ck": _import_ck,
}


def access(request: Any) -> dict[str, Any]:
    """Run ``request["action"]``; returns ``{"return": 0, ...}`` or ``{"return": N, "error": ...}``."""
    if not isinstance(request, dict):
        return {"return": 1, "error": f"a request is a dict with an 'action', not {type(request).__name__}",
                "code": "request"}
    action = request.get("action")
    fn = ACTIONS.get(action) if isinstance(action, str) else None
    if fn is None:
        return {"return": 1, "error": f"unknown action {action!r}; known: {', '.join(sorted(ACTIONS))}",
                "code": "request"}
    r = dict(request)
    try:
        out: dict[str, Any] = {"return": 0, **fn(r)}
    except CkpmError as e:  # the error's one shape (as in the CLI's --json): a conflict, the mirrors tried, the
        out = {"return": e.exit_code or 1, **e.to_dict()}  # record of a run that failed validation…
    except OSError as e:
        out = {"return": 1, "error": f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""), "code": "os"}
    s = r.get("_settings")
    out["warnings"] = list(s.reporter.warnings) if s is not None else []
    return out
