"""Shared experiment results in a real database, through SQLAlchemy Core.

One layer for both databases the service supports: SQLite in the state folder (the default:
``<state>/results.sqlite``, WAL journal) and PostgreSQL (``--database postgresql://…``, with
psycopg). Nothing here knows HTTP; :mod:`ckpm_registry.results` checks what arrives and
calls :class:`ResultsDB`.

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``results_meta``; :data:`MIGRATIONS`
brings an older database up to date when the service opens it):

- ``results``: one row per pushed record: its id (a hash of the pusher and the record, so a
  second push of the same record adds nothing), the columns the scoreboard filters on, and
  the record itself (``doc``, JSON text).
- ``result_metrics``: one row per metric of a record (median, best, n), with the filter
  columns repeated so that a scoreboard reads one table.
- ``machine_stats``: per program, machine, target, compiler and metric: n, best and median of
  the records' medians. Recomputed for the groups a push or a delete touches, inside the
  same transaction, so a scoreboard never scans the records.
- ``peer_stats``: per program and group of peers (records with the same lock hash, the same
  configuration and point, and the same host class: they should measure alike), per metric:
  the median of the validated records and the middle record; ``unexpected`` lists the
  records whose median lies outside the tolerance of that median (kept up to date the same way).
- ``reproductions``: (program, lock hash, machine, user) of validated records.
- ``frontier_points``: per program, pair of metrics (among the first :data:`FRONTIER_METRICS` of a
  record) and cell (target, compiler, user): the records on that cell's Pareto frontier. A
  frontier under any filter is the frontier of the union of its cells' frontiers, so a
  scoreboard reads a few hundred rows, never every record.

Writes are serialised: each push or delete first updates the one row of ``results_meta``
named ``writes``, which takes SQLite's write lock (waiting up to ``busy_timeout``) and a row
lock in PostgreSQL; every push is one transaction, so a killed service leaves each push
whole or absent.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ckpm_registry.errors import DatabaseError

SCHEMA_VERSION = 1
#: a record's metric lies outside this fraction of its group's median: "unexpected"
DEFAULT_TOLERANCE = 0.25
#: groups smaller than this are not judged (the median of two records says little)
MIN_GROUP = 3
#: frontiers are kept for the pairs of a record's first metrics (time, size, max_rss, then by name)
FRONTIER_METRICS = 8

metadata = sa.MetaData()

#: the type of each column that stands in several tables (a record's filter columns, its metrics):
#: written once, so that the tables cannot disagree on what a program or a compiler is
_TYPES: dict[str, Any] = {
    "id": sa.String(64), "result_id": sa.String(64), "best_id": sa.String(64), "median_id": sa.String(64),
    "program": sa.String(128), "version": sa.String(128), "target": sa.String(128), "compiler": sa.String(256),
    "user": sa.String(64), "machine": sa.String(32), "host_class": sa.String(1024), "lock_hash": sa.String(128),
    "peers": sa.String(32),  # records that should measure alike: the same lock, configuration and host class
    "name": sa.String(128), "metric": sa.String(128), "x": sa.String(128), "y": sa.String(128),
    "ok": sa.Boolean, "better": sa.String(8), "bx": sa.String(8), "by": sa.String(8),
    "median": sa.Float, "best": sa.Float, "value": sa.Float, "xv": sa.Float, "yv": sa.Float, "n": sa.Integer,
    "created": sa.String(64), "pushed": sa.String(32), "doc": sa.Text,
    "host": sa.Text,  # JSON: the machine's facts, for the page
}


def _columns(*names: str, key: bool = False) -> list[sa.Column[Any]]:
    """Columns of :data:`_TYPES` (the primary key's with ``key``, else NOT NULL)."""
    return [sa.Column(n, _TYPES[n], primary_key=True) if key else sa.Column(n, _TYPES[n], nullable=False)
            for n in names]


results = sa.Table(
    "results", metadata,
    sa.Column("seq", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("id", _TYPES["id"], nullable=False, unique=True),
    *_columns("program", "version", "target", "compiler", "user", "machine", "host_class", "lock_hash", "ok",
              "created", "pushed", "doc"),
    sa.Index("ix_results_program_seq", "program", "seq"),
    sa.Index("ix_results_user_seq", "user", "seq"),
)

result_metrics = sa.Table(
    "result_metrics", metadata,
    sa.Column("result_id", _TYPES["result_id"], sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True),
    *_columns("name", key=True),
    *_columns("program", "machine", "target", "compiler", "user", "peers", "ok", "better", "median", "best", "n"),
    sa.Index("ix_metrics_group", "program", "machine", "target", "compiler", "name"),
    sa.Index("ix_metrics_peers", "program", "peers", "name"),
    sa.Index("ix_metrics_sorted", "program", "name", "median", "result_id"),
    sa.Index("ix_metrics_cell", "program", "target", "compiler", "user"),
)

machine_stats = sa.Table(
    "machine_stats", metadata,
    *_columns("program", "machine", "target", "compiler", "metric", key=True),
    *_columns("user", "host", "better", "n", "best", "median", "best_id"),
)

peer_stats = sa.Table(
    "peer_stats", metadata,
    *_columns("program", "peers", "metric", key=True),
    *_columns("n", "median", "median_id"),  # median_id: the middle record (the lower of two)
)

unexpected = sa.Table(
    "unexpected", metadata,
    *_columns("result_id", "metric", key=True),
    *_columns("program", "peers", "lock_hash", "value", "median", "median_id"),
    sa.Index("ix_unexpected_program", "program"),
)

frontier_points = sa.Table(
    "frontier_points", metadata,
    # x, y: the pair of metrics, x < y; bx, by: which way each is better
    *_columns("program", "x", "y", "target", "compiler", "user", "result_id", key=True),
    *_columns("xv", "yv", "bx", "by"),
)

reproductions = sa.Table(
    "reproductions", metadata,
    *_columns("program", "lock_hash", "machine", "user", key=True),
)

meta = sa.Table(
    "results_meta", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)

#: version → the statements that bring a database of version-1 up to it (none yet: version 1 is the first)
MIGRATIONS: dict[int, Sequence[str]] = {}


@dataclass
class Row:
    """One checked record, ready to store: the filter columns and the metrics (median, best, n)."""

    id: str
    program: str
    version: str
    target: str
    compiler: str
    user: str
    machine: str
    host_class: str
    lock_hash: str
    peers: str  # see _TYPES
    ok: bool
    created: str
    doc: dict[str, Any]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {median, best, n, better}

    def result_values(self, pushed: str) -> dict[str, Any]:
        """The row of ``results`` this record is stored as."""
        return {"id": self.id, "program": self.program, "version": self.version, "target": self.target,
                "compiler": self.compiler, "user": self.user, "machine": self.machine, "host_class": self.host_class,
                "lock_hash": self.lock_hash, "ok": self.ok, "created": self.created, "pushed": pushed,
                "doc": json.dumps(self.doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)}

    @classmethod
    def stored(cls, row: Mapping[Any, Any], *, peers: str, metrics: Sequence[str]) -> "Row":
        """The record of a ``results`` row (the inverse of :meth:`result_values`), with the names of
        its metrics (their values are not read back) and its group of peers."""
        return cls(row["id"], row["program"], row["version"], row["target"], row["compiler"], row["user"],
                   row["machine"], row["host_class"], row["lock_hash"], peers, bool(row["ok"]), row["created"],
                   json.loads(row["doc"]), {name: {} for name in metrics})

    def metric_values(self) -> list[dict[str, Any]]:
        """The rows of ``result_metrics``: one per metric, with the record's filter columns."""
        return [{"result_id": self.id, "name": k, "program": self.program, "machine": self.machine,
                 "target": self.target, "compiler": self.compiler, "user": self.user, "peers": self.peers,
                 "ok": self.ok, "better": m["better"], "median": m["median"], "best": m["best"], "n": m["n"]}
                for k, m in self.metrics.items()]


def database_url(database: str | None, state: Path) -> str:
    """The SQLAlchemy URL: ``database`` as given (``postgresql://…`` uses psycopg), else SQLite in ``state``."""
    if not database:
        return f"sqlite:///{Path(state) / 'results.sqlite'}"
    if database.startswith("postgresql://") or database.startswith("postgres://"):
        return "postgresql+psycopg://" + database.split("://", 1)[1]
    if database.startswith(("sqlite:///", "postgresql+psycopg://")):
        return database
    raise DatabaseError(f"--database takes postgresql://USER@HOST:PORT/NAME or sqlite:///PATH, not {database[:100]!r}")


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ResultsDB:
    """The results of one registry: push, read, delete and the scoreboard's numbers."""

    def __init__(self, url: str, *, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.url = url
        self.tolerance = tolerance
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.engine: Engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                                                   pool_size=8, max_overflow=8)

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi: Any, _record: Any) -> None:
                cur = dbapi.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=60000")
                cur.close()
        else:
            self.engine = sa.create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
        try:
            self._migrate()
        except sa.exc.SQLAlchemyError as e:
            raise DatabaseError(f"cannot open the results database {self.describe()}: {str(e).splitlines()[0]}") \
                from None

    def describe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn, tables=[meta])
            row = conn.execute(sa.select(meta.c.value).where(meta.c.name == "schema")).first()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise DatabaseError(f"the results database has schema {version}; this service knows "
                                    f"{SCHEMA_VERSION} (upgrade ckpm-registry)")
            if version == 0:
                metadata.create_all(conn)
                conn.execute(sa.insert(meta), [{"name": "schema", "value": SCHEMA_VERSION},
                                               {"name": "writes", "value": 0}])
                return
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS.get(v, ()):
                    conn.exec_driver_sql(stmt)
            if version != SCHEMA_VERSION:
                conn.execute(sa.update(meta).where(meta.c.name == "schema").values(value=SCHEMA_VERSION))

    def _serialise(self, conn: Connection) -> None:
        """Take the write lock (the first statement of every writing transaction)."""
        conn.execute(sa.update(meta).where(meta.c.name == "writes").values(value=meta.c.value + 1))

    def _insert(self, table: sa.Table) -> Any:
        if self.sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        return insert(table)

    # -- writing -----------------------------------------------------------------------------

    def push(self, rows: Sequence[Row], *, refresh: bool = True) -> tuple[list[str], list[str]]:
        """Store ``rows`` in one transaction; returns (ids added, ids already there).

        ``refresh=False`` (bulk loads) leaves the statistics to :meth:`rebuild_stats`."""
        pushed = _now()
        with self.engine.begin() as conn:
            self._serialise(conn)
            ids = [r.id for r in rows]
            have = set()
            for i in range(0, len(ids), 500):
                have |= {x for (x,) in conn.execute(sa.select(results.c.id).where(results.c.id.in_(ids[i:i + 500])))}
            new: list[Row] = []
            seen: set[str] = set()
            for r in rows:
                if r.id not in have and r.id not in seen:
                    seen.add(r.id)
                    new.append(r)
            if new:
                conn.execute(sa.insert(results), [r.result_values(pushed) for r in new])
                mrows = [m for r in new for m in r.metric_values()]
                if mrows:
                    conn.execute(sa.insert(result_metrics), mrows)
                repro = {(r.program, r.lock_hash, r.machine, r.user) for r in new if r.ok}
                if repro:
                    conn.execute(self._insert(reproductions).on_conflict_do_nothing(),
                                 [{"program": p, "lock_hash": lh, "machine": m, "user": u} for p, lh, m, u in repro])
                if refresh:
                    self._refresh(conn, new, added=True)
        return [r.id for r in new], [i for i in ids if i in have]

    def rebuild_stats(self) -> None:
        """Recompute every statistic from the records, in one pass over the metrics (after a bulk load)."""
        with self.engine.begin() as conn:
            self._serialise(conn)
            self._recompute(conn, None, None)
            self._frontiers(conn, None)

    def delete(self, rid: str, user: str) -> str:
        """Delete record ``rid`` pushed by ``user``: "deleted", "missing" or "forbidden:<owner>"."""
        with self.engine.begin() as conn:
            self._serialise(conn)
            row = conn.execute(sa.select(results).where(results.c.id == rid)).mappings().first()
            if row is None:
                return "missing"
            if row["user"] != user:
                return f"forbidden:{row['user']}"
            mrows = conn.execute(sa.select(result_metrics.c.name, result_metrics.c.peers).where(
                result_metrics.c.result_id == rid)).all()
            gone = Row.stored(row, peers=mrows[0][1] if mrows else "", metrics=[str(name) for name, _ in mrows])
            conn.execute(sa.delete(unexpected).where(unexpected.c.result_id == rid))
            conn.execute(sa.delete(result_metrics).where(result_metrics.c.result_id == rid))
            conn.execute(sa.delete(results).where(results.c.id == rid))
            if row["ok"]:
                still = conn.execute(sa.select(sa.func.count()).select_from(results).where(
                    results.c.program == row["program"], results.c.lock_hash == row["lock_hash"],
                    results.c.machine == row["machine"], results.c.user == row["user"], results.c.ok)).scalar()
                if not still:
                    conn.execute(sa.delete(reproductions).where(
                        reproductions.c.program == row["program"], reproductions.c.lock_hash == row["lock_hash"],
                        reproductions.c.machine == row["machine"], reproductions.c.user == row["user"]))
            self._refresh(conn, [gone])
        return "deleted"

    def _refresh(self, conn: Connection, rows: Iterable[Row], *, added: bool = False) -> None:
        """Recompute the statistics of the machines, groups of peers and cells that ``rows`` touch
        (``added``: the rows are new records, so the frontiers need only them and the kept ones)."""
        rows = list(rows)
        self._recompute(conn, sorted({(r.program, r.machine) for r in rows}),
                        sorted({(r.program, r.peers) for r in rows}))
        if added:
            self._frontiers_add(conn, rows)
        else:
            self._frontiers(conn, sorted({(r.program, r.target, r.compiler, r.user) for r in rows}))

    def _frontiers_add(self, conn: Connection, rows: Sequence[Row]) -> None:
        """After a push: each touched cell's frontiers from its kept frontier and the new records only
        (the frontier of a union is the frontier of the parts' frontiers), so a push reads no old record."""
        f = frontier_points.c
        cells = sorted({(r.program, r.target, r.compiler, r.user) for r in rows})
        cols = (f.program, f.target, f.compiler, f.user)
        kept: dict[tuple[str, str, str, str], dict[tuple[str, str], list[tuple[str, float, float]]]] = {}
        better: dict[tuple[str, str, str, str], dict[str, str]] = {}
        for program, target, compiler, user, x, y, rid, xv, yv, bx, by in conn.execute(sa.select(
                f.program, f.target, f.compiler, f.user, f.x, f.y, f.result_id, f.xv, f.yv, f.bx, f.by)
                .where(_keys(cols, cells))):
            cell = (program, target, compiler, user)
            kept.setdefault(cell, {}).setdefault((x, y), []).append((rid, xv, yv))
            better.setdefault(cell, {}).update({x: bx, y: by})
        new: dict[tuple[str, str, str, str], list[Row]] = {}
        for r in rows:
            cell = (r.program, r.target, r.compiler, r.user)
            new.setdefault(cell, []).append(r)
            better.setdefault(cell, {}).update({k: m["better"] for k, m in r.metrics.items()})
        conn.execute(sa.delete(frontier_points).where(_keys(cols, cells)))
        out: list[dict[str, Any]] = []
        for cell in cells:
            names = frontier_metrics(better[cell])
            for i, first in enumerate(names):
                for second in names[i + 1:]:
                    x, y = sorted((first, second))
                    pts = list(kept.get(cell, {}).get((x, y), []))
                    pts += [(r.id, r.metrics[x]["median"], r.metrics[y]["median"]) for r in new[cell]
                            if x in r.metrics and y in r.metrics]
                    bx, by = better[cell][x], better[cell][y]
                    out += [{"program": cell[0], "target": cell[1], "compiler": cell[2], "user": cell[3], "x": x,
                             "y": y, "result_id": rid, "xv": xv, "yv": yv, "bx": bx, "by": by}
                            for rid, xv, yv in pareto_2d(pts, bx, by)]
        for i in range(0, len(out), 5000):
            conn.execute(sa.insert(frontier_points), out[i:i + 5000])

    def _frontiers(self, conn: Connection, cells: list[tuple[str, str, str, str]] | None) -> None:
        """The Pareto frontier of every pair of metrics in each cell (program, target, compiler, user),
        from the cell's records (None: every cell)."""
        from itertools import groupby

        m, f = result_metrics.c, frontier_points.c
        if cells is None:
            conn.execute(sa.delete(frontier_points))
            cond: list[Any] = []
        elif not cells:
            return
        else:
            conn.execute(sa.delete(frontier_points).where(_keys((f.program, f.target, f.compiler, f.user), cells)))
            cond = [_keys((m.program, m.target, m.compiler, m.user), cells)]
        rows = conn.execute(sa.select(m.program, m.target, m.compiler, m.user, m.result_id, m.name, m.median,
                                      m.better).where(*cond)
                            .order_by(m.program, m.target, m.compiler, m.user, m.result_id))
        out: list[dict[str, Any]] = []
        for (program, target, compiler, user), grp in groupby(rows, key=lambda x: tuple(x[:4])):
            per: dict[str, dict[str, float]] = {}
            better: dict[str, str] = {}
            for row in grp:
                per.setdefault(row[4], {})[row[5]] = row[6]
                better[row[5]] = row[7]
            names = frontier_metrics(better)
            for i, first in enumerate(names):
                for second in names[i + 1:]:
                    x, y = sorted((first, second))
                    pts = [(rid, v[x], v[y]) for rid, v in per.items() if x in v and y in v]
                    for rid, xv, yv in pareto_2d(pts, better[x], better[y]):
                        out.append({"program": program, "x": x, "y": y, "target": target, "compiler": compiler,
                                    "user": user, "result_id": rid, "xv": xv, "yv": yv, "bx": better[x],
                                    "by": better[y]})
            if len(out) >= 5000:
                conn.execute(sa.insert(frontier_points), out)
                out = []
        if out:
            conn.execute(sa.insert(frontier_points), out)

    def _recompute(self, conn: Connection, machines: list[tuple[str, str]] | None,
                   peers: list[tuple[str, str]] | None) -> None:
        """machine_stats of ``machines`` and peer_stats and unexpected of ``peers`` ((program, key)
        pairs; None: all), from the records. The database ranks each group's values (window functions)
        and returns its middle and best rows only, so the cost in Python is per group, not per record."""
        from itertools import groupby

        m, r = result_metrics.c, results.c
        if machines is None:
            conn.execute(sa.delete(machine_stats))
            mcond: list[Any] = []
        elif machines:
            conn.execute(sa.delete(machine_stats).where(_keys((machine_stats.c.program, machine_stats.c.machine),
                                                              machines)))
            mcond = [_keys((m.program, m.machine), machines)]
        if machines is None or machines:
            group = (m.program, m.machine, m.target, m.compiler, m.name)
            signed = sa.case((m.better == "higher", -m.best), else_=m.best)
            ranked = sa.select(*group, m.result_id, m.median, m.best, m.better, r.user, r.host_class,
                               sa.func.row_number().over(partition_by=group, order_by=(m.median, m.result_id))
                               .label("rn"),
                               sa.func.row_number().over(partition_by=group, order_by=(signed, m.result_id))
                               .label("rb"),
                               sa.func.count().over(partition_by=group).label("c")) \
                .join(results, r.id == m.result_id).where(*mcond).subquery()
            k = ranked.c
            rows = conn.execute(sa.select(ranked).where(sa.or_(k.rn == (k.c + 1) // 2, k.rn == (k.c + 2) // 2, k.rb == 1))
                                .order_by(k.program, k.machine, k.target, k.compiler, k.name)).mappings()
            out: list[dict[str, Any]] = []
            for key, grp in groupby(rows, key=lambda x: (x["program"], x["machine"], x["target"], x["compiler"],
                                                         x["name"])):
                vals = list(grp)
                c = vals[0]["c"]
                mids = {v["rn"]: v["median"] for v in vals if v["rn"] in ((c + 1) // 2, (c + 2) // 2)}
                best = next(v for v in vals if v["rb"] == 1)
                out.append({"program": key[0], "machine": key[1], "target": key[2], "compiler": key[3],
                            "metric": key[4], "user": best["user"], "host": json.dumps(host_view(best["host_class"])),
                            "better": best["better"], "n": c, "best": best["best"],
                            "median": sum(mids.values()) / len(mids), "best_id": best["result_id"]})
                if len(out) >= 5000:
                    conn.execute(sa.insert(machine_stats), out)
                    out = []
            if out:
                conn.execute(sa.insert(machine_stats), out)
        if peers is None:
            conn.execute(sa.delete(peer_stats))
            conn.execute(sa.delete(unexpected))
            pcond: list[Any] = []
        elif peers:
            conn.execute(sa.delete(peer_stats).where(_keys((peer_stats.c.program, peer_stats.c.peers), peers)))
            conn.execute(sa.delete(unexpected).where(_keys((unexpected.c.program, unexpected.c.peers), peers)))
            pcond = [_keys((m.program, m.peers), peers)]
        if peers is None or peers:
            pgroup = (m.program, m.peers, m.name)
            ranked = sa.select(*pgroup, m.result_id, m.median,
                               sa.func.row_number().over(partition_by=pgroup, order_by=(m.median, m.result_id))
                               .label("rn"),
                               sa.func.count().over(partition_by=pgroup).label("c")).where(m.ok, *pcond).subquery()
            k = ranked.c
            rows = conn.execute(sa.select(ranked).where(sa.or_(k.rn == (k.c + 1) // 2, k.rn == (k.c + 2) // 2))
                                .order_by(k.program, k.peers, k.name, k.rn)).mappings()
            stats: list[dict[str, Any]] = []
            for pkey, grp in groupby(rows, key=lambda x: (x["program"], x["peers"], x["name"])):
                vals = list(grp)
                stats.append({"program": pkey[0], "peers": pkey[1], "metric": pkey[2], "n": vals[0]["c"],
                              "median": sum(v["median"] for v in vals) / len(vals),
                              "median_id": vals[0]["result_id"]})  # the middle record (the lower of two)
                if len(stats) >= 5000:
                    conn.execute(sa.insert(peer_stats), stats)
                    stats = []
            if stats:
                conn.execute(sa.insert(peer_stats), stats)
            ps = peer_stats.c
            flagged = sa.select(m.result_id, m.name.label("metric"), m.program, m.peers, r.lock_hash,
                                m.median.label("value"), ps.median, ps.median_id) \
                .join(results, r.id == m.result_id) \
                .join(peer_stats, sa.and_(ps.program == m.program, ps.peers == m.peers, ps.metric == m.name)) \
                .where(m.ok, *pcond, ps.n >= MIN_GROUP, m.result_id != ps.median_id,
                       sa.func.abs(m.median - ps.median) > self.tolerance * sa.func.abs(ps.median))
            conn.execute(sa.insert(unexpected).from_select(
                ["result_id", "metric", "program", "peers", "lock_hash", "value", "median", "median_id"], flagged))

    # -- reading -----------------------------------------------------------------------------

    def get(self, rid: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(results).where(results.c.id == rid)).mappings().first()
            if row is None:
                return None
            flags = conn.execute(sa.select(unexpected).where(unexpected.c.result_id == rid)).mappings().all()
        out = _item(dict(row), full=True)
        out["unexpected"] = [{"metric": f["metric"], "value": f["value"], "median": f["median"],
                              "median_id": f["median_id"]} for f in flags]
        return out

    def query(self, *, program: str = "", target: str = "", user: str = "", metric: str = "", lock: str = "",
              limit: int = 50, offset: int = 0, full: bool = False) -> dict[str, Any]:
        """Records matching the filters: newest first, or best first by ``metric``'s median."""
        r = results.c
        conds = [c == v for c, v in ((r.program, program), (r.target, target), (r.user, user), (r.lock_hash, lock))
                 if v]
        with self.engine.connect() as conn:
            if metric:
                m = result_metrics.c
                better = conn.execute(sa.select(m.better).where(m.name == metric, *(
                    [m.program == program] if program else [])).limit(1)).scalar() or "lower"
                order = (m.median.desc(), m.result_id.desc()) if better == "higher" else (m.median, m.result_id)
                mconds = [m.name == metric] + [c == v for c, v in ((m.program, program), (m.target, target),
                                                                   (m.user, user)) if v]
                ids = sa.select(m.result_id).where(*mconds)
                if lock:
                    ids = ids.join(results, r.id == m.result_id).where(r.lock_hash == lock)
                page_ids = [x for (x,) in conn.execute(ids.order_by(*order).limit(limit).offset(offset))]
                found = {row["id"]: row for row in conn.execute(
                    sa.select(results).where(r.id.in_(page_ids))).mappings()}
                total = conn.execute(sa.select(sa.func.count()).select_from(ids.subquery())).scalar() or 0
                return {"results": [_item(dict(found[i]), full=full) for i in page_ids if i in found],
                        "total": int(total), "limit": limit, "offset": offset}
            stmt = sa.select(results).where(*conds).order_by(r.seq.desc())
            total_stmt = sa.select(sa.func.count()).select_from(results).where(*conds)
            rows = conn.execute(stmt.limit(limit).offset(offset)).mappings().all()
            total = conn.execute(total_stmt).scalar() or 0
        return {"results": [_item(dict(x), full=full) for x in rows], "total": int(total), "limit": limit,
                "offset": offset}

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(results)).scalar() or 0)

    def metrics_of(self, program: str) -> list[tuple[str, str]]:
        """(metric, better) of a program, from its machine stats."""
        with self.engine.connect() as conn:
            return [(a, b) for a, b in conn.execute(sa.select(machine_stats.c.metric, machine_stats.c.better).where(
                machine_stats.c.program == program).distinct().order_by(machine_stats.c.metric))]

    def scoreboard(self, program: str, *, target: str = "", compiler: str = "", user: str = "",
                   x: str = "", y: str = "", max_points: int = 400) -> dict[str, Any]:
        """What the scoreboard page shows: machines, reproductions, unexpected records, the frontier."""
        s = machine_stats.c
        with self.engine.connect() as conn:
            conds = [s.program == program] + [c == v for c, v in ((s.target, target), (s.compiler, compiler),
                                                                   (s.user, user)) if v]
            rows = conn.execute(sa.select(machine_stats).where(*conds).order_by(
                s.machine, s.target, s.compiler, s.metric)).mappings().all()
            choices = conn.execute(sa.select(s.target, s.compiler, s.user).where(s.program == program).distinct()
                                   ).all()
            rep = reproductions.c
            repro = conn.execute(sa.select(rep.lock_hash, sa.func.count(sa.distinct(rep.machine)),
                                           sa.func.count(sa.distinct(rep.user))).where(rep.program == program)
                                 .group_by(rep.lock_hash).order_by(sa.func.count(sa.distinct(rep.machine)).desc(),
                                                                   rep.lock_hash).limit(20)).all()
            u = unexpected.c
            flags = conn.execute(sa.select(unexpected).where(u.program == program).order_by(
                u.result_id, u.metric).limit(200)).mappings().all()
            points: list[dict[str, Any]] = []
            frontier: list[dict[str, Any]] = []
            if x and y:
                points, frontier = self._frontier(conn, program, x, y, target, compiler, user, max_points)
        machines: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["machine"], row["target"], row["compiler"])
            mach = machines.setdefault(key, {"machine": row["machine"], "target": row["target"],
                                             "compiler": row["compiler"], "user": row["user"],
                                             "host": json.loads(row["host"]), "metrics": {}, "records": 0})
            mach["metrics"][row["metric"]] = {"best": row["best"], "median": row["median"], "n": row["n"],
                                              "better": row["better"], "best_id": row["best_id"]}
            mach["records"] = max(mach["records"], row["n"])
        return {
            "program": program,
            "machines": list(machines.values()),
            "targets": sorted({c[0] for c in choices}), "compilers": sorted({c[1] for c in choices}),
            "users": sorted({c[2] for c in choices}),
            "reproduced": [{"lock": lh, "machines": nm, "users": nu} for lh, nm, nu in repro],
            "unexpected": [{"id": f["result_id"], "metric": f["metric"], "value": f["value"], "median": f["median"],
                            "median_id": f["median_id"], "lock": f["lock_hash"]} for f in flags],
            "x": x, "y": y, "points": points, "frontier": frontier,
        }

    def _frontier(self, conn: Connection, program: str, x: str, y: str, target: str, compiler: str, user: str,
                  max_points: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The Pareto frontier of the records' (x, y) medians (each metric in its better direction): the
        frontier of the matching cells' frontiers; and up to ``max_points`` points of those cells'
        frontiers that the whole frontier dominates, to draw beside it."""
        ms = machine_stats.c  # (a few rows per machine; the metrics table has a row per record)
        better = dict(conn.execute(sa.select(ms.metric, ms.better).where(ms.program == program,
                                                                        ms.metric.in_([x, y])).distinct()).all())
        if x not in better or y not in better or x == y:
            return [], []
        a, b = sorted((x, y))
        f = frontier_points.c
        conds = [f.program == program, f.x == a, f.y == b]
        conds += [c == v for c, v in ((f.target, target), (f.compiler, compiler), (f.user, user)) if v]
        cand = conn.execute(sa.select(f.result_id, f.xv, f.yv).where(*conds)).all()
        pts = [(rid, xv, yv) if a == x else (rid, yv, xv) for rid, xv, yv in cand]
        front = sorted(pareto_2d(pts, better[x], better[y]), key=lambda p: (p[1], p[2], p[0]))
        fset = {p[0] for p in front}
        # beside it, the points of each cell's own frontier (every user's trade-offs on their targets
        # and compilers), which the database already holds: drawing them reads no record
        others = sorted((p for p in pts if p[0] not in fset), key=lambda p: (p[1], p[2], p[0]))[:max_points]
        return ([{"id": i, "x": u, "y": v} for i, u, v in others],
                [{"id": i, "x": u, "y": v} for i, u, v in front])


def frontier_metrics(better: Mapping[str, str]) -> list[str]:
    """The metrics whose pairs get a kept frontier: time, size, max_rss, then the others by name."""
    names = [n for n in ("time", "size", "max_rss") if n in better] + sorted(
        n for n in better if n not in ("time", "size", "max_rss"))
    return names[:FRONTIER_METRICS]


def pareto_2d(points: Sequence[tuple[str, float, float]], bx: str, by: str) -> list[tuple[str, float, float]]:
    """The points (id, x, y) no other point dominates (``bx``/``by``: "lower" or "higher" is better),
    one per distinct (x, y): the one with the smallest id (records that measured exactly alike, as a
    metric every run gives the same value, would otherwise all be kept). O(n log n)."""
    sx = -1.0 if bx == "higher" else 1.0
    sy = -1.0 if by == "higher" else 1.0
    keyed = sorted(((sx * p[1], sy * p[2], p) for p in points), key=lambda t: (t[0], t[1], t[2][0]))
    out: list[tuple[str, float, float]] = []
    best = math.inf  # the smallest ky among points strictly before the current (kx, ky)
    i = 0
    while i < len(keyed):
        j = i
        while j < len(keyed) and keyed[j][0] == keyed[i][0] and keyed[j][1] == keyed[i][1]:
            j += 1
        if keyed[i][1] < best:
            out.append(keyed[i][2])
            best = keyed[i][1]
        i = j
    return out


def _keys(cols: Sequence[Any], keys: Sequence[Sequence[str]]) -> Any:
    """``cols`` equal to one of ``keys``, written so that both databases use their indexes: per value of
    all columns but the last, ``last IN (...)`` (a row-value IN makes SQLite scan the table)."""
    by_prefix: dict[tuple[str, ...], list[str]] = {}
    for k in keys:
        by_prefix.setdefault(tuple(k[:-1]), []).append(k[-1])
    return sa.or_(*(sa.and_(*(c == v for c, v in zip(cols[:-1], prefix)), cols[-1].in_(sorted(set(last))))
                    for prefix, last in sorted(by_prefix.items())))


def _outside(value: float, median: float, tolerance: float) -> bool:
    if median == 0:
        return value != 0
    return abs(value - median) > tolerance * abs(median)


HOST_KEYS = ("cpu_model", "cpu_count", "os", "arch", "libc")


def host_class_of(host: Mapping[str, Any]) -> str:
    """The host class of a record's host: its CPU model and count, OS, architecture and libc (JSON)."""
    return json.dumps([host.get(k) if isinstance(host.get(k), (str, int)) and not isinstance(host.get(k), bool)
                       else None for k in HOST_KEYS], ensure_ascii=False, separators=(",", ":"))


def host_view(host_class: str) -> dict[str, Any]:
    """The host facts a host class names (for the scoreboard)."""
    try:
        values = json.loads(host_class)
    except ValueError:
        return {}
    return {k: v for k, v in zip(HOST_KEYS, values) if v is not None} if isinstance(values, list) else {}


def _item(row: Mapping[str, Any], *, full: bool) -> dict[str, Any]:
    doc = json.loads(row["doc"])
    out = {"id": row["id"], "program": row["program"], "version": row["version"] or None, "target": row["target"],
           "compiler": row["compiler"], "user": row["user"], "machine": row["machine"], "lock": row["lock_hash"],
           "ok": bool(row["ok"]), "created": row["created"], "pushed": row["pushed"],
           "metrics": {k: {kk: v.get(kk) for kk in ("median", "min", "max", "n", "better")}
                       for k, v in (doc.get("metrics") or {}).items() if isinstance(v, Mapping)}}
    if full:
        out["record"] = doc
    return out
