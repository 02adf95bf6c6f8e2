"""How publishing reads its target and a registry's answers: through ``index/open.py`` (offline
reads the cached copy, a deadline bounds the reads), and error bodies of both shapes.

Real parts: a component's git repository with a bare ``origin``, a bare git index, a loopback
HTTP server that answers as a registry deployed earlier (``message``) or now (``error``).
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from ckpm.errors import CkpmError
from ckpm.index.gitwriter import publish_line
from ckpm.index.open import git_index_url
from ckpm.publishing import AuthError, PublishError, RegistryError, publish, request_json
from ckpm.publishing.registry_client import error_of
from ckpm.settings import Settings
from ckpm.testing import GitRepoFactory, component_toml, entry

pytest_plugins = ["ckpm.testing"]


def settings_for(tmp_path: Path, *, offline: bool = False) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", env={"HOME": str(tmp_path / "home")},
                    config_path=tmp_path / "config.toml", offline=offline)


@pytest.fixture
def component(git_repo_factory: GitRepoFactory) -> Path:
    """``mylib`` 1.0.0, depending on ``lib-new``, tagged and pushed to its bare ``origin``."""
    origin = git_repo_factory("mylib-origin", bare=True)
    work = git_repo_factory("mylib", bare=False)
    work.repo.remotes.create("origin", origin.url)
    commit = work.commit({"ckpm.toml": component_toml("mylib", "1.0.0", deps={"lib-new": ">=1"}),
                          "data.txt": "v1\n"}, "release")
    work.tag("v1.0.0", commit)
    work.repo.remotes["origin"].push(["+refs/heads/main:refs/heads/main", "+refs/tags/v1.0.0:refs/tags/v1.0.0"])
    assert work.repo.workdir is not None
    return Path(work.repo.workdir)


def test_offline_publish_reads_the_cached_copy_of_the_target_and_says_so(tmp_path: Path, component: Path,
                                                                          git_index_factory: Any) -> None:
    """The cached copy (made by a first check) lacks ``lib-new``, published to the index since:
    offline, the check reads that copy, so it refuses, and says it read the cached copy; online
    the same check fetches and passes. Before, publishing fetched even with --offline."""
    index = git_index_factory({"lib-base": [entry("lib-base", "1.0.0")]})
    with pytest.raises(PublishError, match="does not have: lib-new"):
        publish(component, index=index.url, dry_run=True, settings=settings_for(tmp_path))
    publish_line(index.url, entry("lib-new", "1.0.0"), settings=settings_for(tmp_path))

    offline = settings_for(tmp_path, offline=True)
    with pytest.raises(PublishError, match="does not have: lib-new"):
        publish(component, index=index.url, dry_run=True, settings=offline)
    assert any("offline: git index" in w and "cached copy" in w for w in offline.reporter.warnings), \
        offline.reporter.warnings

    online = settings_for(tmp_path)
    result = publish(component, index=index.url, dry_run=True, settings=online)
    assert result.release.version == "1.0.0" and result.dry_run
    assert not any("cached copy" in w for w in online.reporter.warnings)


def test_offline_with_no_cached_copy_of_the_target_is_one_error(tmp_path: Path, component: Path,
                                                                git_index_factory: Any) -> None:
    index = git_index_factory({"lib-new": [entry("lib-new", "1.0.0")]})
    with pytest.raises(CkpmError, match="no cached copy of this index, and ckpm is offline"):
        publish(component, index=index.url, dry_run=True, settings=settings_for(tmp_path, offline=True))


def test_a_deadline_bounds_the_reads_of_the_target(tmp_path: Path, component: Path, git_index_factory: Any) -> None:
    """``timeout=0``: the deadline has passed before the first read, so the clone of the target
    stops at once with the index's own timeout error, and nothing is published."""
    index = git_index_factory({"lib-new": [entry("lib-new", "1.0.0")]})
    with pytest.raises(CkpmError, match="time limit") as info:
        publish(component, index=index.url, settings=settings_for(tmp_path), check_remote=False, timeout=0)
    assert "cannot clone index" in info.value.message and "--timeout" in (info.value.hint or "")
    assert publish(component, index=index.url, dry_run=True, settings=settings_for(tmp_path)).release.version == "1.0.0"


def test_git_index_url_names_a_local_repository_as_open_index_takes_it(tmp_path: Path) -> None:
    assert git_index_url("git+https://example.invalid/i.git") == "git+https://example.invalid/i.git"
    assert git_index_url("file:///srv/i.git") == "git+file:///srv/i.git"
    assert git_index_url(str(tmp_path / "i.git")) == "git+" + (tmp_path / "i.git").resolve().as_uri()


# -- error bodies ------------------------------------------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    """GET /old → 409 with the sentence under ``message``; /new → under ``error`` (to_dict);
    /auth → 401 in the new shape."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        bodies = {
            "/old": (409, {"error": {"code": "already-published", "message": "old words"}}),
            "/new": (409, {"error": {"code": "already-published", "error": "new words", "hint": None,
                                     "details": []}}),
            "/auth": (401, {"error": {"code": "unauthorized", "error": "who are you", "hint": None, "details": []}}),
        }
        status, body = bodies.get(self.path, (404, {}))
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def answers() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_client_reads_the_message_of_both_shapes_of_error_body(tmp_path: Path, answers: str) -> None:
    s = settings_for(tmp_path)
    for path, words in (("/old", "old words"), ("/new", "new words")):
        with pytest.raises(RegistryError) as info:
            request_json(s, "GET", answers + path, auth=None)
        assert info.value.code == "already-published" and info.value.status == 409
        assert info.value.message.endswith(words), info.value.message
    with pytest.raises(AuthError, match="who are you"):
        request_json(s, "GET", answers + "/auth", auth=None)


def test_error_of_prefers_error_and_ignores_what_is_not_text() -> None:
    assert error_of({"error": {"code": "x", "error": "new", "message": "old"}}) == ("x", "new")
    assert error_of({"error": {"code": "x", "message": "old"}}) == ("x", "old")
    assert error_of({"error": {"code": 3, "error": ["no"]}}) == (None, None)
    assert error_of({"error": "flat"}) == (None, None)
    assert error_of(None) == (None, None)


def test_the_git_writer_refuses_a_remote_index_offline_and_stops_at_the_deadline(tmp_path: Path,
                                                                                 git_index_factory: Any) -> None:
    """Offline, a remote git index is neither read nor written (nothing is contacted: the port
    is closed anyway); a local one pushed to through our clone stops at a passed deadline."""
    from ckpm.index.gitwriter import read_line, set_yanked

    remote = "git+https://127.0.0.1:9/index.git"
    offline = settings_for(tmp_path, offline=True)
    for call in (lambda: publish_line(remote, entry("lib-a", "1.0.0"), settings=offline),
                 lambda: set_yanked(remote, "lib-a", "1.0.0", True, settings=offline),
                 lambda: read_line(remote, "lib-a", "1.0.0", settings=offline)):
        with pytest.raises(CkpmError, match="while offline"):
            call()
    index = git_index_factory({"lib-a": [entry("lib-a", "1.0.0")]})
    with pytest.raises(CkpmError, match="time limit"):
        publish_line(index.url, entry("lib-a", "1.1.0"), settings=settings_for(tmp_path), direct=False, deadline=0.0)
    assert read_line(index.url, "lib-a", "1.1.0", settings=settings_for(tmp_path)) is None
    assert read_line(index.url, "lib-a", "1.0.0", settings=offline) is not None  # local: no network
