"""The one error shape of the service: ``{"error": {"code": ..., "message": ...}}``."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failure answered with ``status`` and a stable ``code`` (see docs/registry.md)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        err.update(self.extra)
        return {"error": err}


def unauthorized(message: str = "a valid token is required: send `Authorization: Bearer <token>`") -> ApiError:
    return ApiError(401, "unauthorized", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not-found", message)


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad-request", message)


#: the code of each status the framework itself answers with (routing, methods)
STATUS_CODES = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    406: "not-acceptable", 409: "conflict", 411: "length-required", 413: "too-large", 415: "unsupported-media-type",
    422: "invalid", 429: "too-many-requests", 500: "internal", 503: "unavailable",
}
