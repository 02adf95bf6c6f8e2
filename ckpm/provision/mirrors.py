"""Where a sync's files come from besides their URLs: the mirror rules (the project's
``[mirrors]``, then the user's), the folders ``ckpm vendor`` wrote (their archives, git
repositories and python distributions), and pip's own settings (the user's ``[pip]`` config
and the variables of the user's environment that pip reads).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ckpm.errors import LockError, ManifestError
from ckpm.model.lockfile import Lock
from ckpm.model.source import GitSource
from ckpm.settings import Settings
from ckpm.workspace import Workspace

if TYPE_CHECKING:
    from ckpm.fetch.mirrors import Mirrors

_REV_RE = re.compile(r"[0-9a-f]{40}")


def mirrors_for(ws: Workspace) -> "Mirrors":
    """The mirror rules in force: the project's ``[mirrors]``, then the user's."""
    from ckpm.fetch.mirrors import Mirrors

    rules = Mirrors()
    table = ws.manifest.data.get("mirrors")
    if table is not None:
        try:
            rules = rules.then(Mirrors.from_table(table, where=f"{ws.manifest_path} [mirrors]", base=ws.root))
        except ValueError as e:
            from ckpm.model.manifest import _line_of

            text = ws.manifest_path.read_text(encoding="utf-8")
            raise ManifestError(str(ws.manifest_path), str(e), _line_of(text, None, "mirrors")) from None
    user = ws.settings.config_table("mirrors")
    if user:
        cfg = ws.settings.config_path
        try:
            rules = rules.then(Mirrors.from_table(user, where=f"{cfg} [mirrors]",
                                                  base=cfg.parent if cfg is not None else None))
        except ValueError as e:
            from ckpm.settings import SettingsError

            raise SettingsError(str(e)) from None
    return rules


def pip_args(ws: Workspace) -> list[str]:
    """Where the pip recipe takes python packages from: the user config's ``[pip]``."""
    cfg = ws.settings.config_table("pip")
    out: list[str] = []
    url = cfg.get("index-url")
    if isinstance(url, str) and url:
        out += ["--index-url", url]
    links = cfg.get("find-links", [])
    if isinstance(links, str):
        links = [links]
    for link in links if isinstance(links, list) else []:
        if isinstance(link, str) and link:
            out += ["--find-links", link]
    if cfg.get("no-index") is True:
        out.append("--no-index")
    if ws.settings.offline and "--no-index" not in out:
        out.append("--no-index")
    return out


#: the user's own variables a pip step keeps: where and how pip downloads is the user's choice,
#: as with pip itself (its config files under HOME, proxies, CA bundles, PIP_* settings)
PIP_PASSTHROUGH = ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
                   "http_proxy", "https_proxy", "no_proxy", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
                   "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def pip_env(settings: Settings) -> dict[str, str]:
    """The variables of the user's environment that pip steps see (PIP_PASSTHROUGH and PIP_*)."""
    return {k: v for k, v in settings.environ.items() if k in PIP_PASSTHROUGH or k.startswith("PIP_")}


def vendor_roots(ws: Workspace, mirror_dirs: Sequence[Path] = ()) -> list[Path]:
    """The folders made by ``ckpm vendor`` that a sync reads: each ``--mirror DIR``, then each
    folder with a ``ckpm-vendor.json`` that a ``[mirrors]`` rule names (``"https://" = ["vendor/"]``).
    Their archives, git repositories and python distributions all serve the sync."""
    roots = [Path(d).absolute() for d in mirror_dirs]
    if ws.manifest.data.get("mirrors") is None and not ws.settings.config_table("mirrors"):
        return roots
    # here, after the common case returned: urllib.request imports http.client, ssl and email
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    from ckpm.fetch.vendor import is_vendor_root

    for _, reps in mirrors_for(ws).rules:
        for rep in reps:
            if rep[:7].lower() != "file://":
                continue
            folder = Path(url2pathname(urlsplit(rep).path))
            if folder not in roots and is_vendor_root(folder):
                roots.append(folder)
    return roots


def git_pins(lock: Lock) -> dict[str, list[tuple[str, str | None]]]:
    """Every git commit the lock pins (a git component's own, and its recipes' sources), by URL,
    with the tag that names it (or None)."""
    out: dict[str, list[tuple[str, str | None]]] = {}
    from ckpm.provision.fetchers import TAG_RE

    for p in lock.packages:
        srcs = [s for s in p.all_sources() if isinstance(s, GitSource)]
        if isinstance(p.source, GitSource):
            srcs.append(p.source)
        for s in srcs:
            if _REV_RE.fullmatch(s.rev):
                pin = (s.rev, s.tag if s.tag is not None and TAG_RE.fullmatch(s.tag) else None)
                if pin not in out.setdefault(s.git, []):
                    out[s.git].append(pin)
    return out


def use_vendored_git(ws: Workspace, pins: Mapping[str, Sequence[tuple[str, str | None]]],
                     roots: Sequence[Path]) -> None:
    """Bring the pinned commits (and tags) of each git URL from the vendored folders ``roots``
    into the cache's mirror of that URL, where the cache lacks them; so that the lock check and
    the export read them as if the repository had been reached. A vendored copy that cannot
    be read, or lacks a commit, is a warning: the sync then fails where it needs the commit."""
    from ckpm.errors import GitSourceError
    from ckpm.fetch.vendor import git_relpath
    from ckpm.index.gitvendor import mirror_holds, seed_mirror

    for url, want in pins.items():
        try:
            rel = git_relpath(url)
        except ValueError:
            continue
        found = [r / rel for r in roots if (r / rel / "HEAD").is_file()]
        if not found:
            continue
        gs = ws.git_source(url, None)
        if mirror_holds(gs.path, want):
            continue
        problems: list[str] = []
        for repo in found:
            try:
                problems = seed_mirror(repo, gs.path, gs.url, want, on_wait=ws.reporter.note)
            except GitSourceError as e:
                problems = [e.message]
            if not problems:
                break
        for line in problems:
            ws.reporter.warning(f"{url}: the vendored copy in {found[-1]} does not serve the lock: {line}")


def use_vendored(ws: Workspace, mirror_dirs: Sequence[Path] = (), lock: Lock | None = None) -> None:
    """Before a sync checks the lock: the git commits it pins, from the vendored folders into
    the cache (see :func:`use_vendored_git`). Nothing when no vendored folder is in use."""
    ws.mirror_dirs = tuple(dict.fromkeys([*ws.mirror_dirs, *(Path(d).absolute() for d in mirror_dirs)]))
    roots = vendor_roots(ws, mirror_dirs)
    if not roots:
        return
    if lock is None:
        try:
            lock = ws.read_lock()
        except LockError:
            return
        if lock is None:
            return
    pins = git_pins(lock)
    if pins:
        use_vendored_git(ws, pins, roots)


