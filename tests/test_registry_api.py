"""The registry service, started for real (uvicorn on 127.0.0.1, port 0), over a real bare git index.

Publish lines are built from real tagged git repositories (their tags' commits); every refusal
is checked to change nothing: the index's git history, the exported files and the owners.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pygit2
import pytest
import requests

from ckpm.index.gitwriter import publish_line
from registry_support import RunningRegistry, line_from_repo, make_users, serve_subprocess, tagged_component


@pytest.fixture
def registry(tmp_path: Path, git_index_factory: Any) -> Iterator[RunningRegistry]:
    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    users = make_users(tokens, "alice", "bob", "carol")
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=users, refresh=0.0).start()
    try:
        yield reg
    finally:
        reg.stop()


def snapshot(reg: RunningRegistry) -> tuple[list[str], dict[str, bytes], dict[str, Any]]:
    """Everything a write could change: the git history, the exported files, the owners."""
    files = {p.relative_to(reg.store.export).as_posix(): p.read_bytes()
             for p in sorted(reg.store.export.rglob("*")) if p.is_file()}
    return reg.history(), files, reg.store.owners.all()


def error_of(resp: requests.Response) -> str:
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    body = resp.json()
    assert set(body) == {"error"} and isinstance(body["error"]["error"], str) and body["error"]["error"]
    return str(body["error"]["code"])


# -- publishing and who may ------------------------------------------------------------------


def test_publish_needs_a_token_and_the_names_owner(registry: RunningRegistry, git_repo_factory: Any) -> None:
    repo = tagged_component(git_repo_factory, "lib-a", ["1.0.0", "1.1.0"])
    line = line_from_repo(repo, "1.0.0")
    before = snapshot(registry)
    for user, token in ((None, None), ("x", "ckpm_not-a-token"), ("x", "")):
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        r = requests.put(f"{registry.url}/api/v1/publish", json={"line": line}, headers=headers, timeout=30)
        assert r.status_code == 401 and error_of(r) == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = requests.put(f"{registry.url}/api/v1/publish", json={"line": line}, timeout=30,
                     headers={"Authorization": "Basic " + registry.tokens_of["alice"]})
    assert r.status_code == 401
    assert snapshot(registry) == before

    r = registry.publish(line, "alice")
    assert r.status_code == 201, r.text
    published = r.json()["published"]
    assert published["name"] == "lib-a" and published["version"] == "1.0.0"
    history = registry.history()
    assert history[0] == published["commit"] and history[1:] == before[0]
    commit = registry.store._repo[published["commit"]]
    assert commit.message.strip() == "Publish lib-a 1.0.0" and commit.author.name == "alice"
    assert requests.get(f"{registry.url}/api/v1/components/lib-a/owners", timeout=30).json() == {"owners": ["alice"]}

    # another user's token: refused, nothing changes
    before = snapshot(registry)
    r = registry.publish(line_from_repo(repo, "1.1.0"), "bob")
    assert r.status_code == 403 and error_of(r) == "forbidden" and "alice" in r.json()["error"]["error"]
    assert registry.yank("lib-a", "1.0.0", "bob").status_code == 403
    assert snapshot(registry) == before

    # an owner adds bob; now bob may publish
    r = requests.put(f"{registry.url}/api/v1/components/lib-a/owners", json={"users": ["bob"]},
                     headers=registry.headers("alice"), timeout=30)
    assert r.status_code == 200 and r.json() == {"owners": ["alice", "bob"]}
    r = registry.publish(line_from_repo(repo, "1.1.0"), "bob")
    assert r.status_code == 201, r.text
    assert registry.store._repo[r.json()["published"]["commit"]].author.name == "bob"


def test_the_same_version_twice_and_a_moved_tag_are_refused(registry: RunningRegistry, git_repo_factory: Any) -> None:
    repo = tagged_component(git_repo_factory, "lib-a", ["1.0.0"])
    first = line_from_repo(repo, "1.0.0")
    assert registry.publish(first).status_code == 201
    before = snapshot(registry)
    r = registry.publish(first)
    assert r.status_code == 409 and error_of(r) == "already-published"
    # the tag moves to another commit: the same version from another commit is refused, naming both
    new = repo.move_tag("v1.0.0", {"ckpm.toml": "[component]\nname = \"lib-a\"\n", "src/evil.c": "int x;\n"})
    moved = line_from_repo(repo, "1.0.0")
    assert moved["source"]["rev"] == new != first["source"]["rev"]
    r = registry.publish(moved)
    assert r.status_code == 409 and error_of(r) == "already-published"
    msg = r.json()["error"]["error"]
    assert first["source"]["rev"] in msg and new in msg and "moved" in msg
    assert snapshot(registry) == before
    # what is served is still the first line
    served = requests.get(f"{registry.url}/li/b-/lib-a", timeout=30).text.splitlines()
    assert [json.loads(x)["source"]["rev"] for x in served] == [first["source"]["rev"]]


def test_bad_requests_get_a_json_4xx_and_change_nothing(registry: RunningRegistry, git_repo_factory: Any) -> None:
    repo = tagged_component(git_repo_factory, "lib-a", ["1.0.0", "1.1.0"])
    assert registry.publish(line_from_repo(repo, "1.0.0")).status_code == 201
    good = line_from_repo(repo, "1.1.0")
    before = snapshot(registry)

    def bad(**change: Any) -> dict[str, Any]:
        return {**good, **change}

    cases: list[tuple[str, int, str, requests.Response]] = []

    def check(what: str, status: int, code: str, resp: requests.Response) -> None:
        cases.append((what, status, code, resp))

    check("not JSON", 400, "bad-request", registry.publish(None, raw=b"{not json"))
    check("not UTF-8", 400, "bad-request", registry.publish(None, raw=b"\xff\xfe{}"))
    check("a list", 400, "bad-request", registry.publish(None, raw=b"[1, 2]"))
    check("no line", 400, "bad-request", registry.publish(None, raw=b'{"lines": {}}'))
    check("line not an object", 400, "bad-request", registry.publish("lib-a 1.1.0"))
    check("empty body", 400, "bad-request", registry.publish(None, raw=b""))
    huge = json.dumps({"line": bad(description="x" * (2 << 20))}).encode()
    check("2 MiB body", 413, "too-large", registry.publish(None, raw=huge))
    check("a path as name", 422, "invalid", registry.publish(bad(name="../../etc/passwd")))
    check("upper case name", 422, "invalid", registry.publish(bad(name="Lib-A")))
    check("an index file's name", 422, "invalid", registry.publish(bad(name="summary.jsonl")))
    check("name too long", 422, "invalid", registry.publish(bad(name="a" * 65)))
    check("name not a string", 422, "invalid", registry.publish(bad(name=["lib-a"])))
    check("bad version", 422, "invalid", registry.publish(bad(version="not a version")))
    check("lone surrogate", 422, "invalid", registry.publish(None, raw=json.dumps(
        {"line": bad(description="\ud800")}).encode()))
    check("control characters", 422, "invalid", registry.publish(bad(description="\x1b[2Jhi")))
    check("nested too deep", 422, "invalid", registry.publish(bad(extra=json.loads("[" * 200 + "]" * 200))))
    check("a body nested 400,000 deep", 400, "bad-request", registry.publish(None, raw=b'{"line":' + b"[" * 400_000))
    check("a line nested 500 deep", 422, "invalid", registry.publish(None, raw=(
        '{"line": {"name": "lib-a", "version": "1.1.0", "kind": "lib", "x": ' + "[" * 500 + "]" * 500 + "}}").encode()))
    check("unknown dependency", 422, "invalid", registry.publish(bad(deps=[{"name": "lib-nowhere", "req": ">=1"}])))
    check("bad range", 422, "invalid", registry.publish(bad(deps=[{"name": "lib-a", "req": ">>1"}])))
    check("yanked not a bool", 422, "invalid", registry.publish(bad(yanked="no")))
    # a lying Content-Length is refused before the body is read
    conn = http.client.HTTPConnection(registry.url.removeprefix("http://"), timeout=30)
    conn.putrequest("PUT", "/api/v1/publish")
    conn.putheader("Content-Length", str(5 << 20))
    conn.putheader("Authorization", registry.headers("alice")["Authorization"])
    conn.endheaders(b"{}")
    resp = conn.getresponse()
    r = requests.Response()
    r.status_code, r._content = resp.status, resp.read()
    r.headers.update(dict(resp.getheaders()))
    conn.close()
    check("Content-Length over the limit", 413, "too-large", r)
    # a chunked body (no Content-Length) is counted while read
    r = requests.put(f"{registry.url}/api/v1/publish", data=iter([b"x" * (256 << 10)] * 8), timeout=30,
                     headers=registry.headers("alice"))
    check("chunked 2 MiB", 413, "too-large", r)
    # yank, owners: bad names and versions
    check("yank a bad name", 404, "not-found", registry.yank("_bad", "1.0.0"))
    check("yank an unknown version", 404, "not-found", registry.yank("lib-a", "9.9.9"))
    check("yank an unknown name", 404, "not-found", registry.yank("lib-zzz", "1.0.0"))
    check("yank a non-version", 404, "not-found", registry.yank("lib-a", "latest"))
    check("owners of a bad name", 404, "not-found",
          requests.get(f"{registry.url}/api/v1/components/LIB%20A/owners", timeout=30))
    check("owners: users not a list", 422, "invalid", requests.put(
        f"{registry.url}/api/v1/components/lib-a/owners", json={"users": "bob"}, headers=registry.headers("alice"),
        timeout=30))
    check("owners: unknown user", 422, "invalid", requests.put(
        f"{registry.url}/api/v1/components/lib-a/owners", json={"users": ["mallory"]},
        headers=registry.headers("alice"), timeout=30))
    check("owners: remove the last one", 409, "last-owner", requests.delete(
        f"{registry.url}/api/v1/components/lib-a/owners", json={"users": ["alice"]},
        headers=registry.headers("alice"), timeout=30))
    check("owners: body not JSON", 400, "bad-request", requests.put(
        f"{registry.url}/api/v1/components/lib-a/owners", data=b"bob", headers=registry.headers("alice"),
        timeout=30))

    wrong = [(what, r.status_code, r.text[:200]) for what, status, code, r in cases
             if r.status_code != status or error_of(r) != code]
    assert not wrong, wrong
    assert snapshot(registry) == before
    # and the good line still publishes
    assert registry.publish(good).status_code == 201


def test_every_failure_is_a_json_error(registry: RunningRegistry) -> None:
    u = registry.url
    for method, path, status, code in [
        ("GET", "/no/such/file", 404, "not-found"),
        ("GET", "/li/b-/lib-zzz", 404, "not-found"),
        ("GET", "/li/b-/../../etc/passwd", 404, "not-found"),
        ("GET", "/index/li/b-/lib-zzz", 404, "not-found"),
        ("POST", "/config.json", 405, "method-not-allowed"),
        ("PATCH", "/api/v1/publish", 405, "method-not-allowed"),
        ("GET", "/api/v1/publish", 404, "not-found"),
        ("GET", "/api/v1/search?limit=1000", 422, "invalid"),
        ("GET", "/api/v1/search?limit=x", 422, "invalid"),
        ("GET", "/api/v1/me", 401, "unauthorized"),
        ("GET", "/api/v1/components/lib-zzz", 404, "not-found"),
        ("GET", "/api/v1/components/lib-zzz/owners", 404, "not-found"),
    ]:
        r = requests.request(method, u + path, timeout=30)
        assert (r.status_code, error_of(r)) == (status, code), (method, path, r.text)


def test_me_and_tokens_stored_hashed(registry: RunningRegistry) -> None:
    r = requests.get(f"{registry.url}/api/v1/me", headers=registry.headers("bob"), timeout=30)
    assert r.status_code == 200 and r.json() == {"user": "bob"}
    text = registry.tokens.read_text()
    for token in registry.tokens_of.values():
        assert token not in text
    assert stat.S_IMODE(registry.tokens.stat().st_mode) == 0o600
    # a token added while the service runs works at once; a removed user's token stops working
    proc = subprocess.run([sys.executable, "-m", "ckpm_registry.cli", "token", "add", "dave",
                           "--tokens", str(registry.tokens)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token.startswith("ckpm_") and token not in registry.tokens.read_text()
    r = requests.get(f"{registry.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.json() == {"user": "dave"}
    proc = subprocess.run([sys.executable, "-m", "ckpm_registry.cli", "token", "remove", "bob",
                           "--tokens", str(registry.tokens)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert requests.get(f"{registry.url}/api/v1/me", headers=registry.headers("bob"), timeout=30).status_code == 401


# -- reading: sparse files, ETags, search ------------------------------------------------------


def test_sparse_files_revalidate_with_etags(registry: RunningRegistry, git_repo_factory: Any) -> None:
    repo = tagged_component(git_repo_factory, "lib-a", ["1.0.0", "1.1.0"])
    assert registry.publish(line_from_repo(repo, "1.0.0")).status_code == 201
    for path in ("/li/b-/lib-a", "/index/li/b-/lib-a", "/summary.jsonl", "/config.json"):
        r = requests.get(registry.url + path, timeout=30)
        assert r.status_code == 200 and r.content
        etag = r.headers["etag"]
        assert etag.startswith('"') and "max-age=" in r.headers["cache-control"]
        assert "must-revalidate" in r.headers["cache-control"] and "public" in r.headers["cache-control"]
        again = requests.get(registry.url + path, headers={"If-None-Match": etag}, timeout=30)
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        head = requests.head(registry.url + path, timeout=30)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
        assert int(head.headers["content-length"]) == len(r.content)
    cfg = requests.get(registry.url + "/config.json", timeout=30).json()
    assert cfg == {"format": 1, "name": "lab", "api": registry.url}
    old = requests.get(registry.url + "/li/b-/lib-a", timeout=30)
    assert registry.publish(line_from_repo(repo, "1.1.0")).status_code == 201
    new = requests.get(registry.url + "/li/b-/lib-a", headers={"If-None-Match": old.headers["etag"]}, timeout=30)
    assert new.status_code == 200 and new.headers["etag"] != old.headers["etag"]
    assert [json.loads(x)["version"] for x in new.text.splitlines()] == ["1.0.0", "1.1.0"]
    # the ETag is the git blob id of the bytes, the same in every process and for a static server
    assert new.headers["etag"].strip('"') == str(pygit2.hash(new.content))
    # the exported folder holds exactly what is served (a static server can serve it)
    assert (registry.store.export / "li" / "b-" / "lib-a").read_bytes() == new.content
    assert json.loads((registry.store.export / "config.json").read_text())["api"] == registry.url


def test_commits_made_outside_the_service_are_served(registry: RunningRegistry, git_repo_factory: Any) -> None:
    """`ckpm publish --index` straight into the bare repository: the service notices the moved branch."""
    repo = tagged_component(git_repo_factory, "lib-direct", ["2.0.0"])
    publish_line(str(registry.store.gitdir), line_from_repo(repo, "2.0.0"))
    r = requests.get(f"{registry.url}/li/b-/lib-direct", timeout=30)
    assert r.status_code == 200 and json.loads(r.text)["version"] == "2.0.0"
    # it has no owner here: nobody may take it over through the service
    r = registry.publish(line_from_repo(repo, "2.0.0") | {"version": "2.0.1"}, "carol")
    assert r.status_code == 403 and "no owner" in r.json()["error"]["error"]
    proc = subprocess.run([sys.executable, "-m", "ckpm_registry.cli", "owners", "add", "lib-direct", "carol",
                           "--index", str(registry.store.gitdir)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert requests.get(f"{registry.url}/api/v1/components/lib-direct/owners", timeout=30).json() == {
        "owners": ["carol"]}


def test_search(registry: RunningRegistry, git_repo_factory: Any) -> None:
    a = tagged_component(git_repo_factory, "lib-jpeg", ["9.0.0", "9.1.0"])
    b = tagged_component(git_repo_factory, "tool-convert", ["1.0.0"])
    assert registry.publish(line_from_repo(a, "9.0.0", tags=("lib", "image"))).status_code == 201
    assert registry.publish(line_from_repo(a, "9.1.0", tags=("lib", "image"))).status_code == 201
    assert registry.publish(line_from_repo(b, "1.0.0", tags=("tool", "image"),
                                           deps={"lib-jpeg": ">=9"})).status_code == 201
    assert registry.yank("lib-jpeg", "9.1.0").status_code == 200
    r = requests.get(f"{registry.url}/api/v1/search", params={"q": "jpeg"}, timeout=30).json()
    assert r["total"] == 1
    (c,) = r["components"]
    assert c["name"] == "lib-jpeg" and c["versions"] == ["9.0.0", "9.1.0"] and c["latest"] == "9.0.0"
    assert c["yanked"] == ["9.1.0"] and c["tags"] == ["image", "lib"]
    r = requests.get(f"{registry.url}/api/v1/search", params={"tags": "image"}, timeout=30).json()
    assert [c["name"] for c in r["components"]] == ["lib-jpeg", "tool-convert"]
    r = requests.get(f"{registry.url}/api/v1/search", params={"tags": "image,tool", "limit": "1"}, timeout=30).json()
    assert [c["name"] for c in r["components"]] == ["tool-convert"] and r["total"] == 1
    # ckpm's own client searches the registry's sparse files
    proc = subprocess.run([sys.executable, "-m", "ckpm", "--index", registry.url, "search", "--tags", "image",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert {c["name"] for c in json.loads(proc.stdout)["data"]} == {"lib-jpeg", "tool-convert"}


# -- concurrency -------------------------------------------------------------------------------


def test_concurrent_publishes_both_land(registry: RunningRegistry, git_repo_factory: Any) -> None:
    names = [f"lib-c{i}" for i in range(6)]
    lines = [line_from_repo(tagged_component(git_repo_factory, n, ["1.0.0"]), "1.0.0") for n in names]
    users = ["alice", "bob", "carol"]
    before = registry.history()
    start = threading.Barrier(len(lines))
    results: dict[str, int] = {}

    def go(i: int) -> None:
        start.wait()
        results[names[i]] = registry.publish(lines[i], users[i % 3]).status_code

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(lines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: 201 for n in names}
    history = registry.history()
    assert history[len(names):] == before
    messages = sorted(registry.store._repo[c].message.strip() for c in history[:len(names)])
    assert messages == sorted(f"Publish {n} 1.0.0" for n in names)
    summary = requests.get(f"{registry.url}/summary.jsonl", timeout=30).text
    assert sorted(json.loads(x)["name"] for x in summary.splitlines()) == names


def test_two_service_processes_share_one_index(tmp_path: Path, git_index_factory: Any, git_repo_factory: Any) -> None:
    """Two `ckpm-registry serve` processes on one bare repository: every publish lands, the
    owners file and the export stay whole, and each process serves what the other published."""
    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    users = make_users(tokens, "alice")
    procs = [serve_subprocess(str(gi.git.path), tokens, "--refresh", "0") for _ in range(2)]
    try:
        names = [f"lib-p{i}" for i in range(8)]
        lines = [line_from_repo(tagged_component(git_repo_factory, n, ["1.0.0"]), "1.0.0") for n in names]
        start = threading.Barrier(len(lines))
        codes: dict[str, int] = {}

        def go(i: int) -> None:
            url = procs[i % 2][1]
            start.wait()
            codes[names[i]] = requests.put(f"{url}/api/v1/publish", json={"line": lines[i]}, timeout=60,
                                           headers={"Authorization": f"Bearer {users['alice']}"}).status_code

        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(lines))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == {n: 201 for n in names}
        repo = pygit2.Repository(str(gi.git.path))
        log = [c.message.strip() for c in repo.walk(repo.head.target)]
        assert sorted(log[:len(names)]) == sorted(f"Publish {n} 1.0.0" for n in names)
        for _, url in procs:
            for n in names:
                assert requests.get(f"{url}/api/v1/components/{n}/owners", timeout=30).json() == {"owners": ["alice"]}
            summary = requests.get(f"{url}/summary.jsonl", timeout=30).text
            assert sorted(json.loads(x)["name"] for x in summary.splitlines()) == names
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=30)


# -- yanking and resolution --------------------------------------------------------------------


def _ckpm(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CKPM_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _locked_version(project: Path, name: str) -> str:
    from ckpm.model.lockfile import read_lock

    lock = read_lock(project / "ckpm.lock")
    assert lock is not None
    (p,) = lock.find(name)
    return str(p.version)


def test_yanked_versions_leave_new_resolutions_but_stay_in_existing_locks(
        registry: RunningRegistry, git_repo_factory: Any, tmp_path: Path) -> None:
    files = {"ckpm.toml": "", "share/hello.txt": "hello\n"}
    repo = git_repo_factory("lib-a", {f"v{v}": {**files, "share/version.txt": v + "\n"} for v in ("1.0.0", "1.1.0")})
    copy = [{"steps": [{"kind": "copy", "from": "share", "to": "share/lib-a"}]}]
    for v in ("1.0.0", "1.1.0"):
        assert registry.publish(line_from_repo(repo, v) | {"install": copy}).status_code == 201

    old = tmp_path / "old-project"
    old.mkdir()
    (old / "ckpm.toml").write_text('[project]\nname = "old"\n\n[dependencies]\nlib-a = ">=1"\n')
    cache = tmp_path / "cache"
    r = _ckpm("--index", registry.url, "lock", cwd=old, cache=cache)
    assert r.returncode == 0, r.stderr
    assert _locked_version(old, "lib-a") == "1.1.0"

    assert registry.yank("lib-a", "1.1.0").json() == {"name": "lib-a", "version": "1.1.0", "yanked": True}
    served = [json.loads(x) for x in requests.get(f"{registry.url}/li/b-/lib-a", timeout=30).text.splitlines()]
    assert [(x["version"], x["yanked"]) for x in served] == [("1.0.0", False), ("1.1.0", True)]

    # a new resolution skips the yanked version
    new = tmp_path / "new-project"
    new.mkdir()
    shutil.copy(old / "ckpm.toml", new / "ckpm.toml")
    r = _ckpm("--index", registry.url, "lock", cwd=new, cache=cache)
    assert r.returncode == 0, r.stderr
    assert _locked_version(new, "lib-a") == "1.0.0"
    # the existing lock still holds and still installs the yanked version
    r = _ckpm("--index", registry.url, "lock", "--locked", cwd=old, cache=cache)
    assert r.returncode == 0, r.stderr
    r = _ckpm("--index", registry.url, "sync", "--locked", "--json", cwd=old, cache=cache)
    assert r.returncode == 0, r.stderr
    (pkg,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "lib-a"]
    assert (Path(pkg["path"]) / "share" / "lib-a" / "version.txt").read_text() == "1.1.0\n"

    # unyank: new resolutions may take it again
    assert registry.yank("lib-a", "1.1.0", undo=True).json() == {"name": "lib-a", "version": "1.1.0", "yanked": False}
    r = _ckpm("--index", registry.url, "lock", "--upgrade", cwd=new, cache=cache)
    assert r.returncode == 0, r.stderr
    assert _locked_version(new, "lib-a") == "1.1.0"


def test_the_export_is_the_git_tree_and_owners_can_be_rebuilt_from_history(
        registry: RunningRegistry, git_repo_factory: Any, tmp_path: Path) -> None:
    repo = tagged_component(git_repo_factory, "lib-a", ["1.0.0", "1.1.0"])
    other = tagged_component(git_repo_factory, "zz", ["0.1.0"])
    assert registry.publish(line_from_repo(repo, "1.0.0")).status_code == 201
    assert registry.publish(line_from_repo(other, "0.1.0"), "bob").status_code == 201
    assert registry.publish(line_from_repo(repo, "1.1.0")).status_code == 201
    assert registry.yank("lib-a", "1.0.0").status_code == 200
    git = pygit2.Repository(str(registry.store.gitdir))
    tree = git[git.head.target].peel(pygit2.Commit).tree

    def blobs(t: pygit2.Tree, prefix: str = "") -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for obj in t:
            if obj.type_str == "tree":
                out.update(blobs(git[obj.id], f"{prefix}{obj.name}/"))  # type: ignore[arg-type]
            else:
                out[f"{prefix}{obj.name}"] = bytes(git[obj.id].data)  # type: ignore[attr-defined]
        return out

    in_git = blobs(tree)
    exported = {p.relative_to(registry.store.export).as_posix(): p.read_bytes()
                for p in registry.store.export.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert set(exported) == set(in_git) == {"config.json", "summary.jsonl", "li/b-/lib-a", "2/zz"}
    for rel, data in exported.items():
        if rel != "config.json":
            assert data == in_git[rel], rel
    # a second export from scratch gives the same files (the incremental one missed nothing)
    fresh = tmp_path / "fresh-export"
    from ckpm_registry.store import IndexStore

    again = IndexStore(registry.store.gitdir, state=tmp_path / "state2", export=fresh, public_url=registry.url)
    with again.writing():
        again.sync_export()
    assert {p.relative_to(fresh).as_posix(): p.read_bytes() for p in fresh.rglob("*")
            if p.is_file() and not p.name.startswith(".")} == exported
    # the owners file is lost: `owners rebuild` reads the first publisher of each name from git
    registry.store.owners.path.unlink()
    proc = subprocess.run([sys.executable, "-m", "ckpm_registry.cli", "owners", "rebuild",
                           "--index", str(registry.store.gitdir)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert registry.store.owners.all() == {"lib-a": ["alice"], "zz": ["bob"]}


def test_outside_commits_reach_the_export_without_a_read(tmp_path: Path, git_index_factory: Any,
                                                         git_repo_factory: Any) -> None:
    """A static server in front serves the export folder; the service keeps it current by itself."""
    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=make_users(tokens, "alice"),
                          refresh=0.1).start()
    try:
        repo = tagged_component(git_repo_factory, "lib-pushed", ["1.0.0"])
        change = publish_line(str(gi.git.path), line_from_repo(repo, "1.0.0"))
        target = reg.store.export / "li" / "b-" / "lib-pushed"
        marker = reg.store.export / ".ckpm-export.json"
        deadline = time.monotonic() + 30
        while not (target.is_file() and json.loads(marker.read_text())["commit"] == change.commit):
            assert time.monotonic() < deadline, "the export never caught up"
            time.sleep(0.05)
        assert json.loads(target.read_text())["version"] == "1.0.0"
    finally:
        reg.stop()


def test_a_large_summary_goes_gzip_compressed(tmp_path: Path, git_index_factory: Any) -> None:
    from ckpm.index.http import HttpIndex
    from ckpm.testing import entry

    gi = git_index_factory({f"lib-n{i:04d}": [entry(f"lib-n{i:04d}", "1.0.0", tags=["lib", f"group-{i % 7}"],
                                                    description="a component " + "x" * 200)] for i in range(400)})
    tokens = tmp_path / "tokens.toml"
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=make_users(tokens, "alice")).start()
    try:
        plain = requests.get(f"{reg.url}/summary.jsonl", headers={"Accept-Encoding": "identity"}, timeout=30)
        assert plain.status_code == 200 and "content-encoding" not in plain.headers and len(plain.content) > 64 << 10
        packed = requests.get(f"{reg.url}/summary.jsonl", headers={"Accept-Encoding": "gzip"}, timeout=30)
        assert packed.headers["content-encoding"] == "gzip" and packed.content == plain.content
        assert int(packed.headers["content-length"]) < len(plain.content) // 4
        assert packed.headers["vary"] == "Accept-Encoding" and packed.headers["etag"] != plain.headers["etag"]
        for r in (plain, packed):
            enc = r.headers.get("content-encoding", "identity")
            again = requests.get(f"{reg.url}/summary.jsonl", timeout=30,
                                 headers={"Accept-Encoding": enc, "If-None-Match": r.headers["etag"]})
            assert again.status_code == 304
        # small files are sent as they are
        r = requests.get(f"{reg.url}/li/b-/lib-n0001", headers={"Accept-Encoding": "gzip"}, timeout=30)
        assert "content-encoding" not in r.headers
        # ckpm's HTTP client takes the compressed summary
        idx = HttpIndex(reg.url, cache_dir=tmp_path / "cache")
        assert len([s for s in idx.summaries() if "group-3" in s.tags]) == len(range(3, 400, 7))
    finally:
        reg.stop()


def test_every_error_body_is_ckpm_error_to_dict(registry: RunningRegistry) -> None:
    """The API's own refusals and the framework's (404, 405, validation) answer with the shape of
    ``CkpmError.to_dict()``, the ``error`` of ``ckpm --json``: code, error, hint, details."""
    from ckpm.errors import CkpmError

    answers = [
        requests.put(f"{registry.url}/api/v1/publish", json={"line": {}}, timeout=30),  # 401: no token
        requests.get(f"{registry.url}/api/v1/components/lib-nope/owners", timeout=30),  # 404 from the service
        requests.get(f"{registry.url}/api/v1/nothing-here", timeout=30),  # 404 from routing
        requests.post(f"{registry.url}/api/v1/me", timeout=30),  # 405
        requests.put(f"{registry.url}/api/v1/publish", data=b"not json", headers=registry.headers("alice"),
                     timeout=30),  # 400
    ]
    shape = set(CkpmError("x").to_dict())
    for r in answers:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        err = r.json()["error"]
        assert set(err) == shape, err
        assert isinstance(err["code"], str) and err["code"] and isinstance(err["error"], str) and err["error"]
        assert err["hint"] is None and err["details"] == []
    assert [r.status_code for r in answers] == [401, 404, 404, 405, 400]


def test_a_ref_lock_left_by_a_killed_service_does_not_block_the_next_publish(tmp_path: Path, git_index_factory: Any,
                                                                           git_repo_factory: Any) -> None:
    """A service SIGKILLed while libgit2 moved the branch leaves ``refs/heads/main.lock``; the next
    service, which owns the repository, removes it under the writer's lock before it writes."""
    gi = git_index_factory({}, name="lab")
    gitdir = Path(gi.git.path)
    (gitdir / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    stale = gitdir / "refs" / "heads" / "main.lock"
    stale.write_text("0" * 40 + "\n")
    tokens = tmp_path / "tokens.toml"
    users = make_users(tokens, "alice")
    reg = RunningRegistry(index=str(gitdir), tokens=tokens, tokens_of=users, refresh=0.0).start()
    try:
        assert not stale.exists()
        line = line_from_repo(tagged_component(git_repo_factory, "lib-a", ["1.0.0"]), "1.0.0")
        r = requests.put(f"{reg.url}/api/v1/publish", json={"line": line}, timeout=30,
                         headers={"Authorization": f"Bearer {users['alice']}"})
        assert r.status_code == 201, r.text
    finally:
        reg.stop()
