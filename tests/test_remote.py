"""Remote runs carry the project: the demo runs and tunes on a `dask worker` process that has
its own HOME, store, cache and work folder, does not know the project's folder, and has no
network (every proxy variable points at a dead port; Dask's own connection is a plain socket
on 127.0.0.1).

The scheduler and the worker are separate processes started with the `dask` command; the
tests wait for the scheduler's "Scheduler at" line and the worker's registration, never for
a fixed time.
"""
from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any, Iterator

import pytest

from ckpm.experiment.record import load_experiment

pytest.importorskip("distributed")

from test_artifact import copy_demo, home_env  # noqa: E402  (the same demo project and fresh homes)

ROOT = Path(__file__).resolve().parent.parent
DASK = str(Path(sys.executable).parent / "dask")
DEAD = "http://127.0.0.1:9"


class Lines:
    """A process's stderr read line by line in a thread: wait for a line, keep the log."""

    def __init__(self, stream: IO[str]) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.q.put(line)
        self.q.put(None)

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        rx = re.compile(pattern)
        while True:
            line = self.q.get(timeout=timeout)  # queue.Empty after `timeout` s without a line: a failure
            if line is None:
                raise AssertionError("the process ended first:\n" + "".join(self.log[-30:]))
            self.log.append(line)
            m = rx.search(line)
            if m:
                return m


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("cluster")
    procs: list[subprocess.Popen[str]] = []
    try:
        sched = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
                                 cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(sched)
        assert sched.stderr is not None
        slog = Lines(sched.stderr)
        address = slog.wait_for(r"Scheduler at:\s+(tcp://127\.0\.0\.1:\d+)").group(1)
        home = base / "worker-home"
        env = home_env(home)
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            env[k] = DEAD  # no network for ckpm's downloads
        env.pop("NO_PROXY", None)
        env.pop("no_proxy", None)
        work = base / "worker-work"
        work.mkdir()
        env["TMPDIR"] = str(work)  # the worker's work folder (run_packed unpacks there)
        worker = subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                   "--local-directory", str(work), "--name", "ckpm-test-worker"],
                                  cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(worker)
        assert worker.stderr is not None
        wlog = Lines(worker.stderr)
        wlog.wait_for(r"Registered to:\s+tcp://127\.0\.0\.1")
        slog.wait_for(r"Register worker")
        yield {"address": address, "home": home, "work": work}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def client_env(home: Path) -> dict[str, str]:
    return home_env(home)


def ckpm(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_demo_runs_on_a_worker_with_its_own_store_and_no_network(cluster: dict[str, Any], tmp_path: Path) -> None:
    proj = copy_demo(tmp_path / "demo")
    env = client_env(tmp_path / "client")
    r = ckpm("run", "--repeat", "2", "--record", "remote", "--scheduler", cluster["address"], "--json", cwd=proj,
             env=env)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)["data"]
    assert rec["ok"] and rec["worker"]["host"]
    assert rec["metrics"]["corners"]["median"] == 205 and rec["metrics"]["images"]["median"] == 8
    # built on the worker, in its work folder, against its own store
    binary = rec["stages"]["compile"]["binary"]
    assert binary.startswith(str(cluster["work"])) and not binary.startswith(str(proj))
    prov = {p["name"]: p for p in rec["stages"]["provision"]["packages"]}
    assert prov["dataset-hello-images"]["path"].startswith(str(cluster["home"] / "store"))
    assert any((cluster["home"] / "store").rglob("img-01.pgm"))
    assert not (tmp_path / "client" / "store").exists()  # the client built nothing
    assert load_experiment(proj, "remote").records[0]["id"] == rec["id"] and rec["experiment"] == "remote"
    # access() takes the same steps as the command line (one function): the record names its experiment
    code = ("import ckpm, json, sys; out = ckpm.access({'action': 'run', 'project': sys.argv[1], "
            "'scheduler': sys.argv[2], 'record': 'remote2'}); print(json.dumps(out))")
    r = subprocess.run([sys.executable, "-c", code, str(proj), cluster["address"]], cwd=proj, env=env,
                       capture_output=True, text=True, timeout=600)
    out = json.loads(r.stdout)
    assert out["return"] == 0 and out["experiment"] == "remote2", out
    assert load_experiment(proj, "remote2").records[0]["id"] == out["id"]


def test_the_demo_tunes_on_the_worker(cluster: dict[str, Any], tmp_path: Path) -> None:
    proj = copy_demo(tmp_path / "demo")
    shutil.copytree(ROOT / "examples", proj / "examples")
    env = client_env(tmp_path / "client")
    r = ckpm("tune", "--space", "examples/tune-corners.toml", "--budget", "4", "--scheduler", cluster["address"],
             "--record", "tuned", "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["data"]
    assert data["evaluated"] == 4 and data["failed"] == 0, [x.get("error") for x in data["records"]]
    assert all(rec["worker"]["host"] and rec["metrics"]["corners"]["median"] == 205 for rec in data["records"])
    assert len(load_experiment(proj, "tuned").records) == 4


def test_a_source_only_the_bundle_has(cluster: dict[str, Any], tmp_path: Path) -> None:
    """Without the project's own vendor/ (its [mirrors] target), the worker still provisions the
    data set: from the vendored sources the bundle carries, which the client took from its cache."""
    proj = copy_demo(tmp_path / "demo")
    env = client_env(tmp_path / "client")
    r = ckpm("sync", cwd=proj, env=env)  # the client's cache gets the archive (from vendor/)
    assert r.returncode == 0, r.stderr
    shutil.rmtree(proj / "vendor")
    text = (proj / "ckpm.toml").read_text()
    (proj / "ckpm.toml").write_text(text.replace('"https://example.org/ckpm/" = ["vendor/example.org/ckpm/"]', ""))
    worker_store = cluster["home"] / "store"
    shutil.rmtree(worker_store, ignore_errors=True)  # the worker's store lacks the data set
    r = ckpm("run", "--scheduler", cluster["address"], "--json", cwd=proj, env=env)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)["data"]
    assert rec["ok"] and rec["metrics"]["corners"]["median"] == 205
    assert any(worker_store.rglob("img-01.pgm"))
