"""Benchmark of the registry's shared results (issue 26), on SQLite and on PostgreSQL.

    python bench/bench_results.py [--records 100000] [--database sqlite|postgresql|both]

For each database: the registry runs for real (uvicorn on 127.0.0.1, as the tests run it),
its results database is filled with ``--records`` records of one program (the worst case
for its scoreboard: every record is that program's; 50 users on 100 machines, 2 targets, 2
compilers, 50 configurations, 20 locks, 5 metrics), then it measures:

- the scoreboard query (``ResultsDB.scoreboard``: machines, reproductions, unexpected
  records, the Pareto frontier of time and size), in the service's process;
- the scoreboard page: its server time (the query and the HTML), and ``GET /results/PROGRAM``
  over loopback (the client's wall time, an upper bound of the server's);
- a push of 100 new records with the client (``ckpm.sharing``: JSON, HTTP, the transaction
  with the statistics refreshed), on top of the filled database;
- 4 clients pushing at once, each batch sent twice and every batch of client k also sent by
  client k+1 (retries and overlaps): lost and duplicated records counted from the database.

Each timing is the median (and the slowest) of ``--repeat`` runs after one warm-up run.
PostgreSQL is a server of its own started from Debian's binaries, as the tests start it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

PROGRAM = "bench-prog"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times)


def bare_index(tmp: Path) -> str:
    git = tmp / "index.git"
    work = tmp / "w"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(git)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "config.json").write_text('{"format": 1}\n')
    subprocess.run(["git", "-C", str(work), "add", "."], check=True)
    subprocess.run(["git", "-C", str(work), "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "i"],
                   check=True)
    subprocess.run(["git", "-C", str(work), "push", "-q", str(git), "main"], check=True)
    return str(git)


def synthetic(i: int, tag: str = "") -> dict[str, Any]:
    """Record ``i`` as `ckpm results push` sends it (deterministic: the same i gives the same record)."""
    user = i % 50
    variant = (i // 50) % 50
    reps = [0.05 + 0.001 * variant + 0.0001 * ((i * 7 + k) % 13) + 1e-9 * i for k in range(5)]
    size = 30000 - 40 * variant  # one binary per configuration: the frontier is one point per size at most
    return {
        "format": 1,
        "program": {"name": PROGRAM, "version": "1.0.0", "command": "run"},
        "experiment": f"bench{tag}", "local_id": f"{tag}{i:08d}", "created": f"2026-12-{1 + i % 28:02d}T00:00:00Z",
        "ckpm_version": "0.1.0", "ok": i % 97 != 0, "target": ("linux-x86_64", "linux-aarch64")[i % 2],
        "config": {"cflags": ["-std=c99", f"-O{variant % 4}"], "params": {"threshold": str(variant)},
                   "compiler": {"name": ("compiler-gcc", "compiler-clang")[(i // 2) % 2], "version": "12.2.0"}},
        "point": None,
        "lock": {"hash": f"sha256:{(i // 5) % 20:064x}",
                 "packages": [{"name": "dataset-hello-images", "version": "1.1.0", "source": "index"}]},
        "host": {"cpu_model": f"CPU model {(i // 50) % 2}", "cpu_count": 8, "os": "linux 6.1", "arch": "x86_64",
                 "libc": "glibc 2.36", "facts": {"__os": "6.1"}, "software": {"compiler-gcc": "12.2.0"}},
        "metrics": {"time": {"values": reps}, "size": {"values": [size]}, "max_rss": {"values": [1.7 + 0.01 * k
                                                                                              for k in range(5)]},
                    "corners": {"values": [205], "better": "higher"}, "images": {"values": [8]}},
        "validation": {"ok": True, "checks": [{"check": "run 1: output has 'images: 8'", "ok": True}]},
    }


def bench(database: str | None, label: str, n: int, repeat: int, tmp: Path) -> dict[str, Any]:
    from ckpm.settings import Settings
    from ckpm.sharing import PushResult, Pusher
    from ckpm_registry import scoreboard
    from ckpm_registry.results import ResultsLimits, check_record
    from registry_support import RunningRegistry, make_users

    import requests

    tokens = tmp / "tokens.toml"
    users = make_users(tokens, *(f"u{k}" for k in range(50)), "pusher")
    reg = RunningRegistry(index=bare_index(tmp), tokens=tokens, tokens_of=users, refresh=0.0, database=database,
                          results_limits=ResultsLimits(pushes_per_minute=100_000)).start()
    out: dict[str, Any] = {"database": label, "records": n}
    try:
        db = reg.app.state.results
        t = time.perf_counter()
        batch = []
        for i in range(n):
            batch.append(check_record(synthetic(i), f"u{i % 50}", ResultsLimits()))
            if len(batch) == 2000:
                db.push(batch, refresh=False)
                batch = []
        if batch:
            db.push(batch, refresh=False)
        db.rebuild_stats()
        out["fill_s"] = round(time.perf_counter() - t, 1)
        assert db.count() == n

        med, worst = timed(lambda: db.scoreboard(PROGRAM, x="time", y="size"), repeat)
        data = db.scoreboard(PROGRAM, x="time", y="size")
        out["scoreboard_query_ms"] = (round(med * 1000, 1), round(worst * 1000, 1))
        out["machine_rows"] = len(data["machines"])
        out["frontier"] = len(data["frontier"])
        med, worst = timed(lambda: db.scoreboard(PROGRAM, user="u7", target="linux-x86_64", x="time", y="size"),
                           repeat)
        out["scoreboard_query_filtered_ms"] = (round(med * 1000, 1), round(worst * 1000, 1))
        metrics = [m for m, _ in db.metrics_of(PROGRAM)]

        def page() -> None:
            scoreboard.board_page(db.scoreboard(PROGRAM, x="time", y="size"), metrics, {})

        med, worst = timed(page, repeat)
        out["page_server_ms"] = (round(med * 1000, 1), round(worst * 1000, 1))
        html = requests.get(f"{reg.url}/results/{PROGRAM}", timeout=60)
        assert html.status_code == 200 and "reproduced on" in html.text
        out["page_bytes"] = len(html.content)
        session = requests.Session()
        med, worst = timed(lambda: session.get(f"{reg.url}/results/{PROGRAM}", timeout=60).raise_for_status(),
                           repeat)
        out["page_loopback_ms"] = (round(med * 1000, 1), round(worst * 1000, 1))
        med, worst = timed(lambda: session.get(f"{reg.url}/api/v1/results", params={"program": PROGRAM,
                                                                                     "metric": "time"},
                                               timeout=60).raise_for_status(), repeat)
        out["api_list_by_metric_loopback_ms"] = (round(med * 1000, 1), round(worst * 1000, 1))

        # a push of 100 new records with the client
        s = Settings(env={"HOME": str(tmp)})
        pusher = Pusher(reg.url, token=users["pusher"], settings=s)
        base = [n + 10_000_000]

        def push100() -> None:
            recs = [synthetic(base[0] + k, "p") for k in range(100)]
            base[0] += 100
            res = PushResult(pusher.api, "bench", False)
            pusher.send(recs, res)
            assert len(res.added) == 100

        med, worst = timed(push100, repeat)
        out["push_100_ms"] = (round(med * 1000, 1), round(worst * 1000, 1))

        # 4 clients at once, with retries and overlaps
        before = db.count()
        batches = [[synthetic(20_000_000 + b * 100 + k, "c") for k in range(100)] for b in range(40)]
        acked: set[str] = set()
        lock = threading.Lock()
        errors: list[str] = []

        def client(c: int) -> None:
            p = Pusher(reg.url, token=users["pusher"], settings=s)
            mine = [b for b in range(40) if b % 4 == c] + [b for b in range(40) if b % 4 == (c + 3) % 4]
            for b in mine:
                for _ in range(2):
                    res = PushResult(p.api, "bench", False)
                    try:
                        p.send(batches[b], res)
                    except Exception as e:  # noqa: BLE001 - counted
                        errors.append(str(e))
                        continue
                    with lock:
                        acked.update(res.added + res.existing)

        t = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        out["concurrent_s"] = round(time.perf_counter() - t, 2)
        import sqlalchemy as sa

        from ckpm_registry.resultsdb import results

        with db.engine.connect() as conn:
            stored = [r for (r,) in conn.execute(sa.select(results.c.doc).where(
                results.c.doc.like('%"experiment":"benchc"%')))]
        local_ids = [json.loads(d)["local_id"] for d in stored]
        expected = {f"c{20_000_000 + b * 100 + k:08d}" for b in range(40) for k in range(100)}
        out["concurrent_sent"] = 4 * 20 * 100 * 2 // 2  # requests × records (each batch twice by two clients)
        out["concurrent_lost"] = len(expected - set(local_ids))
        out["concurrent_duplicated"] = len(local_ids) - len(set(local_ids))
        out["concurrent_errors"] = len(errors)
        out["concurrent_acked_ids"] = len(acked)
        assert db.count() == before + len(set(local_ids))
    finally:
        reg.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    from pg_support import running_postgres

    rows = []
    with ExitStack() as stack:
        for kind in (["sqlite", "postgresql"] if args.database == "both" else [args.database]):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-results-")))
            url = None
            if kind == "postgresql":
                url = stack.enter_context(running_postgres()).new_database()
            res = bench(url, kind, args.records, args.repeat, tmp)
            print(json.dumps(res), flush=True)
            rows.append(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
