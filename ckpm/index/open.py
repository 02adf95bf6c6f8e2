"""Open an index from a URL: the factory that picks a client (folder, git or HTTP).

Kept apart from :mod:`ckpm.index.base` so that the protocol and the shared reader
import none of the clients that build on them.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ckpm.index.base import Index

if TYPE_CHECKING:
    from ckpm.report import Reporter

EMBEDDED = "embedded"


def embedded_index_path() -> Path:
    """The default index shipped with ckpm (``index/`` beside the package)."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "index", here / "_index"):
        if (cand / "config.json").is_file():
            return cand
    return here.parent / "index"


def git_index_url(url: str) -> str:
    """``url`` as :func:`open_index` opens a git index: ``git+…`` kept, a path or a ``file://``
    URL (a local repository, as ``ckpm publish --index`` takes it) made ``git+file://…``."""
    if url.startswith("git+"):
        return url
    return "git+" + (url if "://" in url else Path(url).expanduser().resolve().as_uri())


def open_index(url: str | None, *, name: str | None = None, cache_dir: Path | None = None, offline: bool = False,
               reporter: "Reporter | None" = None, deadline: float | None = None) -> Index:
    """Open the index at ``url`` (None or ``embedded``: the default index that ships with ckpm).

    Problems found in the index's data (a malformed line, a line of another component)
    go to ``reporter.warning`` (once each); without a ``reporter`` the index makes its own,
    which only collects them (``index.reporter.warnings``). ``deadline`` (a ``time.monotonic()`` value) bounds every network
    read of a git or HTTP index.
    """
    from ckpm.index.cache import cache_root
    from ckpm.index.folder import FolderIndex

    if url is None or url == EMBEDDED:
        return FolderIndex(embedded_index_path(), name=name or "default", url=EMBEDDED, reporter=reporter)
    if url.startswith("git+"):
        from ckpm.index.git import GitIndex

        return GitIndex(url, name=name, cache_dir=cache_dir, offline=offline, reporter=reporter, deadline=deadline)
    if url.startswith(("http://", "https://")):
        from ckpm.index.http import HttpIndex

        return HttpIndex(url, name=name, cache_dir=cache_dir, offline=offline, reporter=reporter, deadline=deadline)
    path = Path(url[len("file://"):]) if url.startswith("file://") else Path(url)
    return FolderIndex(path, name=name, url=url, reporter=reporter, cache_dir=cache_root(cache_dir))
