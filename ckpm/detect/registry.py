"""Finding detectors: the ``ckpm.detectors`` entry-point group, with a built-in fallback.

ckpm registers its own detectors under that group, exactly as a plugin would::

    [project.entry-points."ckpm.detectors"]
    executable = "ckpm.detect.detectors.executable:ExecutableDetector"

When ckpm runs from a source tree (no package metadata), :data:`BUILTIN` fills in. The
entry-point scan costs tens of milliseconds, so its result is memoised in the host
profile under the fingerprint of this interpreter's ``sys.path``. A detector module is
imported only when a rule needs it.
"""
from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ckpm.detect.detectors.base import Detector

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext
    from ckpm.detect.record import Detected

GROUP = "ckpm.detectors"

BUILTIN: dict[str, str] = {
    "executable": "ckpm.detect.detectors.executable:ExecutableDetector",
    "compiler": "ckpm.detect.detectors.compiler:CompilerDetector",
    "python_package": "ckpm.detect.detectors.pypackage:PythonPackageDetector",
    "pkg_config": "ckpm.detect.detectors.pkgconfig:PkgConfigDetector",
    "library": "ckpm.detect.detectors.library:LibraryDetector",
    "path": "ckpm.detect.detectors.paths:PathDetector",
}


def scan_entry_points() -> tuple[dict[str, str], list[str]]:
    """{kind: "module:attr"} from the entry points (ckpm's own first), plus conflict warnings."""
    from importlib.metadata import entry_points

    eps = sorted(entry_points(group=GROUP), key=lambda ep: (getattr(ep.dist, "name", "") != "ckpm", ep.name, ep.value))
    table: dict[str, str] = {}
    warnings: list[str] = []
    for ep in eps:
        if ep.name in table and table[ep.name] != ep.value:
            warnings.append(f"detector plugin {ep.value} ignored: kind {ep.name!r} is already {table[ep.name]}")
            continue
        table[ep.name] = ep.value
    return table, warnings


class _FunctionDetector:
    """Adapts a plain ``detect(name, rule, ctx)`` function to the Detector protocol."""

    priority = 0

    def __init__(self, kind: str, fn: Any) -> None:
        self.kind = kind
        self._fn = fn

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable["Detected"]:
        return self._fn(name, rule, ctx)


def load_ref(kind: str, ref: str) -> Detector:
    """Import ``module:attr`` and make a detector of it (class → instance, function → adapter)."""
    mod, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    if isinstance(obj, type):
        obj = obj()
    if not hasattr(obj, "detect") and callable(obj):
        obj = _FunctionDetector(kind, obj)
    if not hasattr(obj, "detect"):
        raise TypeError(f"{ref} is not a detector (no detect method)")
    if not getattr(obj, "kind", None):
        try:
            obj.kind = kind
        except AttributeError:
            pass
    return obj  # type: ignore[no-any-return]


class DetectorRegistry:
    """Detectors by kind; routes a rule to the detector whose key it carries."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = dict(table)
        self._loaded: dict[str, Detector | None] = {}
        self.errors: list[str] = []

    @classmethod
    def from_environment(cls, ctx: "DetectContext | None" = None) -> "DetectorRegistry":
        """Built-ins plus the ``ckpm.detectors`` entry points (scan memoised in ``ctx``'s profile)."""
        if ctx is None:
            table, warns = scan_entry_points()
        else:
            from ckpm.detect.fingerprint import combine, dirs_fingerprint
            from ckpm.detect.pyenv import interpreter_fingerprint, local_sys_path

            fp = combine(interpreter_fingerprint(sys.executable), dirs_fingerprint(local_sys_path()))
            got = ctx.memo_value(["entry-points", GROUP, sys.executable], fp, lambda: list(scan_entry_points()))
            table, warns = dict(got[0]), list(got[1])
            ctx.warn_all(warns)
        return cls.with_builtins(table)

    @classmethod
    def with_builtins(cls, table: Mapping[str, str]) -> "DetectorRegistry":
        """``table`` completed by :data:`BUILTIN` (all of it when no metadata is installed)."""
        merged = dict(table)
        for kind, ref in BUILTIN.items():
            merged.setdefault(kind, ref)
        return cls(merged)

    def get(self, kind: str) -> Detector | None:
        """The detector for ``kind`` (None, with an error noted, if it cannot be loaded)."""
        if kind not in self._loaded:
            ref = self.table.get(kind)
            det: Detector | None = None
            if ref is not None:
                try:
                    det = load_ref(kind, ref)
                except Exception as e:  # a broken plugin must not break detection
                    self.errors.append(f"detector {kind!r} ({ref}) failed to load: {type(e).__name__}: {e}")
            self._loaded[kind] = det
        return self._loaded[kind]

    def route(self, rule: Mapping[str, Any]) -> Detector | None:
        """The detector for ``rule``: its ``detector`` key, else the highest-priority kind it carries."""
        if rule.get("detector"):
            return self.get(str(rule["detector"]))
        cands = [d for d in (self.get(k) for k in rule if k in self.table) if d is not None]
        if not cands:
            return None
        return max(cands, key=lambda d: (getattr(d, "priority", 0), -list(rule).index(d.kind) if d.kind in rule else 0))
