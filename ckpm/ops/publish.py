"""``ckpm publish``, ``yank``, ``login`` and ``logout``: a maintainer's side of an index, as
``ckpm.publishing`` defines them (the index line of a tagged component, its checks, the git
index writer or the registry's HTTP API, tokens in the user config)."""
from __future__ import annotations

from ckpm.publishing import login, logout, publish, yank

__all__ = ["login", "logout", "publish", "yank"]
