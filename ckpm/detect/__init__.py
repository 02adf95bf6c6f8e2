"""Host detection: host facts as virtual packages, and detectors for installed software.

Detectors yield :class:`Detected` records and know nothing of the resolver. Results
are cached in a host profile keyed by fingerprints (path, size, mtime), so a warm run
starts no subprocess. Detect rules come from indexes, data written by someone else:
every rule is validated (:mod:`ckpm.detect.trust`) before any of it is used. This module
imports nothing heavy: archspec, importlib.metadata and subprocess are loaded only when
a probe actually runs. See ``docs/detection.md``.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ckpm.lazy import lazy_exports
from ckpm.detect.fingerprint import fingerprint_of
from ckpm.detect.record import DetectionResult, Detected
from ckpm.detect.trust import rule_id, validate_rule

if TYPE_CHECKING:
    from ckpm.detect.engine import Rechecked
    from ckpm.report import Reporter

__all__ = ["Detected", "DetectionResult", "detect", "host_facts", "recheck", "match_recorded", "Rechecked",
           "fingerprint_of", "rule_id", "validate_rule", "invalid_overrides"]


def host_facts(
    env: Mapping[str, str] | None = None, *, cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = 3.0,
) -> dict[str, Detected]:
    """This host's facts (``__os``, ``__arch``, ``__libc``, ``__cpu``, ``__cuda``, ``__python``).

    ``env`` (default ``os.environ``) supplies ``CKPM_OVERRIDE_<NAME>`` overrides and PATH;
    costly facts are memoised in the host profile like any detection. An override whose
    value is invalid is a warning (see :func:`invalid_overrides`) and is ignored.
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
    path_roots: Sequence[str | os.PathLike[str]] = (),
    origin: str | None = None,
    owned: bool = False,
    reporter: Reporter | None = None,
) -> DetectionResult:
    """Run every rule (component name → its ``detect`` rules) and the host facts.

    Each rule is validated first (:func:`ckpm.detect.trust.validate_rule`): one that
    breaks a limit is skipped with a warning (prefixed by ``origin``, e.g. ``"index
    lab"``). ``found[name]`` lists all matches, best first (native before cross, newest,
    then path); each record's ``extra["rule_id"]`` names the rule that found it.
    ``refresh`` re-probes everything; ``timeout`` bounds each probe in seconds;
    ``search_paths`` are folders searched before PATH; ``python`` is the interpreter
    whose packages ``python_package`` rules look at (default: this one); ``path_roots``
    are the user's folders that rules' ``path`` globs and ``search_paths`` may name,
    beside the system prefixes and ckpm's data folder. ``owned=True``: the rules are index
    data (ckpm passes it for every index's rules), so each may only run executables that
    belong to its component (:func:`ckpm.detect.trust.belongs_to`); the default trusts the
    caller's own rules on that point (every other limit holds for all rules).
    Never raises for a failing probe or a rejected rule: each is a warning to ``reporter``
    (said once), and the result's ``warnings`` lists what this run said.
    """
    from ckpm.detect.engine import run_detection

    return run_detection(rules, refresh=refresh, cache_dir=cache_dir, timeout=timeout,
                         search_paths=search_paths, python=python, env=env, path_roots=path_roots,
                         origin=origin, owned=owned, reporter=reporter)


def recheck(
    name: str,
    rule: Mapping[str, Any] | None = None,
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
    """Re-check what a lock pinned: run ``rule`` (looked up again in the index by its
    ``rule_id``) fresh, without the cache, and return every match, the one at ``path``
    first.

    The rule is validated like any index rule; nothing is taken from the lock but the
    component ``name`` and the recorded ``path``, which is only compared (never executed).
    For a host fact (``name`` starting with ``__``, ``rule`` None) the facts are recomputed,
    overrides applied. Use :func:`match_recorded` to tell "same version at another path"
    from "missing". ``reporter`` receives what went wrong. The rule is an index's
    (``owned``, the default): it may only run executables that belong to ``name``.
    """
    from ckpm.detect.engine import recheck_rule

    return recheck_rule(name, rule, path=path, timeout=timeout, env=env, python=python, search_paths=search_paths,
                        path_roots=path_roots, origin=origin, reporter=reporter, owned=owned)


def match_recorded(found: Sequence[Detected], path: str | None, version: str | None = None) -> "Rechecked":
    """What :func:`recheck` found, for a lock's record: the match at the recorded ``path``
    (``same_path`` True), else one elsewhere with the recorded ``version`` (if given), else
    the best other match, else none (``missing``). See :class:`ckpm.detect.engine.Rechecked`."""
    from ckpm.detect.engine import match_recorded as _match

    return _match(found, path, version)


def invalid_overrides(env: Mapping[str, str] | None = None) -> list[str]:
    """One message per ``CKPM_OVERRIDE_*`` variable whose value is invalid (see
    :func:`ckpm.detect.facts.invalid_overrides`)."""
    from ckpm.detect.facts import invalid_overrides as _invalid

    return _invalid(os.environ if env is None else env)


__getattr__ = lazy_exports(__name__, {"Rechecked": "ckpm.detect.engine"})  # the engine loads on first use
