"""Issue 24, finding 11: the registry under SIGKILL.

``ckpm-registry serve`` runs as a real process over a real bare git index. Each trial publishes
a few versions (of a new name, so that the first publish of a name and its owner are in play),
then kills the service with SIGKILL at a moment drawn from the trial's seed: right after it
printed its listening line, between two publishes, or while a publish is in flight (a delay of
0 to 60 ms after the request was sent: the moment of the fault, not a wait for anything). The
next trial's service is the restart, started on the same index; before it publishes anything,
the state is checked:

- ``git fsck --full --strict`` of the index is clean;
- the export matches the index: every file of the branch tip is exported with its bytes
  (``config.json`` with the registry's ``api``), and served with them over HTTP; the export
  holds nothing else;
- every publish that was answered 201 is in the index (acknowledged means durable), and
  nothing is there that was not sent;
- every name in the index has its first publisher as owner.

The servers are waited for by their listening line, the publishes by their responses.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, IO

import pygit2
import pytest

from registry_support import line_from_repo, make_users, tagged_component

TRIALS = 24
SEED = 24_11


class Service:
    """One ``ckpm-registry serve`` process, started and waited for by its listening line."""

    def __init__(self, index: Path, tokens: Path, log: IO[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ckpm_registry", "serve", "--index", str(index), "--tokens", str(tokens),
             "--port", "0", "--refresh", "0", "--log-level", "warning", "--no-access-log"],
            stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the listening socket is bound before this line is printed
        assert " at http://" in line, f"the service did not start: {line!r}"
        self.port = int(line.split(" at http://", 1)[1].split()[0].rsplit(":", 1)[1])

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _publish_body(line: dict[str, Any]) -> bytes:
    return json.dumps({"line": line}).encode()


def _tip_files(gitdir: Path) -> dict[str, bytes]:
    repo = pygit2.Repository(str(gitdir))
    try:
        head = repo.lookup_reference("HEAD").resolve()
        tree = repo[head.target].peel(pygit2.Commit).tree
        out: dict[str, bytes] = {}
        todo: list[tuple[str, pygit2.Tree]] = [("", tree)]
        while todo:
            prefix, t = todo.pop()
            for obj in t:
                rel = prefix + str(obj.name)
                if obj.type_str == "tree":
                    todo.append((rel + "/", repo[obj.id].peel(pygit2.Tree)))
                else:
                    out[rel] = bytes(repo[obj.id].peel(pygit2.Blob).data)
        return out
    finally:
        repo.free()


def _check_consistent(service: Service, gitdir: Path, export: Path, sent: dict[str, set[str]],
                      acked: dict[str, set[str]], owners_file: Path, landed: set[tuple[str, str]]) -> None:
    fsck = subprocess.run(["git", "--git-dir", str(gitdir), "fsck", "--full", "--strict", "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    bad = [x for x in (fsck.stdout + fsck.stderr).splitlines() if x.split(" ")[0] in ("error:", "missing", "broken")]
    assert bad == [], bad
    tip = _tip_files(gitdir)
    # the restarted service exported the tip: component files and summary byte for byte, config with its api
    exported = {p.relative_to(export).as_posix(): p.read_bytes() for p in export.rglob("*") if p.is_file()}
    marker = exported.pop(".ckpm-export.json")
    assert set(exported) == set(tip), (set(exported) ^ set(tip))
    for rel, data in tip.items():
        if rel == "config.json":
            assert {k: v for k, v in json.loads(exported[rel]).items() if k != "api"} == {
                k: v for k, v in json.loads(data).items() if k != "api"}
        else:
            assert exported[rel] == data, rel
            status, body = service.request("GET", "/" + rel)
            assert status == 200 and body == data, rel
    head = str(pygit2.Repository(str(gitdir)).lookup_reference("HEAD").resolve().target)
    assert json.loads(marker)["commit"] == head
    # acknowledged publishes are durable; nothing appears that was not sent
    in_index: dict[str, set[str]] = {}
    for rel, data in tip.items():
        if rel in ("config.json", "summary.jsonl"):
            continue
        for raw in data.decode().splitlines():
            d = json.loads(raw)
            in_index.setdefault(d["name"], set()).add(d["version"])
    for name, versions in acked.items():
        assert versions <= in_index.get(name, set()), (name, versions - in_index.get(name, set()))
    for name, versions in in_index.items():
        assert versions <= sent.get(name, set()), (name, versions)
    landed.update((n, v) for n, vs in in_index.items() for v in vs if v not in acked.get(n, set()))
    owners = json.loads(owners_file.read_text()) if owners_file.exists() else {}
    owners = owners.get("owners", owners)
    for name in in_index:
        assert owners.get(name) == ["alice"], (name, owners.get(name))


def test_sigkill_during_publishes_keeps_the_index_whole(tmp_path: Path, git_index_factory: Any,
                                                        git_repo_factory: Any) -> None:
    gi = git_index_factory({}, name="lab")
    gitdir = Path(gi.git.path)
    tokens = tmp_path / "tokens.toml"
    token = make_users(tokens, "alice")["alice"]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    repo = tagged_component(git_repo_factory, "lib-base", ["1.0.0"])
    template = line_from_repo(repo, "1.0.0")
    export = gitdir / "ckpm-registry" / "export"
    owners_file = gitdir / "ckpm-registry" / "owners.json"
    sent: dict[str, set[str]] = {}
    acked: dict[str, set[str]] = {}
    moments: dict[str, int] = {}
    landed: set[tuple[str, str]] = set()  # committed, but the kill came before the answer
    log = open(tmp_path / "service.log", "w")
    service = Service(gitdir, tokens, log)
    try:
        for trial in range(TRIALS):
            rnd = random.Random(SEED + trial)
            name = f"lib-k{trial}"
            before = rnd.randint(0, 3)  # publishes answered before the kill
            moment = rnd.choice(["at-start", "between", "in-flight", "in-flight", "in-flight"])
            if moment == "at-start":
                before = 0
            moments[moment] = moments.get(moment, 0) + 1
            for k in range(before):
                version = f"1.{trial}.{k}"
                sent.setdefault(name, set()).add(version)
                status, body = service.request("PUT", "/api/v1/publish",
                                               _publish_body(template | {"name": name, "version": version}), headers)
                assert status == 201, body
                acked.setdefault(name, set()).add(version)
            if moment == "in-flight":
                version = f"1.{trial}.{before}"
                sent.setdefault(name, set()).add(version)
                conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=120)
                conn.request("PUT", "/api/v1/publish",
                             body=_publish_body(template | {"name": name, "version": version}), headers=headers)
                answered: list[int] = []

                def read(c: http.client.HTTPConnection = conn) -> None:
                    try:
                        answered.append(c.getresponse().status)
                    except (OSError, http.client.HTTPException):
                        pass

                reader = threading.Thread(target=read)
                reader.start()
                threading.Event().wait(rnd.uniform(0, 0.06))  # the fault's moment, drawn from the seed
                service.kill()
                reader.join()
                conn.close()
                if answered == [201]:
                    acked.setdefault(name, set()).add(version)
            else:
                service.kill()
            service = Service(gitdir, tokens, log)  # the restart, on the same index
            _check_consistent(service, gitdir, export, sent, acked, owners_file, landed)
    finally:
        service.kill()
        log.close()
    assert sum(len(v) for v in acked.values()) > TRIALS  # publishes really happened
    print(f"sigkill trials: {TRIALS}, moments: {moments}, publishes acknowledged: "
          f"{sum(len(v) for v in acked.values())}, sent: {sum(len(v) for v in sent.values())}, "
          f"committed without an answer: {len(landed)}")
