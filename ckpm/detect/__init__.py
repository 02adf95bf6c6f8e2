"""Host detection: host facts as virtual packages, and detectors for installed software.

Detectors yield :class:`Detected` records and know nothing of the resolver. Results
are cached in a host profile keyed by fingerprints (path, size, mtime), so a warm run
starts no subprocess. This module imports nothing heavy: archspec, importlib.metadata
and subprocess are loaded only when a probe actually runs. See ``docs/detection.md``.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from ckpm.detect.fingerprint import fingerprint_of
from ckpm.detect.record import DetectionResult, Detected

__all__ = ["Detected", "DetectionResult", "detect", "host_facts", "recheck", "fingerprint_of"]


def host_facts(
    env: Mapping[str, str] | None = None, *, cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = 3.0,
) -> dict[str, Detected]:
    """This host's facts (``__os``, ``__arch``, ``__libc``, ``__cpu``, ``__cuda``, ``__python``).

    ``env`` (default ``os.environ``) supplies ``CKPM_OVERRIDE_<NAME>`` overrides and PATH;
    costly facts are memoised in the host profile like any detection.
    """
    from ckpm.detect.engine import run_detection

    return run_detection({}, cache_dir=cache_dir, timeout=timeout, env=env).facts


def detect(
    rules: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    refresh: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = 3.0,
    search_paths: Sequence[str] = (),
    python: str | None = None,
    env: Mapping[str, str] | None = None,
) -> DetectionResult:
    """Run every rule (component name → its ``detect`` rules) and the host facts.

    ``found[name]`` lists all matches, best first (native before cross, newest, then
    path). ``refresh`` re-probes everything; ``timeout`` bounds each probe in seconds;
    ``search_paths`` are folders searched before PATH; ``python`` is the interpreter
    whose packages ``python_package`` rules look at (default: this one).
    Never raises for a failing probe: see ``warnings``.
    """
    from ckpm.detect.engine import run_detection

    return run_detection(rules, refresh=refresh, cache_dir=cache_dir, timeout=timeout,
                         search_paths=search_paths, python=python, env=env)


def recheck(
    d: Detected | Mapping[str, Any], *, timeout: float = 3.0, env: Mapping[str, str] | None = None,
) -> Detected | None:
    """Re-probe one recorded detection (same detector, same path): what is there now, or None.

    Takes a :class:`Detected` or its JSON dict (as a lockfile stores it); never uses the cache.
    """
    from ckpm.detect.engine import recheck_record

    return recheck_record(d, timeout=timeout, env=env)
