"""Host facts as virtual packages: ``__os``, ``__arch``, ``__libc``, ``__cpu``, ``__cuda``, ``__python``.

One tiny module per fact, each with ``NAME``, ``OVERRIDES`` (the suffixes of its
``CKPM_OVERRIDE_<SUFFIX>`` variables) and ``detect(ctx) -> Detected | None``. An override
replaces what was detected, so a lock can be made for another machine:

- ``none`` (any case) or an empty value hides the fact;
- ``NAME@VERSION`` sets both (``CKPM_OVERRIDE_LIBC=musl@1.2.4``);
- otherwise the value is the version, except for the named facts (``__os``, ``__arch``,
  ``__cpu``) where a value that does not start with a digit is a name
  (``CKPM_OVERRIDE_CPU=haswell``, ``CKPM_OVERRIDE_ARCH=aarch64``).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Mapping

from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

PREFIX = "CKPM_OVERRIDE_"
MODULES = ("system", "arch", "libc", "cpu", "cuda", "interpreter")
NAMED = {"__os", "__arch", "__cpu"}


def override_of(suffixes: tuple[str, ...], env: Mapping[str, str]) -> str | None:
    """The override value for a fact (None when not overridden)."""
    for s in suffixes:
        if PREFIX + s in env:
            return env[PREFIX + s]
    return None


def apply_override(name: str, found: Detected | None, value: str) -> Detected | None:
    """``found`` as ``value`` says it should be (None hides the fact)."""
    v = value.strip()
    if not v or v.lower() == "none":
        return None
    base = dict(found.extra) if found else {}
    label, version = None, None
    if "@" in v:
        label, _, version = v.partition("@")
    elif name in NAMED and not v[0].isdigit():
        label = v
    else:
        version = v
    same = label is None or label == base.get("name")
    # an override describes another machine: keep only what still holds
    extra: dict[str, object] = {"name": label or base.get("name") or ("glibc" if name == "__libc" else None)}
    if extra["name"] is None:
        del extra["name"]
    if name == "__cpu" and label:
        extra.update(_cpu_named(label))
    if name == "__arch" and extra.get("name"):
        from ckpm.detect.context import host_os

        extra["target"] = f"{host_os()}-{extra['name']}"
    if version is None:
        if found is not None and same and name != "__cpu":
            version = found.version
        elif name == "__cpu" and "level" in extra:
            version = str(extra["level"])
        elif name == "__cpu" and same and found is not None:
            version = found.version
        else:
            version = "1" if name in NAMED else "0"
    extra["override"] = v
    extra["detected"] = found.version if found else None
    return Detected(name, version, None, "override", f"override:{v}", extra)


def _cpu_named(label: str) -> dict[str, object]:
    """Features and level of a named microarchitecture (archspec, only when overriding)."""
    try:
        from ckpm.detect.facts.cpu import describe
        import archspec.cpu

        t = archspec.cpu.TARGETS.get(label)
        return describe(t) if t is not None else {}
    except Exception:
        return {}


def compute_facts(ctx: "DetectContext", *, overrides: bool = True) -> dict[str, Detected]:
    """Every host fact, overrides applied; a fact whose probe crashes is a warning."""
    out: dict[str, Detected] = {}
    for modname in MODULES:
        mod = importlib.import_module(f"ckpm.detect.facts.{modname}")
        ov = override_of(mod.OVERRIDES, ctx.env) if overrides else None
        found: Detected | None = None
        try:  # also under an override: the record keeps what was detected
            found = mod.detect(ctx)
        except Exception as e:
            ctx.warn(f"{mod.NAME}: detection failed: {type(e).__name__}: {e}")
        if ov is not None:
            found = apply_override(mod.NAME, found, ov)
        if found is not None:
            out[mod.NAME] = found
    return out
