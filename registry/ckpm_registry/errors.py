"""The errors of the service, under one root, and the one shape of an error answer.

Every error of the service is a :class:`ServiceError`, which is ckpm's
:class:`~ckpm.errors.CkpmError`: a stable ``code``, a message, a hint. The operator's
(an index, tokens, owners or database file that cannot be used; an :class:`OperatorError`) reach
``ckpm-registry`` as one ``error:`` line; an :class:`ApiError` is answered with its HTTP status and the body
``{"error": CkpmError.to_dict()}``::

    {"error": {"code": "<stable-code>", "error": "<sentence>", "hint": null, "details": []}}

the same object as the ``error`` of ckpm's ``--json`` envelope and of ``ckpm.access()``
(docs/registry.md). Before, the sentence was under ``"message"``; ckpm's client reads both.
"""
from __future__ import annotations

from typing import Any

from ckpm.errors import CkpmError


class ServiceError(CkpmError):
    """Root of every error of the registry service."""

    code = "registry"


class ApiError(ServiceError):
    """A failure answered with ``status`` and a stable ``code`` (see docs/registry.md)."""

    def __init__(self, status: int, code: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": self.to_dict()}


class IndexStoreError(ServiceError):
    """The index or the state folder cannot be used (a message for the operator, and a hint)."""

    code = "index-store"


class TokensFileError(ServiceError):
    """The tokens file cannot be read or written (names the file)."""

    code = "tokens-file"


class OwnersFileError(ServiceError):
    """The owners file cannot be read (names the file)."""

    code = "owners-file"


class DatabaseError(ServiceError):
    """The database cannot be opened or has a schema this service does not know (for the operator)."""

    code = "database"


class OperatorError(ServiceError):
    """The service cannot start or a command of ``ckpm-registry`` cannot run as asked (exit 1)."""

    code = "registry"


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

#: the JSON Schema of an error answer (OpenAPI)
ERROR_SCHEMA: dict[str, Any] = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "error"],
    "properties": {"code": {"type": "string"}, "error": {"type": "string"},
                   "hint": {"type": ["string", "null"]}, "details": {"type": "array", "items": {"type": "string"}}}}}}
