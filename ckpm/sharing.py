"""``ckpm results push`` and ``pull``, and ``ckpm tune --push``: experiment records to and from a registry.

What a record carries is :func:`ckpm.experiment.share.shared_record`; this module does the
requests, through the registry client of :mod:`ckpm.publishing` (the same API base from a
registry's ``config.json``, the same tokens: ``--token``, ``$CKPM_TOKEN``, ``ckpm login``).

A push sends at most :data:`BATCH` records per request; the registry stores each request in
one transaction and answers which records it added and which it had already (a record's id
there is a hash of the pusher and the record, so pushing twice adds nothing). A pull reads
``GET /api/v1/results?program=…&full=true`` page by page (at most ``max_records``) and writes
each record into a local experiment, marked ``pulled``; pulling again rewrites the same files.
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ckpm.errors import CkpmError, UsageError
from ckpm.experiment.record import ExperimentError, check_name, load_experiment, save_record
from ckpm.experiment.share import pulled_record, shared_record
from ckpm.publishing import RegistryError, api_base, check_registry_url, request_json, require_token, token_for
from ckpm.settings import Settings

BATCH = 100
PAGE = 100
MAX_PAGE_BYTES = 64 << 20
DEFAULT_MAX_RECORDS = 100_000


def registry_api(registry: str | None, settings: Settings) -> str:
    """The API base of ``registry``; without one, the only registry ``ckpm login`` knows."""
    if not registry:
        known = sorted(settings.config_table("registries"))
        if len(known) == 1:
            return known[0]
        raise UsageError("say which registry: --registry URL",
                         hint="logged in to: " + ", ".join(known) if known else
                         "`ckpm login --registry URL` keeps a registry and its token")
    return api_base(check_registry_url(registry), settings)


def _project_facts(project: Path) -> tuple[str | None, str | None]:
    """The project's name and version (for records of the project's own program)."""
    from ckpm.model.manifest import find_project, load_project

    try:
        m = load_project(find_project(project))
    except CkpmError:
        return None, None
    return getattr(m, "name", None), getattr(m, "version", None)


@dataclass
class PushResult:
    registry: str
    experiment: str
    dry_run: bool
    records: list[dict[str, Any]] = field(default_factory=list)  # what was (or would be) sent
    user: str | None = None
    added: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # local ids not sent, and why

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"registry": self.registry, "experiment": self.experiment, "dry_run": self.dry_run,
                               "user": self.user, "sent": len(self.records), "added": self.added,
                               "existing": self.existing, "skipped": self.skipped}
        if self.dry_run:
            out["records"] = self.records
        return out


class Pusher:
    """Pushes records to one registry with one token (made once: ``tune --push`` pushes point by point)."""

    def __init__(self, registry: str | None, *, token: str | None = None, settings: Settings | None = None,
                 dry_run: bool = False) -> None:
        self.settings = settings if settings is not None else Settings()
        self.api = registry_api(registry, self.settings)
        self.dry_run = dry_run
        self.token = (token_for(self.api, self.settings, token) if dry_run
                      else require_token(self.api, self.settings, token))
        self.home = self.settings.environ.get("HOME")

    def prepare(self, records: Sequence[Mapping[str, Any]], project: Path | None = None,
                experiment: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """(the records as they would be sent, the local ids left out with the reason)."""
        name, version = _project_facts(project) if project is not None else (None, None)
        out, skipped = [], []
        for r in records:
            r = dict(r)
            if experiment:
                r["experiment"] = experiment
            try:
                out.append(shared_record(r, home=self.home, project=name, project_version=version))
            except ExperimentError as e:
                skipped.append(e.message)
        return out, skipped

    def send(self, shared: Sequence[dict[str, Any]], result: PushResult) -> None:
        """POST ``shared`` in batches; fills ``result``'s user, added and existing."""
        assert self.token is not None
        for i in range(0, len(shared), BATCH):
            part = list(shared[i:i + BATCH])
            out = request_json(self.settings, "POST", f"{self.api}/api/v1/results", auth=self.token,
                               body={"records": part}, what=f"pushing to {self.api}")
            if not isinstance(out, dict) or not isinstance(out.get("added"), list):
                raise RegistryError(f"{self.api}: the answer to a push is not {{\"added\": [...], ...}}")
            result.user = str(out.get("user") or "")[:64] or result.user
            result.added += [str(x)[:64] for x in out["added"]]
            result.existing += [str(x)[:64] for x in out.get("existing") or []]


def push(project: Path, name: str, *, registry: str | None = None, token: str | None = None,
         dry_run: bool = False, settings: Settings | None = None) -> PushResult:
    """Push every record of experiment ``name`` (``dry_run``: only say what would be sent)."""
    check_name(name)
    exp = load_experiment(project, name)
    s = settings if settings is not None else Settings()
    for p in exp.problems:
        s.reporter.warning(f"experiment {name}: left out {p}")
    pusher = Pusher(registry, token=token, settings=s, dry_run=dry_run)
    shared, skipped = pusher.prepare(exp.records, project)
    result = PushResult(pusher.api, name, dry_run, shared, skipped=skipped)
    if not shared:
        raise ExperimentError(f"experiment {name} has no record to push", details=skipped[:10])
    if not dry_run:
        pusher.send(shared, result)
    return result


@dataclass
class PullResult:
    registry: str
    program: str
    experiment: str
    records: int = 0
    new: int = 0
    users: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"registry": self.registry, "program": self.program, "experiment": self.experiment,
                "records": self.records, "new": self.new, "users": self.users}


def pull(project: Path, program: str, *, registry: str | None = None, into: str | None = None,
         user: str | None = None, target: str | None = None, settings: Settings | None = None,
         max_records: int = DEFAULT_MAX_RECORDS) -> PullResult:
    """Others' records of ``program`` into experiment ``into`` (default ``<program>-pulled``)."""
    s = settings if settings is not None else Settings()
    api = registry_api(registry, s)
    experiment = check_name(into or f"{program}-pulled")
    result = PullResult(api, program, experiment)
    from ckpm.experiment.record import experiments_root

    folder = experiments_root(project) / experiment
    have = {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()
    offset = 0
    users: set[str] = set()
    while offset < max_records:
        query = {"program": program, "full": "true", "limit": str(PAGE), "offset": str(offset)}
        if user:
            query["user"] = user
        if target:
            query["target"] = target
        page = request_json(s, "GET", f"{api}/api/v1/results?{urllib.parse.urlencode(query)}", auth=None,
                            what=f"{api}/api/v1/results", max_bytes=MAX_PAGE_BYTES)
        items = page.get("results") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise RegistryError(f"{api}/api/v1/results: the answer is not {{\"results\": [...]}}")
        for item in items:
            if not isinstance(item, dict):
                continue
            rec = pulled_record(item, api, experiment)
            save_record(project, experiment, rec)
            result.records += 1
            result.new += rec["id"] not in have
            users.add(rec["pulled"]["user"])
        offset += len(items)
        total = page.get("total") if isinstance(page.get("total"), int) else 0
        if not items or offset >= total:
            break
    result.users = sorted(users)
    if not result.records:
        raise ExperimentError(f"{api} has no results for {program}"
                              + (f" by {user}" if user else "") + (f" on {target}" if target else ""))
    return result
