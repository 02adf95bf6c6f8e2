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
import re
from typing import TYPE_CHECKING, Mapping

from ckpm.detect.record import Detected
from ckpm.model.targets import normalize_arch, normalize_os

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
    if label and name == "__arch":  # one spelling of platforms with the host target (model.targets)
        label = normalize_arch(label)
    elif label and name == "__os":
        label = normalize_os(label)
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


OS_NAMES = frozenset({"linux", "macos", "windows", "android", "freebsd", "netbsd", "openbsd", "none"})
LIBC_NAMES = frozenset({"glibc", "musl", "bionic", "uclibc"})
_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,31}$")


def _suffixes() -> dict[str, str]:
    """{override suffix: fact name} for every fact module."""
    out: dict[str, str] = {}
    for modname in MODULES:
        mod = importlib.import_module(f"ckpm.detect.facts.{modname}")
        for suffix in mod.OVERRIDES:
            out[suffix] = mod.NAME
    return out


def override_problem(name: str, value: str) -> str | None:
    """Why ``value`` is not a valid override of fact ``name`` (None if it is)."""
    v = value.strip()
    if not v or v.lower() == "none":
        return None
    if len(v) > 80 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in v):
        return "it is not a version or a name"
    label, version = None, None
    if "@" in v:
        label, _, version = v.partition("@")
        if not label:
            return "the name before '@' is empty"
    elif name in NAMED and not v[0].isdigit():
        label = v
    else:
        version = v
    if label is not None:
        why = _label_problem(name, label)
        if why is not None:
            return why
    if version is not None:
        from ckpm.model.version import try_version

        if try_version(version) is None:
            return f"{version!r} is not a version"
    return None


def _label_problem(name: str, label: str) -> str | None:
    if name == "__os" and label.lower() not in OS_NAMES:
        return f"{label!r} is not an OS name (one of {', '.join(sorted(OS_NAMES))})"
    if name == "__arch":
        from ckpm.detect.context import ARCH_ALIASES, normalize_arch

        if normalize_arch(label) not in set(ARCH_ALIASES.values()) | {"ppc64", "loongarch64", "mips64el", "wasm32"}:
            return f"{label!r} is not an architecture name (x86_64, aarch64, armv7, riscv64, …)"
    if name == "__libc" and label.lower() not in LIBC_NAMES:
        return f"{label!r} is not a C library name (one of {', '.join(sorted(LIBC_NAMES))})"
    if name == "__cpu":
        try:
            import archspec.cpu

            known = label in archspec.cpu.TARGETS
        except Exception:
            known = bool(_LABEL.match(label))
        if not known:
            return f"{label!r} is not a CPU microarchitecture name (haswell, icelake, neoverse_n1, …)"
    if not _LABEL.match(label):
        return f"{label!r} is not a name"
    return None


def invalid_overrides(env: Mapping[str, str]) -> list[str]:
    """One message per ``CKPM_OVERRIDE_*`` variable that is unknown or whose value is invalid.

    ``CKPM_OVERRIDE_GLIBC=banana`` gives ``CKPM_OVERRIDE_GLIBC=banana is invalid: 'banana'
    is not a version (write e.g. CKPM_OVERRIDE_GLIBC=2.17, NAME@VERSION, or none to hide the
    fact)``. Detection warns and ignores such a value; a command may make it an error.
    """
    suffixes = _suffixes()
    out: list[str] = []
    for var in sorted(k for k in env if k.startswith(PREFIX)):
        suffix = var[len(PREFIX):]
        fact = suffixes.get(suffix)
        if fact is None:
            out.append(f"{var} is not a known override (known: "
                       f"{', '.join(PREFIX + s for s in suffixes)})")
            continue
        why = override_problem(fact, env[var])
        if why is not None:
            out.append(_invalid_message(var, fact, env[var], why))
    return out


def _invalid_message(var: str, fact: str, value: str, why: str) -> str:
    from ckpm.report import escape_control

    example = {"__os": "linux@5.10", "__arch": "aarch64", "__cpu": "haswell", "__libc": "2.17",
               "__cuda": "12.4", "__python": "3.11"}.get(fact, "1.0")
    return escape_control(f"{var}={value} is invalid: {why} (write e.g. {var}={example}, NAME@VERSION, "
                          f"or none to hide the fact)")


def compute_facts(ctx: "DetectContext", *, overrides: bool = True) -> dict[str, Detected]:
    """Every host fact, overrides applied; a fact whose probe crashes is a warning, and so is
    an invalid override (it is ignored: the fact is what this host has)."""
    out: dict[str, Detected] = {}
    for modname in MODULES:
        mod = importlib.import_module(f"ckpm.detect.facts.{modname}")
        ov = override_of(mod.OVERRIDES, ctx.env) if overrides else None
        if ov is not None:
            var = next(PREFIX + s for s in mod.OVERRIDES if PREFIX + s in ctx.env)
            why = override_problem(mod.NAME, ov)
            if why is not None:
                ctx.warn(_invalid_message(var, mod.NAME, ov, why) + "; ignored, using what this host has")
                ov = None
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
