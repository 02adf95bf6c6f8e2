"""The web application (FastAPI): sparse index files, the JSON API, HTML pages, OpenAPI.

Every failure, the framework's own included (404, 405, validation, oversized bodies), is
answered as ``{"error": {"code": "<stable-code>", "error": "<sentence>", "hint": ..., "details": [...]}}``
(ckpm's ``CkpmError.to_dict()``; :mod:`ckpm_registry.errors`).
"""
from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ckpm.index.layout import CONFIG, SUMMARY

from ckpm_registry import html
from ckpm_registry.errors import ERROR_SCHEMA, STATUS_CODES, ApiError, bad_request, not_found
from ckpm_registry.service import MAX_LIMIT, MAX_QUERY_LEN, Registry, latest
from ckpm_registry.store import IndexStore, wanted
from ckpm_registry.tokens import TokenStore

log = logging.getLogger("ckpm_registry")

GZIP_MIN = 64 << 10  # index files from this size are sent gzip-compressed to clients that accept it
MAX_BODY = 1 << 20  # the largest request body (a publish: one index line, at most 64 KiB of it)


@dataclass
class RegistryConfig:
    """How a service is set up (the options of ``ckpm-registry serve``)."""

    index: str
    tokens: Path | None = None
    state: Path | None = None
    export: Path | None = None
    public_url: str = ""
    max_body: int = MAX_BODY
    max_age: int = 60  # Cache-Control of component files and summary.jsonl (then revalidate)
    config_max_age: int = 300
    refresh: float = 1.0  # how often a read checks whether the branch moved (seconds)
    extra: dict[str, Any] = field(default_factory=dict)
    database: str | None = None  # results: postgresql://… (default: SQLite in the state folder)
    results_limits: Any = None  # ckpm_registry.results.ResultsLimits (default limits when None)


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "too-large", f"the request body is over {limit:,} bytes")


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is refused (by Content-Length, or while read)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    n = int(v)
                except ValueError:
                    n = -1
                if n < 0 or n > self.limit:
                    err = BodyTooLarge(self.limit) if n > self.limit else bad_request("a bad Content-Length")
                    await JSONResponse(err.body(), status_code=err.status, headers={"Connection": "close"})(
                        scope, receive, send)
                    return
        seen = 0
        limit = self.limit

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return msg

        await self.app(scope, counted, send)


class SparseFiles:
    """ASGI middleware: GET and HEAD of the index files, answered before the framework.

    The files clients read most (one request per component a resolution needs) skip
    routing, dependency injection and the thread pool; anything else goes on to the
    application (which also declares these paths, for OpenAPI).
    """

    def __init__(self, app: ASGIApp, serve: Any) -> None:
        self.app = app
        self.serve = serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            rel = path[7:] if path.startswith("/index/") else path[1:]
            if wanted(rel):
                await self.serve(rel, scope["method"], _header(scope, b"if-none-match"),
                                 _header(scope, b"accept-encoding"))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


def _error(err: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="ckpm"'} if err.status == 401 else None
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def _line_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schema of an index line (index/schema.json) for OpenAPI: the line, and its
    definitions as OpenAPI components (``IndexLine_<def>``)."""
    from ckpm.index.open import embedded_index_path

    try:
        doc = json.loads((embedded_index_path() / "schema.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"type": "object"}, {}

    def fix(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: ("#/components/schemas/IndexLine_" + v.removeprefix("#/$defs/")
                        if k == "$ref" and isinstance(v, str) else fix(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [fix(v) for v in x]
        return x

    defs = {f"IndexLine_{k}": fix(v) for k, v in doc.pop("$defs", {}).items()}
    for k in ("$schema", "$id"):
        doc.pop(k, None)
    return fix(doc), defs




def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"description": STATUS_CODES.get(c, "error"),
                "content": {"application/json": {"schema": ERROR_SCHEMA}}} for c in codes}


async def _watch(store: IndexStore, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(store.refresh_if_moved, force=True)
        except Exception:  # noqa: BLE001 - keep watching; the next read reports it
            log.exception("exporting the index failed")


def create_app(config: RegistryConfig, *, store: IndexStore | None = None) -> FastAPI:
    """The application for ``config`` (the index is opened and exported now)."""
    store = store or IndexStore(config.index, state=config.state, export=config.export,
                                public_url=config.public_url, refresh=config.refresh)
    tokens = TokenStore(config.tokens)
    tokens.check()
    reg = Registry(store, tokens)
    with store.writing():
        store.sweep()  # what a killed process left half-written
        store.sync_export()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """While serving: export commits made outside the service (a push, `ckpm publish --index`)
        every ``refresh`` seconds even when no read comes here (a static server may serve them)."""
        task = asyncio.create_task(_watch(store, config.refresh)) if config.refresh > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="ckpm registry", version="1", lifespan=lifespan,
                  description="A registry of ckpm components over a git index: the sparse index files "
                              "(format 1), publishing, yanking, owners and search.",
                  docs_url=None, redoc_url=None)
    app.state.registry = reg
    app.state.config = config
    app.add_middleware(BodyLimit, limit=config.max_body)

    # -- errors ------------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404:
            detail = f"nothing at {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        resp = JSONResponse(ApiError(exc.status_code, code, detail).body(), status_code=exc.status_code)
        if exc.headers:
            for k, v in exc.headers.items():
                resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        msg = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        return _error(ApiError(422, "invalid", msg))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(ApiError(500, "internal", "internal error; see the service's log"))

    # -- the sparse index files --------------------------------------------------------------

    gzipped: dict[str, bytes] = {}  # ETag → the gzip of a large file (a few kept)

    def serve_file(rel: str, method: str, inm: str | None, accept_encoding: str | None = None) -> Response:
        body = store.read_file(rel)
        if body is None:
            return _error(not_found(f"no index file {rel}"))
        age = config.config_max_age if rel == CONFIG else config.max_age
        data, etag = body.data, body.etag
        headers = {"Cache-Control": f"public, max-age={age}, must-revalidate"}
        # a large file (summary.jsonl of a big index) goes gzip-compressed to clients that take it;
        # that representation has its own ETag, as HTTP wants
        if len(data) >= GZIP_MIN and accept_encoding and "gzip" in accept_encoding.lower():
            etag = etag[:-1] + '-gzip"'
            packed = gzipped.get(etag)
            if packed is None:
                packed = gzip.compress(data, compresslevel=6, mtime=0)
                if len(gzipped) >= 8:
                    gzipped.clear()
                gzipped[etag] = packed
            data = packed
            headers["Content-Encoding"] = "gzip"
        if len(body.data) >= GZIP_MIN:
            headers["Vary"] = "Accept-Encoding"
        headers["ETag"] = etag
        if inm is not None and (inm.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in inm.split(",")]):
            return Response(status_code=304, headers=headers)
        media = "application/json" if rel == CONFIG else "application/x-ndjson"
        if method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return Response(status_code=200, headers=headers, media_type=media)
        return Response(data, headers=headers, media_type=media)

    def sparse(rel: str, request: Request) -> Response:
        return serve_file(rel, request.method, request.headers.get("if-none-match"),
                          request.headers.get("accept-encoding"))

    app.add_middleware(SparseFiles, serve=serve_file)

    file_responses = {200: {"description": "the file (JSON or JSON Lines)"}, 304: {"description": "not modified"},
                      **_errors(404)}

    hidden: dict[str, Any] = {"methods": ["HEAD"], "include_in_schema": False}

    @app.get("/config.json", tags=["index"], responses=file_responses)
    @app.api_route("/config.json", **hidden)
    @app.api_route("/index/config.json", methods=["GET", "HEAD"], include_in_schema=False)
    def config_json(request: Request) -> Response:
        """The index's config.json, with `api` set to this service's URL."""
        return sparse(CONFIG, request)

    @app.get("/summary.jsonl", tags=["index"], responses=file_responses)
    @app.api_route("/summary.jsonl", **hidden)
    @app.api_route("/index/summary.jsonl", methods=["GET", "HEAD"], include_in_schema=False)
    def summary_jsonl(request: Request) -> Response:
        """One line per component (name, kind, tags, description, versions)."""
        return sparse(SUMMARY, request)

    # -- API ---------------------------------------------------------------------------------

    line_schema, line_defs = _line_schema()
    publish_body = {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["line"], "properties": {"line": line_schema}}}},
    }

    @app.put("/api/v1/publish", status_code=201, tags=["api"],
             openapi_extra={"requestBody": publish_body},
             responses={201: {"description": "published"}, **_errors(400, 401, 403, 409, 413, 422, 503)})
    async def publish(request: Request, authorization: str | None = Header(None)) -> JSONResponse:
        """Publish one version: appends its line to the index (one git commit). The first publisher
        of a name becomes its owner."""
        user = reg.user(authorization)
        raw = await request.body()
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise bad_request(f"the body is not JSON ({type(e).__name__}: {str(e)[:200]})") from None
        if not isinstance(doc, dict) or "line" not in doc:
            raise bad_request('the body must be a JSON object {"line": {...}}')
        out = await run_in_threadpool(reg.publish, user, doc["line"])
        return JSONResponse({"published": out}, status_code=201)

    yank_responses = {200: {"description": "done"}, **_errors(401, 403, 404, 422, 503)}

    @app.delete("/api/v1/components/{name}/{version}/yank", tags=["api"], responses=yank_responses)
    def yank(name: str, version: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        """Yank a version: new resolutions skip it; existing locks still install it."""
        return reg.set_yanked(reg.user(authorization), name, version, True)

    @app.put("/api/v1/components/{name}/{version}/unyank", tags=["api"], responses=yank_responses)
    def unyank(name: str, version: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        """Undo a yank."""
        return reg.set_yanked(reg.user(authorization), name, version, False)

    owners_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["users"],
        "properties": {"users": {"type": "array", "items": {"type": "string"}, "minItems": 1}}}}}}

    async def _users(request: Request) -> Any:
        raw = await request.body()
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise bad_request(f"the body is not JSON ({type(e).__name__}: {str(e)[:200]})") from None
        if not isinstance(doc, dict):
            raise bad_request('the body must be a JSON object {"users": [...]}')
        return doc.get("users")

    @app.get("/api/v1/components/{name}/owners", tags=["api"], responses=_errors(404))
    def get_owners(name: str) -> dict[str, Any]:
        """The logins that may publish and yank versions of `name`."""
        return {"owners": reg.owners(name)}

    @app.put("/api/v1/components/{name}/owners", tags=["api"], openapi_extra={"requestBody": owners_body},
             responses=_errors(400, 401, 403, 404, 413, 422))
    async def add_owners(name: str, request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
        """Add owners (owners only)."""
        user = reg.user(authorization)
        users = await _users(request)
        return {"owners": await run_in_threadpool(reg.change_owners, user, name, users, add=True)}

    @app.delete("/api/v1/components/{name}/owners", tags=["api"], openapi_extra={"requestBody": owners_body},
                responses=_errors(400, 401, 403, 404, 409, 413, 422))
    async def remove_owners(name: str, request: Request, authorization: str | None = Header(None)) -> \
            dict[str, Any]:
        """Remove owners (owners only; the last owner stays)."""
        user = reg.user(authorization)
        users = await _users(request)
        return {"owners": await run_in_threadpool(reg.change_owners, user, name, users, add=False)}

    @app.get("/api/v1/components/{name}", tags=["api"], responses=_errors(404))
    def component(name: str) -> dict[str, Any]:
        """Every version line of `name`, oldest first."""
        entries = reg.component(name)
        return {"name": name, "latest": latest(entries), "owners": store.owners.of(name),
                "versions": [e.to_json() for e in entries]}

    @app.get("/api/v1/me", tags=["api"], responses=_errors(401))
    def me(authorization: str | None = Header(None)) -> dict[str, Any]:
        """Who the token belongs to (`ckpm login` checks a token with it)."""
        return {"user": reg.user(authorization)}

    @app.get("/api/v1/search", tags=["api"], responses=_errors(422))
    def search(q: str = Query("", max_length=MAX_QUERY_LEN), tags: str = Query("", max_length=4096),
               limit: int = Query(20, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
        """Components whose name or description holds `q` and that carry every tag of `tags`."""
        return reg.search(q, tags, limit)

    # -- HTML --------------------------------------------------------------------------------

    def wants_html(request: Request) -> bool:
        """A browser (Accept: text/html) gets an HTML error page; anything else the JSON error."""
        return "text/html" in request.headers.get("accept", "")

    @app.get("/", response_class=HTMLResponse, tags=["pages"], responses=_errors(422))
    def home(request: Request, q: str = Query("", max_length=MAX_QUERY_LEN),
             tags: str = Query("", max_length=4096)) -> Response:
        """The search page."""
        try:
            result = reg.search(q, tags, MAX_LIMIT)
        except ApiError as e:
            if not wants_html(request):
                raise
            return HTMLResponse(html.search_page(q, tags, None, e.message), status_code=e.status)
        return HTMLResponse(html.search_page(q, tags, result))

    @app.get("/components/{name}", response_class=HTMLResponse, tags=["pages"], responses=_errors(404))
    def component_page(request: Request, name: str) -> Response:
        """A component's page: versions (yanked marked), dependencies, how to add it."""
        try:
            entries = reg.component(name)
        except ApiError as e:
            if not wants_html(request):
                raise
            return HTMLResponse(html.error_page(e.status, e.message), status_code=e.status)
        return HTMLResponse(html.component_page(name, entries, store.owners.of(name), latest(entries)))

    from ckpm_registry import results  # the results API and pages (before the catch-all below)

    results.install(app, reg, config, _errors)

    # -- component files (last: the layout paths `1/x`, `2/xy`, `3/a/abc`, `ab/cd/name`) ---------

    # (decorators register bottom-up: /index/… before the catch-all)
    @app.api_route("/{rel:path}", **hidden)
    @app.get("/{rel:path}", tags=["index"], responses=file_responses)
    @app.api_route("/index/{rel:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def index_file(rel: str, request: Request) -> Response:
        """A component's file: one JSON line per published version, oldest first."""
        return sparse(rel, request)

    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = plain_openapi()
            doc.setdefault("components", {}).setdefault("schemas", {}).update(line_defs)
            doc["components"]["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer"}}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

