"""One detection run: host facts, then every rule routed to its detector, cached.

The engine owns the host profile (load, save) and the ordering of results; detectors
own discovery and probing. A detector that raises is a warning, never a failure.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ckpm.detect.cache import HostProfile, default_cache_dir, profile_path
from ckpm.detect.context import DetectContext
from ckpm.detect.record import DetectionResult, Detected, rank


def open_profile(cache_dir: str | os.PathLike[str] | None, env: Mapping[str, str]) -> HostProfile:
    """The host profile in ``cache_dir`` (default: ``$CKPM_CACHE_DIR`` or the user cache)."""
    d = Path(cache_dir) if cache_dir is not None else default_cache_dir(env)
    return HostProfile.load(profile_path(d))


def run_detection(
    rules: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    refresh: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = 3.0,
    search_paths: Sequence[str] = (),
    python: str | None = None,
    env: Mapping[str, str] | None = None,
    use_cache: bool = True,
) -> DetectionResult:
    """See :func:`ckpm.detect.detect`."""
    from ckpm.detect.facts import compute_facts
    from ckpm.detect.registry import DetectorRegistry

    environ = dict(os.environ if env is None else env)
    profile = open_profile(cache_dir, environ) if use_cache else HostProfile(None)
    ctx = DetectContext(timeout=timeout, env=environ, search_paths=search_paths, python=python,
                        profile=profile, refresh=refresh)
    if profile.load_error:
        ctx.warn(profile.load_error)
    facts = compute_facts(ctx)
    found: dict[str, list[Detected]] = {}
    registry = DetectorRegistry.from_environment(ctx) if rules else None
    for name, rule_list in rules.items():
        recs: list[Detected] = []
        seen: set[tuple[str | None, str]] = set()
        for rule in _as_rules(rule_list):
            det = registry.route(rule) if registry is not None else None
            if det is None:
                ctx.warn(f"{name}: no detector for rule {sorted(rule)}")
                continue
            try:
                for d in det.detect(name, rule, ctx):
                    if (d.path, d.version) not in seen:
                        seen.add((d.path, d.version))
                        recs.append(d)
            except Exception as e:  # a broken rule or plugin is a warning, the rest goes on
                ctx.warn(f"{name}: detector {getattr(det, 'kind', '?')!r} failed: {type(e).__name__}: {e}")
        found[name] = rank(recs)
    if registry is not None:
        ctx.warnings.extend(registry.errors)
    try:
        profile.save()
    except OSError as e:
        ctx.warn(f"could not write the host profile {profile.path}: {e}")
    return DetectionResult(found=found, facts=facts, warnings=ctx.warnings, probes_run=ctx.probes_run,
                           cache_hits=ctx.cache_hits, cache_misses=ctx.cache_misses,
                           cache_path=str(profile.path) if profile.path else None)


def _as_rules(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    return [r for r in value or () if isinstance(r, Mapping)]


def recheck_record(
    record: Detected | Mapping[str, Any], *, timeout: float = 3.0, env: Mapping[str, str] | None = None,
) -> Detected | None:
    """See :func:`ckpm.detect.recheck`."""
    from ckpm.detect.registry import DetectorRegistry

    d = record if isinstance(record, Detected) else Detected.from_json(record)
    ctx = DetectContext(timeout=timeout, env=env, refresh=True)
    if d.detector in ("fact", "override"):
        from ckpm.detect.facts import compute_facts

        return compute_facts(ctx).get(d.name)
    det = DetectorRegistry.from_environment(None).get(d.detector)
    if det is None:
        return None
    fn = getattr(det, "recheck", None)
    if fn is not None:
        return fn(d, ctx)  # type: ignore[no-any-return]
    rule = d.extra.get("rule")
    if not isinstance(rule, Mapping):
        return None
    from ckpm.detect.detectors.base import same_path

    return next((x for x in det.detect(d.name, rule, ctx) if same_path(x.path, d.path)), None)
