"""Users and their tokens: ``tokens.toml``, tokens stored as sha256 hashes only.

```toml
[users.alice]
token_sha256 = "3b1f…"            # or a list, one hash per token the user holds
```

``ckpm-registry token add LOGIN`` makes a random token, prints it once and stores its hash
(the file is written atomically with mode 0600, under a lock). The service re-reads the file
when it changes, so tokens added or removed take effect without a restart.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ckpm.fsutil import atomic_write, file_lock
from ckpm_registry.errors import TokensFileError


def file_key(path: Path) -> tuple[int, int, int] | None:
    """What tells that a file changed (modification time, size, inode); None when it is gone.

    The tokens and owners files are re-read when their key changes, so an operator's edit (or
    another service process's write) is seen by the next request."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)

LOGIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TOKEN_PREFIX = "ckpm_"
MAX_TOKEN_LEN = 256
MAX_TOKENS_FILE = 4 << 20


def valid_login(login: str) -> bool:
    return bool(LOGIN_RE.match(login))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _hashes(value: Any, where: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for h in items:
        if not isinstance(h, str) or not re.fullmatch(r"[0-9a-f]{64}", h):
            raise TokensFileError(f"{where}: token_sha256 must be 64 lower-case hex digits (or a list of them)")
        out.append(h)
    return out


def parse_tokens(text: str, origin: str) -> dict[str, str]:
    """hash → login for every token of ``text`` (a tokens.toml); TokensFileError when malformed."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TokensFileError(f"{origin}: not TOML ({e})") from None
    users = doc.get("users", {})
    if not isinstance(users, dict):
        raise TokensFileError(f"{origin}: [users] must be a table")
    out: dict[str, str] = {}
    for login, table in users.items():
        if not valid_login(login):
            raise TokensFileError(f"{origin}: {login!r} is not a valid login ({LOGIN_RE.pattern})")
        if not isinstance(table, dict) or "token_sha256" not in table:
            raise TokensFileError(f"{origin}: [users.{login}] needs token_sha256")
        for h in _hashes(table["token_sha256"], f"{origin}: [users.{login}]"):
            out[h] = login
    return out


@dataclass
class _Loaded:
    key: tuple[int, int, int] | None
    by_hash: dict[str, str]


class TokenStore:
    """The users of the service, from a tokens file re-read whenever it changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._loaded = _Loaded(None, {})

    def _current(self) -> dict[str, str]:
        if self.path is None:
            return {}
        key = file_key(self.path)
        with self._lock:
            if key == self._loaded.key and (key is not None or not self._loaded.by_hash):
                return self._loaded.by_hash
            if key is None:
                by_hash: dict[str, str] = {}
            else:
                if key[1] > MAX_TOKENS_FILE:
                    raise TokensFileError(f"{self.path}: over {MAX_TOKENS_FILE:,} bytes")
                by_hash = parse_tokens(self.path.read_text(encoding="utf-8"), str(self.path))
            self._loaded = _Loaded(key, by_hash)
            return by_hash

    def check(self) -> int:
        """Read the file now (raises TokensFileError); returns how many tokens it holds."""
        return len(self._current())

    def user_of(self, token: str) -> str | None:
        """The login a token belongs to, or None."""
        if not token or len(token) > MAX_TOKEN_LEN:
            return None
        return self._current().get(token_hash(token))

    def users(self) -> set[str]:
        return set(self._current().values())


def add_token(path: Path, login: str) -> str:
    """A new token for ``login``, its hash added to ``path`` (created with mode 0600); returns the token."""
    import tomlkit

    if not valid_login(login):
        raise TokensFileError(f"{login!r} is not a valid login ({LOGIN_RE.pattern})")
    path = Path(path)
    token = new_token()
    h = token_hash(token)
    with file_lock(path.with_name(path.name + ".lock"), what=f"the tokens file {path}"):
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        parse_tokens(text, str(path))  # refuse to extend a file we could not read back
        doc = tomlkit.parse(text)
        users = doc.get("users")
        if users is None:
            users = tomlkit.table(is_super_table=True)
            doc["users"] = users
        if login in users:
            old = users[login]["token_sha256"]
            hashes = list(old) if isinstance(old, list) else [str(old)]
            users[login]["token_sha256"] = [*hashes, h]
        else:
            t = tomlkit.table()
            t["token_sha256"] = h
            users[login] = t
        atomic_write(path, tomlkit.dumps(doc), mode=0o600)
        os.chmod(path, 0o600)
    return token


def remove_user(path: Path, login: str) -> bool:
    """Drop every token of ``login``; False when it had none."""
    import tomlkit

    path = Path(path)
    with file_lock(path.with_name(path.name + ".lock"), what=f"the tokens file {path}"):
        if not path.exists():
            return False
        text = path.read_text(encoding="utf-8")
        parse_tokens(text, str(path))
        doc = tomlkit.parse(text)
        users = doc.get("users")
        if users is None or login not in users:
            return False
        del users[login]
        atomic_write(path, tomlkit.dumps(doc), mode=0o600)
    return True
