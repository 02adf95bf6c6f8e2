"""`ckpm sync` as a user runs it: a real index, a real HTTP mirror on 127.0.0.1, a real C
library built with the machine's compiler into a real store, real `ckpm` processes.

The index names the library's upstream URL (``https://upstream.invalid/...``, which never
resolves); the project maps that prefix to the loopback mirror in ``[mirrors]``, as a user
maps a slow upstream to a lab mirror.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from ckpm.index.writer import init_index, reindex, write_component
from ckpm.model.lockfile import read_lock

UPSTREAM = "https://upstream.invalid/hello/"

HELLO_C = '#include "hello.h"\nconst char *hello(void) { return "hello from libhello"; }\n'
HELLO_H = "const char *hello(void);\n"
MAKEFILE = """\
CC ?= cc
AR ?= ar
PREFIX ?= /usr/local
all: libhello.a
libhello.a: hello.o
\t$(AR) rcs $@ hello.o
hello.o: hello.c hello.h
\t$(CC) -O2 -c hello.c -o hello.o
install: libhello.a
\tmkdir -p $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
\tcp libhello.a $(DESTDIR)$(PREFIX)/lib/
\tcp hello.h $(DESTDIR)$(PREFIX)/include/
"""
RECIPE = {"targets": ["linux-*"], "steps": [{"kind": "script", "run": [
    'make CC="$CC" AR="$AR"', 'make install PREFIX="$PREFIX" DESTDIR="$DESTDIR"']}]}


def _tarball(files: dict[str, str], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Mirror:
    """A loopback file server that counts requests per path; ``corrupt`` flips its bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: dict[str, int] = {}
        self.corrupt = False
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                rel = self.path.lstrip("/")
                mirror.hits[rel] = mirror.hits.get(rel, 0) + 1
                p = mirror.root / rel
                if not p.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = p.read_bytes()
                if mirror.corrupt:
                    body = bytes(b ^ 0xFF for b in body)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    root = tmp_path / "mirror"
    (root / "hello").mkdir(parents=True)
    (root / "hello" / "hello-1.0.tar.gz").write_bytes(
        _tarball({"hello.c": HELLO_C, "hello.h": HELLO_H, "Makefile": MAKEFILE}, "hello-1.0"))
    m = Mirror(root)
    try:
        yield m
    finally:
        m.close()


def _project(tmp_path: Path, mirror: Mirror, *, name: str = "proj", extra: str = "") -> Path:
    idx = tmp_path / "index"
    if not idx.exists():
        init_index(idx, "lab")
        write_component(idx, [{
            "name": "lib-hello", "version": "1.0", "kind": "lib", "tags": ["lib", "hello"], "targets": ["*"],
            "deps": [], "source": {"urls": [UPSTREAM + "hello-1.0.tar.gz"]}, "install": [RECIPE]}])
        reindex(idx)
    proj = tmp_path / name
    proj.mkdir()
    (proj / "ckpm.toml").write_text(
        f'[project]\nname = "{name}"\n\n[dependencies]\nlib-hello = ">=1"\n\n'
        f'[[index]]\nname = "lab"\nurl = "{idx}"\n\n'
        f'[mirrors]\n"{UPSTREAM}" = ["{mirror.url}hello/"]\n{extra}')
    return proj


def _env(tmp_path: Path, tag: str = "") -> dict[str, str]:
    return {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / f"cache{tag}"), "CKPM_STORE": str(tmp_path / f"store{tag}"),
            "CKPM_CONFIG": str(tmp_path / "no-config.toml")}


def ckpm(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_sync_fetches_from_the_mirror_builds_and_pins_on_first_use(tmp_path: Path, mirror: Mirror) -> None:
    proj = _project(tmp_path, mirror)
    env = _env(tmp_path)
    r = ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["data"]
    (pkg,) = [p for p in out["packages"] if p["name"] == "lib-hello"]
    assert pkg["action"] == "built"
    prefix = Path(pkg["path"])
    assert prefix.is_relative_to(tmp_path / "store")
    assert (prefix / "lib" / "libhello.a").is_file() and (prefix / "include" / "hello.h").is_file()
    # trust on first use: the lock now holds the archive's sha256, and the user was told once
    sha = hashlib.sha256((mirror.root / "hello" / "hello-1.0.tar.gz").read_bytes()).hexdigest()
    lock = read_lock(proj / "ckpm.lock")
    assert lock is not None
    (lp,) = lock.find("lib-hello")
    assert lp.sources == [{"urls": [UPSTREAM + "hello-1.0.tar.gz"], "sha256": sha,
                           "size": (mirror.root / "hello" / "hello-1.0.tar.gz").stat().st_size}]
    assert "127.0.0.1" not in (proj / "ckpm.lock").read_text()  # the lock never names the mirror
    assert any("trust on first use" in w for w in json.loads(r.stdout)["warnings"])
    # a program linked against the installed library runs
    (tmp_path / "main.c").write_text('#include <stdio.h>\n#include "hello.h"\nint main(void){puts(hello());return 0;}\n')
    subprocess.run(["cc", str(tmp_path / "main.c"), f"-I{prefix}/include", f"-L{prefix}/lib", "-lhello",
                    "-o", str(tmp_path / "main")], check=True)
    assert subprocess.run([str(tmp_path / "main")], capture_output=True, text=True).stdout == "hello from libhello\n"

    # warm: nothing fetched, nothing built
    hits = dict(mirror.hits)
    r = ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    (pkg2,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "lib-hello"]
    assert pkg2["action"] == "store" and pkg2["path"] == str(prefix)
    assert mirror.hits == hits

    # the store and env commands see it
    r = ckpm("store", "path", "lib-hello", cwd=proj, env=env)
    assert r.returncode == 0 and r.stdout.strip() == str(prefix)
    r = ckpm("env", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    variables = json.loads(r.stdout)["data"]
    assert variables["LIB_HELLO_ROOT"] == str(prefix)
    assert f"-I{prefix}/include" in variables["CPPFLAGS"] and f"{prefix}/include" in variables["CPATH"]
    assert f"-L{prefix}/lib" in variables["LDFLAGS"]
    assert Path(variables["CC"]).is_absolute() and os.access(variables["CC"], os.X_OK)  # the compiler a build uses


def test_a_changed_file_is_refused_and_every_mirror_named(tmp_path: Path, mirror: Mirror) -> None:
    proj = _project(tmp_path, mirror)
    assert ckpm("sync", cwd=proj, env=_env(tmp_path)).returncode == 0
    mirror.corrupt = True  # the mirror now serves other bytes; a fresh cache and store must notice
    r = ckpm("sync", "--locked", cwd=proj, env=_env(tmp_path, "-2"))
    assert r.returncode != 0
    assert "sha256" in r.stderr and mirror.url in r.stderr and UPSTREAM in r.stderr
    assert "Traceback" not in r.stderr
    assert not any((tmp_path / "store-2").rglob("libhello.a"))


def test_vendor_then_offline_sync_reproduces_the_same_prefixes(tmp_path: Path, mirror: Mirror) -> None:
    proj = _project(tmp_path, mirror)
    env = _env(tmp_path)
    r = ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    keys = {p["name"]: p["key"] for p in json.loads(r.stdout)["data"]["packages"]}
    r = ckpm("vendor", str(tmp_path / "vendor"), cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "vendor" / "upstream.invalid" / "hello" / "hello-1.0.tar.gz").is_file()
    mirror.close()  # nothing to reach any more
    fresh = _env(tmp_path, "-offline")
    r = ckpm("sync", "--locked", "--offline", "--mirror", str(tmp_path / "vendor"), "--json", cwd=proj, env=fresh)
    assert r.returncode == 0, r.stderr
    again = {p["name"]: p["key"] for p in json.loads(r.stdout)["data"]["packages"]}
    assert again == keys
    assert all(p["action"] == "built" for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "lib-hello")


def test_sync_locked_never_resolves(tmp_path: Path, mirror: Mirror) -> None:
    proj = _project(tmp_path, mirror)
    r = ckpm("sync", "--locked", cwd=proj, env=_env(tmp_path))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert not (proj / "ckpm.lock").exists()


@pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-gcc"), reason="no aarch64-linux-gnu-gcc (Debian gcc-aarch64-linux-gnu)")
def test_sync_cross_compiles_for_aarch64(tmp_path: Path, mirror: Mirror) -> None:
    proj = _project(tmp_path, mirror)
    r = ckpm("sync", "--target", "linux-aarch64", "--json", cwd=proj, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    (pkg,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "lib-hello"]
    assert pkg["target"] == "linux-aarch64" and pkg["action"] == "built"
    lib = Path(pkg["path"]) / "lib" / "libhello.a"
    member = subprocess.run(["ar", "p", str(lib), "hello.o"], capture_output=True, check=True).stdout
    assert member[:4] == b"\x7fELF" and int.from_bytes(member[18:20], "little") == 183  # EM_AARCH64
    lock = read_lock(proj / "ckpm.lock")
    assert lock is not None and "linux-aarch64" in lock.targets


def test_store_gc_keeps_what_a_lock_uses(tmp_path: Path, mirror: Mirror) -> None:
    env = _env(tmp_path)
    proj = _project(tmp_path, mirror)
    r = ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    (pkg,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "lib-hello"]
    assert ckpm("store", "gc", cwd=proj, env=env).returncode == 0
    assert Path(pkg["path"]).is_dir()  # the project's lock still uses it
    (proj / "ckpm.lock").unlink()
    r = ckpm("store", "gc", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    assert pkg["key"] in json.loads(r.stdout)["data"]["removed"]
    assert not Path(pkg["path"]).exists()


def test_pip_recipe_installs_into_the_project_environment(tmp_path: Path, mirror: Mirror) -> None:
    """A python package from a local wheel mirror (the user config's [pip]) lands in .ckpm/venv
    and imports there; a second sync installs nothing."""
    from test_build import make_wheel

    make_wheel(tmp_path / "wheels", "ckpyhello", "1.0")
    idx = tmp_path / "index"
    init_index(idx, "lab")
    write_component(idx, [{
        "name": "lib-pyhello", "version": "1.0", "kind": "lib", "tags": ["lib", "python"], "targets": ["*"],
        "deps": [], "install": [{"steps": [{"kind": "pip", "requirements": ["ckpyhello==1.0"]}]}]}])
    reindex(idx)
    proj = tmp_path / "py"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "py"\n\n[dependencies]\nlib-pyhello = "*"\n\n'
                                    f'[[index]]\nname = "lab"\nurl = "{idx}"\n')
    env = _env(tmp_path)
    (tmp_path / "no-config.toml").write_text(f'[pip]\nfind-links = ["{tmp_path / "wheels"}"]\nno-index = true\n')
    r = ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    (pkg,) = json.loads(r.stdout)["data"]["packages"]
    assert pkg["action"] == "venv" and "ckpyhello 1.0" in pkg["detail"]
    py = proj / ".ckpm" / "venv" / "bin" / "python"
    out = subprocess.run([str(py), "-c", "import ckpyhello; print(ckpyhello.GREETING)"], capture_output=True, text=True)
    assert out.stdout.strip() == "hello from ckpyhello 1.0", out.stderr
    r = ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"]["packages"][0]["detail"] == "already installed"
    # the first install recorded the distribution and its hash in the lock
    wheel = tmp_path / "wheels" / "ckpyhello-1.0-py3-none-any.whl"
    lock = read_lock(proj / "ckpm.lock")
    assert lock is not None
    assert lock.find("lib-pyhello")[0].pip == [{"name": "ckpyhello", "version": "1.0",
                                                "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}]
    # elsewhere, the same lock takes exactly that file: another wheel of the same version is refused
    shutil.rmtree(proj / ".ckpm")
    wheel.write_bytes(wheel.read_bytes().replace(b"hello from", b"HACKS from"))  # same size, other bytes
    r = ckpm("sync", "--locked", cwd=proj, env=env)
    assert r.returncode != 0 and "hash" in r.stderr.lower(), r.stderr


def test_reading_an_index_or_a_lock_never_runs_a_recipe(tmp_path: Path, mirror: Mirror) -> None:
    """A recipe is data until the user asks to provision: lock, lock --check, tree, show,
    search, fetch and vendor never run it (only sync does)."""
    witness = tmp_path / "ran"
    idx = tmp_path / "index"
    init_index(idx, "lab")
    evil = {"targets": ["*"], "steps": [{"kind": "script", "run": [f"touch {witness}"]}]}
    write_component(idx, [{
        "name": "lib-hello", "version": "1.0", "kind": "lib", "tags": ["lib"], "targets": ["*"], "deps": [],
        "source": {"urls": [UPSTREAM + "hello-1.0.tar.gz"]}, "install": [evil]}])
    reindex(idx)
    proj = _project(tmp_path, mirror)
    env = _env(tmp_path)
    for args in (["lock"], ["lock", "--check"], ["tree"], ["show", "lib-hello"], ["search", "hello"],
                 ["fetch"], ["vendor", str(tmp_path / "v")], ["env"], ["store", "ls"]):
        r = ckpm(*args, cwd=proj, env=env)
        assert r.returncode == 0, (args, r.stderr)
        assert not witness.exists(), args
    assert "touch" in (proj / "ckpm.lock").read_text()  # the lock carries the recipe as data
    assert ckpm("sync", cwd=proj, env=env).returncode != 0  # it installs nothing: a recipe must install files
    assert witness.exists()  # sync is the one command that runs it


def test_two_concurrent_syncs_build_once(tmp_path: Path, mirror: Mirror) -> None:
    counter = tmp_path / "builds"
    idx = tmp_path / "index"
    init_index(idx, "lab")
    recipe = {**RECIPE, "env": {"BUILD_COUNTER": str(counter)},
              "steps": [{"kind": "script", "run": ['echo built >> "$BUILD_COUNTER"', "sleep 1",
                                                   *RECIPE["steps"][0]["run"]]}]}
    write_component(idx, [{
        "name": "lib-hello", "version": "1.0", "kind": "lib", "tags": ["lib"], "targets": ["*"], "deps": [],
        "source": {"urls": [UPSTREAM + "hello-1.0.tar.gz"]}, "install": [recipe]}])
    reindex(idx)
    proj = _project(tmp_path, mirror)
    env = _env(tmp_path)
    assert ckpm("lock", cwd=proj, env=env).returncode == 0
    procs = [subprocess.Popen([sys.executable, "-m", "ckpm", "sync", "--json"], cwd=proj, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    paths = {[x for x in json.loads(o[0])["data"]["packages"] if x["name"] == "lib-hello"][0]["path"] for o in outs}
    assert len(paths) == 1
    assert counter.read_text().count("built") == 1
    actions = sorted([x for x in json.loads(o[0])["data"]["packages"] if x["name"] == "lib-hello"][0]["action"]
                     for o in outs)
    assert actions == ["built", "store"]  # the one that waited reused the prefix, and says so


FAKE_ZLIB_CONFIGURE = """#!/bin/sh
# zlib's configure takes --prefix and the compiler from CC (as the real one does)
prefix=/usr/local
for a in "$@"; do case "$a" in --prefix=*) prefix="${a#--prefix=}";; *) echo "unknown option $a"; exit 1;; esac; done
printf 'PREFIX=%s\\nCC=%s\\nAR=%s\\n' "$prefix" "${CC:-cc}" "${AR:-ar}" > config.mk
"""
FAKE_ZLIB_MAKEFILE = """include config.mk
all: libz.a
libz.a: zutil.c
\t$(CC) -c zutil.c -o zutil.o && $(AR) rcs libz.a zutil.o
install: all
\tmkdir -p $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
\tcp libz.a $(DESTDIR)$(PREFIX)/lib/ && cp zlib.h $(DESTDIR)$(PREFIX)/include/
"""


def test_the_embedded_zlib_recipe_builds_from_a_local_mirror(tmp_path: Path, mirror: Mirror) -> None:
    """The embedded index's lib-zlib, with its real upstream URLs, fetched from a local mirror
    laid out as zlib.net is (the test's tarball is a stand-in with zlib's configure interface)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text, mode in (("configure", FAKE_ZLIB_CONFIGURE, 0o755), ("Makefile", FAKE_ZLIB_MAKEFILE, 0o644),
                                 ("zutil.c", "int zlib_stand_in(void) { return 1; }\n", 0o644),
                                 ("zlib.h", "int zlib_stand_in(void);\n", 0o644)):
            info = tarfile.TarInfo(f"zlib-1.3.1/{name}")
            info.size, info.mode = len(text.encode()), mode
            tf.addfile(info, io.BytesIO(text.encode()))
    (mirror.root / "zlib.net" / "fossils").mkdir(parents=True)
    (mirror.root / "zlib.net" / "fossils" / "zlib-1.3.1.tar.gz").write_bytes(buf.getvalue())
    proj = tmp_path / "z"
    proj.mkdir()
    (proj / "ckpm.toml").write_text('[project]\nname = "z"\n\n[dependencies]\nlib-zlib = "==1.3.1"\n\n'
                                    f'[mirrors]\n"https://zlib.net/" = ["{mirror.url}zlib.net/"]\n')
    r = ckpm("sync", "--no-host", "--json", cwd=proj, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    (pkg,) = [p for p in json.loads(r.stdout)["data"]["packages"] if p["name"] == "lib-zlib"]
    assert pkg["action"] == "built"
    assert (Path(pkg["path"]) / "lib" / "libz.a").is_file() and (Path(pkg["path"]) / "include" / "zlib.h").is_file()
    assert mirror.hits == {"zlib.net/fossils/zlib-1.3.1.tar.gz": 1}


def test_a_hostile_archive_writes_nothing_outside_and_names_the_member(tmp_path: Path, mirror: Mirror) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name in ("hello-1.0/Makefile", "hello-1.0/../../../../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"bad"))
    (mirror.root / "hello" / "hello-1.0.tar.gz").write_bytes(buf.getvalue())
    proj = _project(tmp_path, mirror)
    r = ckpm("sync", cwd=proj, env=_env(tmp_path))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "escaped.txt" in r.stderr
    assert not list(tmp_path.rglob("escaped.txt")) and not Path("/tmp/escaped.txt").exists()
    assert not list((tmp_path / "store").rglob("Makefile"))


def test_a_git_component_is_built_from_its_pinned_commit(tmp_path: Path, git_repo_factory: Any) -> None:
    """A git-native component: its recipe in its own ckpm.toml, its sources the tree of the
    locked commit (exported from the cached mirror, no checkout); the key follows the commit."""
    manifest = ('[component]\nname = "libgh"\nversion = "1.0.0"\nkind = "lib"\n\n'
                '[[install]]\nsteps = [{ kind = "script", run = ["make CC=\\"$CC\\" AR=\\"$AR\\"", '
                '"make install PREFIX=\\"$PREFIX\\" DESTDIR=\\"$DESTDIR\\""] }]\n')
    files = {"ckpm.toml": manifest, "hello.c": HELLO_C, "hello.h": HELLO_H, "Makefile": MAKEFILE}
    repo = git_repo_factory("libgh", {"v1.0.0": files})
    proj = tmp_path / "g"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "g"\n\n[dependencies]\n'
                                    f'libgh = {{ git = "{repo.url}", version = ">=1" }}\n')
    env = _env(tmp_path)
    r = ckpm("sync", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    (pkg,) = json.loads(r.stdout)["data"]["packages"]
    assert pkg["action"] == "built" and (Path(pkg["path"]) / "lib" / "libhello.a").is_file()
    lock = read_lock(proj / "ckpm.lock")
    assert lock is not None
    (lp,) = lock.find("libgh")
    assert lp.sources == [{"git": repo.url, "rev": repo.tags()["v1.0.0"], "tag": "v1.0.0"}]
    r = ckpm("sync", "--locked", "--offline", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"]["packages"][0]["action"] == "store"


def test_a_git_export_keeps_links_inside_the_tree(tmp_path: Path) -> None:
    """A hostile tree: a link that climbs out is left out (with a warning), one inside is kept."""
    import pygit2

    from ckpm.index.gitsource import GitComponentSource

    repo = pygit2.init_repository(str(tmp_path / "evil.git"), bare=True)
    tb = repo.TreeBuilder()
    tb.insert("a.txt", repo.create_blob(b"data"), pygit2.GIT_FILEMODE_BLOB)
    tb.insert("ok", repo.create_blob(b"a.txt"), pygit2.GIT_FILEMODE_LINK)
    tb.insert("up", repo.create_blob(b"../../outside"), pygit2.GIT_FILEMODE_LINK)
    tb.insert("abs", repo.create_blob(b"/etc/passwd"), pygit2.GIT_FILEMODE_LINK)
    sub = repo.TreeBuilder()
    sub.insert("deep", repo.create_blob(b"../../x"), pygit2.GIT_FILEMODE_LINK)
    tb.insert("d", sub.write(), pygit2.GIT_FILEMODE_TREE)
    sig = pygit2.Signature("t", "t@x.invalid", 0, 0)
    commit = repo.create_commit("refs/heads/main", sig, sig, "evil", tb.write(), [])
    src = GitComponentSource((tmp_path / "evil.git").as_uri(), cache_dir=tmp_path / "cache")
    dest = tmp_path / "out" / "tree"
    assert src.export(str(commit), dest) == 6
    assert (dest / "a.txt").read_bytes() == b"data" and os.readlink(dest / "ok") == "a.txt"
    assert not os.path.lexists(dest / "up") and not os.path.lexists(dest / "abs")
    assert not os.path.lexists(dest / "d" / "deep")
    assert sum("leads outside the tree" in w for w in src.reporter.warnings) == 3


def test_fetch_downloads_a_transitive_package_and_builds_nothing(tmp_path: Path, mirror: Mirror) -> None:
    idx = tmp_path / "index"
    init_index(idx, "lab")
    write_component(idx, [{"name": "lib-hello", "version": "1.0", "kind": "lib", "tags": ["lib"], "targets": ["*"],
                           "deps": [], "source": {"urls": [UPSTREAM + "hello-1.0.tar.gz"]}, "install": [RECIPE]}])
    write_component(idx, [{"name": "app", "version": "2.0", "kind": "program", "tags": ["program"],
                           "targets": ["*"], "deps": [{"name": "lib-hello", "req": ">=1"}]}])
    reindex(idx)
    proj = _project(tmp_path, mirror)
    text = (proj / "ckpm.toml").read_text().replace('lib-hello = ">=1"', 'app = "*"')
    (proj / "ckpm.toml").write_text(text)
    env = _env(tmp_path)
    r = ckpm("fetch", "lib-hello", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    (got,) = json.loads(r.stdout)["data"]["packages"]
    assert (got["name"], got["action"]) == ("lib-hello", "fetched")
    assert Path(got["path"]).is_file() and Path(got["path"]).is_relative_to(tmp_path)  # where it went
    assert mirror.hits == {"hello/hello-1.0.tar.gz": 1}
    r = ckpm("fetch", "lib-hello", cwd=proj, env=env)
    assert r.returncode == 0 and got["path"] in r.stdout and "download cache" in r.stderr
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("libhello.a"))
    r = ckpm("fetch", "lib-helo", cwd=proj, env=env)
    assert r.returncode != 0 and "did you mean lib-hello" in r.stderr


def test_a_program_builds_against_a_library_from_the_store(tmp_path: Path, mirror: Mirror) -> None:
    """`ckpm run` of a project whose program includes and links a library that sync built into
    the store: the prefix's include and lib folders reach the compiler (whatever the store's path)."""
    run_table = ('\n[run]\nsources = ["main.c"]\nbinary = "main"\nldflags = ["-lhello"]\n'
                 '[run.validate]\nstdout = ["hello from libhello"]\n')
    proj = _project(tmp_path, mirror, extra=run_table)
    (proj / "main.c").write_text('#include <stdio.h>\n#include "hello.h"\nint main(void){puts(hello());return 0;}\n')
    env = {**_env(tmp_path), "CKPM_STORE": str(tmp_path / "somewhere-else")}
    r = ckpm("run", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)["data"]
    cmd = " ".join(rec["stages"]["compile"]["command"])
    assert f"-I{tmp_path / 'somewhere-else'}" in cmd and "-lhello" in cmd and rec["ok"]
