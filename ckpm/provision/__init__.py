"""Provisioning: the lock made real (``ckpm sync``, ``fetch``, ``vendor``, ``store``, ``env``).

For one target, every package the lock needs there is walked in dependency order
(dependencies first) and gets one of these actions:

| action | when |
| --- | --- |
| ``host`` | the lock pins it to this machine (a detected compiler, library, tool) |
| ``store`` | its store prefix is already complete: nothing is fetched or built |
| ``built`` | its sources were fetched, verified, unpacked and its recipe run into a new prefix |
| ``venv`` | a ``pip`` recipe: python packages in the project's environment (``.ckpm/venv``) |
| ``fetched`` | ``ckpm fetch``: its sources were downloaded and verified (nothing is built) |
| ``nothing`` | no install recipe for the target (a host-only or virtual component); ``ckpm fetch``
  still downloads its sources |

Where the lock gives no sha256 for a file, the first download pins it into the lock and
says so once (trust on first use); from then on it is verified. The lock never records
which mirror served a file. A prefix's key hashes the package, its target, its recipe
(with the sha256 of every source) and its dependencies' keys, so a change to any of them
builds a new prefix and never alters an old one.

Recipes run only here, only for what the user asked to provision (``ckpm sync``), in a
clean environment, outside the source tree and the store's finished prefixes.

| module | what it holds |
| --- | --- |
| ``session.py`` | :class:`SyncSession`: the walk of one target, the action of each package, the prefix keys, the pins learnt on first use written back into the lock (:func:`sync`) |
| ``fetchers.py`` | one fetcher per kind of source: ``ArchiveFetcher`` (URLs, sha256), ``GitTreeFetcher`` (the tree of a commit), ``PipFetcher`` (pip's own download); each fetches, checks and expands |
| ``build.py`` | the build step: a recipe run into a staged prefix, python distributions into the project's environment |
| ``mirrors.py`` | the mirror rules, the vendored folders a sync reads, pip's settings |
| ``vendoring.py`` | ``ckpm vendor`` |
| ``environment.py`` | ``ckpm env`` |
| ``store_cmds.py`` | ``ckpm store`` and ``ckpm cache`` |
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ckpm.lazy import lazy_exports

# each name loads its module on first use: a warm `ckpm run` or `sync` needs the session, not
# the fetchers' archive code, vendoring or the store commands
_EXPORTS = {
    **dict.fromkeys(("PIP_MARKER", "STATE_DIR", "Provisioned", "SyncOptions", "SyncResult", "SyncSession",
                     "host_prefix", "needed", "open_store", "recipe_for", "sources_of", "sync"),
                    "ckpm.provision.session"),
    **dict.fromkeys(("ArchiveFetcher", "Fetched", "Fetcher", "GitTreeFetcher", "PipFetcher"), "ckpm.provision.fetchers"),
    **dict.fromkeys(("PIP_PASSTHROUGH", "git_pins", "mirrors_for", "pip_args", "pip_env", "use_vendored",
                     "use_vendored_git", "vendor_roots"), "ckpm.provision.mirrors"),
    "vendor": "ckpm.provision.vendoring",
    "env": "ckpm.provision.environment",
    **dict.fromkeys(("cache_clean", "cache_usage", "lock_keys_of", "store_entries", "store_gc", "store_path"),
                    "ckpm.provision.store_cmds"),
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ckpm.provision.environment import env
    from ckpm.provision.fetchers import ArchiveFetcher, Fetched, Fetcher, GitTreeFetcher, PipFetcher
    from ckpm.provision.mirrors import (PIP_PASSTHROUGH, git_pins, mirrors_for, pip_args, pip_env, use_vendored,
                                        use_vendored_git, vendor_roots)
    from ckpm.provision.session import (PIP_MARKER, STATE_DIR, Provisioned, SyncOptions, SyncResult, SyncSession,
                                        host_prefix, needed, open_store, recipe_for, sources_of, sync)
    from ckpm.provision.store_cmds import (cache_clean, cache_usage, lock_keys_of, store_entries, store_gc,
                                           store_path)
    from ckpm.provision.vendoring import vendor

__all__ = ["PIP_MARKER", "PIP_PASSTHROUGH", "STATE_DIR", "ArchiveFetcher", "Fetched", "Fetcher", "GitTreeFetcher",
           "PipFetcher", "Provisioned", "SyncOptions", "SyncResult", "SyncSession", "cache_clean", "cache_usage",
           "env", "git_pins", "host_prefix", "lock_keys_of", "mirrors_for", "needed", "open_store", "pip_args", "pip_env",
           "recipe_for", "sources_of", "store_entries", "store_gc", "store_path", "sync", "use_vendored",
           "use_vendored_git", "vendor", "vendor_roots"]
