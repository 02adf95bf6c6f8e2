"""The client of a registry's HTTP API: one bounded JSON request, errors as types.

Used by publish, yank and login (:mod:`ckpm.publishing.commands`,
:mod:`ckpm.publishing.credentials`) and by ``ckpm results push``/``pull`` (:mod:`ckpm.sharing`).

A request never follows a redirect, reads at most :data:`MAX_RESPONSE_BYTES` within
``2 × HTTP_TIMEOUT`` seconds, refuses to run offline, and warns when a token would cross a
network over plain http. A token is sent only to the host the user named: the ``api`` a
registry's ``config.json`` names must be on the same origin (:func:`api_base`).

An error answer is ``{"error": {"code": ..., "error": <message>, "hint": ..., "details": [...]}}``
(:meth:`ckpm.errors.CkpmError.to_dict`, docs/registry.md); the message of a registry
deployed before that came under ``"message"``, which is read too.
"""
from __future__ import annotations

import json
import re
import time
import urllib.parse
from typing import Any

from ckpm.errors import CkpmError, UsageError
from ckpm.settings import Settings

MAX_TOKEN_LEN = 4096
MAX_RESPONSE_BYTES = 1 << 20
HTTP_TIMEOUT = 30.0
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: safe in a header


class RegistryError(CkpmError):
    """A registry answered with an error (its stable code is kept as ``code``) or could not be reached."""

    code = "registry"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if code:
            self.code = code
        self.status = status


class AuthError(RegistryError):
    """No token, or one the registry does not accept."""

    code = "unauthorized"

def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def check_registry_url(registry: str) -> str:
    """``registry`` as given with ``--registry``, which must be an http(s) URL (UsageError)."""
    if not is_http(registry):
        raise UsageError(f"--registry takes an http:// or https:// URL, not {registry!r}")
    return registry


def _origin(url: str) -> tuple[str, str, int | None]:
    u = urllib.parse.urlsplit(url)
    return u.scheme.lower(), (u.hostname or "").lower(), u.port


def api_base(url: str, settings: Settings) -> str:
    """The registry's API base for ``url``: the ``api`` its ``config.json`` names (same origin
    only: a token is never sent to a host other than the one the user named), else ``url``."""
    url = url.rstrip("/")
    try:
        data = request_json(settings, "GET", f"{url}/config.json", auth=None, what=f"{url}/config.json")
    except RegistryError:
        return url
    api = data.get("api") if isinstance(data, dict) else None
    if not isinstance(api, str) or not api:
        return url
    if not is_http(api):
        raise RegistryError(f"{url}/config.json names an api that is not an http(s) URL: {api[:200]!r}")
    if _origin(api) != _origin(url):
        raise RegistryError(f"{url}/config.json names its api on another host ({api[:200]}); "
                            "ckpm sends a token only to the host you named",
                            hint=f"pass --registry {api[:200]} if you trust it")
    return api.rstrip("/")



def exposed_in_transit(url: str) -> bool:
    """Whether a token sent to ``url`` crosses a network unencrypted (http to a host that is not
    this machine)."""
    import ipaddress

    u = urllib.parse.urlsplit(url)
    if u.scheme.lower() != "http":
        return False
    host = (u.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _origin_text(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def check_token(token: str) -> str:
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LEN or not _TOKEN_RE.fullmatch(token):
        raise AuthError("the token is not valid: printable ASCII without spaces, at most 4,096 characters")
    return token


def request_json(settings: Settings, method: str, url: str, *, auth: str | None, body: Any = None,
          what: str = "", auth_hint: str | None = None, max_bytes: int = MAX_RESPONSE_BYTES) -> Any:
    """One JSON request; the answer's JSON (bounded), or a RegistryError with the server's code
    (an AuthError for 401, with ``auth_hint`` as its hint)."""
    import requests

    headers = {"Accept": "application/json", "User-Agent": "ckpm"}
    if auth is not None:
        headers["Authorization"] = f"Bearer {check_token(auth)}"
        if exposed_in_transit(url):
            settings.reporter.warning(f"sending the registry token to {_origin_text(url)} over plain http: "
                                      "anyone on the way can read it; use https")
    data = None
    if body is not None:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if settings.offline:
        raise RegistryError(f"cannot reach {url} while offline", hint="run again without --offline")
    deadline = time.monotonic() + 2 * HTTP_TIMEOUT
    try:
        with requests.request(method, url, data=data, headers=headers, timeout=HTTP_TIMEOUT, stream=True,
                              allow_redirects=False) as r:
            raw = b""
            for chunk in r.iter_content(65536):
                raw += chunk
                if len(raw) > max_bytes:
                    raise RegistryError(f"{url}: the answer is larger than {max_bytes:,} bytes")
                if time.monotonic() > deadline:
                    raise RegistryError(f"{url}: the answer took longer than {2 * HTTP_TIMEOUT:g} s")
            status = r.status_code
    except requests.Timeout:
        raise RegistryError(f"cannot reach {what or url}: no answer within {HTTP_TIMEOUT:g} s",
                            hint="check the URL and your network") from None
    except requests.ConnectionError as e:
        from ckpm.netutil import connection_reason

        reason, _ = connection_reason(e)
        raise RegistryError(f"cannot reach {what or url}: {reason}",
                            hint="check the URL, that the registry is running, and your network") from None
    except requests.RequestException as e:
        from ckpm.netutil import short_error

        raise RegistryError(f"cannot reach {what or url}: {short_error(e)}",
                            hint="check the URL and your network") from None
    try:
        parsed = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        parsed = None
    if 200 <= status < 300:
        if parsed is None and raw:
            raise RegistryError(f"{url}: the answer is not JSON (status {status})")
        return parsed
    code, message = error_of(parsed)
    from ckpm.report import escape_control

    text = escape_control((message or f"HTTP {status}")[:1000])
    code = (code or "")[:64] or None
    if status == 401:
        raise AuthError(f"{what or url}: {text}", code=code or "unauthorized", status=status,
                        hint=auth_hint or "pass --token, set $CKPM_TOKEN, or run `ckpm login --registry URL`")
    if status == 429:
        raise RegistryError(f"{what or url}: {text}", code=code, status=status,
                            hint=f"wait {r.headers.get('Retry-After', 'a minute')[:10]} s and run it again")
    raise RegistryError(f"{what or url}: {text}", code=code, status=status)




def error_of(body: Any) -> tuple[str | None, str | None]:
    """The code and message of a registry's error body: ``{"error": {"code", "error"}}`` (the
    shape of :meth:`~ckpm.errors.CkpmError.to_dict`), or ``{"error": {"code", "message"}}`` as
    a registry deployed before answers."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, None
    code = err.get("code")
    message = err.get("error")
    if not isinstance(message, str):
        message = err.get("message")
    return (code if isinstance(code, str) else None), (message if isinstance(message, str) else None)
