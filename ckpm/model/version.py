"""Versions of real software and the specifiers that select them.

Real version strings are not all PEP 440 (``1.1.1w``, ``12.2.0-14``, ``v3.0.0-rc1``,
``2.39.5.windows.1``). :class:`Version` parses with ``packaging`` where it can and
otherwise maps the string onto an equivalent PEP 440 form, so that every version
has a place in one total order. The original text is kept for display and locks.

:class:`Specifier` implements the operators people write (``>=``, ``<``, ``==1.2.*``,
``~=``, ``!=``, Cargo's ``^`` and ``~``, and ``*``) over that total order, with
the pip/uv/Cargo rule that pre-releases are only chosen when asked for.
"""
from __future__ import annotations

import re
from functools import lru_cache, total_ordering
from typing import Any, Iterable

from packaging.version import InvalidVersion
from packaging.version import Version as _PV

from ckpm.errors import SpecifierError, VersionError

_LEAD = re.compile(r"^[vV](?=\d)")
_NUMERIC_HEAD = re.compile(r"^(\d+(?:\.\d+)*)(.*)$")
_LETTER_PATCH = re.compile(r"^([a-z])$")  # OpenSSL style 1.1.1w
_LOCAL_OK = re.compile(r"[^a-z0-9]+")


#: the longest version string
MAX_VERSION_CHARS = 64
#: the characters of a version (PEP 440's and semver's): a digit first (after an optional ``v``),
#: then letters, digits and ``. + - _ !``; nothing a path, a page or a shell would read
VERSION_RE = re.compile(r"[vV]?[0-9][0-9A-Za-z.+_!-]*")


def _to_pep440(text: str) -> _PV:
    """Map a version string onto a packaging Version (the ordering key)."""
    text = text.strip()
    if len(text) > MAX_VERSION_CHARS or not VERSION_RE.fullmatch(text):
        shown = repr(text[:MAX_VERSION_CHARS]) + ("…" if len(text) > MAX_VERSION_CHARS else "")
        raise VersionError(f"not a version: {shown}",
                           hint=f"a version is at most {MAX_VERSION_CHARS} characters: a digit (or v and a digit), "
                                "then letters, digits and . + - _ ! (PEP 440 or semver), like 1.2.0 or 2.0.0-rc.1")
    s = _LEAD.sub("", text)
    try:
        return _PV(s)
    except InvalidVersion:
        pass
    m = _NUMERIC_HEAD.match(s)
    if not m:
        raise VersionError(f"not a version: {text!r}", hint="a version starts with a number, like 1.2.0 or v1.2.0")
    head, rest = m.group(1), m.group(2).lower()
    lm = _LETTER_PATCH.match(rest)
    if lm:  # 1.1.1w: letters count patch releases after 1.1.1
        return _PV(f"{head}.post{ord(lm.group(1)) - ord('a') + 1}")
    local = _LOCAL_OK.sub(".", rest).strip(".")
    if local and not any(ch.isdigit() for ch in local):
        raise VersionError(f"not a version: {text!r}", hint="write versions like 1.2.0, v1.2.0, 1.1.1w or 12.2.0-14")
    if not local:
        return _PV(head)
    try:
        return _PV(f"{head}+{local}")
    except InvalidVersion as e:  # pragma: no cover - the regex keeps local segments valid
        raise VersionError(f"not a version: {text!r}") from e


@total_ordering
class Version:
    """A version string with its place in ckpm's total order."""

    __slots__ = ("text", "key", "_hash", "sort_key", "plain")

    def __init__(self, text: str) -> None:
        self.text = str(text).strip()
        self.key = _to_pep440(self.text)
        self._hash = hash(self.key)
        # what packaging compares (its ``_key`` tuple, or the Version itself where a packaging
        # release has none): sorting many versions by it compares tuples in C
        k = getattr(self.key, "_key", None)
        self.sort_key: Any = k if type(k) is tuple else self.key
        #: neither a pre-release nor with a local part (``+local``)
        self.plain = not self.key.is_prerelease and self.key.local is None

    @property
    def is_prerelease(self) -> bool:
        return self.key.is_prerelease

    @property
    def release(self) -> tuple[int, ...]:
        return self.key.release

    @property
    def public(self) -> _PV:
        return _PV(self.key.public)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Version):
            return self.key == other.key
        return NotImplemented

    def __lt__(self, other: "Version") -> bool:
        return bool(self.sort_key < other.sort_key)  # packaging's order

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Version({self.text!r})"


@lru_cache(maxsize=65536)
def parse_version(text: str) -> Version:
    """Parse (and memoise) a version string; raises VersionError."""
    return Version(text)


def try_version(text: str) -> Version | None:
    """A Version, or None when the text is not one (e.g. a git tag like ``latest``)."""
    try:
        return parse_version(text)
    except VersionError:
        return None


_CLAUSE = re.compile(r"^\s*(===|==|!=|~=|>=|<=|>|<|\^|~|=)?\s*(.+?)\s*$")


class _Clause:
    __slots__ = ("op", "text", "version", "wildcard", "lower", "upper")

    def __init__(self, op: str, text: str) -> None:
        self.op = op
        self.text = text
        self.wildcard = False
        self.lower: Version | None = None
        self.upper: Version | None = None
        vt = text
        if vt.endswith(".*"):
            if op not in ("==", "!="):
                raise SpecifierError(f"'{op}{text}': a wildcard goes only with == or !=")
            self.wildcard = True
            vt = vt[:-2]
        self.version = parse_version(vt)
        if op == "~=":
            rel = self.version.release
            if len(rel) < 2:
                raise SpecifierError(f"'~={text}' needs at least two parts (like ~=1.4)")
            self.lower = self.version
            self.upper = _bump(rel[:-1])
        elif op == "^":  # Cargo caret: the left-most non-zero part is fixed
            rel = self.version.release
            idx = next((i for i, p in enumerate(rel) if p != 0), len(rel) - 1)
            self.lower = self.version
            self.upper = _bump(rel[: idx + 1])
        elif op == "~":  # Cargo tilde: ~1.2.3 means >=1.2.3,<1.3
            rel = self.version.release
            self.lower = self.version
            self.upper = _bump(rel[:2] if len(rel) >= 2 else rel[:1])

    @property
    def names_prerelease(self) -> bool:
        return self.version.is_prerelease

    def contains(self, v: Version) -> bool:
        op = self.op
        if op in ("==", "!="):
            if self.wildcard:
                n = len(self.version.release)
                rel = v.release + (0,) * max(0, n - len(v.release))
                hit = rel[:n] == self.version.release and v.key.epoch == self.version.key.epoch
            elif self.version.key.local is None:
                hit = v.public == self.version.key
            else:
                hit = v == self.version
            return hit if op == "==" else not hit
        if op == "===":
            return v.text == self.version.text
        if op == ">=":
            return v >= self.version
        if op == "<=":
            return v <= self.version or v.public == self.version.key
        if op == ">":
            return v > self.version and v.public != self.version.public
        if op == "<":
            if v >= self.version:
                return False
            # like PEP 440, <2.0 does not admit 2.0rc1 unless the bound is a pre-release itself
            if v.is_prerelease and not self.version.is_prerelease and v.release == self.version.release:
                return False
            return True
        assert self.lower is not None and self.upper is not None
        return self.lower <= v < self.upper and not (v.is_prerelease and v.release == self.upper.release)

    def __str__(self) -> str:
        return f"{self.op}{self.text}"


def _bump(release: tuple[int, ...]) -> Version:
    parts = list(release)
    parts[-1] += 1
    return parse_version(".".join(str(p) for p in parts) + ".dev0")


class Specifier:
    """A comma-separated set of clauses, all of which must hold (``*`` or empty: any)."""

    __slots__ = ("text", "clauses", "_memo", "names_prerelease")

    def __init__(self, text: str = "*") -> None:
        self.text = (text or "*").strip()
        self.clauses: tuple[_Clause, ...] = ()
        self._memo: dict[tuple[Version, bool | None], bool] = {}  # the resolver asks the same pairs often
        self.names_prerelease = False  # a clause names a pre-release (then pre-releases are admitted)
        if self.text in ("*", ""):
            self.text = "*"
            return
        clauses = []
        for raw in self.text.split(","):
            raw = raw.strip()
            if not raw or raw == "*":
                continue
            m = _CLAUSE.match(raw)
            if not m:
                raise SpecifierError(f"not a version range: {text!r}")
            op = m.group(1) or "=="
            if op == "=":
                op = "=="
            try:
                clauses.append(_Clause(op, m.group(2)))
            except VersionError as e:
                raise SpecifierError(
                    f"not a version range: {text!r} ({e.message})",
                    hint="write ranges like '>=1.13,<2', '==1.2.*', '^0.3' or '*'",
                ) from None
        self.clauses = tuple(clauses)
        self.names_prerelease = any(c.names_prerelease for c in self.clauses)

    def contains(self, v: Version, prereleases: bool | None = None) -> bool:
        """True when ``v`` satisfies every clause.

        Pre-releases are admitted only when ``prereleases`` is true or a clause names one.
        """
        memo = self._memo
        hit = memo.get((v, prereleases))
        if hit is not None:
            return hit
        if v.is_prerelease and not (prereleases if prereleases is not None else self.names_prerelease):
            hit = False
        else:
            hit = all(c.contains(v) for c in self.clauses)
        if len(memo) < 4096:
            memo[(v, prereleases)] = hit
        return hit

    def filter(self, versions: Iterable[Version], prereleases: bool | None = None) -> list[Version]:
        return [v for v in versions if self.contains(v, prereleases)]

    def __and__(self, other: "Specifier") -> "Specifier":
        parts = [s.text for s in (self, other) if s.text != "*"]
        return parse_specifier(",".join(parts) if parts else "*")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Specifier({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Specifier) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)


@lru_cache(maxsize=16384)
def parse_specifier(text: str) -> Specifier:
    """Parse (and memoise) a specifier; raises SpecifierError."""
    return Specifier(text)
