"""Experiment records: what one run of a program measured, with its complete configuration.

An experiment is a folder ``.ckpm/experiments/<name>/`` of records, one JSON file each
(``<id>.json``): ``ckpm run --record NAME`` adds one record, ``ckpm tune --record NAME``
one per point it tried. A record is plain JSON (format 1)::

    {
      "format": 1,
      "id": "20261202T023000Z-3f9a1c",          # time and a random suffix: unique, sortable
      "experiment": "baseline",
      "created": "2026-12-02T02:30:00Z",
      "ckpm_version": "0.1.0",
      "ok": true,                                # every repetition ran and validated
      "program": {"name": "program-image-corners", "command": "corners", "version": "0.1.0"},
      "target": "linux-x86_64",
      "config": {                                # what decides the result: replay re-creates it
        "flags": "speed", "cflags": ["-O3"], "ldflags": ["-lm"],
        "env": {"OMP_NUM_THREADS": "1"}, "params": {"threshold": "40"},
        "input": "dataset-images-small", "repeat": 5,
        "compiler": {"name": "gcc", "version": "12.2.0", "path": "/usr/bin/gcc"}
      },
      "point": {"cflags": "-O3", "env.OMP_NUM_THREADS": "2"},   # tuning only: the point's coordinates
      "lock": "<the text of ckpm.lock>",
      "host": {"__os": "linux", "__arch": "x86_64", ...},        # host facts
      "stages": {"provision": {...}, "compile": {...}, "run": {...}, "validate": {...}},
      "command_lines": [["/…/corners", "…"]],
      "repetitions": [{"metrics": {"time": 0.12, "size": 18432, "max_rss": 3.1, "corners": 412}, "ok": true}],
      "metrics": {"time": {"min": 0.11, "median": 0.12, "max": 0.13, "mean": 0.12, "n": 5, "values": [...]}, ...},
      "validation": [{"check": "sha256 of result.pgm", "ok": true, "detail": ""}]
    }

Metric names: ``time`` (wall seconds of the program), ``size`` (bytes of the binary),
``max_rss`` (MiB), and those the program's ``[run.metrics]`` parse. Smaller is better for
``time``, ``size`` and ``max_rss``; a parsed metric says so with ``better = "higher"``,
kept in ``metrics[NAME]["better"]``.

Records are written atomically and read back bounded (size, depth) and checked: a damaged
file is reported and left out, never a crash.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ckpm.errors import CkpmError
from ckpm.fsutil import atomic_write, read_bounded

FORMAT = 1
EXPERIMENTS_DIR = Path(".ckpm") / "experiments"
MAX_RECORD_BYTES = 32 << 20
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: metrics that ckpm measures itself; smaller is better
BUILTIN_METRICS = ("time", "size", "max_rss")


class ExperimentError(CkpmError):
    """An experiment that cannot be found, read or written."""

    code = "experiment"


def check_name(name: str) -> str:
    """An experiment name: letters, digits, ``.``, ``_``, ``-`` (it is a folder name)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in (".", ".."):
        raise ExperimentError(f"{name!r} is not a valid experiment name (letters, digits, . _ -; at most 128)")
    return name


def experiments_root(project: Path) -> Path:
    return Path(project) / EXPERIMENTS_DIR


def stats(values: Iterable[float]) -> dict[str, Any]:
    """min, median, max, mean and n of a metric's values (``values`` kept, in order)."""
    vs = [float(v) for v in values]
    if not vs:
        return {"n": 0, "values": []}
    return {"min": min(vs), "median": median(vs), "max": max(vs), "mean": sum(vs) / len(vs), "n": len(vs),
            "values": vs}


def median(values: Sequence[float]) -> float:
    """The median (the mean of the middle two for an even count), as statistics.median;
    written out because importing statistics costs a warm ``ckpm run`` 6 ms."""
    vs = sorted(values)
    mid = len(vs) // 2
    return vs[mid] if len(vs) % 2 else (vs[mid - 1] + vs[mid]) / 2


def new_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + os.urandom(3).hex()


def summarise(repetitions: Sequence[Mapping[str, Any]], better: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``metrics`` of a record: per metric name, the statistics over the repetitions."""
    names: list[str] = []
    for r in repetitions:
        for k in (r.get("metrics") or {}):
            if k not in names:
                names.append(k)
    out: dict[str, Any] = {}
    for k in names:
        vals = [r["metrics"][k] for r in repetitions if isinstance((r.get("metrics") or {}).get(k), (int, float))
                and not isinstance(r["metrics"][k], bool)]
        s = stats(vals)
        s["better"] = (better or {}).get(k, "lower")
        out[k] = s
    return out


def save_record(project: Path, name: str, record: dict[str, Any]) -> Path:
    """Write ``record`` into experiment ``name`` (its ``id`` is set when missing); returns the file."""
    check_name(name)
    record = dict(record)
    record.setdefault("format", FORMAT)
    record.setdefault("id", new_id())
    record["experiment"] = name
    folder = experiments_root(project) / name
    path = folder / f"{record['id']}.json"
    atomic_write(path, json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    return path


@dataclass
class Experiment:
    name: str
    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files left out, and why

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.records[-1] if self.records else None


def read_record(path: Path) -> dict[str, Any]:
    """One record file, checked (ExperimentError says what is wrong)."""
    try:
        data = read_bounded(path, MAX_RECORD_BYTES)
    except OSError as e:
        raise ExperimentError(f"{path}: cannot read it ({e.strerror or e})") from None
    if data is None:
        raise ExperimentError(f"{path}: larger than {MAX_RECORD_BYTES >> 20} MiB")
    rec = _json(data, path, "a record")
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or not isinstance(rec.get("metrics", {}), dict):
        raise ExperimentError(f"{path}: not a format-{FORMAT} experiment record")
    if not isinstance(rec.get("repetitions", []), list):
        raise ExperimentError(f"{path}: its repetitions are not a list")
    return rec


def _json(data: bytes, path: Path, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ExperimentError(f"{path}: not {what} ({type(e).__name__})") from None


def load_experiment(project: Path, name: str) -> Experiment:
    """Every readable record of experiment ``name``, oldest first (by id)."""
    check_name(name)
    folder = experiments_root(project) / name
    if not folder.is_dir():
        known = list_experiments(project)
        from difflib import get_close_matches

        near = get_close_matches(name, known, n=3)
        raise ExperimentError(f"no experiment named {name!r} in {experiments_root(project)}",
                              hint=f"did you mean {', '.join(near)}?" if near else
                              ("known: " + ", ".join(known) if known else "record one with `ckpm run --record NAME`"))
    exp = Experiment(name, folder)
    for p in sorted(folder.glob("*.json")):
        try:
            exp.records.append(read_record(p))
        except ExperimentError as e:
            exp.problems.append(e.message)
    return exp


def list_experiments(project: Path) -> list[str]:
    root = experiments_root(project)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and NAME_RE.fullmatch(p.name))


def export_experiment(project: Path, name: str, out: Path) -> dict[str, Any]:
    """Write experiment ``name`` as ONE JSON file (``{"format": 1, "experiment", "records": [...]}``)
    that another machine can read with :func:`import_experiment`; returns a summary."""
    exp = load_experiment(project, name)
    doc = {"format": FORMAT, "kind": "ckpm-experiment", "experiment": name, "records": exp.records}
    atomic_write(out, json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return {"experiment": name, "records": len(exp.records), "path": str(out), "skipped": exp.problems}


def import_experiment(project: Path, path: Path, *, name: str | None = None) -> dict[str, Any]:
    """Add the records of an exported file to experiment ``name`` (default: the exported name);
    each record is checked as :func:`read_record` checks a file, and keeps its id."""
    data = read_bounded(path, MAX_RECORD_BYTES * 8)
    if data is None:
        raise ExperimentError(f"{path}: larger than {MAX_RECORD_BYTES * 8 >> 20} MiB")
    doc = _json(data, path, "an exported experiment")
    if not isinstance(doc, dict) or doc.get("kind") != "ckpm-experiment" or not isinstance(doc.get("records"), list):
        raise ExperimentError(f"{path}: not an exported experiment (ckpm results export writes them)")
    target = check_name(name or str(doc.get("experiment") or ""))
    count = known = 0
    for rec in doc["records"]:
        if not isinstance(rec, dict) or rec.get("format") != FORMAT or not isinstance(rec.get("metrics", {}), dict):
            raise ExperimentError(f"{path}: record {count + 1} is not a format-{FORMAT} experiment record")
        rid = str(rec.get("id") or new_id())
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,80}", rid):
            raise ExperimentError(f"{path}: record {count + 1} has an id that is not a file name")
        if (experiments_root(project) / target / f"{rid}.json").is_file():
            known += 1  # the same id is the same record: imported before, or ours to begin with
        save_record(project, target, {**rec, "id": rid})
        count += 1
    return {"experiment": target, "records": count, "added": count - known, "known": known}
