"""``ckpm replay NAME``: the same configuration again, and what differs.

The record holds the request (component, command, flags, extra flags, env, params, input,
target, repetitions) and the text of the lock it ran with. Replay runs that request with
that lock (``sync`` provisions from it, never resolving: a component that cannot be had
any more fails clearly), then compares:

- the configuration: compiler (name, version, path), flags, env, params, input, target,
  the lock, and the host facts; every difference is reported;
- the metrics: a metric regressed when its new median is worse than the old record's worst
  repetition by more than ``tolerance`` (a fraction; default 0.10) plus a floor below which
  a clock or a page count cannot tell (``FLOORS``: 5 ms of time, 1 MiB of peak memory) —
  noise within the old runs' range is not a regression.

The result is ``ok`` only with no configuration difference and no regression; the CLI
exits non-zero otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpm.experiment.record import load_experiment
from ckpm.experiment.tolerance import FLOORS  # absolute differences too small to mean anything
from ckpm.model.lockfile import Lock
from ckpm.pipeline.run import RunRequest, run
from ckpm.workspace import Workspace

DEFAULT_TOLERANCE = 0.10


@dataclass
class ReplayResult:
    experiment: str
    original: dict[str, Any]
    record: dict[str, Any]
    differences: list[dict[str, Any]] = field(default_factory=list)  # {"what", "recorded", "now"}
    metrics: list[dict[str, Any]] = field(default_factory=list)  # {"metric", "recorded", "now", "ratio", "verdict"}
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [m for m in self.metrics if m["verdict"] == "regression"]

    @property
    def ok(self) -> bool:
        return not self.differences and not self.regressions and bool(self.record.get("ok"))

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "ok": self.ok, "recorded_id": self.original.get("id"),
                "differences": self.differences, "metrics": self.metrics, "tolerance": self.tolerance,
                "record": {k: v for k, v in self.record.items() if k not in ("lock", "stages")}}


def replay(ws: Workspace, name: str, *, record_id: str | None = None, tolerance: float = DEFAULT_TOLERANCE,
           save_as: str | None = None, mirror_dirs: tuple[Path, ...] = ()) -> ReplayResult:
    """Run experiment ``name``'s latest record (or ``record_id``) again and compare
    (``mirror_dirs``: vendored folders tried first when provisioning, as ``sync --mirror``)."""
    from ckpm.experiment.record import ExperimentError

    exp = load_experiment(ws.root, name)
    recs = [r for r in exp.records if record_id is None or r.get("id") == record_id]
    if not recs:
        raise ExperimentError(f"experiment {name!r} has no record" + (f" {record_id}" if record_id else ""),
                              details=exp.problems[:5])
    old = recs[-1]
    request = RunRequest.from_dict(old.get("request") or {})
    request.record = save_as
    lock = Lock.loads(str(old.get("lock", "")), f"the lock recorded in {name}")
    new = run(ws, request, lock=lock, mirror_dirs=mirror_dirs)
    res = ReplayResult(name, old, new, tolerance=tolerance)
    res.differences = config_differences(old, new)
    res.metrics = metric_changes(old, new, tolerance)
    return res


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Every configuration difference between the recorded run and the replay
    (ckpm.experiment.results.config_differences, as ``{"what", "recorded", "now"}``)."""
    from ckpm.experiment.results import config_differences as diff

    return [{"what": d["what"], "recorded": d["a"], "now": d["b"]} for d in diff(a, b)]


def metric_changes(a: dict[str, Any], b: dict[str, Any], tolerance: float) -> list[dict[str, Any]]:
    out = []
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    for k in sorted(set(ma) & set(mb)):
        x, y = ma[k], mb[k]
        if not x.get("n") or not y.get("n"):
            continue
        higher = x.get("better") == "higher"
        ratio = y["median"] / x["median"] if x["median"] else None
        floor = FLOORS.get(k, 0.0)
        if higher:
            worse = y["median"] < x["min"] * (1 - tolerance) - floor
            better = y["median"] > x["max"] * (1 + tolerance) + floor
        else:
            worse = y["median"] > x["max"] * (1 + tolerance) + floor
            better = y["median"] < x["min"] * (1 - tolerance) - floor
        verdict = "regression" if worse else "improvement" if better else "same"
        out.append({"metric": k, "recorded": x["median"], "now": y["median"], "ratio": ratio, "verdict": verdict})
    return out
