"""How close a metric measured again must be to its record to count as the same result.

A record keeps, per metric, the tolerance it was measured with (``record["tolerances"]``,
written by ``ckpm run``): ``{"kind": "exact"}`` or ``{"kind": "relative", "rel": 0.5,
"floor": 0.005}``. The program's ``[run.tolerance]`` table sets them (a fraction per metric
name; ``0`` is exact); what it leaves out gets the defaults below:

- ``time`` and ``max_rss`` are relative (``DEFAULT_RELATIVE``: another machine, another load)
  with an absolute floor below which a clock or a page count cannot tell (``FLOORS``);
- ``size`` (bytes of the binary) is relative: another compiler build gives another size;
- a program's own metric is exact when every recorded value is a whole number (a count: images
  read, corners found), else relative by ``DEFAULT_PROGRAM``.

A record written before tolerances existed gets the same defaults from its values, so old
records compare the same way. ``within`` is the one definition of "the same result" that
``ckpm artifact evaluate`` uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

#: metrics ckpm measures itself, and their default relative tolerance
DEFAULT_RELATIVE = {"time": 1.0, "max_rss": 0.5, "size": 0.25}
#: a program's own metric that is not a whole number
DEFAULT_PROGRAM = 0.10
#: absolute differences too small to mean anything, per built-in metric
FLOORS = {"time": 0.005, "max_rss": 1.0}


@dataclass(frozen=True)
class Tolerance:
    kind: str  # "exact" | "relative"
    rel: float = 0.0
    floor: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "exact":
            return {"kind": "exact"}
        return {"kind": "relative", "rel": self.rel, "floor": self.floor}

    def describe(self) -> str:
        if self.kind == "exact":
            return "exact"
        return f"±{self.rel:.0%}" + (f" (+{self.floor:g})" if self.floor else "")


def default_tolerance(name: str, stat: Mapping[str, Any] | None) -> Tolerance:
    """The tolerance of metric ``name`` when the program declares none (see the module's note)."""
    if name in DEFAULT_RELATIVE:
        return Tolerance("relative", DEFAULT_RELATIVE[name], FLOORS.get(name, 0.0))
    values = (stat or {}).get("values") or []
    if values and all(isinstance(v, (int, float)) and float(v).is_integer() for v in values):
        return Tolerance("exact")
    return Tolerance("relative", DEFAULT_PROGRAM)


def declared(name: str, fraction: float) -> Tolerance:
    """A tolerance from ``[run.tolerance]``: 0 is exact, anything else relative (floors kept)."""
    if fraction == 0:
        return Tolerance("exact")
    return Tolerance("relative", float(fraction), FLOORS.get(name, 0.0))


def for_record(metrics: Mapping[str, Any], table: Mapping[str, float] | None = None) -> dict[str, dict[str, Any]]:
    """``record["tolerances"]`` for a record's ``metrics``: declared ones, else the defaults."""
    table = table or {}
    return {k: (declared(k, table[k]) if k in table else default_tolerance(k, v)).to_dict()
            for k, v in metrics.items()}


def of_record(record: Mapping[str, Any], name: str) -> Tolerance:
    """Metric ``name``'s tolerance as the record says (checked), else the default from its values."""
    t = (record.get("tolerances") or {}).get(name) if isinstance(record.get("tolerances"), Mapping) else None
    if isinstance(t, Mapping):
        if t.get("kind") == "exact":
            return Tolerance("exact")
        rel, floor = t.get("rel"), t.get("floor", 0.0)
        if (t.get("kind") == "relative" and isinstance(rel, (int, float)) and isinstance(floor, (int, float))
                and not isinstance(rel, bool) and 0 <= rel <= 100 and 0 <= floor):
            return Tolerance("relative", float(rel), float(floor))
    return default_tolerance(name, (record.get("metrics") or {}).get(name))


def within(recorded: float, now: float, tol: Tolerance) -> bool:
    """Is ``now`` the same result as ``recorded`` (medians) under ``tol``?"""
    if tol.kind == "exact":
        return abs(now - recorded) <= 1e-9 * max(1.0, abs(recorded))
    return abs(now - recorded) <= tol.rel * abs(recorded) + tol.floor


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every metric of the old record measured again: medians, tolerance, and whether it holds."""
    out = []
    mo, mn = old.get("metrics") or {}, new.get("metrics") or {}
    for k in sorted(mo):
        a = mo[k]
        if not isinstance(a, Mapping) or not a.get("n"):
            continue
        tol = of_record(old, k)
        b = mn.get(k) if isinstance(mn.get(k), Mapping) else None
        if b is None or not b.get("n"):
            out.append({"metric": k, "recorded": a.get("median"), "now": None, "tolerance": tol.to_dict(),
                        "allowed": tol.describe(), "ok": False, "detail": "not measured again"})
            continue
        ok = within(float(a["median"]), float(b["median"]), tol)
        ratio = b["median"] / a["median"] if a["median"] else None
        out.append({"metric": k, "recorded": a["median"], "now": b["median"], "ratio": ratio,
                    "tolerance": tol.to_dict(), "allowed": tol.describe(), "ok": ok,
                    "detail": "" if ok else f"{k} is {b['median']:.6g}, recorded {a['median']:.6g} ({tol.describe()})"})
    return out
