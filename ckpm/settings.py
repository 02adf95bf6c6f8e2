"""Settings: everything ckpm reads from the environment and the user's config, read once.

The CLI builds one :class:`Settings` from its global flags and the environment; library
callers pass one to :class:`ckpm.workspace.Workspace` (or let it default to this process's
environment, read when the object is made). Nothing below the API reads ``os.environ``:
detection gets ``env`` from here, the index clients get the cache folder and the deadline,
so a service can run requests with different settings side by side.

Environment variables (all optional):

| variable | setting |
| --- | --- |
| ``CKPM_INDEX`` | ``index_url``: an index that replaces the project's ``[[index]]`` list |
| ``CKPM_CACHE_DIR`` | ``cache_dir`` (default: the platform's user cache folder) |
| ``CKPM_PYTHON`` | ``python``: the interpreter whose packages ``python_package`` rules look at |
| ``CKPM_OVERRIDE_<FACT>`` | host-fact overrides (kept in ``env``, validated here) |
| ``CKPM_DETECT_ROOTS`` | extra folders (``:``-separated) that index ``path`` rules may look in |
| ``CKPM_CONFIG`` | the user config file (default: ``<user config dir>/ckpm/config.toml``) |
| ``CKPM_STORE`` | ``store_dir``: the store of built and fetched prefixes (default: the platform's user data folder) |

The user config file may hold ``[detect] roots = ["/data/models", ...]``, ``[mirrors]``
(a URL prefix → an ordered list of replacement prefixes, tried after the project's own
``[mirrors]``) and ``[pip]`` (``index-url``, ``find-links``: where the ``pip`` recipe
takes python packages from).

This module is a leaf: it imports only the standard library (``platformdirs`` on Windows),
``ckpm.errors``, ``ckpm.report`` and ``ckpm.model.targets``.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ckpm.errors import CkpmError
from ckpm.report import Reporter

#: the resolver's default budget for one command (every target, both searches): rounds and seconds;
#: `--max-rounds` and `--timeout` change them, and the seconds also bound the command's network reads
RESOLVE_MAX_ROUNDS = 50_000
RESOLVE_SECONDS = 120.0

INDEX_ENV = "CKPM_INDEX"
CACHE_ENV = "CKPM_CACHE_DIR"
PYTHON_ENV = "CKPM_PYTHON"
ROOTS_ENV = "CKPM_DETECT_ROOTS"
CONFIG_ENV = "CKPM_CONFIG"
STORE_ENV = "CKPM_STORE"
OVERRIDE_PREFIX = "CKPM_OVERRIDE_"
MAX_CONFIG_BYTES = 1 << 20


class SettingsError(CkpmError):
    """A setting (environment variable or config file) that cannot be used."""

    code = "settings"


_XDG = {"cache": ("XDG_CACHE_HOME", ".cache"), "data": ("XDG_DATA_HOME", ".local/share"),
        "config": ("XDG_CONFIG_HOME", ".config")}
_MACOS = {"cache": "Library/Caches", "data": "Library/Application Support", "config": "Library/Application Support"}


def user_dir(kind: str, env: Mapping[str, str] | None = None) -> Path:
    """ckpm's per-user folder of ``kind`` (``cache``, ``data`` or ``config``), read from ``env``.

    The XDG base directories on Linux and the BSDs (``$XDG_CACHE_HOME``, else ``~/.cache``;
    a relative value is ignored, as the specification says), ``~/Library/…`` on macOS, and
    ``platformdirs`` elsewhere. The same folders as ``platformdirs.user_*_dir("ckpm")``; spelled
    out here because this runs in every command and the environment is ``env``, not the
    process's (importing platformdirs cost a warm ``ckpm run`` about 8 ms).
    """
    environ = os.environ if env is None else env
    home = Path(environ.get("HOME") or Path.home())
    if sys.platform == "darwin":
        return home / _MACOS[kind] / "ckpm"
    if os.name == "posix":
        var, default = _XDG[kind]
        value = environ.get(var, "").strip()
        base = Path(value) if value and os.path.isabs(value) else home / default
        return base / "ckpm"
    import platformdirs  # pragma: no cover - Windows

    fn = {"cache": platformdirs.user_cache_dir, "data": platformdirs.user_data_dir,
          "config": platformdirs.user_config_dir}[kind]
    return Path(fn("ckpm"))


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$CKPM_CACHE_DIR`` of ``env``, else the platform's user cache folder for ckpm."""
    value = (os.environ if env is None else env).get(CACHE_ENV)
    if value:
        return Path(value).expanduser()
    return user_dir("cache", env)


def default_store_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$CKPM_STORE`` of ``env``, else ``<the platform's user data folder>/ckpm/store``."""
    value = (os.environ if env is None else env).get(STORE_ENV)
    if value:
        return Path(value).expanduser()
    return user_dir("data", env) / "store"


def default_config_path(env: Mapping[str, str]) -> Path:
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    return user_dir("config", env) / "config.toml"


def read_config(path: Path) -> dict[str, Any]:
    """The user config file ({} when there is none); a broken one is a SettingsError."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as e:
        raise SettingsError(f"{path}: cannot read the ckpm config ({e.strerror or e})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise SettingsError(f"{path}: the ckpm config is larger than {MAX_CONFIG_BYTES} bytes")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SettingsError(f"{path}: not a valid ckpm config ({e})") from None
    except RecursionError:
        raise SettingsError(f"{path}: not a valid ckpm config (nested too deeply)") from None


@dataclass
class Settings:
    """Settings shared by every command (the CLI's global flags, the environment, the config).

    Fields left as None are filled from ``env`` (default: this process's environment,
    copied when the object is made).
    """

    index_url: str | None = None  # replaces the project's [[index]] list
    cache_dir: Path | None = None
    offline: bool = False
    no_host: bool = False  # pretend nothing is installed
    refresh_host: bool = False  # ignore the host-profile cache
    python: str | None = None  # interpreter for python_package rules
    detect_roots: tuple[str, ...] | None = None  # extra folders index `path` rules may read
    env: dict[str, str] | None = None  # the environment detection probes run in
    reporter: Reporter = field(default_factory=Reporter)
    config_path: Path | None = None
    store_dir: Path | None = None

    def __post_init__(self) -> None:
        env = dict(os.environ if self.env is None else self.env)
        self.env = env
        if self.index_url is None:
            self.index_url = env.get(INDEX_ENV) or None
        self.cache_dir = Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir(env)
        if self.python is None:
            self.python = env.get(PYTHON_ENV) or None
        if self.config_path is None:
            self.config_path = default_config_path(env)
        if self.store_dir is None:
            self.store_dir = default_store_dir(env)
        self._config: dict[str, Any] | None = None
        if self.detect_roots is None:
            roots = [p for p in env.get(ROOTS_ENV, "").split(os.pathsep) if p]
            self.detect_roots = tuple(roots)
            self._config_roots_pending = True
        else:
            self._config_roots_pending = False

    # -- derived --------------------------------------------------------------------------

    @property
    def environ(self) -> dict[str, str]:
        """The environment as read (never None after construction)."""
        assert self.env is not None
        return self.env

    @property
    def cache_root(self) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir

    def effective_index_url(self) -> str | None:
        return self.index_url

    def overrides(self) -> dict[str, str]:
        """The ``CKPM_OVERRIDE_*`` variables in force."""
        return {k: v for k, v in self.environ.items() if k.startswith(OVERRIDE_PREFIX)}

    def host_target(self) -> str:
        """This host's target, as its ``__os``/``__arch`` facts (overrides applied) describe it."""
        from ckpm.model.targets import host_target

        return host_target(self.environ)

    def config(self) -> dict[str, Any]:
        """The user config file, read once ({} when there is none)."""
        if self._config is None:
            self._config = read_config(self.config_path) if self.config_path is not None else {}
        return self._config

    def config_table(self, name: str) -> dict[str, Any]:
        """One table of the user config ({} when absent); a non-table is a SettingsError."""
        v = self.config().get(name, {})
        if not isinstance(v, dict):
            raise SettingsError(f"{self.config_path}: [{name}] must be a table")
        return v

    def roots(self) -> tuple[str, ...]:
        """Folders the user allows index ``path`` rules to read, from the environment and config."""
        if self._config_roots_pending:
            self._config_roots_pending = False
            cfg = self.config()
            extra = (cfg.get("detect") or {}).get("roots") if isinstance(cfg.get("detect"), dict) else None
            if extra is not None:
                if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
                    raise SettingsError(f"{self.config_path}: [detect] roots must be a list of folder names")
                self.detect_roots = tuple(self.detect_roots or ()) + tuple(extra)
        return tuple(os.path.expanduser(r) for r in self.detect_roots or ())
