"""The results API: ``POST/GET /api/v1/results``, ``GET/DELETE /api/v1/results/{id}``, and the pages.

A push is ``{"records": [record, ...]}``; each record is checked whole (:func:`check_record`)
before anything is stored, and the push is one transaction (:mod:`ckpm_registry.resultsdb`).
What a record may hold is fixed: the keys below and nothing else, every string, list and
object bounded; statistics are computed here from the per-repetition values, never taken
from the client. A record's id is the sha256 of its pusher and its canonical JSON, so the
same record pushed again adds nothing.

Limits (:class:`ResultsLimits`, documented in docs/registry.md): the body size (413, the
service's ``--max-body``), records per push, metrics per record, values per metric, string
lengths and nesting (422), and pushes per token per minute (429 with ``Retry-After``).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from fastapi import FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ckpm_registry.errors import ApiError, bad_request, forbidden, invalid, not_found
from ckpm_registry.resultsdb import ResultsDB, Row, database_url, host_class_of

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
METRIC_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")
ID_RE = re.compile(r"[0-9a-f]{32}")
MAX_PAGE = 100
RECORD_KEYS = {"format", "program", "experiment", "local_id", "created", "ckpm_version", "ok", "target", "config",
               "point", "lock", "host", "metrics", "validation"}


@dataclass
class ResultsLimits:
    """What one push may carry (422 beyond these; the body size is the service's max_body, 413)."""

    records_per_push: int = 500
    metrics_per_record: int = 64
    values_per_metric: int = 1000
    string_length: int = 1024
    items: int = 1000  # entries of any list or object
    depth: int = 6
    pushes_per_minute: int = 120  # per token (429)


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 seconds (a sliding window, kept in memory)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None when allowed (and counted); else the seconds until the next is."""
        now = self.clock()
        with self._lock:
            q = self._seen.setdefault(key, deque())
            while q and q[0] <= now - 60:
                q.popleft()
            if len(q) >= self.per_minute:
                return max(0.0, q[0] + 60 - now)
            q.append(now)
            if len(self._seen) > 100_000:  # forget idle keys
                for k in [k for k, v in self._seen.items() if not v or v[-1] <= now - 60]:
                    del self._seen[k]
            return None


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _bounded(value: Any, where: str, lim: ResultsLimits, depth: int = 0) -> None:
    """Any JSON value: strings, lists, objects and depth within the limits; numbers finite."""
    if depth > lim.depth:
        raise invalid(f"{where}: nested deeper than {lim.depth} levels")
    if isinstance(value, str):
        if len(value) > lim.string_length:
            raise invalid(f"{where}: a string longer than {lim.string_length} characters")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        if not math.isfinite(value) or abs(value) > 1e300:
            raise invalid(f"{where}: not a finite number")
    elif isinstance(value, list):
        if len(value) > lim.items:
            raise invalid(f"{where}: more than {lim.items} items")
        for i, v in enumerate(value):
            _bounded(v, f"{where}[{i}]", lim, depth + 1)
    elif isinstance(value, dict):
        if len(value) > lim.items:
            raise invalid(f"{where}: more than {lim.items} entries")
        for k, v in value.items():
            if len(k) > lim.string_length:
                raise invalid(f"{where}: a key longer than {lim.string_length} characters")
            _bounded(v, f"{where}.{k[:40]}", lim, depth + 1)
    else:
        raise invalid(f"{where}: not a JSON value")


def _str(d: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    v = d.get(key)
    if v is None:
        if required:
            raise invalid(f"{where}.{key} is required")
        return ""
    if not isinstance(v, str):
        raise invalid(f"{where}.{key} must be a string")
    return v


def _obj(d: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise invalid(f"{where}.{key} must be an object")
    return v


def _median(vs: list[float]) -> float:
    s = sorted(vs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def check_record(rec: Any, user: str, lim: ResultsLimits, where: str = "record") -> Row:
    """One pushed record, checked whole; its row (id, filter columns, metrics computed from the values)."""
    if not isinstance(rec, dict):
        raise invalid(f"{where} must be an object")
    _bounded(rec, where, lim)
    extra = sorted(set(rec) - RECORD_KEYS)
    if extra:
        raise invalid(f"{where}: unknown key {_short(extra[0])} (a record holds {', '.join(sorted(RECORD_KEYS))})")
    if rec.get("format") != 1:
        raise invalid(f"{where}.format must be 1")
    prog = _obj(rec, "program", where)
    name = _str(prog, "name", f"{where}.program", required=True)
    if not NAME_RE.fullmatch(name):
        raise invalid(f"{where}.program.name {_short(name)} is not a name (letters, digits, . _ + -; at most 128)")
    for k in ("version", "command"):
        _str(prog, k, f"{where}.program")
    target = _str(rec, "target", where, required=True)
    if not target or len(target) > 128:
        raise invalid(f"{where}.target must be 1 to 128 characters")
    if not isinstance(rec.get("ok"), bool):
        raise invalid(f"{where}.ok must be true or false")
    for k in ("experiment", "local_id", "created", "ckpm_version"):
        _str(rec, k, where)
    config = _obj(rec, "config", where)
    _obj(rec, "point", where)
    lock = _obj(rec, "lock", where)
    lock_hash = _str(lock, "hash", f"{where}.lock")
    if len(lock_hash) > 128:
        raise invalid(f"{where}.lock.hash is longer than 128 characters")
    if not isinstance(lock.get("packages", []), list):
        raise invalid(f"{where}.lock.packages must be a list")
    host = _obj(rec, "host", where)
    validation = _obj(rec, "validation", where)
    if "ok" in validation and not isinstance(validation["ok"], bool):
        raise invalid(f"{where}.validation.ok must be true or false")
    metrics = rec.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise invalid(f"{where}.metrics must be an object with at least one metric")
    if len(metrics) > lim.metrics_per_record:
        raise invalid(f"{where}: {len(metrics)} metrics; at most {lim.metrics_per_record} per record")
    stats: dict[str, dict[str, Any]] = {}
    doc_metrics: dict[str, dict[str, Any]] = {}
    for k, m in metrics.items():
        if not METRIC_RE.fullmatch(k):
            raise invalid(f"{where}.metrics: {_short(k)} is not a metric name (letters, digits, _ . + -)")
        if not isinstance(m, dict):
            raise invalid(f"{where}.metrics.{k} must be an object {{\"values\": [...], \"better\": ...}}")
        vals = m.get("values")
        if not isinstance(vals, list) or not vals or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals):
            raise invalid(f"{where}.metrics.{k}.values must be a non-empty list of finite numbers")
        if len(vals) > lim.values_per_metric:
            raise invalid(f"{where}.metrics.{k}: {len(vals)} values; at most {lim.values_per_metric}")
        better = m.get("better", "lower")
        if better not in ("lower", "higher"):
            raise invalid(f"{where}.metrics.{k}.better must be \"lower\" or \"higher\"")
        fv = [float(v) for v in vals]
        med = _median(fv)
        best = min(fv) if better == "lower" else max(fv)
        doc_metrics[k] = {"values": fv, "better": better, "min": min(fv), "max": max(fv), "median": med,
                          "mean": sum(fv) / len(fv), "n": len(fv)}
        stats[k] = {"median": med, "best": best, "n": len(fv), "better": better}
    doc = {**rec, "metrics": doc_metrics}
    cc = _obj(config, "compiler", f"{where}.config")
    compiler = " ".join(str(cc.get(k)) for k in ("name", "version") if isinstance(cc.get(k), str) and cc.get(k))
    host_class = host_class_of(host)
    canon = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    rid = hashlib.sha256(f"{user}\n{canon}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    machine = hashlib.sha256(f"{user}\n{host_class}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    variant = json.dumps([config, rec.get("point")], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    peers = hashlib.sha256(f"{lock_hash}\n{host_class}\n{variant}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    created = _str(rec, "created", where)[:64]
    return Row(rid, name, _str(prog, "version", f"{where}.program")[:128], target, compiler[:256], user, machine,
               host_class[:1024], lock_hash, peers, bool(rec["ok"]), created, doc, stats)


def check_push(doc: Any, user: str, lim: ResultsLimits) -> list[Row]:
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise bad_request('the body must be a JSON object {"records": [...]}')
    recs = doc["records"]
    if not recs:
        raise invalid("records is empty: push at least one record")
    if len(recs) > lim.records_per_push:
        raise invalid(f"{len(recs)} records in one push; at most {lim.records_per_push} (push them in parts)")
    return [check_record(r, user, lim, f"records[{i}]") for i, r in enumerate(recs)]


_TEXT = {"type": "string", "maxLength": 1024}
RECORD_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["format", "program", "target", "ok", "metrics"], "additionalProperties": False,
    "properties": {
        "format": {"const": 1},
        "program": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"},
            "version": {"type": ["string", "null"], "maxLength": 128},
            "command": {"type": ["string", "null"], "maxLength": 1024}}},
        "experiment": _TEXT, "local_id": _TEXT, "created": {"type": "string", "maxLength": 64},
        "ckpm_version": _TEXT, "ok": {"type": "boolean"},
        "target": {"type": "string", "minLength": 1, "maxLength": 128},
        "config": {"type": "object", "maxProperties": 64}, "point": {"type": ["object", "null"], "maxProperties": 64},
        "lock": {"type": "object", "properties": {"hash": {"type": "string", "maxLength": 128},
                                                  "packages": {"type": "array", "maxItems": 1000}}},
        "host": {"type": "object", "maxProperties": 64},
        "metrics": {"type": "object", "minProperties": 1, "maxProperties": 64,
                    "propertyNames": {"pattern": "^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$"},
                    "additionalProperties": {
                        "type": "object", "required": ["values"], "properties": {
                            "values": {"type": "array", "minItems": 1, "maxItems": 1000,
                                       "items": {"type": "number", "minimum": -1e300, "maximum": 1e300}},
                            "better": {"enum": ["lower", "higher"]}}}},
        "validation": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
    }}


def install(app: FastAPI, reg: Any, config: Any, errors: Callable[..., dict[int | str, dict[str, Any]]]) -> ResultsDB:
    """Add the results API and pages to ``app`` (before its catch-all route); returns the database."""
    from ckpm_registry import scoreboard

    lim: ResultsLimits = getattr(config, "results_limits", None) or ResultsLimits()
    db = ResultsDB(database_url(getattr(config, "database", None), reg.store.state))
    limiter = RateLimiter(lim.pushes_per_minute)
    app.state.results = db

    push_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["records"],
        "properties": {"records": {"type": "array", "minItems": 1, "maxItems": 500, "items": RECORD_SCHEMA}}}}}}

    @app.post("/api/v1/results", tags=["results"], openapi_extra={"requestBody": push_body},
              responses={200: {"description": "every record was there already"},
                         201: {"description": "records added"}, **errors(400, 401, 413, 422, 429)})
    async def push(request: Request, authorization: str | None = Header(None)) -> JSONResponse:
        """Push experiment records (token). Records already pushed are not added again."""
        user = reg.user(authorization)
        key = hashlib.sha256((authorization or "").encode("utf-8", "surrogatepass")).hexdigest()
        wait = limiter.take(key)
        if wait is not None:
            err = ApiError(429, "too-many-requests",
                           f"more than {lim.pushes_per_minute} pushes in a minute with this token; "
                           f"try again in {math.ceil(wait)} s")
            return JSONResponse(err.body(), status_code=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        raw = await request.body()
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise bad_request(f"the body is not JSON ({type(e).__name__}: {str(e)[:200]})") from None
        rows = check_push(doc, user, lim)
        added, existing = await run_in_threadpool(db.push, rows)
        return JSONResponse({"user": user, "ids": [r.id for r in rows], "added": added, "existing": existing},
                            status_code=201 if added else 200)

    @app.get("/api/v1/results", tags=["results"], responses=errors(422))
    def query(program: str = Query("", max_length=128), target: str = Query("", max_length=128),
              user: str = Query("", max_length=64), metric: str = Query("", max_length=128),
              lock: str = Query("", max_length=128), limit: int = Query(50, ge=1, le=MAX_PAGE),
              offset: int = Query(0, ge=0, le=10_000_000), full: bool = Query(False)) -> dict[str, Any]:
        """Pushed records, newest first (with `metric`: best first by its median); `full` adds each record."""
        return db.query(program=program, target=target, user=user, metric=metric, lock=lock, limit=limit,
                        offset=offset, full=full)

    @app.get("/api/v1/results/{rid}", tags=["results"], responses=errors(404))
    def one(rid: str) -> dict[str, Any]:
        """One record, everything pushed with it, and the metrics flagged as unexpected."""
        out = db.get(rid) if ID_RE.fullmatch(rid) else None
        if out is None:
            raise not_found(f"no result {_short(rid)} on this registry")
        return out

    @app.delete("/api/v1/results/{rid}", tags=["results"], responses=errors(401, 403, 404))
    def delete(rid: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        """Delete a record (only its pusher may)."""
        user = reg.user(authorization)
        state = db.delete(rid, user) if ID_RE.fullmatch(rid) else "missing"
        if state == "missing":
            raise not_found(f"no result {_short(rid)} on this registry")
        if state.startswith("forbidden:"):
            raise forbidden(f"result {rid} was pushed by {state.split(':', 1)[1]}; {user} may not delete it")
        return {"deleted": rid}

    def wants_html(request: Request) -> bool:
        return "text/html" in request.headers.get("accept", "")

    @app.get("/results/{program}", response_class=HTMLResponse, tags=["pages"], responses=errors(404, 422))
    def board(request: Request, program: str, target: str = Query("", max_length=128),
              compiler: str = Query("", max_length=256), user: str = Query("", max_length=64),
              x: str = Query("", max_length=128), y: str = Query("", max_length=128)) -> Response:
        """A program's scoreboard: one row per machine, the Pareto frontier of two metrics (SVG)."""
        metrics = db.metrics_of(program) if NAME_RE.fullmatch(program) else []
        if not metrics:
            err = not_found(f"no results for {_short(program)} on this registry")
            if not wants_html(request):
                raise err
            return HTMLResponse(scoreboard.error_page(404, err.message), status_code=404)
        names = [m for m, _ in metrics]
        order = [m for m in ("time", "size", "max_rss") if m in names] + [m for m in names if m not in (
            "time", "size", "max_rss")]
        x = x if x in names else order[0]
        y = y if y in names else (order[1] if len(order) > 1 else order[0])
        data = db.scoreboard(program, target=target, compiler=compiler, user=user, x=x, y=y)
        return HTMLResponse(scoreboard.board_page(data, order, {"target": target, "compiler": compiler,
                                                                "user": user}))

    @app.get("/records/{rid}", response_class=HTMLResponse, tags=["pages"], responses=errors(404))
    def record_page(request: Request, rid: str) -> Response:
        """Everything pushed with one record."""
        out = db.get(rid) if ID_RE.fullmatch(rid) else None
        if out is None:
            err = not_found(f"no result {_short(rid)} on this registry")
            if not wants_html(request):
                raise err
            return HTMLResponse(scoreboard.error_page(404, err.message), status_code=404)
        return HTMLResponse(scoreboard.record_page(out))

    return db
