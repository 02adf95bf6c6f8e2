"""Results over recorded experiments: listings, one experiment's records, comparisons, Pareto frontiers.

Everything here reads records (``record.py``) and returns plain data (dicts, or dataclasses
with ``to_dict``), so the CLI, ``ckpm.access``, the report and the tuner share one meaning
of "faster", "same within noise" and "on the frontier".

A record is chosen as ``NAME`` (the experiment's latest record) or ``NAME@ID`` (the record
whose id is ``ID`` or starts with it). A comparison reports, per metric, the ratio b/a of the
medians and a verdict that names a change only when the ranges ``[min, max]`` of the two
records' repetitions do not overlap (touching ranges overlap): with five repetitions each,
that is a change that noise alone rarely makes, and it needs no distribution assumption.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ckpm.experiment.record import (BUILTIN_METRICS, Experiment, ExperimentError, list_experiments,
                                    load_experiment)
from ckpm.report import Reporter

#: what a change is called, per metric, when it is lower (first) or higher (second)
CHANGE_WORDS: dict[str, tuple[str, str]] = {"time": ("faster", "slower"), "size": ("smaller", "larger"),
                                            "max_rss": ("smaller", "larger")}
SAME = "same (within noise)"
NO_DATA = "no data"
#: configuration keys compared first, in this order; any other key of ``config`` follows, sorted
CONFIG_ORDER = ("flags", "cflags", "ldflags", "env", "params", "input", "repeat", "compiler")


# ---------------------------------------------------------------------------------------------
# loading and choosing records


def load(project: Path, name: str, reporter: Reporter | None = None) -> Experiment:
    """Experiment ``name`` of ``project``; each damaged record file becomes a warning (it is left out)."""
    exp = load_experiment(project, name)
    if reporter is not None:
        reporter.warn_all([f"experiment {name}: left out {p}" for p in exp.problems])
    return exp


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"NAME@ID"`` → ``("NAME", "ID")``; ``"NAME"`` → ``("NAME", None)``."""
    name, sep, rid = ref.partition("@")
    if sep and not rid:
        raise ExperimentError(f"{ref!r}: no record id after '@'", hint="write NAME@ID (see `ckpm results show NAME`)")
    return name, (rid if sep else None)


def pick(exp: Experiment, rid: str | None) -> dict[str, Any]:
    """The record of ``exp`` with id ``rid`` (or the only one starting with it); the latest when None."""
    if not exp.records:
        why = f" ({len(exp.problems)} damaged record files left out)" if exp.problems else ""
        raise ExperimentError(f"experiment {exp.name} has no records{why}")
    if rid is None:
        return exp.records[-1]
    exact = [r for r in exp.records if r.get("id") == rid]
    if exact:
        return exact[0]
    found = [r for r in exp.records if str(r.get("id", "")).startswith(rid)]
    if len(found) == 1:
        return found[0]
    ids = [str(r.get("id")) for r in exp.records]
    if found:
        raise ExperimentError(f"{exp.name}@{rid} is ambiguous: {len(found)} records start with it",
                              details=[str(r.get("id")) for r in found[:10]], hint="give more of the id")
    from difflib import get_close_matches

    near = get_close_matches(rid, ids, n=3, cutoff=0.5)
    raise ExperimentError(f"experiment {exp.name} has no record {rid!r}",
                          hint=f"did you mean {', '.join(near)}?" if near else
                          f"its records: {', '.join(ids[-5:])}" + (" …" if len(ids) > 5 else ""))


def resolve_ref(project: Path, ref: str, reporter: Reporter | None = None) -> dict[str, Any]:
    """The record ``NAME`` or ``NAME@ID`` names."""
    name, rid = split_ref(ref)
    return pick(load(project, name, reporter), rid)


# ---------------------------------------------------------------------------------------------
# reading a record


def metric_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every metric name of ``records``: ckpm's own (time, size, max_rss) first, then in order of appearance."""
    seen: list[str] = []
    for r in records:
        for k in (r.get("metrics") or {}):
            if isinstance(k, str) and k not in seen:
                seen.append(k)
    return [m for m in BUILTIN_METRICS if m in seen] + [m for m in seen if m not in BUILTIN_METRICS]


def metric(record: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """``{"min", "median", "max", "n", "better"}`` of metric ``name``; None when the record has no value."""
    m = (record.get("metrics") or {}).get(name)
    if not isinstance(m, Mapping):
        return None
    try:
        lo, med, hi = (float(m[k]) for k in ("min", "median", "max"))
    except (KeyError, TypeError, ValueError):
        return None
    if any(math.isnan(v) for v in (lo, med, hi)):
        return None
    n = m.get("n")
    return {"min": lo, "median": med, "max": hi, "n": n if isinstance(n, int) else None,
            "better": "higher" if m.get("better") == "higher" else "lower"}


def better_of(record: Mapping[str, Any], name: str) -> str:
    """``"lower"`` or ``"higher"``: which way metric ``name`` improves (lower unless the record says so)."""
    m = (record.get("metrics") or {}).get(name)
    return "higher" if isinstance(m, Mapping) and m.get("better") == "higher" else "lower"


def fmt_number(v: float | int | None) -> str:
    """A number for people: integers as they are, large values rounded, others to 4 significant digits."""
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.4g}"


def _text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    return str(v)


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """A nested mapping as dotted keys (``{"env": {"A": "1"}}`` → ``{"env.A": "1"}``); lists stay whole."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k in value:
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), value[k]))
        return out
    return {prefix: value}


def config_items(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's configuration as dotted keys, in :data:`CONFIG_ORDER` then sorted."""
    config = record.get("config")
    if not isinstance(config, Mapping):
        return {}
    keys = [k for k in CONFIG_ORDER if k in config] + sorted(str(k) for k in config if k not in CONFIG_ORDER)
    out: dict[str, Any] = {}
    for k in keys:
        out.update(flatten(k, config[k]))
    return out


def config_summary(record: Mapping[str, Any]) -> str:
    """One line: ``flags=speed cflags=-O3 env.OMP_NUM_THREADS=1 input=… compiler=gcc 12.2.0``."""
    items = config_items(record)
    parts = [f"{k}={_text(v)}" for k, v in items.items()
             if not k.startswith("compiler.") and v not in (None, "", [], {})]
    cc = " ".join(_text(items[k]) for k in ("compiler.name", "compiler.version") if items.get(k))
    if cc:
        parts.append(f"compiler={cc}")
    return " ".join(parts)


def program_name(record: Mapping[str, Any]) -> str:
    p = record.get("program")
    if isinstance(p, Mapping):
        return str(p.get("name") or p.get("command") or "")
    return "" if p is None else str(p)


def lock_digest(text: Any) -> str | None:
    """``sha256:<12 hex> (<n> lines)`` of a record's lock text; None when it has none."""
    if not isinstance(text, str):
        return None
    h = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"sha256:{h} ({len(text.splitlines())} lines)"


# ---------------------------------------------------------------------------------------------
# listing and showing


def list_results(project: Path, reporter: Reporter | None = None) -> list[dict[str, Any]]:
    """One row per experiment: name, record count, latest id/time, program, ok, key metric medians.

    ``metrics`` holds the medians of the latest record; ``problems`` the damaged files left out.
    """
    rows = []
    for name in list_experiments(project):
        exp = load(project, name, reporter)
        latest = exp.latest
        rows.append({
            "name": name,
            "records": len(exp.records),
            "ok_records": sum(1 for r in exp.records if r.get("ok") is True),
            "latest": latest.get("id") if latest else None,
            "created": latest.get("created") if latest else None,
            "program": program_name(latest) if latest else None,
            "ok": latest.get("ok") is True if latest else None,
            "metrics": {m: s["median"] for m in metric_names([latest]) if (s := metric(latest, m))} if latest else {},
            "problems": list(exp.problems),
        })
    return rows


def record_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """What ``show`` says of one record: id, time, ok, program, target, configuration, metrics."""
    return {
        "id": record.get("id"),
        "created": record.get("created"),
        "ok": record.get("ok") is True,
        "program": program_name(record),
        "target": record.get("target"),
        "config": config_items(record),
        "summary": config_summary(record),
        "point": record.get("point") if isinstance(record.get("point"), Mapping) else None,
        "metrics": {m: s for m in metric_names([record]) if (s := metric(record, m))},
        "validation": [v for v in record.get("validation") or [] if isinstance(v, Mapping)],
        "lock": lock_digest(record.get("lock")),
    }


def show(project: Path, name: str, reporter: Reporter | None = None) -> dict[str, Any]:
    """Every record of experiment ``name`` (or the one ``NAME@ID`` names), oldest first."""
    exp_name, rid = split_ref(name)
    exp = load(project, exp_name, reporter)
    records = [pick(exp, rid)] if rid is not None else exp.records
    return {"name": exp_name, "path": str(exp.path), "metrics": metric_names(records),
            "records": [record_view(r) for r in records], "problems": list(exp.problems)}


# ---------------------------------------------------------------------------------------------
# comparing


@dataclass
class MetricComparison:
    """One metric of two records: the medians and ranges, the ratio b/a, the verdict."""

    metric: str
    better: str  # "lower" or "higher"
    a: dict[str, Any]
    b: dict[str, Any]
    ratio: float | None  # b/a of the medians; None when a's median is 0
    verdict: str  # faster/slower/smaller/larger/better/worse, or SAME
    improved: bool | None  # True: b is better, False: b is worse, None: same within noise

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "better": self.better, "a": self.a, "b": self.b, "ratio": self.ratio,
                "verdict": self.verdict, "improved": self.improved}


@dataclass
class Comparison:
    """Record b against record a: each common metric, and every configuration difference."""

    a: str  # NAME@ID
    b: str
    metrics: list[MetricComparison] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)  # {"what", "a", "b"}
    only_a: list[str] = field(default_factory=list)  # metrics only a has
    only_b: list[str] = field(default_factory=list)
    a_ok: bool = True
    b_ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "a_ok": self.a_ok, "b_ok": self.b_ok,
                "metrics": [m.to_dict() for m in self.metrics], "only_a": self.only_a, "only_b": self.only_b,
                "differences": self.differences}


def verdict(name: str, a: Mapping[str, float], b: Mapping[str, float], better: str) -> tuple[str, bool | None]:
    """The verdict on b against a for metric ``name``: a change only when the ranges do not overlap.

    Returns the word and whether b improved (None: same within noise). ``time`` says
    faster/slower, ``size`` and ``max_rss`` smaller/larger, any other metric better/worse.
    """
    if b["max"] < a["min"]:
        lower = True
    elif b["min"] > a["max"]:
        lower = False
    else:
        return SAME, None
    improved = lower if better == "lower" else not lower
    if name in CHANGE_WORDS:
        word = CHANGE_WORDS[name][0 if lower else 1]
    else:
        word = "better" if improved else "worse"
    return word, improved


def compare_metric(name: str, ra: Mapping[str, Any], rb: Mapping[str, Any]) -> MetricComparison | None:
    """Metric ``name`` of record b against record a; None when either has no value for it."""
    a, b = metric(ra, name), metric(rb, name)
    if a is None or b is None:
        return None
    better = b["better"]  # b's direction when the two records disagree (summarise writes one in each)
    ratio = b["median"] / a["median"] if a["median"] != 0 else None
    word, improved = verdict(name, a, b, better)
    return MetricComparison(name, better, a, b, ratio, word, improved)


def _program_items(record: Mapping[str, Any]) -> dict[str, Any]:
    p = record.get("program")
    return flatten("program", p) if isinstance(p, Mapping) else {"program": p}


def config_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every difference between two records' configurations, as ``{"what", "a", "b"}`` (None: absent).

    Compared: the program, every ``config`` key (flags, cflags, ldflags, env.X, params.X, input,
    repeat, compiler.name/version/path, …), the target, each host fact (``host.X``) and the lock
    text (``lock``: its digest and line count; the text itself is in the records).
    """
    out: list[dict[str, Any]] = []

    def diff(items_a: Mapping[str, Any], items_b: Mapping[str, Any]) -> None:
        for k in list(items_a) + [k for k in items_b if k not in items_a]:
            va, vb = items_a.get(k), items_b.get(k)
            if va != vb:
                out.append({"what": k, "a": va, "b": vb})

    diff(_program_items(a), _program_items(b))
    diff(config_items(a), config_items(b))
    diff({"target": a.get("target")}, {"target": b.get("target")})
    ha, hb = a.get("host"), b.get("host")
    diff(flatten("host", ha) if isinstance(ha, Mapping) else {}, flatten("host", hb) if isinstance(hb, Mapping) else {})
    la, lb = a.get("lock"), b.get("lock")
    if la != lb:
        out.append({"what": "lock", "a": lock_digest(la), "b": lock_digest(lb)})
    return out


def ref_of(record: Mapping[str, Any]) -> str:
    return f"{record.get('experiment')}@{record.get('id')}"


def compare_records(ra: Mapping[str, Any], rb: Mapping[str, Any], *,
                    metrics: Sequence[str] | None = None) -> Comparison:
    """Record ``rb`` against record ``ra`` (``metrics``: only these, in this order; default: every common one)."""
    names_a, names_b = metric_names([ra]), metric_names([rb])
    if metrics:
        unknown = [m for m in metrics if m not in names_a and m not in names_b]
        if unknown:
            raise ExperimentError(f"no metric {', '.join(map(repr, unknown))} in {ref_of(ra)} or {ref_of(rb)}",
                                  hint=f"metrics: {', '.join(metric_names([ra, rb])) or 'none'}")
        wanted = list(metrics)
    else:
        wanted = [m for m in names_a if m in names_b]
    cmp = Comparison(ref_of(ra), ref_of(rb), a_ok=ra.get("ok") is True, b_ok=rb.get("ok") is True,
                     only_a=[m for m in names_a if m not in names_b], only_b=[m for m in names_b if m not in names_a])
    for m in wanted:
        mc = compare_metric(m, ra, rb)
        if mc is not None:
            cmp.metrics.append(mc)
    cmp.differences = config_differences(ra, rb)
    return cmp


def compare(project: Path, a: str, b: str, *, metrics: list[str] | None = None,
            reporter: Reporter | None = None) -> dict[str, Any]:
    """Compare ``b`` against ``a`` (each ``NAME`` for its latest record, or ``NAME@ID``).

    Per metric present in both: the medians with their ranges, the ratio b/a, and a verdict
    (see :func:`verdict`); then the configuration differences (:func:`config_differences`).
    """
    ra = resolve_ref(project, a, reporter)
    rb = resolve_ref(project, b, reporter)
    return compare_records(ra, rb, metrics=metrics).to_dict()


# ---------------------------------------------------------------------------------------------
# Pareto frontiers


def dominates(p: Sequence[float], q: Sequence[float]) -> bool:
    """Whether ``p`` dominates ``q`` (all minimised): no worse in every objective, better in one."""
    return all(x <= y for x, y in zip(p, q)) and any(x < y for x, y in zip(p, q))


def pareto(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices (ascending) of the non-dominated points, every objective minimised.

    Ties: equal points do not dominate each other, so all copies of a frontier point are
    kept; a point equal to another in one objective and worse in another is dominated. A
    point with a NaN coordinate is never on the frontier and never dominates. Costs
    O(n² · k) comparisons for n points of k objectives (a tuning budget is hundreds).
    """
    if not points:
        return []
    k = len(points[0])
    if any(len(p) != k for p in points):
        raise ValueError("every point needs the same number of objectives")
    ok = [i for i, p in enumerate(points) if not any(math.isnan(float(x)) for x in p)]
    vecs = {i: tuple(float(x) for x in points[i]) for i in ok}
    # visiting points in lexicographic order means that a dominating point is seen before the point it dominates
    order = sorted(ok, key=lambda i: vecs[i])
    front: list[int] = []
    for i in order:
        if not any(dominates(vecs[j], vecs[i]) for j in front):
            front.append(i)
    return sorted(front)


def objective_vector(record: Mapping[str, Any], objectives: Sequence[str]) -> tuple[float, ...] | None:
    """The record's medians of ``objectives``, negated where higher is better (so all are minimised)."""
    out = []
    for name in objectives:
        s = metric(record, name)
        if s is None:
            return None
        out.append(-s["median"] if s["better"] == "higher" else s["median"])
    return tuple(out)


def frontier(records: Sequence[Mapping[str, Any]], objectives: list[str]) -> list[Mapping[str, Any]]:
    """The records on the Pareto frontier of ``objectives`` (medians; each metric's "better" direction).

    Records lacking a value for an objective are left out; the rest keep their order.
    """
    if not objectives:
        raise ExperimentError("a frontier needs at least one objective")
    vecs = [(r, objective_vector(r, objectives)) for r in records]
    usable = [(r, v) for r, v in vecs if v is not None]
    return [usable[i][0] for i in pareto([v for _, v in usable])]
