"""Registry tokens: where they come from, and the user config that keeps them (``ckpm login``/``logout``).

A token is the ``token`` argument, else ``$CKPM_TOKEN``, else the user config's
``[registries."<api base URL>"] token``, which :func:`login` writes after checking it with
``GET /api/v1/me``. The config file is then written with mode 0600 from its first byte (a
temporary file made private, renamed over the old one), under a file lock.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ckpm.errors import CkpmError
from ckpm.fsutil import file_lock
from ckpm.publishing.registry_client import AuthError, RegistryError, api_base, check_token, check_registry_url, \
    is_http, request_json
from ckpm.settings import SettingsError, Settings

TOKEN_ENV = "CKPM_TOKEN"
CONFIG_TABLE = "registries"


def _config_path(settings: Settings) -> Path:
    assert settings.config_path is not None
    return Path(settings.config_path)


def token_for(api: str, settings: Settings, explicit: str | None = None) -> str | None:
    """The token for the registry ``api``: ``explicit``, else ``$CKPM_TOKEN``, else the user config."""
    if explicit:
        return check_token(explicit)
    env = settings.environ.get(TOKEN_ENV)
    if env:
        return check_token(env)
    table = settings.config_table(CONFIG_TABLE)
    entry = table.get(api.rstrip("/"))
    if isinstance(entry, dict) and isinstance(entry.get("token"), str):
        path = _config_path(settings)
        with contextlib.suppress(OSError):
            if os.stat(path).st_mode & 0o077:
                settings.reporter.warning(f"{path} holds a registry token and others may read it; "
                                          f"run `chmod 600 {path}`")
        return check_token(entry["token"])
    return None


def require_token(api: str, settings: Settings, explicit: str | None = None) -> str:
    """The token for ``api`` (see :func:`token_for`), or an AuthError that says how to give one."""
    token = token_for(api, settings, explicit)
    if token is None:
        raise AuthError(f"no token for {api}",
                        hint=f"run `ckpm login --registry {api}`, set ${TOKEN_ENV}, or pass --token")
    return token


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 from the first byte (a private
    temporary file renamed over the old one); a new folder is made 0700."""
    import tempfile

    path = Path(os.path.realpath(path))  # a config kept elsewhere through a link stays a link
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _editing_config(settings: Settings) -> Iterator[Any]:
    """The user config as a tomlkit document, written back (0600) when the block ends."""
    import tomlkit

    from ckpm.fsutil import read_bounded
    from ckpm.settings import MAX_CONFIG_BYTES

    path = _config_path(settings)
    with file_lock(path.with_name(path.name + ".lock"), on_wait=settings.reporter.note, what=f"the config {path}"):
        try:
            raw = read_bounded(path, MAX_CONFIG_BYTES)
        except FileNotFoundError:
            raw = b""
        if raw is None:
            raise SettingsError(f"{path}: the ckpm config is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            doc = tomlkit.parse(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomlkit.exceptions.ParseError) as e:
            raise SettingsError(f"{path}: not a valid ckpm config ({e}); nothing written") from None
        yield doc
        write_private(path, tomlkit.dumps(doc))
    settings._config = None  # read again on next use


@dataclass
class LoginResult:
    registry: str
    user: str
    config: str

    def to_dict(self) -> dict[str, Any]:
        return {"registry": self.registry, "user": self.user, "config": self.config}


def login(registry: str, token: str, *, settings: Settings | None = None) -> LoginResult:
    """Check ``token`` with ``GET /api/v1/me`` and keep it in the user config (mode 0600)."""
    import tomlkit

    s = settings if settings is not None else Settings()
    check_registry_url(registry)
    token = check_token(token)
    api = api_base(registry, s)
    me = request_json(s, "GET", f"{api}/api/v1/me", auth=token, what=f"{api}/api/v1/me",
               auth_hint="the registry does not know this token: check that you copied it whole, or ask "
                         "the registry's operator for a new one (`ckpm-registry token add LOGIN`)")
    user = me.get("user") if isinstance(me, dict) else None
    if not isinstance(user, str) or not user:
        raise RegistryError(f"{api}/api/v1/me did not name a user")
    with _editing_config(s) as doc:
        regs = doc.get(CONFIG_TABLE)
        if regs is None:
            regs = tomlkit.table()
            doc[CONFIG_TABLE] = regs
        elif not isinstance(regs, dict):
            raise SettingsError(f"{_config_path(s)}: [{CONFIG_TABLE}] must be a table; nothing written")
        entry = tomlkit.table()
        entry["token"] = token
        entry["user"] = user[:200]
        regs[api] = entry
    return LoginResult(api, user, str(_config_path(s)))


def logout(registry: str | None = None, *, settings: Settings | None = None) -> list[str]:
    """Forget the token of ``registry`` (its API base or the URL given at login), or of every
    registry; returns the registries forgotten."""
    s = settings if settings is not None else Settings()
    if not _config_path(s).exists() or not s.config_table(CONFIG_TABLE):
        return []  # nothing to forget: the file is left as it is
    with _editing_config(s) as doc:
        regs = doc.get(CONFIG_TABLE)
        if not isinstance(regs, dict):
            return []
        if registry is None:
            gone = list(regs)
        else:
            want = {registry.rstrip("/")}
            gone = [k for k in regs if k in want]
            if not gone and is_http(registry):
                with contextlib.suppress(CkpmError):
                    want.add(api_base(registry, s))
                gone = [k for k in regs if k in want]
        for k in gone:
            del regs[k]
        if not regs:
            del doc[CONFIG_TABLE]
    return gone


