"""Which local files a source taken from index data may name (issue 24, finding 1).

An index line (or a component's manifest, or a lock copied from them) is data written by
someone else. A ``file://`` URL or a path in it would make ``ckpm fetch`` copy any file the
user can read (``~/.ssh/id_rsa``, ``/proc/self/environ``) into the download cache, and
``ckpm sync`` into the store. The rule, checked here before anything is opened:

- an ``http(s)://`` URL (or any other scheme: the downloader refuses those itself) is
  unchanged;
- a ``file://`` URL or a path is used only when the data comes from an index that is a
  local folder, and the file lies inside that folder, checked on the realpath (symbolic
  links and ``..`` resolved); it is then fetched by that realpath;
- anything else is refused, naming the index, the component and the field.

The user's own choices are not data: ``[mirrors]`` of ``ckpm.toml`` and of the user config,
and ``--mirror DIR``, may name any folder. They are applied after this check, by
:class:`~ckpm.fetch.mirrors.Mirrors` and the caller.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ckpm.errors import FetchError
from ckpm.model.source import is_local_url as is_local

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_DRIVE_RE = re.compile(r"^[A-Za-z]:[\\/]")


class LocalFileRefused(FetchError):
    """Index data named a local file it may not read."""

    code = "local-file"


def _path_of(url: str, root: Path) -> str | None:
    """The local path ``url`` names (a relative path is relative to ``root``); None when the
    URL cannot name one (a ``file://`` URL with a host, a NUL)."""
    if "\x00" in url:
        return None
    m = _SCHEME_RE.match(url)
    if m is not None and m.group(1).lower() == "file" and not _DRIVE_RE.match(url):
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.netloc.lower() not in ("", "localhost") or parts.query or parts.fragment:
            return None
        path = unquote(parts.path)
        if "\x00" in path:
            return None
    else:
        path = url
    p = Path(path).expanduser() if path.startswith("~") else Path(path)
    return str(p if p.is_absolute() else root / p)


def data_urls(urls: list[str], *, root: Path | None, index: str, component: str, field: str) -> list[str]:
    """``urls`` of a source read from index data, as they may be fetched.

    ``root`` is the folder of the index the data comes from when that index is a local
    folder (None otherwise: a git or HTTP index, a git component). A local URL comes back
    as the ``file://`` URL of its realpath; LocalFileRefused, before anything is opened,
    for one outside ``root`` or for any local URL when ``root`` is None. ``index``,
    ``component`` and ``field`` (``source.urls``) word the error.
    """
    out: list[str] = []
    for k, url in enumerate(urls):
        if not is_local(url):
            out.append(url)
            continue
        where = f"index {index}: {component}: {field}[{k}]"
        shown = url if len(url) <= 120 else url[:119] + "…"
        if root is None:
            raise LocalFileRefused(
                f"{where} names the local file {shown!r}; only an index that is a local folder may name "
                "files, and only its own",
                hint="index data never reads your files: to use a file of yours, add a mirror in [mirrors] of "
                     "ckpm.toml or the user config, or pass --mirror DIR")
        base = os.path.realpath(root)
        path = _path_of(url, Path(base))
        real = os.path.realpath(path) if path is not None else None
        if real is None or real == base or os.path.commonpath([real, base]) != base:
            raise LocalFileRefused(
                f"{where} names the local file {shown!r}, which is outside the index folder {base}",
                hint="an index folder may name only files inside itself (checked after following links); "
                     "to use another file of yours, add a mirror in [mirrors] or pass --mirror DIR")
        out.append(Path(real).as_uri())
    return out
