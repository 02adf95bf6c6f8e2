"""Fuzz the registry's HTTP API from its own OpenAPI description (schemathesis): no 5xx, and
every failure is the JSON error shape. Bounded: a fixed number of examples per operation."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")  # in the `test` extra; CI installs it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from registry_support import RunningRegistry, line_from_repo, make_users, tagged_component  # noqa: E402

EXAMPLES = 30  # per operation and generation mode: about 600 requests, well under a minute


@pytest.fixture
def registry(tmp_path: Path, git_index_factory: Any, git_repo_factory: Any) -> Iterator[RunningRegistry]:
    gi = git_index_factory({}, name="fuzz")
    tokens = tmp_path / "tokens.toml"
    users = make_users(tokens, "alice", "bob")
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=users, refresh=0.0).start()
    repo = tagged_component(git_repo_factory, "lib-a", ["1.0.0"])
    assert reg.publish(line_from_repo(repo, "1.0.0")).status_code == 201
    rec = {"format": 1, "program": {"name": "lib-a"}, "target": "linux-x86_64", "ok": True,
           "metrics": {"time": {"values": [0.5, 0.6]}}}
    assert requests.post(f"{reg.url}/api/v1/results", json={"records": [rec]}, headers=reg.headers("alice"),
                         timeout=30).status_code == 201  # so that the results pages have something to show
    try:
        yield reg
    finally:
        reg.stop()


def test_no_server_errors_from_the_openapi_description(registry: RunningRegistry) -> None:
    from schemathesis import GenerationMode

    doc = requests.get(f"{registry.url}/openapi.json", timeout=30).json()
    assert {"/api/v1/publish", "/api/v1/me", "/api/v1/search", "/config.json", "/{rel}"} <= set(doc["paths"])
    schema = schemathesis.openapi.from_dict(doc)
    token = registry.tokens_of["alice"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    statuses: dict[str, set[int]] = {}
    session = requests.Session()
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 10

    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode), authorized=st.booleans())
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def run(case: Any, authorized: bool) -> None:
                headers = {"Authorization": f"Bearer {token}"} if authorized else None
                resp = case.call(base_url=registry.url, session=session, headers=headers, timeout=30)
                label = f"{case.method} {case.formatted_path}"
                seen[op.label] = seen.get(op.label, 0) + 1
                statuses.setdefault(op.label, set()).add(resp.status_code)
                if resp.status_code >= 500:
                    problems.append(f"{label}: {resp.status_code} {resp.text[:300]}")
                elif resp.status_code >= 400 and case.method != "HEAD":
                    try:
                        body = resp.json()
                        ok = isinstance(body, dict) and set(body) == {"error"} and {"code", "error"} <= set(
                            body["error"])
                    except (ValueError, json.JSONDecodeError):
                        ok = False
                    if not ok:
                        problems.append(f"{label}: {resp.status_code} is not a JSON error: {resp.text[:300]}")

            try:
                run()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # nothing to make invalid (an operation without parameters or body)

    assert not problems, "\n".join(problems[:20])
    assert len(seen) == len(operations) and sum(seen.values()) > 10 * len(operations)
    print({k: sorted(v) for k, v in statuses.items()})
    # the fuzzer got past the checks too: some generated lines were published, others refused
    assert 201 in statuses["PUT /api/v1/publish"] and {400, 401, 422} & statuses["PUT /api/v1/publish"]
    # the results API (issue 26): pushes stored and refused, every operation reached
    assert {"POST /api/v1/results", "GET /api/v1/results", "GET /api/v1/results/{rid}",
            "DELETE /api/v1/results/{rid}", "GET /results/{program}", "GET /records/{rid}"} <= set(seen)
    assert 201 in statuses["POST /api/v1/results"] and {401, 422} <= statuses["POST /api/v1/results"]
    stored = requests.get(f"{registry.url}/api/v1/results", params={"limit": 100, "full": "true"}, timeout=30).json()
    assert stored["total"] >= 1 and all(r["record"]["format"] == 1 for r in stored["results"])
    # the index is still whole: every line served parses, the summary agrees with the files
    summary = [json.loads(x) for x in requests.get(f"{registry.url}/summary.jsonl", timeout=30).text.splitlines()]
    assert "lib-a" in {s["name"] for s in summary}
