"""Short, stable wording of network errors (a leaf: the download code and the registry client
both say "connection refused", not requests' three-line exception text)."""
from __future__ import annotations

import socket
from typing import Any, Iterator


def short_error(e: BaseException, limit: int = 160) -> str:
    """A one-line, bounded rendering of an exception."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def causes(e: BaseException, depth: int = 0) -> Iterator[BaseException]:
    """``e`` and what it wraps (args, ``reason``, cause, context), depth-first, bounded."""
    if depth > 8:
        return
    yield e
    inner: list[Any] = list(getattr(e, "args", ())) + [getattr(e, "reason", None), e.__cause__, e.__context__]
    for x in inner:
        if isinstance(x, BaseException) and x is not e:
            yield from causes(x, depth + 1)


def connection_reason(e: BaseException) -> tuple[str, bool]:
    """A short reason for a connection error, and whether a retry may help."""
    for c in causes(e):
        if isinstance(c, ConnectionRefusedError):
            return "connection refused", False
        if isinstance(c, socket.gaierror):
            return "host not found", False
        if isinstance(c, ConnectionResetError):
            return "connection reset", True
        if isinstance(c, (ConnectionAbortedError, BrokenPipeError)):
            return "connection aborted", True
        if isinstance(c, (TimeoutError, socket.timeout)):
            return "timed out", True
    text = short_error(e)
    if "refused" in text.lower():
        return "connection refused", False
    return f"connection failed: {text}", True
