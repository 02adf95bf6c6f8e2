"""``ckpm container build`` and ``file``: the repository's demo as an OCI image, built with the
real engine (podman) on a base image made locally with mmdebstrap, run with no network.

The base image is made once per machine and kept (``localhost/debian:bookworm``, reused when
present): mmdebstrap reads Debian's package mirror, the only network these tests use. The
tests that need an engine skip, with the reason, only where podman is not installed.
Podman runs with runc, the cgroupfs manager and no default ulimits (a ``containers.conf``
named by ``CONTAINERS_CONF``, written here unless the environment names one).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from ckpm import __version__, api
from ckpm.container.build import BaseHostDrift, build_image
from ckpm.container.context import write_context
from ckpm.container.engine import ContainerError, find_engine
from ckpm.container.wheels import pack_wheels
from ckpm.workspace import Settings, Workspace

ROOT = Path(__file__).resolve().parent.parent
BASE = "localhost/debian:bookworm"
# the images this run builds are its own: another copy of the suite beside it builds and removes its own
RUN = f"-{os.getpid()}"
BASE_PACKAGES = "python3,python3-venv,gcc,libc6-dev,make"
BASE_PYTHON = "3.11"  # bookworm's
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""
PODMAN = shutil.which("podman")
needs_podman = pytest.mark.skipif(PODMAN is None, reason="podman is not installed (.ci/run installs it)")


def sh(argv: list[str], timeout: float = 900, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def podman(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    assert PODMAN is not None
    return sh([PODMAN, *args], timeout=timeout)


@pytest.fixture(scope="session")
def engine_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """podman configured as these machines need (unless CONTAINERS_CONF names a file already)."""
    if PODMAN is None:
        pytest.skip("podman is not installed (.ci/run installs it)")
    mp = pytest.MonkeyPatch()
    if not os.environ.get("CONTAINERS_CONF"):
        conf = tmp_path_factory.mktemp("containers") / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        mp.setenv("CONTAINERS_CONF", str(conf))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def base_image(engine_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local base, made with mmdebstrap and imported once (kept between runs); the images
    the tests build are removed at the end."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != BASE_PYTHON:
        pytest.skip(f"the image's ckpm is this Python's ({sys.version.split()[0]}), and the base "
                    f"(Debian bookworm) has Python {BASE_PYTHON}")
    yield _make_base(tmp_path_factory)
    for tag in (f"localhost/ckpm-test-demo{RUN}:1", f"localhost/ckpm-test-demo{RUN}:2", f"localhost/ckpm-test-cxx{RUN}:1",
                f"localhost/ckpm-test-http{RUN}:1"):
        podman("rmi", "--force", tag)


def _make_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    if podman("image", "exists", BASE).returncode == 0:
        return BASE
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        pytest.fail("podman is installed but mmdebstrap is not: the base image cannot be made "
                    "(apt-get install mmdebstrap; .ci/run does)")
    tar = tmp_path_factory.mktemp("base") / "base.tar"
    made = sh([mmdebstrap, "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(tar)], timeout=1800)
    assert made.returncode == 0, made.stderr[-2000:]
    imported = podman("import", str(tar), BASE)
    assert imported.returncode == 0, imported.stderr
    tar.unlink()
    return BASE


def settings_for(tmp: Path) -> Settings:
    return Settings(cache_dir=tmp / "cache", store_dir=tmp / "store", config_path=tmp / "no-config.toml",
                    env={k: v for k, v in os.environ.items() if not k.startswith("CKPM_")})


def demo_project(dest: Path) -> Path:
    """The repository's demo (root ckpm.toml, programs/, vendor/) as a git project of its own,
    locked, with one file that git does not track."""
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "ckpm.toml", dest / "ckpm.toml")
    shutil.copytree(ROOT / "programs", dest / "programs")
    shutil.copytree(ROOT / "vendor", dest / "vendor")
    (dest / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "tune-corners.toml", dest / "examples" / "tune-corners.toml")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "demo"]):
        assert sh([*git, *argv], cwd=dest).returncode == 0
    (dest / "untracked-notes.txt").write_text("not in git\n")
    return dest


@pytest.fixture(scope="module")
def built_demo(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("demo")
    project = demo_project(tmp / "demo")
    ws = Workspace(project, settings_for(tmp))
    api.lock(ws)
    # a record made here travels in the image (the artifact bundle carries .ckpm/experiments)
    recorded = sh([sys.executable, "-m", "ckpm", "-C", str(project), "run", "--record", "on-host"],
                  env={**os.environ, "CKPM_CACHE_DIR": str(tmp / "cache"), "CKPM_STORE": str(tmp / "store"),
                       "CKPM_CONFIG": str(tmp / "no-config.toml")})
    assert recorded.returncode == 0, recorded.stderr
    res = build_image(ws, base=base_image, tag=f"localhost/ckpm-test-demo{RUN}:1")
    return {"ws": ws, "project": project, "result": res, "tmp": tmp}


# -- the image runs the demo, offline --------------------------------------------------------

@needs_podman
def test_demo_image_runs_the_project_offline(built_demo: dict[str, Any]) -> None:
    res = built_demo["result"]
    assert res.engine == "podman" and res.tag == f"localhost/ckpm-test-demo{RUN}:1"
    labels = json.loads(podman("image", "inspect", res.tag, "--format", "{{json .Labels}}").stdout)
    lock_sha = hashlib.sha256((built_demo["project"] / "ckpm.lock").read_bytes()).hexdigest()
    assert labels["io.ckpm.lock.sha256"] == lock_sha
    assert labels["io.ckpm.version"] == __version__
    assert labels["org.opencontainers.image.title"] == "ckpm-demo"
    assert "io.ckpm.host-drift" not in labels  # the base has the lock's host compiler
    assert res.check.errors == []
    config = json.loads(podman("image", "inspect", res.tag, "--format", "{{json .Config}}").stdout)
    assert config["Entrypoint"] == ["ckpm"] and config["Cmd"] == ["run"]

    ran = podman("run", "--rm", "--network", "none", res.tag)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "validation passed" in ran.stdout + ran.stderr
    assert "compiled with compiler-gcc" in ran.stdout + ran.stderr

    version = podman("run", "--rm", "--network", "none", res.tag, "--version")
    assert version.returncode == 0 and __version__ in version.stdout

    # the project's tracked files are in the image; what git does not track is not
    ls = podman("run", "--rm", "--network", "none", "--entrypoint", "ls", res.tag, "-a", "/project")
    assert "ckpm.toml" in ls.stdout and "programs" in ls.stdout and "untracked-notes.txt" not in ls.stdout
    ctx = res.context.path
    assert (ctx / "project" / "programs" / "image-corners" / "corners.c").is_file()
    assert not (ctx / "project" / "untracked-notes.txt").exists()
    assert [p.name for p in (ctx / "project" / ".ckpm").iterdir()] == ["experiments"]  # records only
    assert (ctx / "lock" / "ckpm.lock").read_bytes() == (built_demo["project"] / "ckpm.lock").read_bytes()
    assert "[run]" not in (ctx / "lock" / "ckpm.toml").read_text()  # the store step ignores how the program runs
    assert any(p.name == "hello-images-1.1.0.tar.gz" for p in (ctx / "sources").rglob("*"))


@needs_podman
def test_demo_image_compiles_with_other_flags_inside(built_demo: dict[str, Any]) -> None:
    tag = built_demo["result"].tag
    ran = podman("run", "--rm", "--network", "none", tag, "run", "--flags", "speed", "--json")
    assert ran.returncode == 0, ran.stderr[-2000:]
    record = json.loads(ran.stdout)["data"]
    assert record["ok"] is True
    compiled = record["stages"]["compile"]
    assert "-O3" in compiled["cflags"] and compiled["reused"] is False
    assert compiled["compiler"]["path"] == "/usr/bin/gcc"  # the base's compiler, as the lock pins it
    assert record["validation"] and all(v["ok"] for v in record["validation"])
    assert record["metrics"]["images"]["values"] == [8] and record["metrics"]["corners"]["values"] == [205]


@needs_podman
def test_demo_image_records_and_replays_inside(built_demo: dict[str, Any]) -> None:
    tag = built_demo["result"].tag
    script = "ckpm run --record base >/dev/null 2>&1 && ckpm replay base --json"
    ran = podman("run", "--rm", "--network", "none", "--entrypoint", "sh", tag, "-c", script)
    assert ran.returncode in (0, 6), ran.stderr[-2000:]  # 6: a replay may call a noisy time a regression
    out = json.loads(ran.stdout)["data"]
    assert out["experiment"] == "base" and out["record"]["ok"] is True
    assert not [d for d in out["differences"] if "flags" in json.dumps(d)]  # the same configuration

    # the record made on the host, replayed in the image
    ran = podman("run", "--rm", "--network", "none", tag, "replay", "on-host", "--json")
    assert ran.returncode in (0, 6), ran.stderr[-2000:]
    out = json.loads(ran.stdout)["data"]
    assert out["experiment"] == "on-host" and out["record"]["ok"] is True


@needs_podman
def test_demo_image_tunes_inside(built_demo: dict[str, Any]) -> None:
    tag = built_demo["result"].tag
    ran = podman("run", "--rm", "--network", "none", tag, "tune", "--space", "examples/tune-corners.toml",
                 "--budget", "2", "--objectives", "time,size", "--json")
    assert ran.returncode == 0, ran.stderr[-2000:]
    out = json.loads(ran.stdout)["data"]
    assert out["evaluated"] == 2 and out["failed"] == 0 and all(r["ok"] for r in out["records"])
    assert out["frontier"]


@needs_podman
def test_rebuild_after_one_file_change_reuses_base_ckpm_and_store(built_demo: dict[str, Any]) -> None:
    ws, first = built_demo["ws"], built_demo["result"]
    def layers(tag: str) -> list[str]:
        return list(json.loads(podman("image", "inspect", tag, "--format", "{{json .RootFS.Layers}}").stdout))

    before = layers(first.tag)
    readme = built_demo["project"] / "programs" / "image-corners" / "README.md"
    readme.write_text(readme.read_text() + "\nOne more line.\n")
    second = build_image(ws, base=first.context.base, tag=f"localhost/ckpm-test-demo{RUN}:2")
    after = layers(second.tag)
    log = second.log.read_text()
    steps = log.split("STEP ")[1:]
    copy_project = next(i for i, s in enumerate(steps) if s.split(":", 1)[1].strip().startswith("COPY project/"))
    for s in steps[1:copy_project]:  # every step after FROM and before the project's files
        assert "Using cache" in s, s
    assert "Using cache" not in steps[copy_project]
    # base, wheels, ckpm, lock, index caches, sources, store: the same layers; only the project's differs
    assert len(after) == len(before) == 8
    assert after[:-1] == before[:-1] and after[-1] != before[-1]
    assert second.cached_steps >= 7
    ran = podman("run", "--rm", "--network", "none", "--entrypoint", "cat", second.tag,
                 "/project/programs/image-corners/README.md")
    assert ran.stdout.endswith("One more line.\n")


# -- host pins come from the base ----------------------------------------------------------

def cxx_project(tmp: Path) -> Workspace:
    """A project whose lock pins the host's C++ compiler (g++), which the base does not have."""
    if shutil.which("g++") is None:
        pytest.skip("this host has no g++ to pin")
    project = tmp / "cxx"
    project.mkdir()
    (project / "ckpm.toml").write_text('[project]\nname = "cxx-demo"\nversion = "0.1.0"\n\n'
                                       '[dependencies]\ncompiler-gxx = ">=9"\n')
    ws = Workspace(project, settings_for(tmp))
    api.lock(ws)
    return ws


@needs_podman
def test_base_without_the_locked_host_compiler_is_refused(base_image: str, tmp_path: Path) -> None:
    ws = cxx_project(tmp_path)
    podman("rmi", "--force", f"localhost/ckpm-test-cxx{RUN}:1")  # left by an interrupted run
    with pytest.raises(BaseHostDrift) as e:
        build_image(ws, base=base_image, tag=f"localhost/ckpm-test-cxx{RUN}:1")
    (row,) = e.value.check.errors
    assert row.name == "compiler-gxx" and row.found == "missing" and "/usr/bin/g++" in row.expected
    assert podman("image", "exists", f"localhost/ckpm-test-cxx{RUN}:1").returncode != 0

    # the command line: the drift table of `lock --check`, exit 4, no traceback
    env = {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache"), "CKPM_STORE": str(tmp_path / "store"),
           "CKPM_CONFIG": str(tmp_path / "no-config.toml")}
    cli = sh([sys.executable, "-m", "ckpm", "-C", str(ws.root), "container", "build", "--base", base_image,
              "--tag", f"localhost/ckpm-test-cxx{RUN}:1"], env=env)
    assert cli.returncode == 4, cli.stderr
    assert "Traceback" not in cli.stderr
    table = cli.stdout
    assert "package" in table and "expected" in table and "found" in table and "what to do" in table
    assert "compiler-gxx" in table and "missing" in table
    assert "--allow-host-drift" in cli.stderr

    # with --allow-host-drift: built, and the difference is a label
    cli = sh([sys.executable, "-m", "ckpm", "-C", str(ws.root), "container", "build", "--base", base_image,
              "--tag", f"localhost/ckpm-test-cxx{RUN}:1", "--allow-host-drift", "--json"], env=env)
    assert cli.returncode == 0, cli.stderr
    out = json.loads(cli.stdout)["data"]
    assert out["host_check"]["host_drift"][0]["name"] == "compiler-gxx"
    labels = json.loads(podman("image", "inspect", f"localhost/ckpm-test-cxx{RUN}:1", "--format", "{{json .Labels}}").stdout)
    assert json.loads(labels["io.ckpm.host-drift"]) == [["compiler-gxx", row.expected, "missing"]]


@needs_podman
def test_project_on_an_http_index_is_checked_and_synced_offline_in_the_image(
        base_image: str, tmp_path: Path, index_factory: Any, http_index_server: Any) -> None:
    """The lock's host pin names a rule of an HTTP index: the image carries the index's cached
    copy, so the check in the base and `lock --check` inside run with no network."""
    lines = [json.loads(x) for x in (ROOT / "index" / "co" / "mp" / "compiler-gcc").read_text().splitlines() if x]
    http_index_server.serve(index_factory({"compiler-gcc": lines}, name="lab"))
    project = tmp_path / "onhttp"
    project.mkdir()
    (project / "ckpm.toml").write_text('[project]\nname = "on-http"\nversion = "1.0"\n\n'
                                       '[dependencies]\ncompiler-gcc = ">=9"\n\n'
                                       f'[[index]]\nname = "lab"\nurl = "{http_index_server.url}"\n')
    ws = Workspace(project, settings_for(tmp_path))
    api.lock(ws)
    res = build_image(ws, base=base_image, tag=f"localhost/ckpm-test-http{RUN}:1")
    try:
        assert res.check.errors == [], res.check.drift
        assert any(p.name.startswith("index-http") for p in (res.context.path / "cache").iterdir())
        ran = podman("run", "--rm", "--network", "none", res.tag, "lock", "--check")
        assert ran.returncode == 0, ran.stderr
        assert "ckpm.lock is up to date" in ran.stdout
    finally:
        podman("rmi", "--force", res.tag)


# -- errors --------------------------------------------------------------------------------

@needs_podman
def test_engine_errors_are_one_line(engine_env: None, tmp_path: Path) -> None:
    ws = cxx_project(tmp_path)
    env = {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache"), "CKPM_STORE": str(tmp_path / "store"),
           "CKPM_CONFIG": str(tmp_path / "no-config.toml")}
    cli = sh([sys.executable, "-m", "ckpm", "-C", str(ws.root), "container", "build", "--base",
              "localhost/no-such-base:none", "--engine", "podman"], env=env)
    assert cli.returncode == 1
    assert "Traceback" not in cli.stderr
    errors = [ln for ln in cli.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "podman run of python3 in localhost/no-such-base:none failed" in errors[0]
    assert "mmdebstrap" in cli.stderr  # the hint: how to make a base with no registry


def test_missing_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="neither podman nor docker"):
        find_engine(None, env={"PATH": str(tmp_path)})
    with pytest.raises(ContainerError, match="docker is not installed"):
        find_engine("docker", env={"PATH": str(tmp_path)})
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'step 1' ; echo 'Cannot connect to the Docker daemon' >&2; exit 1\n")
    fake.chmod(0o755)
    engine = find_engine(None, env={"PATH": str(tmp_path)})
    assert engine.name == "docker"
    with pytest.raises(ContainerError) as e:
        engine.run(["build", "."])
    assert e.value.message == "docker build failed (exit 1): step 1 | Cannot connect to the Docker daemon"


# -- the context, without an engine --------------------------------------------------------

def test_container_file_writes_the_context_in_layer_order(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "demo")
    ws = Workspace(project, settings_for(tmp_path))
    api.lock(ws)
    out = write_context(ws, tmp_path / "ctx", base="example.org/base:1")
    text = (tmp_path / "ctx" / "Containerfile").read_text()
    order = [text.index(s) for s in ("FROM example.org/base:1", "COPY wheels/", "pip install --no-index",
                                     "COPY lock/", "COPY sources/", '"sync", "--locked"', "COPY project/",
                                     'ENTRYPOINT ["ckpm"]', 'CMD ["run"]')]
    assert order == sorted(order)
    head = (tmp_path / "ctx" / "ckpm.Containerfile").read_text()
    assert text.startswith(head.rstrip("\n"))  # the host check's image is the main build's first steps
    in_context = sorted(p.relative_to(tmp_path / "ctx" / "project").as_posix()
                        for p in (tmp_path / "ctx" / "project").rglob("*") if p.is_file())
    assert in_context == sorted([*sh(["git", "ls-files"], cwd=project).stdout.split(), "ckpm.lock"])
    assert out.project_files == len(in_context)
    names = {w.split("-")[0].lower() for w in out.wheels}
    assert {"ckpm", "pygit2", "resolvelib", "click"} <= names
    # the same installation gives the same wheel bytes (the engine's cache of the ckpm layer holds)
    again = pack_wheels(tmp_path / "again")
    for w in again:
        assert (tmp_path / "again" / w.file).read_bytes() == (tmp_path / "ctx" / "wheels" / w.file).read_bytes()
    with zipfile.ZipFile(tmp_path / "ctx" / "wheels" / f"ckpm-{__version__}-py3-none-any.whl") as z:
        members = z.namelist()
        assert "ckpm/container/build.py" in members and "ckpm/_index/config.json" in members
        assert f"ckpm-{__version__}.dist-info/entry_points.txt" in members

    # the command line writes the same, into DEST
    env = {**os.environ, "CKPM_CACHE_DIR": str(tmp_path / "cache"), "CKPM_STORE": str(tmp_path / "store"),
           "CKPM_CONFIG": str(tmp_path / "no-config.toml")}
    cli = sh([sys.executable, "-m", "ckpm", "-C", str(project), "container", "file", str(tmp_path / "ctx2"),
              "--base", "example.org/base:1"], env=env)
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "ctx2" / "Containerfile").read_text() == text
