"""Pytest fixtures for ckpm and for component authors: real git repos, indexes, HTTP servers.

Opt-in, so that installing ckpm changes no other project's test suite: enable them with
``pytest_plugins = ["ckpm.testing"]`` in a ``conftest.py`` (or ``pytest -p ckpm.testing``).
No mocks anywhere:

``git_repo_factory``   real git repositories with one commit and one tag per version
``index_factory``      index folders written with :mod:`ckpm.index.writer`
``git_index_factory``  an index folder committed into a git repository (``git+file://``)
``http_index_server``  a loopback HTTP server with ETags that counts what it served and,
                       at teardown, fails the test if an unchanged file was sent twice
``ckpm_cache_dir``     a fresh cache root, also exported as ``CKPM_CACHE_DIR``

Helpers :func:`entry` and :func:`component_toml` build index lines and manifests.
Commits use fixed signatures and times, so the same calls give the same commit ids.
"""
from __future__ import annotations

import hashlib
import itertools
import re
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence, Union

import pytest

__all__ = [
    "GitRepo", "GitRepoFactory", "IndexFactory", "GitIndexRepo", "GitIndexFactory", "HttpIndexServer",
    "entry", "component_toml",
]

Files = Mapping[str, Union[str, bytes]]
VersionContent = Union[str, Files]  # manifest text, or every file of the commit

_DEP = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")
_EPOCH = 1_700_000_000


# -- builders -------------------------------------------------------------------------------

def entry(name: str, version: str, deps: Iterable[str | Mapping[str, Any]] = (), tags: Iterable[str] = (),
          targets: Iterable[str] = ("*",), kind: str = "lib", yanked: bool = False,
          **extra: Any) -> dict[str, Any]:
    """An index line as a dict. ``deps`` items: ``"lib-x"``, ``"lib-x >=1,<2"`` or index dep dicts.

    ``source`` and ``cksum`` get deterministic placeholder values unless given in ``extra``.
    """
    out_deps: list[dict[str, Any]] = []
    for dep in deps:
        if isinstance(dep, Mapping):
            out_deps.append(dict(dep))
            continue
        m = _DEP.match(dep)
        if not m:
            raise ValueError(f"not a dependency: {dep!r}")
        out_deps.append({"name": m.group(1).lower(), "req": m.group(2) or "*"})
    digest = hashlib.sha256(f"{name}@{version}".encode()).hexdigest()
    d: dict[str, Any] = {
        "name": name,
        "version": version,
        "kind": kind,
        "tags": list(tags),
        "description": f"{name} {version}",
        "targets": list(targets),
        "deps": out_deps,
        "source": {"urls": [f"https://example.org/dist/{name}-{version}.tar.gz"], "sha256": digest},
        "cksum": f"sha256:{digest}",
        "yanked": yanked,
    }
    d.update(extra)
    return d


def component_toml(name: str, version: str | None = None, *, kind: str = "lib", tags: Iterable[str] = (),
                   description: str = "", targets: Iterable[str] = ("*",),
                   deps: Mapping[str, str | Mapping[str, Any]] | None = None,
                   extra: Mapping[str, Any] | None = None) -> str:
    """The text of a component's ``ckpm.toml`` (``[component]`` and ``[dependencies]``)."""
    import tomlkit

    comp: dict[str, Any] = {"name": name}
    if version is not None:
        comp["version"] = version
    comp["kind"] = kind
    if tags:
        comp["tags"] = list(tags)
    if description:
        comp["description"] = description
    comp["targets"] = list(targets)
    doc: dict[str, Any] = {"component": comp}
    if deps:
        table = tomlkit.table()
        for k, v in deps.items():
            if isinstance(v, Mapping):
                it = tomlkit.inline_table()
                it.update(dict(v))
                table[k] = it
            else:
                table[k] = v
        doc["dependencies"] = table
    if extra:
        doc.update(extra)
    return tomlkit.dumps(doc)


# -- git repositories ---------------------------------------------------------------------

@dataclass
class GitRepo:
    """A real git repository made by :class:`GitRepoFactory`, with helpers to change it."""

    path: Path
    bare: bool
    branch: str = "main"
    _clock: Iterator[int] = field(default_factory=lambda: itertools.count(_EPOCH, 60), repr=False)

    @property
    def url(self) -> str:
        """``file://`` URL of the repository."""
        return self.path.resolve().as_uri()

    @property
    def repo(self) -> Any:
        """A fresh ``pygit2.Repository`` on it."""
        import pygit2

        return pygit2.Repository(str(self.path))

    def _sig(self) -> Any:
        import pygit2

        return pygit2.Signature("ckpm test", "test@ckpm.invalid", next(self._clock), 0)

    def head(self) -> str | None:
        """The commit at the tip of the branch, or None when it has none yet."""
        repo = self.repo
        try:
            return str(repo.lookup_reference(f"refs/heads/{self.branch}").target)
        except KeyError:
            return None

    def commit(self, files: VersionContent, message: str = "commit", *, on_branch: bool = True) -> str:
        """A commit whose tree holds exactly ``files`` (a str is the text of ``ckpm.toml``).

        With ``on_branch`` the branch moves to it (a child of its tip); otherwise it is a
        dangling child of the tip, reachable only through the tags you put on it.
        """
        import pygit2
        from pygit2.enums import FileMode

        if isinstance(files, str):
            files = {"ckpm.toml": files}
        repo = self.repo
        index = pygit2.Index()
        for rel, data in sorted(files.items()):
            blob = repo.create_blob(data.encode("utf-8") if isinstance(data, str) else data)
            index.add(pygit2.IndexEntry(rel, blob, FileMode.BLOB))
        tree = index.write_tree(repo)
        parent = self.head()
        sig = self._sig()
        ref = f"refs/heads/{self.branch}" if on_branch else None
        oid = repo.create_commit(ref, sig, sig, message, tree, [parent] if parent else [])
        if on_branch and not self.bare:
            from pygit2.enums import CheckoutStrategy

            repo.checkout_head(strategy=CheckoutStrategy.FORCE | CheckoutStrategy.REMOVE_UNTRACKED)
        return str(oid)

    def tag(self, name: str, commit: str | None = None, *, annotated: bool = False, force: bool = False) -> None:
        """Tag ``commit`` (default: the branch tip), lightweight or annotated."""
        import pygit2
        from pygit2.enums import ObjectType

        repo = self.repo
        target = commit or self.head()
        if target is None:
            raise ValueError("nothing to tag: the repository has no commit")
        ref = f"refs/tags/{name}"
        if force and ref in repo.references:
            repo.references.delete(ref)
        oid = pygit2.Oid(hex=target)
        if annotated:
            repo.create_tag(name, oid, ObjectType.COMMIT, self._sig(), f"release {name}\n")
        else:
            repo.references.create(ref, oid)

    def add_tag(self, name: str, commit: str | None = None, *, annotated: bool = False) -> None:
        """Add a tag that is not a version (``latest``, ``release-candidate``)."""
        self.tag(name, commit, annotated=annotated)

    def move_tag(self, name: str, files: VersionContent, *, annotated: bool | None = None,
                 on_branch: bool = True) -> str:
        """Make a new commit with ``files`` and move tag ``name`` onto it; returns the commit.

        ``annotated`` None keeps the tag's current kind.
        """
        if annotated is None:
            annotated = self.is_annotated(name)
        new = self.commit(files, f"retag {name}", on_branch=on_branch)
        self.tag(name, new, annotated=annotated, force=True)
        return new

    def delete_tag(self, name: str) -> None:
        """Remove tag ``name``."""
        self.repo.references.delete(f"refs/tags/{name}")

    def is_annotated(self, name: str) -> bool:
        """True when tag ``name`` is an annotated tag object."""
        import pygit2

        repo = self.repo
        ref = repo.lookup_reference(f"refs/tags/{name}")
        return isinstance(repo[ref.target], pygit2.Tag)

    def tags(self) -> dict[str, str]:
        """Every tag and the commit it points to (peeled)."""
        import pygit2

        repo = self.repo
        out = {}
        for r in repo.references:
            if r.startswith("refs/tags/"):
                out[r[len("refs/tags/"):]] = str(repo.lookup_reference(r).peel(pygit2.Commit).id)
        return out


class GitRepoFactory:
    """``make(name, {tag: manifest text or files}, bare=True, annotated=...)`` → :class:`GitRepo`.

    One commit per version, in the order given, each tagged; ``annotated`` is True (all
    tags annotated), False (all lightweight) or the tags to annotate.
    """

    def __init__(self, base: Path) -> None:
        self.base = Path(base)

    def __call__(self, name: str, versions: Mapping[str, VersionContent] | None = None, *, bare: bool = True,
                 annotated: bool | Iterable[str] = False, branch: str = "main") -> GitRepo:
        import pygit2

        path = self.base / (f"{name}.git" if bare else name)
        if path.exists():
            raise FileExistsError(f"{path} exists: give each repository its own name")
        pygit2.init_repository(str(path), bare=bare, initial_head=branch)
        repo = GitRepo(path=path, bare=bare, branch=branch)
        ann = set(versions or ()) if annotated is True else set() if annotated is False else set(annotated)
        for tag, content in (versions or {}).items():
            repo.commit(content, f"release {tag}")
            repo.tag(tag, annotated=tag in ann)
        return repo


# -- index folders ------------------------------------------------------------------------

class IndexFactory:
    """``make({name: [entry dicts]}, name="test")`` → a new index folder (with summary.jsonl)."""

    entry = staticmethod(entry)

    def __init__(self, base: Path) -> None:
        self.base = Path(base)
        self._n = itertools.count(1)

    def __call__(self, components: Mapping[str, Sequence[Mapping[str, Any]]] | None = None, *,
                 name: str = "test", summary: bool = True, root: Path | None = None) -> Path:
        from ckpm.index.writer import init_index, reindex, write_component

        root = Path(root) if root is not None else self.base / f"index-{next(self._n)}"
        init_index(root, name=name)
        for _, entries in sorted((components or {}).items()):
            if entries:
                write_component(root, entries)
        if summary:
            reindex(root)
        return root

    @staticmethod
    def append(root: Path, line: Mapping[str, Any], *, summary: bool = True) -> Path:
        """Publish one more version into an index folder."""
        from ckpm.index.writer import append_entry

        return append_entry(root, line, update_summary=summary)


@dataclass
class GitIndexRepo:
    """An index folder (``folder``) whose snapshots are commits of a git repository."""

    folder: Path
    git: GitRepo

    @property
    def url(self) -> str:
        """``git+file://`` URL for :class:`ckpm.index.git.GitIndex`."""
        return "git+" + self.git.url

    def commit(self, message: str = "update index") -> str:
        """Commit the folder as it is now on the branch; returns the commit id."""
        files = {p.relative_to(self.folder).as_posix(): p.read_bytes()
                 for p in sorted(self.folder.rglob("*")) if p.is_file()}
        return self.git.commit(files, message)

    def publish(self, line: Mapping[str, Any], *, summary: bool = True) -> str:
        """Append one version line and commit it; returns the commit id."""
        IndexFactory.append(self.folder, line, summary=summary)
        return self.commit(f"publish {line['name']} {line['version']}")


class GitIndexFactory:
    """``make({name: [entry dicts]})`` → a :class:`GitIndexRepo` (a bare repo with one commit)."""

    entry = staticmethod(entry)

    def __init__(self, indexes: IndexFactory, repos: GitRepoFactory) -> None:
        self.indexes = indexes
        self.repos = repos
        self._n = itertools.count(1)

    def __call__(self, components: Mapping[str, Sequence[Mapping[str, Any]]] | None = None, *,
                 name: str = "test", summary: bool = True) -> GitIndexRepo:
        folder = self.indexes(components, name=name, summary=summary)
        out = GitIndexRepo(folder=folder, git=self.repos(f"git-index-{next(self._n)}", bare=True))
        out.commit("initial index")
        return out


# -- HTTP ---------------------------------------------------------------------------------

class HttpIndexServer:
    """Serves a folder on 127.0.0.1 (port 0) with strong ETags and counts every response.

    ``hits[path]`` counts 200s, ``not_modified[path]`` 304s, ``missing[path]`` 404s
    (paths without the leading slash). :meth:`assert_no_refetch` fails when a path was
    sent in full twice with the same content: a client should have revalidated or
    remembered it. Put ``{path: status}`` (or ``{"*": status}``) in :attr:`errors` to make
    the server answer with that status instead, e.g. 503.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.hits: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        self.missing: Counter[str] = Counter()
        self.log: list[tuple[str, int]] = []
        self.errors: dict[str, int] = {}
        self._sent: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def serve(self, root: Path) -> str:
        """Serve ``root`` from now on (the server keeps its port); returns :attr:`url`."""
        self.root = Path(root)
        return self.url

    def start(self) -> str:
        """Start serving in a daemon thread; returns the base URL."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: stop() really stops

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
                status, etag, body = server._lookup(rel)
                inm = self.headers.get("If-None-Match")
                if status == 200 and inm is not None and etag is not None and (
                        inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]):
                    status = 304
                server._record(rel, status, etag)
                self.send_response(status)
                if etag is not None:
                    self.send_header("ETag", etag)
                if status == 200:
                    self.send_header("Content-Type", "application/json" if rel.endswith(".json") else "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="ckpm-http-index", daemon=True)
        self._thread.start()
        port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        """Stop serving and close the port (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _lookup(self, rel: str) -> tuple[int, str | None, bytes]:
        forced = self.errors.get(rel, self.errors.get("*"))
        if forced is not None:
            return forced, None, b""
        root = self.root.resolve()
        p = (root / rel).resolve()
        if not rel or not p.is_relative_to(root) or not p.is_file():
            return 404, None, b""
        body = p.read_bytes()
        return 200, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', body

    def _record(self, rel: str, status: int, etag: str | None) -> None:
        with self._lock:
            self.log.append((rel, status))
            if status == 200:
                self.hits[rel] += 1
                self._sent.setdefault(rel, []).append(etag or "")
            elif status == 304:
                self.not_modified[rel] += 1
            elif status == 404:
                self.missing[rel] += 1

    def refetched(self) -> dict[str, int]:
        """Paths sent in full more than once with unchanged content, and how many times."""
        with self._lock:
            out = {}
            for rel, tags in self._sent.items():
                worst = max(Counter(tags).values())
                if worst > 1:
                    out[rel] = worst
            return out

    def reset_counts(self) -> None:
        """Forget what was served (e.g. after deliberately wiping a client cache)."""
        with self._lock:
            self.hits.clear()
            self.not_modified.clear()
            self.missing.clear()
            self.log.clear()
            self._sent.clear()

    def assert_no_refetch(self) -> None:
        """Fail if an unchanged file was sent in full more than once."""
        bad = self.refetched()
        assert not bad, "files fetched again although unchanged: " + ", ".join(
            f"{p} ({n}x)" for p, n in sorted(bad.items()))


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture
def ckpm_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache root, also set as ``CKPM_CACHE_DIR`` for the test."""
    d = tmp_path / "ckpm-cache"
    d.mkdir()
    monkeypatch.setenv("CKPM_CACHE_DIR", str(d))
    return d


@pytest.fixture
def git_repo_factory(tmp_path: Path) -> GitRepoFactory:
    """Make real git repositories: ``git_repo_factory("mytool", {"v1.0.0": toml_text})``."""
    base = tmp_path / "git-repos"
    base.mkdir(exist_ok=True)
    return GitRepoFactory(base)


@pytest.fixture
def index_factory(tmp_path: Path) -> IndexFactory:
    """Make index folders: ``index_factory({"lib-x": [index_factory.entry("lib-x", "1.0")]})``."""
    return IndexFactory(tmp_path / "indexes")


@pytest.fixture
def git_index_factory(index_factory: IndexFactory, git_repo_factory: GitRepoFactory) -> GitIndexFactory:
    """Make git indexes: ``git_index_factory({...}).url`` is a ``git+file://`` URL."""
    return GitIndexFactory(index_factory, git_repo_factory)


@pytest.fixture
def http_index_server(tmp_path: Path) -> Iterator[HttpIndexServer]:
    """A started loopback server; ``.serve(folder)`` picks what it serves. Fails at
    teardown if a file was sent in full twice without having changed."""
    root = tmp_path / "http-root"
    root.mkdir(exist_ok=True)
    server = HttpIndexServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
    server.assert_no_refetch()
