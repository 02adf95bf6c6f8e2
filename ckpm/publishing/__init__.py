"""``ckpm publish``, ``ckpm yank``, ``ckpm login`` / ``logout``: a maintainer's side of an index.

- :mod:`~ckpm.publishing.release`: the index line of a tagged version (:func:`prepare_release`);
- :mod:`~ckpm.publishing.target`: where it goes (a git index or a registry) and what is there
  (:func:`check_target`);
- :mod:`~ckpm.publishing.commands`: :func:`publish` and :func:`yank`;
- :mod:`~ckpm.publishing.credentials`: tokens and the user config (:func:`login`, :func:`logout`);
- :mod:`~ckpm.publishing.registry_client`: one bounded JSON request to a registry (also for
  :mod:`ckpm.sharing`).
"""
from __future__ import annotations

from ckpm.publishing.commands import PublishResult, YankResult, parse_spec, publish, yank
from ckpm.publishing.credentials import (CONFIG_TABLE, TOKEN_ENV, LoginResult, login, logout, require_token, token_for,
                                         write_private)
from ckpm.publishing.registry_client import (AuthError, RegistryError, api_base, check_registry_url,
                                             exposed_in_transit, request_json)
from ckpm.publishing.release import PublishError, Release, prepare_release, pubtime_now, recipe_and_rule_problems
from ckpm.publishing.target import Target, check_target, resolve_target

__all__ = [
    "AuthError", "CONFIG_TABLE", "LoginResult", "PublishError", "PublishResult", "RegistryError", "Release",
    "TOKEN_ENV", "Target", "YankResult", "api_base", "check_registry_url", "check_target", "exposed_in_transit",
    "login", "logout", "parse_spec", "prepare_release", "publish", "pubtime_now", "recipe_and_rule_problems",
    "request_json", "require_token", "resolve_target", "token_for", "write_private", "yank",
]
