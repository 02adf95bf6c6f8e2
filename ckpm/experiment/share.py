"""What a record carries to a registry (``ckpm results push``), and what a pulled one becomes here.

:func:`shared_record` is the only definition of what leaves the machine. From a local record
(``record.py``) it keeps, and nothing else:

- ``program``: name, version (the project's version when the record has none), command;
  ``experiment`` and ``local_id`` (the record's own name and id), ``created``;
- ``config``: flags, cflags, ldflags, extra cflags, the env and params the record lists,
  input, repeat, command, the compiler's name and version (never its path); ``point``;
- ``target``; ``lock``: the sha256 of the lock text and the locked name, version and kind
  of source of each package on the target (no URLs, no paths);
- ``host``: CPU model and count, OS, architecture, libc (the record's ``machine``), the host
  facts' versions, and the versions of the host software the lock pins (compilers);
- ``metrics``: per metric its per-repetition values and which way is better;
  ``validation``: the verdict and each check's name and result (not its detail);
- ``ok`` and ``ckpm_version``.

Any string that holds the user's home folder has it replaced by ``~``. The result depends
only on the record, so a second push sends the same bytes and the registry adds nothing.

:func:`pulled_record` turns a registry's record back into a local format-1 record, marked
``pulled`` with the registry, the user who pushed it and its id there, so ``results
ls/show/compare/plot/report`` read it as they read one's own.
"""
from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Mapping

from ckpm.experiment.record import FORMAT, ExperimentError, stats

CONFIG_KEYS = ("flags", "cflags", "ldflags", "extra_cflags", "env", "params", "input", "repeat", "command")
MACHINE_KEYS = ("cpu_model", "cpu_count", "os", "arch", "libc")
_ID_RE = re.compile(r"[0-9a-f]{32}")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def scrub(value: Any, home: str | None) -> Any:
    """``value`` with every occurrence of ``home`` in its strings (keys too) replaced by ``~``."""
    if not home or home in ("/", ""):
        return value
    if isinstance(value, str):
        return value.replace(home.rstrip("/"), "~")
    if isinstance(value, Mapping):
        return {scrub(str(k), home): scrub(v, home) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, home) for v in value]
    return value


def lock_summary(text: Any, target: str | None) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The pushed ``lock`` (hash and packages on ``target``) and the host software it pins (name → version)."""
    if not isinstance(text, str) or not text:
        return None, {}
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    from ckpm.errors import CkpmError
    from ckpm.model.lockfile import Lock

    try:
        lock = Lock.loads(text, "the record's lock")
    except CkpmError:
        return {"hash": digest, "packages": []}, {}
    packages = []
    software: dict[str, str] = {}
    for p in lock.packages:
        if target and p.targets and target not in p.targets:
            continue
        packages.append({"name": p.name, "version": p.version, "source": p.source_kind})
        if p.source_kind == "host":
            software[p.name] = p.version
    packages.sort(key=lambda p: (p["name"], p["version"]))
    return {"hash": digest, "packages": packages}, software


def _host(record: Mapping[str, Any], software: Mapping[str, str]) -> dict[str, Any]:
    machine = _map(record.get("machine"))
    facts = _map(record.get("host"))
    target = str(record.get("target") or "")
    os_name, _, arch = target.partition("-")
    out: dict[str, Any] = {}
    for k in MACHINE_KEYS:
        v = machine.get(k)
        if v is None:  # an older record: what its target and host facts say
            v = {"os": f"{os_name} {facts.get('__os', '')}".strip() if os_name else None,
                 "arch": arch or None,
                 "libc": facts.get("__libc")}.get(k)
        if v is not None:
            out[k] = v if isinstance(v, (int, str)) and not isinstance(v, bool) else str(v)
    out["facts"] = {str(k): str(v) for k, v in sorted(facts.items())}
    out["software"] = dict(sorted(software.items()))
    return out


def shared_record(record: Mapping[str, Any], *, home: str | None = None, project: str | None = None,
                  project_version: str | None = None) -> dict[str, Any]:
    """What ``ckpm results push`` sends of ``record`` (see the module's docstring); ExperimentError
    when it cannot be shared (no metric values, or a record pulled from a registry)."""
    rid = str(record.get("id") or "")
    if isinstance(record.get("pulled"), Mapping):
        raise ExperimentError(f"record {rid} was pulled from a registry; only one's own records are pushed")
    prog = _map(record.get("program"))
    name = str(prog.get("name") or prog.get("command") or "")
    version = prog.get("version")
    if version is None and project and name == project:
        version = project_version
    metrics: dict[str, Any] = {}
    for k, m in (record.get("metrics") or {}).items():
        if not isinstance(m, Mapping):
            continue
        vals = [float(v) for v in m.get("values") or [] if isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v)]
        if vals:
            metrics[str(k)] = {"values": vals, "better": "higher" if m.get("better") == "higher" else "lower"}
    if not metrics:
        raise ExperimentError(f"record {rid} has no metric values to share (a failed run?)")
    config = _map(record.get("config"))
    shared_config: dict[str, Any] = {k: config[k] for k in CONFIG_KEYS if k in config}
    cc = config.get("compiler")
    if isinstance(cc, Mapping):
        shared_config["compiler"] = {k: cc[k] for k in ("name", "version") if cc.get(k) is not None}
    target = record.get("target")
    lock, software = lock_summary(record.get("lock"), str(target) if target else None)
    checks = [c for c in record.get("validation") or [] if isinstance(c, Mapping)]
    out: dict[str, Any] = {
        "format": FORMAT,
        "program": {"name": name, "version": None if version is None else str(version),
                    "command": None if prog.get("command") is None else str(prog.get("command"))},
        "experiment": str(record.get("experiment") or ""),
        "local_id": rid,
        "created": str(record.get("created") or ""),
        "ckpm_version": str(record.get("ckpm_version") or ""),
        "ok": record.get("ok") is True,
        "target": str(target or ""),
        "config": shared_config,
        "point": dict(record["point"]) if isinstance(record.get("point"), Mapping) else None,
        "lock": lock or {},
        "host": _host(record, software),
        "metrics": metrics,
        "validation": {"ok": all(c.get("ok") is True for c in checks) if checks else record.get("ok") is True,
                       "checks": [{"check": str(c.get("check")), "ok": c.get("ok") is True} for c in checks]},
    }
    return scrub(out, home)


def local_id_for(item: Mapping[str, Any]) -> str:
    """The local id of a pulled record: its creation time (so records sort by time) and its registry id."""
    sid = str(item.get("id") or "")
    rec = _map(item.get("record"))
    digits = re.sub(r"[^0-9]", "", str(rec.get("created") or ""))[:14]
    return f"{digits[:8]}T{digits[8:14]}Z-{sid[:16]}" if len(digits) == 14 else sid


def pulled_record(item: Mapping[str, Any], registry: str, experiment: str) -> dict[str, Any]:
    """A record of the registry (``GET /api/v1/results?full=true`` item) as a local format-1 record."""
    sid = item.get("id")
    rec = item.get("record")
    if not isinstance(sid, str) or not _ID_RE.fullmatch(sid) or not isinstance(rec, Mapping):
        raise ExperimentError(f"{registry}: a result without a valid id or record")
    metrics: dict[str, Any] = {}
    reps: list[dict[str, Any]] = []
    for k, m in (rec.get("metrics") or {}).items():
        if not isinstance(m, Mapping) or not isinstance(m.get("values"), list):
            continue
        vals = [float(v) for v in m["values"] if isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v)]
        if not vals:
            continue
        s = stats(vals)
        s["better"] = "higher" if m.get("better") == "higher" else "lower"
        metrics[str(k)] = s
        for i, v in enumerate(vals):
            while len(reps) <= i:
                reps.append({"metrics": {}, "ok": rec.get("ok") is True, "n": len(reps) + 1})
            reps[i]["metrics"][str(k)] = v
    prog = _map(rec.get("program"))
    lock = _map(rec.get("lock"))
    val = _map(rec.get("validation"))
    return {
        "format": FORMAT,
        "id": local_id_for(item),
        "experiment": experiment,
        "created": str(rec.get("created") or ""),
        "ckpm_version": str(rec.get("ckpm_version") or ""),
        "ok": rec.get("ok") is True,
        "program": {k: prog.get(k) for k in ("name", "version", "command")},
        "target": rec.get("target"),
        "config": dict(rec["config"]) if isinstance(rec.get("config"), Mapping) else {},
        "point": dict(rec["point"]) if isinstance(rec.get("point"), Mapping) else None,
        "host": dict(rec["host"]) if isinstance(rec.get("host"), Mapping) else {},
        "lock_hash": lock.get("hash"),
        "lock_packages": list(lock.get("packages") or []),
        "repetitions": reps,
        "metrics": metrics,
        "validation": [{"check": str(c.get("check")), "ok": c.get("ok") is True, "detail": ""}
                       for c in val.get("checks") or [] if isinstance(c, Mapping)],
        "pulled": {"registry": registry, "id": sid, "user": str(item.get("user") or ""),
                   "pushed": str(item.get("pushed") or ""), "machine": str(item.get("machine") or "")},
    }
