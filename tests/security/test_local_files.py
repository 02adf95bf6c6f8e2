"""Issue 24, finding 1: index data never makes ckpm read the user's local files.

The reproduction: an index line whose source is ``file:///<tmp>/secret`` (a 0600 file) with a
``copy`` recipe; ``ckpm fetch`` copied it into the download cache (0444) and ``ckpm sync``
into the store (0644). Now a ``file://`` URL or a path in index data is used only when the
index is a local folder and the file lies inside it (on the realpath); anything else is refused
before it is opened, naming the index, the component and the field. The user's own
``[mirrors]`` and ``--mirror`` may name any file. Files keep the umask's modes, less the read
bits a private source lacks.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from ckpm.index.writer import init_index, reindex, write_component

SECRET = b"TOPSECRET-d41d8cd98f00b204e9800998ecf8427e\n"
COPY = {"targets": ["*"], "steps": [{"kind": "copy", "from": ".", "to": "share/leak"}]}


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache"), "CKPM_STORE": str(tmp_path / "store"),
            "CKPM_CONFIG": str(tmp_path / "no-config.toml")}


def ckpm(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _project(tmp_path: Path, source: dict[str, Any], *, name: str = "proj", extra: str = "",
             install: list[dict[str, Any]] | None = None) -> Path:
    idx = tmp_path / f"index-{name}"
    init_index(idx, "lab")
    write_component(idx, [{"name": "data-leak", "version": "1.0", "kind": "dataset", "tags": ["data"],
                           "targets": ["*"], "deps": [], "source": source,
                           "install": install if install is not None else [COPY]}])
    reindex(idx)
    proj = tmp_path / name
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "{name}"\n\n[dependencies]\ndata-leak = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{idx}"\n{extra}')
    return proj


def _leaked(tmp_path: Path, needle: bytes = SECRET) -> list[Path]:
    """Every file under the cache and the store that holds the secret."""
    out = []
    for top in (tmp_path / "cache", tmp_path / "store"):
        for p in top.rglob("*") if top.exists() else ():
            if p.is_file() and not p.is_symlink():
                try:
                    if needle in p.read_bytes():
                        out.append(p)
                except OSError:
                    pass
    return out


def _locked_sources(proj: Path) -> list[dict[str, Any]]:
    from ckpm.model.lockfile import read_lock

    lock = read_lock(proj / "ckpm.lock")
    assert lock is not None
    (p,) = lock.find("data-leak")
    return list(p.sources)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    p = tmp_path / "home" / ".ssh" / "id_rsa"
    p.parent.mkdir(parents=True)
    p.write_bytes(SECRET)
    p.chmod(0o600)
    return p


def test_the_reported_reproduction_is_refused_by_fetch_and_sync(tmp_path: Path, secret: Path) -> None:
    sha = hashlib.sha256(SECRET).hexdigest()
    proj = _project(tmp_path, {"urls": [secret.as_uri()], "sha256": sha})
    env = _env(tmp_path)
    for cmd in ("fetch", "sync"):
        r = ckpm(cmd, cwd=proj, env=env)
        assert r.returncode == 1, (cmd, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        err = r.stderr
        assert "error: index lab: data-leak 1.0: source.urls[0] names the local file" in err, err
        assert "outside the index folder" in err and "hint:" in err
    assert _leaked(tmp_path) == []
    assert _locked_sources(proj) == [{"urls": [secret.as_uri()], "sha256": sha}]  # no size learnt: nothing read


def test_proc_self_environ_is_refused(tmp_path: Path) -> None:
    marker = "CKPM_TEST_SECRET_4f1c"
    proj = _project(tmp_path, {"urls": ["file:///proc/self/environ"]})
    env = {**_env(tmp_path), marker: "hunter2-value"}
    r = ckpm("fetch", cwd=proj, env=env)
    assert r.returncode == 1 and "source.urls[0] names the local file 'file:///proc/self/environ'" in r.stderr
    assert _leaked(tmp_path, b"hunter2-value") == []
    assert _locked_sources(proj) == [{"urls": ["file:///proc/self/environ"]}]  # no sha256 or size learnt


def _variants(tmp_path: Path, secret: Path) -> list[tuple[str, dict[str, Any], list[dict[str, Any]] | None]]:
    """Ways an index line may try to name a file outside its folder."""
    idx = tmp_path / "index-v"
    rel = os.path.relpath(secret, idx)
    encoded = secret.as_uri().replace("id_rsa", "%69d_rsa")
    out: list[tuple[str, dict[str, Any], list[dict[str, Any]] | None]] = [
        ("file URL", {"urls": [secret.as_uri()]}, None),
        ("upper-case scheme", {"urls": ["FILE://" + secret.as_uri()[7:]]}, None),
        ("localhost host", {"urls": ["file://localhost" + str(secret)]}, None),
        ("percent-encoded", {"urls": [encoded]}, None),
        ("absolute path", {"urls": [str(secret)]}, None),
        ("relative path climbing out", {"urls": [rel]}, None),
        ("dot-dot inside a file URL", {"urls": [f"file://{idx}/../{secret.relative_to(tmp_path)}"]}, None),
        ("home tilde", {"urls": ["~/.ssh/id_rsa"]}, None),
        ("proc environ", {"urls": ["file:///proc/self/environ"]}, None),
        ("etc passwd", {"urls": ["file:///etc/passwd"]}, None),
        ("second URL after a harmless one", {"urls": ["https://upstream.invalid/x.tgz", secret.as_uri()]}, None),
        ("in a recipe's own sources", {"urls": ["https://upstream.invalid/x.tgz"]},
         [{**COPY, "sources": [{"urls": [secret.as_uri()]}]}]),
    ]
    return out


def test_every_variant_is_refused_before_it_is_opened(tmp_path: Path, secret: Path) -> None:
    """The API (as the CLI calls it) refuses each variant; nothing holds the secret afterwards."""
    from ckpm import api
    from ckpm.errors import CkpmError
    from ckpm.fetch.local import LocalFileRefused
    from ckpm.settings import Settings
    from ckpm.workspace import Workspace

    variants = _variants(tmp_path, secret)
    escaped = []
    for n, (label, source, install) in enumerate(variants):
        proj = _project(tmp_path, source, name=f"p{n}", install=install)
        ws = Workspace(proj, Settings(cache_dir=tmp_path / "cache", store_dir=tmp_path / "store",
                                      config_path=tmp_path / "no-config.toml"))
        try:
            api.fetch(ws)
            escaped.append(label)
        except LocalFileRefused as e:
            assert "index lab: data-leak 1.0:" in e.message and "urls[" in e.message, e.message
            if install is not None:
                assert "install[0].sources[0].urls[0]" in e.message
            if label == "second URL after a harmless one":
                assert "source.urls[1]" in e.message
        except CkpmError as e:  # any other refusal must not have read the file either
            escaped.append(f"{label}: {e.message}")
    assert escaped == [], escaped
    assert _leaked(tmp_path) == []
    print(f"local-file variants tried: {len(variants)}, escaped: {len(escaped)}")


def test_a_symlink_inside_the_index_folder_is_checked_on_its_realpath(tmp_path: Path, secret: Path) -> None:
    proj = _project(tmp_path, {"urls": ["files/innocent.tar"]}, name="sym")
    files = tmp_path / "index-sym" / "files"
    files.mkdir()
    (files / "innocent.tar").symlink_to(secret)
    r = ckpm("fetch", cwd=proj, env=_env(tmp_path))
    assert r.returncode == 1 and "outside the index folder" in r.stderr, r.stderr
    assert _leaked(tmp_path) == []


def test_a_file_inside_a_folder_index_is_used(tmp_path: Path) -> None:
    """CK imports keep files beside the index (``ck-files/``): a local folder index may name them,
    by file:// URL or by a path relative to the index folder."""
    data = b"words words words\n"
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("words/words.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    env = _env(tmp_path)
    for name, url_of in (("by-url", lambda p: p.as_uri()), ("by-path", lambda p: "ck-files/words.tar")):
        idx = tmp_path / f"index-{name}"
        (idx / "ck-files").mkdir(parents=True)
        f = idx / "ck-files" / "words.tar"
        f.write_bytes(tar.getvalue())
        proj = _project(tmp_path, {"urls": [url_of(f)]}, name=name)
        # _project made the index afresh: put the file back after it
        (idx / "ck-files").mkdir(parents=True, exist_ok=True)
        f.write_bytes(tar.getvalue())
        r = ckpm("sync", "--json", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        (pkg,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "data-leak"]
        assert (Path(pkg["path"]) / "share" / "leak" / "words.txt").read_bytes() == data


def test_the_users_own_mirrors_may_name_any_folder(tmp_path: Path, secret: Path) -> None:
    """``[mirrors]`` and ``--mirror`` are the user's: a folder of theirs serves an http URL."""
    payload = b"a file the user vendored\n"
    vendored = tmp_path / "vendored"
    (vendored / "upstream.invalid").mkdir(parents=True)
    (vendored / "upstream.invalid" / "blob.bin").write_bytes(payload)
    (vendored / "upstream.invalid" / "blob.bin").chmod(0o600)
    sha = hashlib.sha256(payload).hexdigest()
    source = {"urls": ["https://upstream.invalid/blob.bin"], "sha256": sha}
    env = _env(tmp_path)
    proj = _project(tmp_path, source, name="with-flag")
    r = ckpm("fetch", "--mirror", str(vendored), cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    proj2 = _project(tmp_path, source, name="with-table",
                     extra=f'\n[mirrors]\n"https://upstream.invalid/" = ["{vendored}/upstream.invalid/"]\n')
    r = ckpm("sync", cwd=proj2, env=env)
    assert r.returncode == 0, r.stderr
    # the private file stayed private: in the cache (0400 less the umask) and in the store
    cached = tmp_path / "cache" / "downloads" / "sha256" / sha[:2] / sha
    cached = cached if cached.exists() else next(p for p in (tmp_path / "cache").rglob(sha) if p.is_file())
    assert stat.S_IMODE(cached.stat().st_mode) & 0o077 == 0
    copies = [p for p in (tmp_path / "store").rglob("*") if p.is_file() and p.read_bytes() == payload]
    assert copies and all(stat.S_IMODE(p.stat().st_mode) & 0o044 == 0 for p in copies)


def test_publish_and_the_registry_refuse_file_sources(tmp_path: Path) -> None:
    from ckpm.model.source import local_file_sources

    line = {"name": "data-leak", "version": "1.0", "source": {"git": "https://example.org/x.git", "rev": "a" * 40},
            "install": [{"steps": [{"kind": "copy"}], "sources": [{"urls": ["file:///etc/passwd"]}]}]}
    assert local_file_sources(line) == ["install[0].sources[0].urls[0]: 'file:///etc/passwd'"]
    assert local_file_sources({"source": {"urls": ["/etc/shadow", "https://x/y.tgz"]}}) == [
        "source.urls[0]: '/etc/shadow'"]
    assert local_file_sources({"source": {"urls": ["https://x/y.tgz"]}}) == []


def test_the_registry_answers_422_to_a_file_source(tmp_path: Path, git_index_factory: Any,
                                                    git_repo_factory: Any) -> None:
    from registry_support import RunningRegistry, line_from_repo, make_users, tagged_component

    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=make_users(tokens, "alice"),
                          refresh=0.0).start()
    try:
        repo = tagged_component(git_repo_factory, "lib-a", ["1.0.0"])
        before = reg.history()
        for bad in ({"source": {"urls": ["file:///etc/passwd"]}},
                    {"install": [{"steps": [{"kind": "copy"}], "sources": [{"urls": ["/home/u/.ssh/id_rsa"]}]}]}):
            r = reg.publish(line_from_repo(repo, "1.0.0") | bad)
            assert r.status_code == 422 and "names a local file" in r.json()["error"]["error"], r.text
        assert reg.history() == before
        assert reg.publish(line_from_repo(repo, "1.0.0")).status_code == 201
    finally:
        reg.stop()


def test_an_archive_from_a_private_file_unpacks_private(tmp_path: Path) -> None:
    """The user's own 0600 archive, through ``--mirror``: what is unpacked from it into the store
    is not readable by others either."""
    data = b"private words\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("top/words.txt")
        info.size, info.mode = len(data), 0o644
        tf.addfile(info, io.BytesIO(data))
    vendored = tmp_path / "vendored" / "upstream.invalid"
    vendored.mkdir(parents=True)
    (vendored / "words.tar.gz").write_bytes(buf.getvalue())
    (vendored / "words.tar.gz").chmod(0o600)
    sha = hashlib.sha256(buf.getvalue()).hexdigest()
    proj = _project(tmp_path, {"urls": ["https://upstream.invalid/words.tar.gz"], "sha256": sha}, name="arch")
    r = ckpm("sync", "--mirror", str(tmp_path / "vendored"), cwd=proj, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    copies = [p for p in (tmp_path / "store").rglob("words.txt") if p.is_file()]
    assert copies and all(p.read_bytes() == data and stat.S_IMODE(p.stat().st_mode) & 0o044 == 0 for p in copies)
