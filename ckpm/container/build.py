"""``ckpm container build``: check the base against the lock's host pins, then build the image.

1. The lock must hold on this machine (host software aside) — :func:`context.require_lock`.
2. The base's Python must be this ckpm's (the wheels are this installation's) — one
   ``ENGINE run`` of ``python3`` in the base.
3. The host check: the context's first steps (base + ckpm, ``ckpm.Containerfile``) are built,
   and ``ckpm lock --check --json`` runs in that image over the project (mounted read-only,
   with a copy of the context's index caches, no network). Host-pinned software (the lock's
   host compiler) must come from the base, so a pin the base does not satisfy stops the
   build unless ``allow_host_drift``; then the differences are recorded in the
   ``io.ckpm.host-drift`` label. The main build reuses these steps from the engine's cache,
   so the check costs one short container run.
4. The build, with the engine's layer cache; its log is kept beside the context folder.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckpm.container.context import CKPM_HOME, PROJECT_DIR, ContextSummary, allow_drift, write_context
from ckpm.container.engine import ContainerError, Engine, engine_failure, find_engine
from ckpm.container.wheels import interpreter
from ckpm.api import HostDrift  # the one row of a host pin that differs (lock --check prints the same)
from ckpm.errors import HostDriftError
from ckpm.fsutil import file_lock
from ckpm.workspace import Workspace

CHECK_TIMEOUT = 600.0  # seconds for the host check's container run
BUILD_TIMEOUT = 3600.0  # seconds for one image build
DRIFT_LABEL = "io.ckpm.host-drift"


@dataclass
class BaseCheck:
    """What the base image has of the lock's host pins."""

    base: str
    drift: list[HostDrift]
    allowed: bool
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[HostDrift]:
        return [d for d in self.drift if d.severity == "error"]

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "host_drift": [d.to_dict() for d in self.drift], "drift_allowed": self.allowed,
                "notes": self.notes}


@dataclass
class BuildResult:
    """An image built: its tag and id, size, the context, the host check, the steps reused."""

    tag: str
    image_id: str
    size: int
    engine: str
    context: ContextSummary
    check: BaseCheck
    steps: int
    cached_steps: int
    seconds: float
    log: Path

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "image_id": self.image_id, "size": self.size, "engine": self.engine,
                "steps": self.steps, "cached_steps": self.cached_steps, "seconds": round(self.seconds, 2),
                "log": str(self.log), "host_check": self.check.to_dict(), **self.context.to_dict()}


class BaseHostDrift(HostDriftError):
    """The base image lacks host software the lock pins; carries the table's rows."""

    def __init__(self, check: BaseCheck) -> None:
        super().__init__(f"the base image {check.base} differs from the lock's host pins",
                         details=[f"{d.name}: expected {d.expected}, found {d.found}" for d in check.errors],
                         hint="use a base with that software, or pass --allow-host-drift to build anyway "
                              "(the differences are recorded in the image's labels)")
        self.check = check


def default_tag(ws: Workspace) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", ws.manifest.name.lower()).strip("-._") or "project"
    version = re.sub(r"[^A-Za-z0-9._-]+", "-", ws.manifest.version or "latest")
    return f"localhost/{name}:{version}"


def check_interpreter(engine: Engine, base: str) -> None:
    """The base must have a ``python3`` of this interpreter's version and machine."""
    want = interpreter()
    res = engine.run(["run", "--rm", "--network", "none", base, "python3", "-c",
                      "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine())"],
                     check=False, timeout=CHECK_TIMEOUT, what=f"run of python3 in {base}")
    if res.returncode != 0:
        err = engine_failure(engine, f"run of python3 in {base}", res)
        if engine.run(["image", "inspect", "--format", "{{.Id}}", base], check=False).returncode != 0:
            err.hint = ("the base image is not in the engine's local images; make one with no registry at hand: "
                        "mmdebstrap --variant=minbase --include=python3,python3-venv,gcc,libc6-dev,make bookworm "
                        f"base.tar && {engine.name} import base.tar localhost/debian:bookworm")
        raise err
    got = tuple(res.stdout.split()[-2:])
    if got != want:
        raise ContainerError(f"the base image {base} has Python {' '.join(got) or '(none)'}, "
                             f"and this ckpm runs on Python {' '.join(want)}",
                             hint="ckpm's wheels in the image are this installation's: use a base with the same "
                                  "Python version and machine (or run ckpm from such a Python)")


def check_base(engine: Engine, ctx: Path, base: str, *, allow_drift: bool, no_cache: bool = False) -> BaseCheck:
    """Run ``ckpm lock --check`` in the base (with ckpm installed) over the context's project."""
    built = engine.run(["build", "-q", *(["--no-cache"] if no_cache else []), "-f", str(ctx / "ckpm.Containerfile"),
                        str(ctx)], timeout=BUILD_TIMEOUT, what="build of ckpm on the base")
    image = built.stdout.strip().splitlines()[-1].strip() if built.stdout.strip() else ""
    if not image:
        raise engine_failure(engine, "build of ckpm on the base (no image id printed)", built)
    with tempfile.TemporaryDirectory(prefix="ckpm-check-") as tmp:  # a writable copy: ckpm keeps its host profile there
        cache = Path(tmp) / "cache"
        shutil.copytree(ctx / "cache", cache, symlinks=True)
        res = engine.run(["run", "--rm", "--network", "none", "-v", f"{ctx / 'project'}:{PROJECT_DIR}:ro",
                          "-v", f"{cache}:{CKPM_HOME}/cache", "-w", PROJECT_DIR, image,
                          "ckpm", "--offline", "lock", "--check", "--allow-host-drift", "--json"],
                         check=False, timeout=CHECK_TIMEOUT, what="host check in the base")
    try:
        doc = json.loads(res.stdout)
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):  # ckpm's own error, as --json words it
            err = doc["error"]
            raise ContainerError(f"the host check in the base image {base} failed: {err.get('error')}",
                                 hint=err.get("hint"))
        data = doc["data"]
        rows = [HostDrift(str(d["name"]), str(d["expected"]), str(d["found"]), str(d["action"]),
                          str(d.get("severity", "error"))) for d in data["host_drift"]]
    except (ValueError, KeyError, TypeError) as e:
        raise engine_failure(engine, "host check in the base (no report)", res) from e
    notes = [str(n) for n in data.get("notes") or []] + [f"in the base: {p}" for p in data.get("problems") or []]
    return BaseCheck(base, rows, allow_drift, notes)


def build_image(ws: Workspace, *, base: str, tag: str | None = None, target: str | None = None,
                engine_name: str | None = None, allow_host_drift: bool = False,
                context_dir: Path | None = None, no_cache: bool = False) -> BuildResult:
    """Build the project's image (see the module docstring); ``no_cache``: every step after
    the base anew, none taken from the engine's cache. Raises :class:`BaseHostDrift`
    when the base lacks a host pin and drift is not allowed; engine failures are
    :class:`ContainerError` with the engine's last lines."""
    engine = find_engine(engine_name)
    tag = tag or default_tag(ws)
    ctx = Path(context_dir) if context_dir else ws.root / ".ckpm" / "container" / "context"
    # one build per context folder at a time: a second waits (and says so) for the first
    with file_lock(ctx.with_name(f".{ctx.name}.lock"), on_wait=ws.reporter.note, what=f"the build context {ctx}"):
        return _build(ws, engine, ctx, base=base, tag=tag, target=target, allow_host_drift=allow_host_drift,
                      no_cache=no_cache)


def _build(ws: Workspace, engine: Engine, ctx: Path, *, base: str, tag: str, target: str | None,
           allow_host_drift: bool, no_cache: bool) -> BuildResult:
    start = time.monotonic()
    summary = write_context(ws, ctx, base=base, target=target)
    check_interpreter(engine, base)
    check = check_base(engine, ctx, base, allow_drift=allow_host_drift, no_cache=no_cache)
    if check.errors and not allow_host_drift:
        raise BaseHostDrift(check)
    if check.errors:
        summary.labels[DRIFT_LABEL] = json.dumps([[d.name, d.expected, d.found] for d in check.errors],
                                                 separators=(",", ":"))
        allow_drift(ctx, base=base, target=target, labels=summary.labels)
    log = ctx.parent / "build.log"
    # never --no-cache here: with no_cache the check built the ckpm steps anew, and every later
    # step hangs off them, so it is built anew too (two fresh copies of the ckpm steps would
    # leave the next build a choice between them, and half of its cache behind the other)
    res = engine.run(["build", "-t", tag, "-f", str(ctx / "Containerfile"), str(ctx)], check=False,
                     timeout=BUILD_TIMEOUT, what=f"build of {tag}")
    log.write_text(res.stdout + ("\n" if res.stdout else "") + res.stderr)
    if res.returncode != 0:
        raise engine_failure(engine, f"build of {tag} (log: {log})", res)
    out = res.stdout + "\n" + res.stderr
    steps = len(re.findall(r"^STEP \d+/\d+:|^Step \d+/\d+ :|^#\d+ \[", out, re.M))
    cached = len(re.findall(r"Using cache|^#\d+ CACHED", out, re.M))
    info = engine.run(["image", "inspect", tag, "--format", "{{.Id}} {{.Size}}"], what="image inspect")
    image_id, _, size = info.stdout.strip().partition(" ")
    return BuildResult(tag, image_id, int(size or 0), engine.name, summary, check, steps, cached,
                       time.monotonic() - start, log)

