"""The vendored folder: where ``ckpm vendor DIR`` puts each kind of source, and what it wrote.

A vendored folder serves an offline ``ckpm sync --locked --offline --mirror DIR`` on a machine
that has nothing else: a new cache, store and config, and no network. Its layout::

    DIR/<host>/<path>                 an archive of an http(s) URL (vendor_relpath, as before)
    DIR/@file/<hash>/<name>           an archive of a file:// URL (hash: 12 hex of the URL)
    DIR/@git/<host>/<path>.git        a bare git repository of an http(s), ssh or git URL
    DIR/@git/_local/<name>-<hash>.git a bare git repository of a file:// URL or a local path
    DIR/@python/<file>                a python distribution of a lock's ``pip`` list (wheel or sdist)
    DIR/@index/<index>/               the index lines of the locked packages, in the index's own layout
                                      (config.json and each component's file, as the index served them)
    DIR/ckpm-vendor.json              what the folder holds (written last)

``@`` cannot start a host name, so these folders never meet an archive's. A git repository
holds the locked commits with their history, each kept by ``refs/ckpm/locked/<commit>`` and
by its locked tag (``refs/tags/<tag>``, as the original has it); any git can clone it.

Everything here is pure: paths and the result of a vendor run, no I/O but reading the
manifest file of a folder.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ckpm.errors import FetchError
from ckpm.fetch.mirrors import MAX_SEGMENT_BYTES, _segment, url_segments, vendor_relpath

#: the file that marks a folder made by ``ckpm vendor`` (and lists what it holds)
MANIFEST = "ckpm-vendor.json"
GIT_DIR = "@git"
PYTHON_DIR = "@python"
FILE_DIR = "@file"
INDEX_DIR = "@index"
MANIFEST_FORMAT = 1
#: the largest manifest read back
MAX_MANIFEST = 16 << 20

KINDS = ("archive", "git", "python")
_NOUNS = {"archive": ("archive", "archives"), "git": ("git repository", "git repositories"),
          "python": ("python distribution", "python distributions"), "index": ("index line", "index lines")}
_SCP_RE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!//)(.+)$")
_INDEX_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def archive_relpath(url: str) -> str:
    """Where the vendored copy of an archive's ``url`` lives, relative to the folder.

    http(s): :func:`~ckpm.fetch.mirrors.vendor_relpath`; ``file://``: ``@file/<hash>/<name>``
    (the author's absolute path means nothing elsewhere). ValueError for anything else.
    """
    if url[:7].lower() == "file://":
        name = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        seg = _segment(name, url)
        return f"{FILE_DIR}/{_hash12(url)}/{seg}"
    return vendor_relpath(url)


def git_relpath(url: str) -> str:
    """Where the vendored bare repository of the git ``url`` lives, relative to the folder.

    ``https://host/u/r`` and ``ssh://git@host/u/r.git`` → ``@git/host/u/r.git`` (a port
    other than the default kept as ``host_2222``); ``git@host:u/r.git`` → ``@git/host/u/r.git``;
    a ``file://`` URL or a path → ``@git/_local/<name>-<hash>.git``. ValueError when the URL
    cannot be mapped to a folder.
    """
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise ValueError("a git URL must be a non-empty string of at most 2048 characters")
    url = url[4:] if url.startswith("git+") else url
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("http", "https"):
        segments = url_segments(url)
    elif scheme in ("ssh", "git"):
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise ValueError(f"{url!r}: {e}") from None
        host = (parts.hostname or "").lower()
        if not host:
            raise ValueError(f"{url!r}: the URL has no host")
        if port is not None and port != (22 if scheme == "ssh" else 9418):
            host = f"{host}_{port}"
        segments = [_segment(host, url)] + [_segment(s, url) for s in parts.path.strip("/").split("/")]
    elif scheme == "file" or (scheme == "" and not _SCP_RE.match(url)):
        name = url.rstrip("/").rsplit("/", 1)[-1] or "repo"
        name = re.sub(r"[^A-Za-z0-9._+-]", "_", name.removesuffix(".git"))[:80].lstrip(".") or "repo"
        return f"{GIT_DIR}/_local/{name}-{_hash12(url)}.git"
    elif scheme == "":
        m = _SCP_RE.match(url)
        assert m is not None
        segments = [_segment(m.group(1).lower(), url)] + [_segment(s, url) for s in m.group(2).strip("/").split("/")]
    else:
        raise ValueError(f"{url!r}: a git URL of scheme {scheme!r} has no vendored folder")
    if not segments[-1].endswith(".git"):
        segments[-1] = _segment(segments[-1] + ".git", url)
    if any(len(s.encode("utf-8")) > MAX_SEGMENT_BYTES for s in segments):
        raise ValueError(f"{url!r}: a path segment is too long")
    return "/".join([GIT_DIR, *segments])


def index_relpath(index: str) -> str:
    """Where the vendored lines of the index named ``index`` live, relative to the folder:
    ``@index/<name>`` for a plain name (letters, digits, ``.``, ``_``, ``-``; at most 64),
    ``@index/_<hash>`` (12 hex of the name) for any other."""
    if isinstance(index, str) and _INDEX_NAME_RE.fullmatch(index):
        return f"{INDEX_DIR}/{index}"
    return f"{INDEX_DIR}/_{_hash12(str(index))}"


def vendored_index(folder: Path, index: str, url: str) -> Path | None:
    """The folder of vendored lines of index ``index`` at ``url`` in the vendored folder
    ``folder``: the manifest must list that index with that URL at :func:`index_relpath` (lines
    vendored from another index of the same name are not used); None when it has none."""
    items = read_manifest(folder).get("indexes")
    if not isinstance(items, list):
        return None
    rel = index_relpath(index)
    for it in items:
        if isinstance(it, dict) and it.get("name") == index and it.get("url") == url and it.get("path") == rel:
            return Path(folder) / rel
    return None


def is_vendor_root(folder: Path) -> bool:
    """A folder made by ``ckpm vendor`` (it holds ``ckpm-vendor.json``)."""
    return (Path(folder) / MANIFEST).is_file()


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a vendored folder, or an empty one when it has none or it is unreadable."""
    try:
        with open(Path(folder) / MANIFEST, "rb") as f:
            data = json.loads(f.read(MAX_MANIFEST))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def python_hashes(folder: Path) -> set[str]:
    """The sha256 of the python distributions the manifest of a vendored folder lists (claims
    only: pip checks every file's hash against the lock when it installs)."""
    items = read_manifest(folder).get("items")
    return {str(it["sha256"]) for it in items if isinstance(it, dict) and it.get("kind") == "python"
            and isinstance(it.get("sha256"), str)} if isinstance(items, list) else set()


@dataclass
class VendoredItem:
    """One thing written into the folder: an archive, a git repository, a python distribution."""

    kind: str  # archive | git | python
    path: str  # relative to the folder
    source: str  # the URL (archive, git) or the distribution's file name (python)
    packages: list[str] = field(default_factory=list)  # "name version" of the packages that need it
    sha256: str | None = None  # archive, python
    size: int | None = None
    commits: list[str] = field(default_factory=list)  # git
    tags: dict[str, str] = field(default_factory=dict)  # git: tag → commit

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "path": self.path, "source": self.source,
                               "packages": sorted(self.packages)}
        if self.kind == "git":
            out.update(commits=sorted(self.commits), tags=dict(sorted(self.tags.items())))
        else:
            out.update(sha256=self.sha256, size=self.size)
        return out


@dataclass
class VendoredIndex:
    """The lines of one index written into the folder: each component's file, as the index served it."""

    name: str
    url: str
    path: str  # relative to the folder (index_relpath)
    # component → {"file": its layout path, "sha256", "size", "versions": the locked ones, "packages"}
    components: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "path": self.path,
                "components": {n: self.components[n] for n in sorted(self.components)}}


@dataclass
class VendorResult:
    """What ``ckpm vendor`` wrote (``items``), for which targets, and what it could not vendor."""

    dest: Path
    targets: list[str] = field(default_factory=list)
    items: list[VendoredItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "name version: what could not be vendored and why"
    indexes: list[VendoredIndex] = field(default_factory=list)  # the index lines of the locked packages

    def counts(self) -> dict[str, int]:
        """How many of each kind (``archive``, ``git``, ``python``)."""
        out = dict.fromkeys(KINDS, 0)
        for it in self.items:
            out[it.kind] = out.get(it.kind, 0) + 1
        return out

    def index_lines(self) -> int:
        """How many locked packages have their index line in the folder."""
        return sum(len(c.get("packages") or ()) for ix in self.indexes for c in ix.components.values())

    def summary(self) -> str:
        """``12 archives, 2 git repositories, 36 python distributions`` (and ``, 40 index lines``
        when the lock has packages from an index that does not ship with ckpm)."""
        lines = self.index_lines()
        return ", ".join([count_words(n, kind) for kind, n in self.counts().items()]
                         + ([count_words(lines, "index")] if lines else []))

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"dest": str(self.dest), "targets": list(self.targets), "counts": self.counts(),
                "files": [it.to_dict() for it in self.items], "problems": list(self.problems),
                "indexes": [ix.to_dict() for ix in self.indexes]}

    def manifest(self, ckpm_version: str) -> dict[str, Any]:
        """The ``ckpm-vendor.json`` of the folder."""
        return {"format": MANIFEST_FORMAT, "ckpm": ckpm_version, "targets": list(self.targets),
                "counts": self.counts(), "items": [it.to_dict() for it in self.items],
                "indexes": [ix.to_dict() for ix in self.indexes]}


def count_words(n: int, kind: str) -> str:
    """``1 archive``, ``2 git repositories``."""
    one, many = _NOUNS.get(kind, (kind, kind + "s"))
    return f"{n} {one if n == 1 else many}"


class VendorIncomplete(FetchError):
    """``ckpm vendor`` wrote what it could, but some sources cannot be vendored (named in the details)."""

    code = "vendor-incomplete"

    def __init__(self, result: VendorResult) -> None:
        n = len(result.problems)
        super().__init__(f"{n} source{'s' if n != 1 else ''} of the lock could not be vendored into {result.dest} "
                         f"(vendored {result.summary()})",
                         details=list(result.problems),
                         hint="an offline sync from this folder would fail for these packages; fix each as its "
                              "line says, then run `ckpm vendor` again")
        self.result = result

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "vendored": self.result.to_dict()}
