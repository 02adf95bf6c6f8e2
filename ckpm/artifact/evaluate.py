"""``ckpm artifact evaluate`` and ``inspect``: a bundle judged on this machine, with three verdicts.

In the spirit of the ACM artifact badges, each with the evidence that decided it:

- **available**: the bundle is complete and verified (every member's sha256 against the
  manifest, after a safe unpack; every source the lock needs present in ``sources/`` with the
  lock's sha256);
- **functional**: everything provisions and builds, offline, with the bundle as the mirror
  and in the user's own store, and each recorded experiment runs again and passes its
  validations. Host software that differs from the lock's host pins, and configuration that
  differs from the records (another compiler version, other host facts), is listed: the
  verdict is then "functional, with these differences", never a crash;
- **reproduced**: every metric of every experiment, measured again, is within the
  tolerance its record carries (ckpm/experiment/tolerance.py: exact for counts and for what
  the program declares exact, relative for times).

The exit code says how far it got (:data:`EXIT`): 0 reproduced, 9 functional but not
reproduced, 8 available but not functional, 7 not available. ``report.json`` and
``report.html`` hold everything.

This module sits above the pipeline (it replays experiments); the bundle format below it
(``ckpm.artifact.bundle``) is what the pipeline's remote runs reuse.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ckpm import __version__
from ckpm.artifact.bundle import (SOURCES, ArtifactError, Unpacked, read_manifest, read_member, unpack_verified,
                                  verify)
from ckpm.errors import CkpmError
from ckpm.fsutil import atomic_write, sha256_file
from ckpm.model.lockfile import LOCKFILE, Lock
from ckpm.model.source import HostSource
from ckpm.workspace import Workspace

#: the exit code of ``evaluate`` for the furthest verdict reached
EXIT = {"reproduced": 0, "functional": 9, "available": 8, "none": 7}
YES = ("yes", "with-differences")


@dataclass
class Verdict:
    name: str
    status: str = "not-assessed"  # yes | with-differences | no | not-assessed
    evidence: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in YES

    def label(self) -> str:
        return {"yes": self.name, "with-differences": f"{self.name}, with these differences",
                "no": f"not {self.name}", "not-assessed": f"{self.name}: not assessed"}[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "label": self.label(), "evidence": self.evidence,
                "differences": self.differences}


@dataclass
class Evaluation:
    bundle: str
    verdicts: dict[str, Verdict]
    manifest: dict[str, Any] | None = None
    project: str | None = None
    drift: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    report_dir: str | None = None
    seconds: float = 0.0

    @property
    def reached(self) -> str:
        for name in ("reproduced", "functional", "available"):
            if self.verdicts[name].ok:
                return name
        return "none"

    @property
    def exit_code(self) -> int:
        return EXIT[self.reached]

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest or {}
        return {"bundle": self.bundle, "ckpm_version": __version__, "packed_by": m.get("ckpm_version"),
                "project": m.get("project"), "targets": m.get("targets"), "unpacked": self.project,
                "verdicts": {k: v.to_dict() for k, v in self.verdicts.items()}, "reached": self.reached,
                "exit_code": self.exit_code, "host_drift": self.drift, "experiments": self.experiments,
                "report": self.report_dir, "seconds": round(self.seconds, 3)}


# -- inspect --------------------------------------------------------------------------------------

def inspect(bundle: Path, settings: Any = None, *, check_hashes: bool = True) -> dict[str, Any]:
    """What the bundle holds, for which targets, and the host software it expects, as a drift
    table against this machine. Nothing is provisioned or run; only the manifest, ckpm.toml and
    ckpm.lock are written (to a temporary folder) to re-probe the host pins."""
    bundle = Path(bundle)
    doc = verify(bundle) if check_hashes else read_manifest(bundle)
    members = doc["members"]
    sections: dict[str, dict[str, int]] = {}
    for e in members:
        parts = e["name"].split("/")
        sec = ("experiment records" if parts[1:3] == [".ckpm", "experiments"] else "project files") \
            if parts[0] == "project" else "vendored sources"
        s = sections.setdefault(sec, {"files": 0, "bytes": 0})
        s["files"] += 1
        s["bytes"] += e["size"]
    drift = _drift_from_bundle(bundle, settings)
    host = drift["host_target"]
    return {"bundle": str(bundle), "size": bundle.stat().st_size, "verified": check_hashes,
            "ckpm_version": doc.get("ckpm_version"), "project": doc["project"], "targets": doc["targets"],
            "lock_targets": doc.get("lock_targets", doc["targets"]), "host_target": host,
            "runs_here": host in doc.get("lock_targets", doc["targets"]), "contents": sections,
            "totals": doc["totals"], "experiments": doc["experiments"], "host_pins": drift["rows"],
            "largest": [{"name": e["name"], "size": e["size"]}
                        for e in sorted(members, key=lambda e: (-e["size"], e["name"]))[:5]]}


def _drift_from_bundle(bundle: Path, settings: Any) -> dict[str, Any]:
    from ckpm.model.manifest import MANIFEST
    from ckpm.settings import Settings

    settings = _offline(settings or Settings())
    with tempfile.TemporaryDirectory(prefix="ckpm-inspect-") as tmp:
        proj = Path(tmp)
        for name in (MANIFEST, LOCKFILE):
            data = read_member(bundle, f"project/{name}", 16 << 20)
            if data is None:
                raise ArtifactError(f"{bundle}: the bundle has no project/{name}")
            (proj / name).write_bytes(data)
        ws = Workspace(proj, settings, search_up=False)
        lock = ws.read_lock()
        assert lock is not None
        return {"host_target": ws.host_target, "rows": drift_table(ws, lock)}


def drift_table(ws: Workspace, lock: Lock) -> list[dict[str, Any]]:
    """One row per host pin of the lock: what it expects, what this machine has, and the status
    (same, differs, note, missing, cannot check, other target)."""
    from ckpm import api

    rows = []
    host = ws.host_target
    for p in sorted(lock.packages, key=lambda p: p.ident):
        if not isinstance(p.source, HostSource):
            continue
        expected = p.version + (f" at {p.source.path}" if p.source.path else "")
        row = {"name": p.name, "expected": expected, "found": "", "status": "same", "action": "",
               "targets": list(p.targets)}
        if host not in p.targets:
            row.update(status="other target", found="-")
        else:
            try:
                d = api.host_drift(ws, p)
            except CkpmError as e:
                d = None
                row.update(status="cannot check", found=e.message)
            if d is not None:
                row.update(found=d.found, action=d.action,
                           status=("missing" if d.found == "missing" else "differs") if d.severity == "error"
                           else "note")
            elif row["status"] == "same":
                row["found"] = expected
        rows.append(row)
    return rows


def _offline(settings: Any) -> Any:
    return settings if settings.offline else replace(settings, offline=True)


# -- evaluate -------------------------------------------------------------------------------------

def evaluate(bundle: Path, *, into: Path | None = None, report_dir: Path | None = None, settings: Any = None) -> Evaluation:
    """Verify, unpack, provision offline from the bundle, replay every experiment, judge; writes
    ``report.json`` and ``report.html`` into ``report_dir`` (default: ``<bundle stem>-report``).

    ``into``: where the project is unpacked (absent or empty; kept). Without it a temporary
    folder is used and removed at the end. ``settings``: the user's (their store and cache);
    evaluation is always offline.
    """
    from ckpm.settings import Settings

    t0 = time.monotonic()
    bundle = Path(bundle)
    settings = _offline(settings or Settings())
    report = Path(report_dir) if report_dir is not None else Path.cwd() / f"{_stem(bundle)}-report"
    ev = Evaluation(str(bundle), {n: Verdict(n) for n in ("available", "functional", "reproduced")},
                    report_dir=str(report))
    tmp = None
    if into is None:
        tmp = tempfile.mkdtemp(prefix="ckpm-evaluate-")
        dest = Path(tmp) / "bundle"
    else:
        dest = Path(into)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ArtifactError(f"{dest} exists and is not an empty folder", hint="give --into a new folder")
    try:
        un = _available(ev, bundle, dest)
        if un is not None:
            ev.project = str(un.project) if into is not None else None
            _functional_and_reproduced(ev, un, settings)
    finally:
        ev.seconds = time.monotonic() - t0
        write_report(ev, report)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return ev


def _stem(bundle: Path) -> str:
    name = bundle.name
    for suffix in (".tar", ".ckpm"):
        name = name.removesuffix(suffix)
    return name or "artifact"


def _available(ev: Evaluation, bundle: Path, dest: Path) -> Unpacked | None:
    v = ev.verdicts["available"]
    try:
        un = unpack_verified(bundle, dest)
    except CkpmError as e:
        v.status = "no"
        v.evidence.append(e.message)
        v.evidence.extend(e.details)
        return None
    doc = ev.manifest = un.manifest
    t = doc["totals"]
    v.evidence.append(f"every member verified against the manifest: {t['members']} members, {t['bytes']:,} bytes "
                      "(sha256 of each, after a safe unpack)")
    proj = doc["project"]
    v.evidence.append(f"project {proj.get('name')} {proj.get('version') or ''}".rstrip()
                      + (f", git commit {proj['git']}" if proj.get("git") else "")
                      + f"; packed by ckpm {doc.get('ckpm_version')} (this is ckpm {__version__})")
    v.evidence.append(f"{t['project_files']} project files, {t['sources']} vendored sources, "
                      f"{t['records']} experiment records ({', '.join(doc['experiments']) or 'none'})")
    try:
        lock = _read_lock(un.project)
    except CkpmError as e:
        v.status = "no"
        v.evidence.append(f"{LOCKFILE}: {e.message}")
        return None
    missing = _missing_sources(lock, un.sources)
    if missing:
        v.status = "no"
        v.differences.extend(missing)
        v.evidence.append(f"{len(missing)} source(s) the lock needs are not in the bundle")
        return None
    v.evidence.append(f"every downloadable source of {LOCKFILE} is in {SOURCES}/ with the lock's sha256")
    v.status = "yes"
    return un


def _read_lock(project: Path) -> Lock:
    from ckpm.model.lockfile import read_lock

    lk = read_lock(project / LOCKFILE)
    if lk is None:
        raise ArtifactError(f"the bundle has no {LOCKFILE}")
    return lk


def _missing_sources(lock: Lock, sources: Path) -> list[str]:
    """Each URL source of the lock whose file is not in ``sources`` (or has another sha256).
    Git and pip sources are checked by provisioning them offline (functional)."""
    from ckpm.fetch.mirrors import vendor_relpath
    from ckpm.model.source import ArchiveSource

    out = []
    for p in sorted(lock.packages, key=lambda p: p.ident):
        srcs = list(p.sources)
        for r in p.install:
            if not r.is_pip:
                srcs.extend(r.sources or ())
        for s in srcs:
            if not isinstance(s, ArchiveSource) or not s.urls:
                continue
            urls = s.urls
            try:
                path = sources / vendor_relpath(urls[0])
            except ValueError:
                out.append(f"{p.name} {p.version}: {urls[0]} cannot be vendored")
                continue
            if not path.is_file():
                out.append(f"{p.name} {p.version}: {urls[0]} is not in the bundle")
                continue
            sha = s.digest
            if sha is not None and sha256_file(path) != sha.lower():
                out.append(f"{p.name} {p.version}: the bundle's copy of {urls[0]} has another sha256 than the lock's")
    return out


def _functional_and_reproduced(ev: Evaluation, un: Unpacked, settings: Any) -> None:
    from ckpm import provision
    from ckpm.experiment.record import list_experiments, load_experiment
    from ckpm.experiment.tolerance import compare
    from ckpm.pipeline.replay import replay
    from ckpm.pipeline.run import ValidationFailed

    fn, rp = ev.verdicts["functional"], ev.verdicts["reproduced"]
    ws = Workspace(un.project, settings, search_up=False)
    lock = ws.read_lock()
    assert lock is not None
    host = ws.host_target
    rows = drift_table(ws, lock)
    ev.drift = rows
    for r in rows:
        if r["status"] in ("differs", "missing", "cannot check"):
            fn.differences.append(f"host {r['name']}: the lock pins {r['expected']}, this machine has {r['found']}")
    if host not in lock.targets:
        fn.status = "no"
        fn.evidence.append(f"{LOCKFILE} has no resolution for this machine ({host}); it has "
                           f"{', '.join(lock.targets) or 'none'}")
        return
    mirrors = (un.sources,)
    # a recipe runs only from a verified line: the bundle's lock is checked against its index lines
    # (the bundle's vendored ones where the index cannot be read) before anything of it runs
    from ckpm import api

    try:
        provision.use_vendored(ws, mirrors, lock)
        held = api.check(ws, lock=lock, allow_host_drift=True, verify_published_tags=False)
    except CkpmError as e:
        held = api.CheckResult(False, [e.message], ws.lock_path)
    if held.problems:
        fn.status = "no"
        fn.evidence.append(f"{LOCKFILE} does not hold against its index lines here, so nothing of it was run: "
                           f"{held.hint}")
        fn.evidence.extend(held.problems[:10])
        return
    try:
        res = provision.sync(ws, lock, provision.SyncOptions(target=host, mirror_dirs=mirrors))
    except CkpmError as e:
        fn.status = "no"
        fn.evidence.append(f"provisioning {host} offline from the bundle failed: {e.message}")
        fn.evidence.extend(e.details[:10])
        return
    kinds: dict[str, int] = {}
    for p in res.packages:
        kinds[p.action] = kinds.get(p.action, 0) + 1
    fn.evidence.append(f"provisioned offline for {host}, with the bundle as the only mirror: {len(res.packages)} "
                       "packages (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")")
    names = list_experiments(un.project)
    if not names:
        fn.status = "with-differences" if fn.differences else "yes"
        rp.evidence.append("the bundle holds no experiment records: nothing to reproduce")
        return
    failed = False
    all_ok = True
    for name in names:
        exp = load_experiment(un.project, name)
        good = [r for r in exp.records if r.get("ok")]
        old = (good or exp.records)[-1] if (good or exp.records) else None
        if old is None:
            fn.evidence.append(f"experiment {name}: no readable record ({'; '.join(exp.problems[:2])})")
            failed = True
            continue
        entry: dict[str, Any] = {"experiment": name, "record": old.get("id"), "ok": False, "metrics": [],
                                 "differences": []}
        ev.experiments.append(entry)
        try:
            rr = replay(ws, name, record_id=str(old.get("id")), mirror_dirs=mirrors)
        except ValidationFailed as e:
            failed = True
            entry["error"] = e.message
            fn.evidence.append(f"experiment {name}: ran, but its validation failed: {e.message}")
            fn.evidence.extend(f"  {d}" for d in e.details[:5])
            continue
        except CkpmError as e:
            failed = True
            entry["error"] = e.message
            fn.evidence.append(f"experiment {name}: could not run again: {e.message}")
            continue
        checks = rr.record.get("validation") or []
        entry["ok"] = bool(rr.record.get("ok"))
        entry["differences"] = rr.differences
        entry["metrics"] = compare(old, rr.record)
        entry["replayed"] = rr.record.get("id")
        fn.evidence.append(f"experiment {name} (record {old.get('id')}): built and ran again, "
                           f"{len(checks)} validation checks passed")
        for d in rr.differences:
            if d["what"] == "lock":
                continue
            fn.differences.append(f"experiment {name}: {d['what']} was {d['recorded']!r}, now {d['now']!r}")
        for m in entry["metrics"]:
            line = (f"{name}: {m['metric']} recorded {_num(m['recorded'])}, now {_num(m['now'])} "
                    f"(allowed {m['allowed']})")
            if m["ok"]:
                rp.evidence.append(line)
            else:
                all_ok = False
                rp.differences.append(line + ": outside the tolerance")
    if failed:
        fn.status = "no"
        return
    fn.status = "with-differences" if fn.differences else "yes"
    if all_ok:
        rp.status = "with-differences" if fn.differences else "yes"
        rp.differences = list(fn.differences)
    else:
        rp.status = "no"


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)


# -- the report -----------------------------------------------------------------------------------

def write_report(ev: Evaluation, folder: Path) -> None:
    """``report.json`` (the evaluation as data) and ``report.html`` (the same, for people)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = ev.to_dict()
    atomic_write(folder / "report.json", json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
    atomic_write(folder / "report.html", render_html(data))


def render_html(d: dict[str, Any]) -> str:
    """A self-contained page: the verdicts with their evidence, the host drift, each experiment's metrics."""
    from html import escape as e

    colours = {"yes": "#1a7f37", "with-differences": "#9a6700", "no": "#cf222e", "not-assessed": "#6e7781"}
    proj = d.get("project") or {}
    out = ["<!doctype html><html><head><meta charset='utf-8'>",
           f"<title>ckpm artifact evaluation: {e(str(proj.get('name') or d['bundle']))}</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.2em .6em;"
           "border-bottom:1px solid #ddd;text-align:left}.v{font-size:1.2em;font-weight:bold}</style></head><body>",
           f"<h1>Artifact evaluation: {e(str(proj.get('name') or ''))} {e(str(proj.get('version') or ''))}</h1>",
           f"<p>bundle <code>{e(d['bundle'])}</code>; packed by ckpm {e(str(d.get('packed_by')))}, evaluated with "
           f"ckpm {e(d['ckpm_version'])} in {d['seconds']:.1f} s; exit code {d['exit_code']}</p>"]
    for v in d["verdicts"].values():
        out.append(f"<h2 class='v' style='color:{colours[v['status']]}'>{e(v['label'])}</h2><ul>")
        out.extend(f"<li>{e(x)}</li>" for x in v["evidence"])
        out.append("</ul>")
        if v["differences"]:
            out.append("<p>Differences:</p><ul>" + "".join(f"<li>{e(x)}</li>" for x in v["differences"]) + "</ul>")
    if d["host_drift"]:
        out.append("<h2>Host software (the lock's host pins against this machine)</h2><table>"
                   "<tr><th>name</th><th>the lock pins</th><th>this machine</th><th>status</th></tr>")
        out.extend(f"<tr><td>{e(r['name'])}</td><td>{e(r['expected'])}</td><td>{e(str(r['found']))}</td>"
                   f"<td>{e(r['status'])}</td></tr>" for r in d["host_drift"])
        out.append("</table>")
    for x in d["experiments"]:
        out.append(f"<h2>Experiment {e(x['experiment'])}</h2><table><tr><th>metric</th><th>recorded</th>"
                   "<th>now</th><th>allowed</th><th>within</th></tr>")
        out.extend(f"<tr><td>{e(m['metric'])}</td><td>{e(_num(m['recorded']))}</td><td>{e(_num(m['now']))}</td>"
                   f"<td>{e(m['allowed'])}</td><td>{'yes' if m['ok'] else 'NO'}</td></tr>" for m in x["metrics"])
        out.append("</table>")
        if x.get("error"):
            out.append(f"<p>{e(x['error'])}</p>")
    out.append("</body></html>\n")
    return "\n".join(out)
