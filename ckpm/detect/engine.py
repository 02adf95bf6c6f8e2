"""One detection run: host facts, then every rule routed to its detector, cached.

The engine owns the host profile (load, save) and the ordering of results; detectors
own discovery and probing. A detector that raises is a warning, never a failure.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ckpm.detect.cache import HostProfile, default_cache_dir, profile_path
from ckpm.detect.context import DetectContext
from ckpm.detect.detectors.base import same_path
from ckpm.detect.record import DetectionResult, Detected, rank
from ckpm.detect.trust import BUILTIN_KINDS, MAX_VERSION, kind_of, rule_id, show_value, validate_rule, where
from ckpm.report import Reporter

if TYPE_CHECKING:
    from ckpm.detect.registry import DetectorRegistry


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
    path_roots: Sequence[str | os.PathLike[str]] = (),
    origin: str | None = None,
    owned: bool = False,
    reporter: Reporter | None = None,
) -> DetectionResult:
    """See :func:`ckpm.detect.detect`. Every rule is validated here (:mod:`ckpm.detect.trust`)
    before any of it is used, whoever the caller is."""
    from ckpm.detect.facts import compute_facts
    from ckpm.detect.registry import DetectorRegistry

    environ = dict(os.environ if env is None else env)
    profile = open_profile(cache_dir, environ) if use_cache else HostProfile(None)
    reporter = reporter if reporter is not None else Reporter()
    said = len(reporter.warnings)  # the result lists what this run said
    ctx = DetectContext(timeout=timeout, env=environ, search_paths=search_paths, python=python,
                        profile=profile, refresh=refresh, path_roots=path_roots, reporter=reporter)
    if profile.load_error:
        ctx.warn(profile.load_error)
    facts = compute_facts(ctx)
    found: dict[str, list[Detected]] = {}
    registry = DetectorRegistry.from_environment(ctx) if rules else None
    for name, rule_list in rules.items():
        found[name] = (detect_component(name, rule_list, ctx, registry, origin=origin, owned=owned)
                      if registry else [])
    if registry is not None:
        ctx.warn_all(registry.errors)
    try:
        profile.save()
    except OSError as e:
        ctx.warn(f"could not write the host profile {profile.path}: {e}")
    return DetectionResult(found=found, facts=facts, warnings=reporter.warnings[said:], probes_run=ctx.probes_run,
                           cache_hits=ctx.cache_hits, cache_misses=ctx.cache_misses,
                           cache_path=str(profile.path) if profile.path else None)


def detect_component(
    name: str, rule_list: Any, ctx: DetectContext, registry: "DetectorRegistry", *, origin: str | None = None,
    owned: bool = True,
) -> list[Detected]:
    """Every match of one component's rules, validated, routed, ranked, each with its ``rule_id``."""
    recs: list[Detected] = []
    seen: set[tuple[str | None, str]] = set()
    for number, rule in enumerate(_as_rules(rule_list), 1):
        det = registry.route(rule)
        if det is None:
            keys = ", ".join(show_value(k) for k in sorted(map(str, rule))[:10])
            ctx.warn(f"{where(origin, name, number)}no detector for a rule with keys {keys}")
            continue
        kind = getattr(det, "kind", None) or ""
        builtin = kind in BUILTIN_KINDS
        clean, problems = validate_rule(rule, origin=origin, component=name, number=number,
                                        kind=kind if builtin else "",
                                        roots=ctx.roots if builtin and _names_folders(rule) else None,
                                        owned=owned)
        ctx.warn_all(problems)
        if clean is None:
            continue
        rid = rule_id(clean)
        try:
            for d in det.detect(name, clean, ctx):
                if builtin:
                    why = _bad_version(d.version)
                    if why is not None:
                        ctx.warn(f"{name}: version {d.version[:40]!r} found at {d.path} rejected ({why})")
                        continue
                if (d.path, d.version) not in seen:
                    seen.add((d.path, d.version))
                    recs.append(d.replace(extra={**d.extra, "rule_id": rid}))
        except Exception as e:  # a broken rule or plugin is a warning, the rest goes on
            ctx.warn(f"{name}: detector {kind or '?'!r} failed: {type(e).__name__}: {e}")
    return rank(recs)


def _names_folders(rule: Mapping[str, Any]) -> bool:
    return any(k in rule for k in ("search_paths", "include_paths", "path"))


def _bad_version(version: str) -> str | None:
    if len(version) > MAX_VERSION:
        return f"longer than {MAX_VERSION} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in version):
        return "control characters"
    return None


def _as_rules(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    return [r for r in value or () if isinstance(r, Mapping)]


# -- recheck ------------------------------------------------------------------------------------

def recheck_rule(
    name: str,
    rule: Mapping[str, Any] | None,
    *,
    path: str | None = None,
    timeout: float = 3.0,
    env: Mapping[str, str] | None = None,
    python: str | None = None,
    search_paths: Sequence[str] = (),
    path_roots: Sequence[str | os.PathLike[str]] = (),
    origin: str | None = None,
    reporter: Reporter | None = None,
    owned: bool = True,
) -> list[Detected]:
    """See :func:`ckpm.detect.recheck`."""
    from ckpm.detect.registry import DetectorRegistry

    ctx = DetectContext(timeout=timeout, env=env, search_paths=search_paths, python=python, refresh=True,
                        path_roots=path_roots, reporter=reporter)
    if rule is None:
        if not name.startswith("__"):
            return []
        from ckpm.detect.facts import compute_facts

        fact = compute_facts(ctx).get(name)
        out = [fact] if fact is not None else []
    else:
        out = detect_component(name, [rule], ctx, DetectorRegistry.from_environment(None), origin=origin,
                               owned=owned)
    if path is not None:  # the match at the recorded path first; the path is only compared
        out.sort(key=lambda d: not same_path(d.path, path))
    return out


@dataclass(frozen=True)
class Rechecked:
    """What :func:`match_recorded` picked: the match at the recorded path, else another one."""

    record: Detected | None
    same_path: bool

    @property
    def missing(self) -> bool:
        return self.record is None


def match_recorded(found: Sequence[Detected], path: str | None, version: str | None = None) -> Rechecked:
    """The match at the recorded ``path`` (``same_path=True``); else one elsewhere with the
    recorded ``version`` if given, else the first (best) match (``same_path=False``: the
    software somewhere else); else none (``missing``)."""
    for d in found:
        if same_path(d.path, path):
            return Rechecked(d, True)
    if version is not None:
        for d in found:
            if d.version == version:
                return Rechecked(d, False)
    return Rechecked(found[0] if found else None, False)
