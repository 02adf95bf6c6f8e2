"""What a detector is, and helpers the built-in ones share.

A detector handles the rules that carry its ``kind`` as a key
(``{"executable": [...]}`` → the ``executable`` detector) and yields
:class:`~ckpm.detect.record.Detected` records. It knows nothing of the resolver.
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol, runtime_checkable

from ckpm.detect.fingerprint import fingerprint_of
from ckpm.detect.probe import truncate
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext

DEFAULT_VERSION_REGEX = r"(\d+(?:\.\d+)+[A-Za-z0-9.+~-]*|\d+)"


@runtime_checkable
class Detector(Protocol):
    """A detector plugin: a ``kind`` (its rule key) and a ``detect`` generator."""

    kind: str

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        """Yield what ``rule`` finds on this host, recorded under component ``name``."""
        ...


class RuleDetector:
    """Base of the built-in detectors: a kind and a priority for routing.

    ``priority`` breaks ties when a rule carries the keys of several detectors
    (``{"compiler": "gcc", "executable": [...]}`` goes to ``compiler``).
    """

    kind: str = ""
    priority: int = 0

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        raise NotImplementedError


def same_path(a: str | None, b: str | None) -> bool:
    """True if two recorded paths name the same file (also through symlinks)."""
    if a is None or b is None:
        return a == b
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def as_list(value: Any) -> list[str]:
    """A rule value that may be one string or a list of strings, as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def extract_version(text: str, regex: str | None) -> str | None:
    """The first group (or the whole match) of ``regex`` in ``text``, or None."""
    try:
        m = re.search(regex or DEFAULT_VERSION_REGEX, text, re.MULTILINE)
    except re.error:
        return None
    if not m:
        return None
    v = m.group(1) if m.re.groups else m.group(0)
    return v.strip() if v else None


def no_version_warning(label: str, command: str, regex: str | None, raw: str) -> str:
    """The warning for output that does not parse: names the regex and shows the raw text."""
    return f"{label}: no version in output of `{command}` (regex {regex or DEFAULT_VERSION_REGEX!r}): {truncate(raw)!r}"


def read_head(path: str, limit: int = 1 << 20) -> str | None:
    """The first ``limit`` bytes of a text file, or None if unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return None
