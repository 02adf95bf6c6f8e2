"""Index entries: one published version of one component (index format 1, docs/formats.md).

Index data is someone else's data. :func:`check_entry` and :func:`check_summary` turn one
parsed JSON line into an :class:`IndexEntry` or a :class:`ComponentSummary`, or raise
:class:`IndexDataError` saying what is wrong; :func:`load_json_line` parses a line with
its nesting depth checked first. The limits they enforce are the constants below (one
place; docs/formats.md, "Limits", lists them).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from ckpm.errors import IndexReadError, SpecifierError, VersionError
from ckpm.model.requirement import Requirement, plain_requirement, requirement_from_index_dep
from ckpm.model.targets import matches
from ckpm.model.version import Specifier, Version, parse_specifier, parse_version

if TYPE_CHECKING:
    from ckpm.model.program import Program
    from ckpm.model.recipe import FetchSource, Recipe

KINDS = ("program", "lib", "compiler", "tool", "model", "dataset", "script")
#: Windows device names: no file of such a name (with any extension) can exist there
DEVICE_NAMES = ("con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)))
#: a component name: lower-case letters, digits and ``._-``, starting and ending with a letter or
#: digit, and not a Windows device name (``con``, ``nul.x``); compared in :func:`normalize_name` form
NAME_RE = re.compile(r"(?!(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?![a-z0-9_-]))[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
_SEPARATORS = re.compile(r"[-_.]+")
TAG_RE = re.compile(r"[a-z0-9][a-z0-9._+-]*")
KIND_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
DEP_NAME_RE = re.compile(r"(?:__)?[a-z0-9][a-z0-9._-]*")  # a component, a capability key, or a host fact (__os)

# -- limits (docs/formats.md, "Limits") ------------------------------------------------------
# Sizes are in bytes of UTF-8; lengths of strings in characters.

MAX_NAME_LEN = 64                      #: a component (or dependency) name, as Cargo
MAX_VERSION_LEN = 64                   #: a version string
MAX_KIND_LEN = 32
MAX_TAG_LEN = 64
MAX_TAGS = 64                          #: tags of one line; also tags / no_tags of one dependency
MAX_DESCRIPTION_LEN = 1024
MAX_TARGET_LEN = 64
MAX_TARGETS = 64                       #: target patterns of one line or one dependency
MAX_DEPS = 256                         #: dependencies of one line
MAX_REQ_LEN = 256                      #: a dependency's version range
MAX_URL_LEN = 2048                     #: source.git, source.urls[i], a dependency's git
MAX_URLS = 16                          #: source.urls
MAX_PATH_LEN = 1024                    #: source.subdir, a dependency's subdir
MAX_FIELD_LEN = 256                    #: other short strings: source.rev, source.tag, cksum, pubtime…
MAX_BYTE_COUNT = 1 << 50               #: source.size, source.unpacked-size (1 PiB)
MAX_DETECT_RULES = 32                  #: detect rules of one line
MAX_INSTALL_RECIPES = 32               #: install recipes of one line
MAX_JSON_DEPTH = 32                    #: nesting of arrays and objects in one line (a line needs ~7)
MAX_LINE_BYTES = 64 * 1024             #: one line of a component file
MAX_FILE_BYTES = 8 * 1024 * 1024       #: one component file
MAX_VERSIONS = 10_000                  #: lines (versions) of one component file
MAX_CONFIG_BYTES = 64 * 1024           #: config.json
MAX_SUMMARY_LINE_BYTES = 1024 * 1024   #: one line of summary.jsonl (holds every version of a component)
MAX_SUMMARY_TAGS = 1024                #: tags of one summary line (the union over all versions)
MAX_SUMMARY_BYTES = 64 * 1024 * 1024   #: summary.jsonl

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_SHOWN = 40


class IndexDataError(IndexReadError, ValueError):
    """Index data that breaks the format or its limits: the message says what is wrong.

    Raised for one line (the index reader adds ``FILE:LINE`` and skips the line) and by
    the index writer, which refuses to write such data.
    """


def valid_name(name: str) -> bool:
    """A component name (:data:`NAME_RE`: ``[a-z0-9][a-z0-9._-]*`` ending in a letter or digit, no
    Windows device name), at most :data:`MAX_NAME_LEN` characters."""
    return isinstance(name, str) and len(name) <= MAX_NAME_LEN and NAME_RE.fullmatch(name) is not None


def normalize_name(name: str) -> str:
    """The form names are compared in (as PEP 503): lower-case, each run of ``-``, ``_`` and ``.``
    one ``-`` (``Fo_.o`` and ``fo-o`` are one name)."""
    return _SEPARATORS.sub("-", name.lower())


def shown(value: Any) -> str:
    """``value`` for a message: repr() (which escapes control characters), cut to a few dozen characters."""
    if isinstance(value, str) and len(value) > _SHOWN:
        return repr(value[:_SHOWN]) + f"… ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= _SHOWN + 2 else text[:_SHOWN] + "…"


def utf8_len(text: str) -> int:
    """The UTF-8 size of ``text`` (without encoding it when the answer is plain)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when JSON ``text`` nests arrays/objects deeper than ``limit`` (strings are skipped).

    Cheap: a text with at most ``limit`` opening brackets is never scanned, and the scan is
    a regular expression, never recursion. The scanner reads strings as JSON does, so the
    depth a JSON parser reaches on ``text`` is never more than the depth seen here.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for m in _JSON_TOKENS.finditer(text):
        c = m.group()[0]
        if c == "[" or c == "{":
            depth += 1
            if depth > limit:
                return True
        elif c == "]" or c == "}":
            depth -= 1
    return False


def load_json_line(line: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse one JSON value with its depth checked first; lone surrogates are refused.

    Raises :class:`IndexDataError` (never RecursionError, whatever the text).
    """
    if json_too_deep(line, max_depth):
        raise IndexDataError(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(line)
    except RecursionError:  # pragma: no cover - json_too_deep keeps the parser shallow
        raise IndexDataError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as e:  # JSONDecodeError, and integers past Python's digit limit
        raise IndexDataError(f"not JSON ({_short_reason(e)})") from None
    if _SURROGATE_ESCAPE.search(line):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            bad = e.object[e.start:e.end] if isinstance(e.object, str) else "?"
            raise IndexDataError(f"a string holds a lone surrogate ({bad.encode('unicode_escape').decode()})") from None
    return value


def _short_reason(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "integer string conversion" in text:  # Python's int digit limit (sys.get_int_max_str_digits)
        return "a number with too many digits"
    return text if len(text) <= 120 else text[:120] + "…"


# -- field checks -------------------------------------------------------------------------

def _string(d: Mapping[str, Any], key: str, limit: int, *, where: str = "", required: bool = False,
            control_ok: bool = False) -> str | None:
    v = d.get(key)
    label = f"{where}{key}"
    if v is None:
        if required:
            raise IndexDataError(f"{label} is missing")
        return None
    if not isinstance(v, str):
        raise IndexDataError(f"{label} must be a string, not {_type(v)}")
    return _text(v, label, limit, control_ok=control_ok)


def _text(v: str, label: str, limit: int, *, control_ok: bool = False) -> str:
    if len(v) > limit:
        raise IndexDataError(f"{label} {shown(v)} is longer than {limit} characters")
    if not control_ok and _CONTROL.search(v):
        raise IndexDataError(f"{label} {shown(v)} holds control characters")
    return v


def _list(d: Mapping[str, Any], key: str, limit: int, *, where: str = "") -> list[Any]:
    v = d.get(key)
    label = f"{where}{key}"
    if v is None:
        return []
    if not isinstance(v, list):
        raise IndexDataError(f"{label} must be a list, not {_type(v)}")
    if len(v) > limit:
        raise IndexDataError(f"{label} has {len(v)} items (at most {limit})")
    return v


def _strings(d: Mapping[str, Any], key: str, limit: int, item_limit: int, *, where: str = "",
             pattern: re.Pattern[str] | None = None, lower: bool = False) -> list[str]:
    items = _list(d, key, limit, where=where)
    if set(map(type, items)) <= {str}:  # the usual case, checked at C speed; else say what is wrong
        fast = [v.lower() for v in items] if lower else items
        if (not fast or max(map(len, fast)) <= item_limit) and not _CONTROL.search("".join(fast)) and (
                pattern is None or all(pattern.fullmatch(v) for v in fast)):
            return fast
    out = []
    for i, v in enumerate(items):
        label = f"{where}{key}[{i}]"
        if not isinstance(v, str):
            raise IndexDataError(f"{label} must be a string, not {_type(v)}")
        v = _text(v.lower() if lower else v, label, item_limit)
        if pattern is not None and pattern.fullmatch(v) is None:
            raise IndexDataError(f"{label} {shown(v)} is not valid")
        out.append(v)
    return out


def _name(v: Any, label: str, *, dep: bool = False) -> str:
    if not isinstance(v, str):
        raise IndexDataError(f"{label} must be a string, not {_type(v)}")
    ok = len(v) <= MAX_NAME_LEN and DEP_NAME_RE.fullmatch(v) is not None if dep else valid_name(v)
    if not ok:
        raise IndexDataError(f"{label} {shown(v)} is not a valid component name "
                             f"([a-z0-9][a-z0-9._-]*, at most {MAX_NAME_LEN} characters)")
    return v


def _version(v: Any, label: str = "version") -> Version:
    if not isinstance(v, str):
        raise IndexDataError(f"{label} must be a string, not {_type(v)}")
    _text(v, label, MAX_VERSION_LEN)
    try:
        return parse_version(v)
    except VersionError:
        raise IndexDataError(f"{label} {shown(v)} is not a version") from None


def _object(v: Any, label: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise IndexDataError(f"{label} must be an object, not {_type(v)}")
    return v


def _type(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


_DEP_MEMO: dict[tuple[Any, ...], Requirement] = {}
_DEP_MEMO_MAX = 65_536


def _dep_key(raw: Any) -> tuple[Any, ...] | None:
    """A hashable key for a dependency object of plain values (types included: True is not 1), or None."""
    if type(raw) is not dict:
        return None
    if set(map(type, raw.values())) <= {str}:  # the usual {"name": ..., "req": ...}: strings only
        return tuple(raw.items())
    key = tuple((k, type(v).__name__, tuple(v) if isinstance(v, list) else v) for k, v in raw.items())
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _dep(raw: Any, i: int) -> Requirement:
    """A checked dependency; the same dependency on many versions is checked once (memoised)."""
    key = _dep_key(raw)
    hit = _DEP_MEMO.get(key) if key is not None else None
    if hit is not None:
        return hit
    req = _check_dep(raw, i)
    if key is not None:
        if len(_DEP_MEMO) >= _DEP_MEMO_MAX:
            _DEP_MEMO.clear()
        _DEP_MEMO[key] = req
    return req


def _check_dep(raw: Any, i: int) -> Requirement:
    label = f"deps[{i}]."
    d = _object(raw, f"deps[{i}]")
    name = d.get("name")
    _name(name.lower() if isinstance(name, str) else name, f"{label}name", dep=True)
    req = _string(d, "req", MAX_REQ_LEN, where=label)
    _strings(d, "tags", MAX_TAGS, MAX_TAG_LEN, where=label, pattern=TAG_RE, lower=True)
    _strings(d, "no_tags", MAX_TAGS, MAX_TAG_LEN, where=label, pattern=TAG_RE, lower=True)
    _strings(d, "targets", MAX_TARGETS, MAX_TARGET_LEN, where=label)
    _string(d, "kind", MAX_KIND_LEN, where=label)
    _string(d, "prefer", MAX_KIND_LEN, where=label)
    _string(d, "git", MAX_URL_LEN, where=label)
    _string(d, "subdir", MAX_PATH_LEN, where=label)
    opt = d.get("optional")
    if opt is not None and not isinstance(opt, bool):
        raise IndexDataError(f"{label}optional must be true or false, not {shown(opt)}")
    try:
        return requirement_from_index_dep(d)
    except SpecifierError as e:
        raise IndexDataError(f"{label}req {shown(req)} is not a version range ({e.message})") from None


def _source(raw: Any) -> Mapping[str, Any]:
    if raw is None:
        return {}
    d = _object(raw, "source")
    _string(d, "git", MAX_URL_LEN, where="source.")
    _string(d, "rev", MAX_FIELD_LEN, where="source.")
    _string(d, "tag", MAX_FIELD_LEN, where="source.")
    _string(d, "subdir", MAX_PATH_LEN, where="source.")
    _string(d, "sha256", MAX_FIELD_LEN, where="source.")
    _strings(d, "urls", MAX_URLS, MAX_URL_LEN, where="source.")
    for key in ("size", "unpacked-size"):
        byte_count(d.get(key), f"source.{key}")
    return d


def byte_count(v: Any, label: str) -> int | None:
    """A byte count of index data (``size``, ``unpacked-size``): None, or an integer 0 to
    :data:`MAX_BYTE_COUNT`; IndexDataError otherwise."""
    if v is None:
        return None
    if type(v) is not int or not 0 <= v <= MAX_BYTE_COUNT:
        raise IndexDataError(f"{label} must be a byte count (an integer from 0 to {MAX_BYTE_COUNT}), "
                             f"not {shown(v)}")
    return v


def _objects(d: Mapping[str, Any], key: str, limit: int) -> tuple[Mapping[str, Any], ...]:
    return tuple(_object(x, f"{key}[{i}]") for i, x in enumerate(_list(d, key, limit)))


def _short_strs(v: Any, count: int, length: int, clean: bool = False) -> bool:
    """``v`` is a list of at most ``count`` strings of at most ``length`` characters, no control
    characters (not searched when ``clean``: the line they come from has none)."""
    return (type(v) is list and len(v) <= count and set(map(type, v)) <= {str}
            and (not v or (max(map(len, v)) <= length and (clean or not _CONTROL.search("".join(v))))))


def _common_fast(kind: Any, description: Any, tags: Any, max_tags: int, clean: bool = False) -> str | None:
    """The fast checks of ``kind``, ``description`` and ``tags`` shared by index and summary
    lines: the tags lower-cased and joined with commas, or None when anything is unusual."""
    if kind is not None and not (type(kind) is str and len(kind) <= MAX_KIND_LEN and KIND_RE.fullmatch(kind)):
        return None
    if description is not None and not (type(description) is str and len(description) <= MAX_DESCRIPTION_LEN
                                         and (clean or not _CONTROL.search(description))):
        return None
    if type(tags) is not list or len(tags) > max_tags or not set(map(type, tags)) <= {str}:
        return None
    low = ",".join(tags).lower()
    if not _TAGS_JOINED.fullmatch(low) or (tags and max(map(len, tags)) > MAX_TAG_LEN):
        return None
    return low


def clean_line(line: str) -> bool:
    """True when no string in the JSON ``line`` can hold a control character: the text has
    none (JSON forbids raw ones below U+0020 in strings; U+007F-U+009F may appear raw) and
    no escapes at all. Most index lines are clean, and their fields skip the search."""
    return "\\" not in line and _CONTROL.search(line) is None


#: dependency names seen valid that are their own lower case (the key of their Requirement)
_PLAIN_DEP_NAMES: set[str] = set()
#: name → req → the Requirement of the usual dependency ``{"name": name, "req": req}``
_PLAIN_DEP_MEMO: dict[str, dict[str, Requirement]] = {}
_PLAIN_DEP_COUNT = [0]  # the pairs in _PLAIN_DEP_MEMO
#: a dependency's ``req`` → its Specifier, for texts seen within the limits and parsed
_PLAIN_DEP_SPECS: dict[str, Specifier] = {}


def _plain_deps(raw_deps: list[Any]) -> tuple[Requirement, ...] | None:
    """The dependencies when each is the usual ``{"name": str, "req": str}``, else None.

    A name and a range are each checked once (most pairs are new on a cold read, but their
    names and ranges are not); a Requirement is cheap to build (:func:`plain_requirement`).
    """
    out = []
    for x in raw_deps:
        if type(x) is not dict or len(x) != 2:
            return None
        n, r = x.get("name"), x.get("req")
        if type(n) is not str or type(r) is not str:
            return None
        of_name = _PLAIN_DEP_MEMO.get(n)
        if of_name is not None:
            req = of_name.get(r)
            if req is not None:
                out.append(req)
                continue
        req = _new_plain_dep(n, r)
        if req is None:
            return None
        out.append(req)
    return tuple(out)


def _new_plain_dep(n: str, r: str) -> Requirement | None:
    """The Requirement of ``{"name": n, "req": r}``, checked and memoised (None: not valid)."""
    # the checks of _check_dep for this shape
    if n in _PLAIN_DEP_NAMES:
        low = n
    else:
        low = n.lower()
        if len(low) > MAX_NAME_LEN or DEP_NAME_RE.fullmatch(low) is None:
            return None
        if low == n:
            if len(_PLAIN_DEP_NAMES) >= _DEP_MEMO_MAX:
                _PLAIN_DEP_NAMES.clear()
            _PLAIN_DEP_NAMES.add(n)
    spec = _PLAIN_DEP_SPECS.get(r)
    if spec is None:
        if len(r) > MAX_REQ_LEN or _CONTROL.search(r):
            return None
        try:
            spec = parse_specifier(r or "*")
        except SpecifierError:
            return None
        if len(_PLAIN_DEP_SPECS) >= _DEP_MEMO_MAX:
            _PLAIN_DEP_SPECS.clear()
        _PLAIN_DEP_SPECS[r] = spec
    req = plain_requirement(low, spec)  # what requirement_from_index_dep(x) builds
    if _PLAIN_DEP_COUNT[0] >= _DEP_MEMO_MAX:  # at most so many pairs in all
        _PLAIN_DEP_MEMO.clear()
        _PLAIN_DEP_COUNT[0] = 0
    of_name = _PLAIN_DEP_MEMO.get(n)
    if of_name is None:
        of_name = _PLAIN_DEP_MEMO[n] = {}
    of_name[r] = req
    _PLAIN_DEP_COUNT[0] += 1
    return req


def plain_dep(n: str, r: str) -> Requirement | None:
    """The Requirement the fast reader makes of the usual dependency ``{"name": n, "req": r}``
    (the same object for the same pair while it is memoised), None when it is not valid."""
    of_name = _PLAIN_DEP_MEMO.get(n)
    if of_name is not None:
        req = of_name.get(r)
        if req is not None:
            return req
    return _new_plain_dep(n, r)



def deps_of_raw(raw_deps: "tuple[Any, ...] | list[Any]") -> tuple[Requirement, ...]:
    """The dependencies of an entry as the fast reader builds them from its ``deps_raw`` (the
    same memoised Requirement for the same ``{"name", "req"}``); raises IndexDataError for a
    dependency that is not valid. The parsed-index cache rebuilds kept entries with it."""
    deps = _plain_deps(raw_deps if type(raw_deps) is list else list(raw_deps))
    if deps is None:
        deps = tuple(_dep(x, i) for i, x in enumerate(raw_deps))
    return deps

#: the limit of each string field of ``source`` (:func:`_source`); other keys are not read
_SOURCE_LIMITS = {"git": MAX_URL_LEN, "rev": MAX_FIELD_LEN, "tag": MAX_FIELD_LEN, "subdir": MAX_PATH_LEN,
                  "sha256": MAX_FIELD_LEN}


def _source_fast(source: dict[str, Any], clean: bool) -> bool:
    """The fast check of an index line's ``source`` (a dict): True when every field is within its limits."""
    for k, v in source.items():
        if k == "urls":
            if not _short_strs(v, MAX_URLS, MAX_URL_LEN, clean):
                return False
        elif k in ("size", "unpacked-size"):
            if type(v) is not int or not 0 <= v <= MAX_BYTE_COUNT:
                return False
        elif type(v) is not str or len(v) > _SOURCE_LIMITS.get(k, MAX_URL_LEN) or (
                not clean and _CONTROL.search(v)):
            return False
    return True


def _entry_fast(d: Any, name: str | None, clean: bool = False) -> "IndexEntry | None":
    """The usual well-formed index line, accepted with C-speed checks of the same limits as
    :func:`check_entry`; None sends anything unusual to the detailed path, which says what
    is wrong. A resolution reads every version of every component it meets, so this matters.
    ``clean``: the line has no control characters and no escapes (:func:`clean_line`)."""
    if type(d) is not dict:
        return None
    get = d.get
    line_name, version_text = get("name"), get("version")
    if type(line_name) is not str or not (line_name == name or (name is None and valid_name(line_name))):
        return None
    if type(version_text) is not str or len(version_text) > MAX_VERSION_LEN or (
            not clean and _CONTROL.search(version_text)):
        return None
    kind, description, tags = get("kind"), get("description"), get("tags", [])
    low = _common_fast(kind, description, tags, MAX_TAGS, clean)
    if low is None:
        return None
    targets = get("targets", ["*"])
    if not _short_strs(targets, MAX_TARGETS, MAX_TARGET_LEN, clean):
        return None
    source = get("source", {})
    if type(source) is not dict or not _source_fast(source, clean):
        return None
    cksum, pubtime = get("cksum"), get("pubtime")
    for v in (cksum, pubtime):
        if v is not None and (type(v) is not str or len(v) > MAX_FIELD_LEN or (not clean and _CONTROL.search(v))):
            return None
    detect, install, yanked = get("detect", ()), get("install", ()), get("yanked", False)
    if type(yanked) is not bool:
        return None
    if detect or install:
        for objs, limit in ((detect, MAX_DETECT_RULES), (install, MAX_INSTALL_RECIPES)):
            if type(objs) is not list or len(objs) > limit or not set(map(type, objs)) <= {dict}:
                return None
    elif (detect != () and type(detect) is not list) or (install != () and type(install) is not list):
        return None  # a falsy non-list ("", 0, null, {}): the detailed path says what is wrong
    raw_deps = get("deps", [])
    if type(raw_deps) is not list or len(raw_deps) > MAX_DEPS:
        return None
    try:
        version = parse_version(version_text)
        deps = _plain_deps(raw_deps)
        if deps is None:
            deps = tuple(_dep(x, i) for i, x in enumerate(raw_deps))
    except (VersionError, IndexDataError):
        return None
    e = IndexEntry(name=line_name, version_text=version_text, kind=kind or "lib",
                   tags=tuple(low.split(",")) if tags else (), description=description or "",
                   targets=tuple(targets) or ("*",), deps_raw=tuple(raw_deps), source=source,
                   cksum=cksum, detect=tuple(detect), install=tuple(install), yanked=yanked,
                   pubtime=pubtime, raw=d)
    e.__dict__["version"] = version
    e.__dict__["deps"] = deps
    return e


#: the bytes of a usual line: printable ASCII and \t but "[", "{" and the backslash, and the bytes
#: past ASCII (UTF-8 of other characters); not \n nor control characters
_USUAL_BYTES = bytes(b for b in range(0x100) if b == 0x09 or (0x20 <= b and b != 0x7f and b not in b"[{\\"))
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # _CONTROL but for \n: over a whole file
#: what json.loads runs (its default decoder's scanner), without its Python-level steps
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_new = object.__new__
#: the defaults of missing lists (only read, never kept)
_NO_ITEMS: list[Any] = []
_ANY_TARGET = ["*"]
#: the fields of the usual index line (without cksum, pubtime, detect and install)
_USUAL_KEYS = frozenset(("name", "version", "kind", "tags", "description", "targets", "deps", "source", "yanked"))


def _text_facts(text: str) -> tuple[bool, bool, bool]:
    """What the whole text of a component file settles for each of its lines: (no line has an
    escape or a control character, no line is too deep, no line is too long)."""
    plain = text.isascii()
    data = text.encode("ascii") if plain else text.encode("utf-8", "surrogatepass")
    # one bytes.translate deletes the usual bytes at C speed; what is left is what to look at:
    # "[", "{", "\n", backslashes and ASCII control characters
    left = data.translate(None, _USUAL_BYTES)
    # no escape and no control character in the file: every line is clean (clean_line)
    if plain:
        file_clean = not left.translate(None, b"[{\n")
    else:
        file_clean = "\\" not in text and _CONTROL_IN_TEXT.search(text) is None
    # at most MAX_JSON_DEPTH openings on each line (counted with whatever else is left): no
    # line is too deep (json_too_deep)
    shallow = max(map(len, left.split(b"\n"))) <= MAX_JSON_DEPTH
    return file_clean, shallow, len(data) <= MAX_LINE_BYTES  # small: then no line is over MAX_LINE_BYTES


def _usual_object(line: str, facts: tuple[bool, bool, bool]) -> tuple[dict[str, Any], bool] | None:
    """``line`` parsed as :func:`load_index_line` parses it, and whether it is clean; None when it
    is not the usual one object from its first character to its last (the caller leaves it to
    the line-by-line path, which says what is wrong). May raise what the JSON scanner raises."""
    file_clean, shallow, small = facts
    # load_index_line: the size, the depth (no more openings than the limit: never too
    # deep), then the JSON; a lone surrogate is only possible with an escape
    if not (line[:1] == "{" and line[-1:] == "}"
            and (shallow or line.count("[") + line.count("{") <= MAX_JSON_DEPTH)
            and (small or utf8_len(line) <= MAX_LINE_BYTES)):
        return None
    clean = file_clean or clean_line(line)
    if not clean and _SURROGATE_ESCAPE.search(line):
        return None
    d, end = _scan_json(line, 0)  # what it refuses, from_line says as json.loads does
    if end != len(line) or type(d) is not dict:
        return None
    return d, clean


def _usual_objects(text: str, lines: list[str]) -> Iterator[tuple[dict[str, Any] | None, bool]]:
    """:func:`_usual_object` of each of ``lines`` (``text`` split at newlines) with the whole
    text's facts: (the object, whether the line is clean), or (None, False) for a line left to
    the line-by-line path (whatever the scanner raised: that path raises it again, or reports it)."""
    facts = _text_facts(text)
    for line in lines:
        try:
            got = _usual_object(line, facts)
        except Exception:
            got = None
        yield got if got is not None else (None, False)


def fast_entries(text: str, lines: list[str], name: str | None) -> list["IndexEntry | None"]:
    """The entries of the usual lines of a component file, each as :meth:`IndexEntry.from_line`
    makes it; None for a line left to :meth:`IndexEntry.from_line` (blank, unusual or bad:
    that path says what is wrong, so that each bad line is reported as before).

    ``lines`` is ``text`` split at ``\n``. Every check of :meth:`IndexEntry.from_line` is made,
    with less work per line: escapes, control characters, depth and size are looked at once
    for the whole text (one ``bytes.translate``), and per line only when the whole text does
    not settle them; a line is parsed by the JSON scanner itself (it must be one object from
    its first character to its last: no blanks around it); kind, description, tags and
    targets, which most lines of a file share, are checked again only when they differ from
    those of the line before; a dependency's name and range are checked once per process.
    Whatever a check raises sends the line to :meth:`IndexEntry.from_line` as well.
    ``tests/test_index_parse_fast.py`` holds the two paths to the same results.
    """
    out: list[IndexEntry | None] = []
    append = out.append
    # kind, description, tags and targets of the last line accepted, and what they gave
    p_kind: Any = None
    p_description: Any = None
    p_tags: Any = None
    p_targets: Any = None
    kind_out, description_out = "lib", ""
    tags_out: tuple[str, ...] = ()
    targets_out: tuple[str, ...] = ("*",)
    for d, clean in _usual_objects(text, lines):
        if d is None:
            append(None)
            continue
        try:
            # _entry_fast, with the fields shared by lines checked once
            get = d.get
            line_name, version_text = get("name"), get("version")
            if name is None:
                if type(line_name) is not str or not valid_name(line_name):
                    append(None)
                    continue
            elif line_name != name:  # (equal to a string: a string)
                append(None)
                continue
            if type(version_text) is not str or len(version_text) > MAX_VERSION_LEN or (
                    not clean and _CONTROL.search(version_text)):
                append(None)
                continue
            kind, description = get("kind"), get("description")
            tags, targets = get("tags", _NO_ITEMS), get("targets", _ANY_TARGET)
            # the checked values are None, strings or lists of strings: equal values are the same values
            if not (kind == p_kind and description == p_description and tags == p_tags and targets == p_targets
                    and p_tags is not None):
                low = _common_fast(kind, description, tags, MAX_TAGS, clean)
                if low is None or not _short_strs(targets, MAX_TARGETS, MAX_TARGET_LEN, clean):
                    append(None)
                    continue
                p_kind, p_description, p_tags, p_targets = kind, description, tags, targets
                kind_out, description_out = kind or "lib", description or ""
                tags_out = tuple(low.split(",")) if tags else ()
                targets_out = tuple(targets) or ("*",)
            source = get("source", _NO_ITEMS)
            if source is _NO_ITEMS:  # no source: an empty one, its own
                source = {}
            elif type(source) is not dict:
                append(None)
                continue
            # the usual source is one URL; else each field as _entry_fast checks it
            ok = (len(source) == 1 and clean and type(urls := source.get("urls")) is list and len(urls) == 1
                  and type(urls[0]) is str and len(urls[0]) <= MAX_URL_LEN) or _source_fast(source, clean)
            yanked = get("yanked", False)
            if type(yanked) is not bool:
                ok = False
            if d.keys() <= _USUAL_KEYS:  # no cksum, pubtime, detect or install (nor unknown fields)
                cksum = pubtime = None
                detect = install = ()
                rules: tuple[Any, ...] = ()
            else:
                cksum, pubtime = get("cksum"), get("pubtime")
                for v in (cksum, pubtime):
                    if v is not None and (type(v) is not str or len(v) > MAX_FIELD_LEN or (
                            not clean and _CONTROL.search(v))):
                        ok = False
                detect, install = get("detect", ()), get("install", ())
                rules = (detect, install)
            if not ok:
                pass
            elif detect or install:
                for objs, limit in ((detect, MAX_DETECT_RULES), (install, MAX_INSTALL_RECIPES)):
                    if type(objs) is not list or len(objs) > limit or not set(map(type, objs)) <= {dict}:
                        ok = False
            elif (detect != () and type(detect) is not list) or (install != () and type(install) is not list):
                ok = False
            raw_deps = get("deps", _NO_ITEMS)
            if not ok or type(raw_deps) is not list or len(raw_deps) > MAX_DEPS:
                append(None)
                continue
            version = parse_version(version_text)  # VersionError, IndexDataError: except below
            deps = _plain_deps(raw_deps)
            if deps is None:
                deps = tuple(_dep(x, i) for i, x in enumerate(raw_deps))
            # IndexEntry(name=..., raw=d) with version and deps kept, at half the cost
            # (test_index_parse_fast checks that these are the dataclass's fields)
            e = _new(IndexEntry)
            e.__dict__ = {"name": line_name, "version_text": version_text, "kind": kind_out, "tags": tags_out,
                          "description": description_out, "targets": targets_out, "deps_raw": tuple(raw_deps),
                          "source": source, "cksum": cksum, "detect": tuple(detect) if rules else (),
                          "install": tuple(install) if rules else (),
                          "yanked": yanked, "pubtime": pubtime, "raw": d, "version": version, "deps": deps}
            append(e)
        except Exception:  # what a check raised: the line-by-line path raises it again, or reports it
            append(None)
    return out


def load_index_line(line: str) -> Any:
    """One line of a component file parsed as JSON, its size and depth checked first (IndexDataError)."""
    if utf8_len(line) > MAX_LINE_BYTES:
        raise IndexDataError(f"line is {utf8_len(line)} bytes long (at most {MAX_LINE_BYTES})")
    return load_json_line(line)


def summary_fields(raw: Any, name: str) -> tuple[str, str, str, str] | None:
    """What a summary takes from one index line of component ``name``: (version, kind, tags
    joined with commas, description), checked as :func:`check_entry` checks them; None when
    anything of those is unusual (the caller then runs :func:`check_entry` for the message).

    The rest of the line (dependencies, sources, recipes) is checked when the component is
    read for a resolution, as it is for a summary.jsonl that the index publishes.
    """
    if type(raw) is not dict or raw.get("name") != name:
        return None
    version = raw.get("version")
    if type(version) is not str or len(version) > MAX_VERSION_LEN or _CONTROL.search(version):
        return None
    kind, description = raw.get("kind"), raw.get("description")
    low = _common_fast(kind, description, raw.get("tags", []), MAX_TAGS)
    if low is None:
        return None
    try:
        parse_version(version)
    except VersionError:
        return None
    return version, kind or "lib", low, description or ""


def fast_summary_fields(text: str, lines: list[str], name: str) -> list[tuple[str, str, str, str] | None]:
    """:func:`summary_fields` of each line of component ``name``'s file, read as
    :func:`fast_entries` reads lines (the whole text looked at once, the JSON scanner called
    directly, kind, description and tags checked again only when they differ from the line
    before); None for a line left to the line-by-line path (blank, unusual or bad).
    ``tests/test_index_parse_fast.py`` holds the two paths to the same summaries."""
    out: list[tuple[str, str, str, str] | None] = []
    append = out.append
    p_kind: Any = None
    p_description: Any = None
    p_tags: Any = None
    shared = ("lib", "", "")
    for d, clean in _usual_objects(text, lines):
        if d is None:
            append(None)
            continue
        get = d.get
        try:
            version = get("version")
            if get("name") != name or type(version) is not str or len(version) > MAX_VERSION_LEN or (
                    not clean and _CONTROL.search(version)):
                append(None)
                continue
            kind, description, tags = get("kind"), get("description"), get("tags", _NO_ITEMS)
            # the checked values are None, strings or lists of strings: equal values are the same values
            if not (kind == p_kind and description == p_description and tags == p_tags and p_tags is not None):
                low = _common_fast(kind, description, tags, MAX_TAGS, clean)
                if low is None:
                    append(None)
                    continue
                p_kind, p_description, p_tags = kind, description, tags
                shared = (kind or "lib", low, description or "")
            parse_version(version)  # VersionError: except below
            append((version, *shared))
        except Exception:  # what a check raised: the line-by-line path raises it again, or reports it
            append(None)
    return out


def check_entry(raw: Any, *, name: str | None = None, clean: bool = False) -> "IndexEntry":
    """One parsed index line → an :class:`IndexEntry`, or :class:`IndexDataError` saying what is wrong.

    ``name`` is the component whose file the line is in: the line's ``name`` must equal it.
    Checks types, the name, that the version parses, that each dependency's range parses,
    and every limit above (the line's size and depth are checked by the reader).
    """
    fast = _entry_fast(raw, name, clean)
    if fast is not None:
        return fast
    d = _object(raw, "the line")
    line_name = _name(d.get("name"), "name")
    if name is not None and line_name != name:
        raise IndexDataError(f"name {shown(line_name)} does not match the file, which holds {shown(name)}")
    version = _version(d.get("version"))
    kind = _string(d, "kind", MAX_KIND_LEN)
    if kind is not None and KIND_RE.fullmatch(kind) is None:
        raise IndexDataError(f"kind {shown(kind)} is not valid")
    _strings(d, "tags", MAX_TAGS, MAX_TAG_LEN, pattern=TAG_RE, lower=True)
    _string(d, "description", MAX_DESCRIPTION_LEN)
    _strings(d, "targets", MAX_TARGETS, MAX_TARGET_LEN)
    deps = tuple(_dep(x, i) for i, x in enumerate(_list(d, "deps", MAX_DEPS)))
    _source(d.get("source"))
    _string(d, "cksum", MAX_FIELD_LEN)
    _string(d, "pubtime", MAX_FIELD_LEN)
    _objects(d, "detect", MAX_DETECT_RULES)
    _objects(d, "install", MAX_INSTALL_RECIPES)
    yanked = d.get("yanked")
    if yanked is not None and not isinstance(yanked, bool):
        raise IndexDataError(f"yanked must be true or false, not {shown(yanked)}")
    e = IndexEntry.from_json(d)
    # what was parsed to check the line is what the properties would compute: keep it
    e.__dict__["version"] = version
    e.__dict__["deps"] = deps
    return e


_TAGS_JOINED = re.compile(r"(?:[a-z0-9][a-z0-9._+-]*(?:,[a-z0-9][a-z0-9._+-]*)*)?")


def _summary_fast(d: Any) -> "ComponentSummary | None":
    """The usual well-formed summary line, accepted with a few C-speed checks (the same limits
    as the detailed path below); None sends anything else to the detailed path, which says
    what is wrong. A summary lists every component, so this runs 10,000 times per search."""
    if type(d) is not dict:
        return None
    name, kind, tags, description, versions = (d.get("name"), d.get("kind"), d.get("tags", []),
                                               d.get("description"), d.get("versions", []))
    if not (type(name) is str and len(name) <= MAX_NAME_LEN and NAME_RE.fullmatch(name)):
        return None
    low = _common_fast(kind, description, tags, MAX_SUMMARY_TAGS)
    if low is None:
        return None
    if type(versions) is not list or len(versions) > MAX_VERSIONS or not set(map(type, versions)) <= {str}:
        return None
    if versions and (max(map(len, versions)) > MAX_VERSION_LEN or _CONTROL.search("".join(versions))):
        return None
    return ComponentSummary.of(name, kind or "lib", frozenset(low.split(",")) if tags else frozenset(),
                               description or "", tuple(versions))


def check_summary(raw: Any) -> "ComponentSummary":
    """One parsed line of summary.jsonl → a :class:`ComponentSummary`, or :class:`IndexDataError`.

    Versions are checked for type and length, not parsed (a summary can list every
    version of every component; readers parse the ones they use).
    """
    fast = _summary_fast(raw)
    if fast is not None:
        return fast
    d = _object(raw, "the line")
    name = _name(d.get("name"), "name")
    kind = _string(d, "kind", MAX_KIND_LEN)
    if kind is not None and KIND_RE.fullmatch(kind) is None:
        raise IndexDataError(f"kind {shown(kind)} is not valid")
    tags = _strings(d, "tags", MAX_SUMMARY_TAGS, MAX_TAG_LEN, pattern=TAG_RE, lower=True)
    description = _string(d, "description", MAX_DESCRIPTION_LEN)
    versions = _strings(d, "versions", MAX_VERSIONS, MAX_VERSION_LEN)
    # built from what was checked (what from_json would compute, without a second pass)
    return ComponentSummary(name, kind or "lib", frozenset(tags), description or "", tuple(versions))


@dataclass
class IndexEntry:
    """One JSON line of an index file. ``raw`` keeps the line's fields exactly."""

    name: str
    version_text: str
    kind: str = "lib"
    tags: tuple[str, ...] = ()
    description: str = ""
    targets: tuple[str, ...] = ("*",)
    deps_raw: tuple[Mapping[str, Any], ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)
    cksum: str | None = None
    detect: tuple[Mapping[str, Any], ...] = ()
    install: tuple[Mapping[str, Any], ...] = ()
    yanked: bool = False
    pubtime: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def version(self) -> Version:
        return parse_version(self.version_text)

    @cached_property
    def tag_set(self) -> frozenset[str]:
        return frozenset(self.tags)

    @cached_property
    def deps(self) -> tuple[Requirement, ...]:
        return tuple(requirement_from_index_dep(d) for d in self.deps_raw)

    def supports(self, target: str) -> bool:
        return matches(target, self.targets)

    # typed views of the line's provisioning data, parsed and checked when first used (never
    # when the line is read: resolving reads thousands of lines and provisions a few)
    @cached_property
    def recipes(self) -> tuple[Recipe, ...]:
        """The ``install`` recipes (``model/recipe.py``); IndexDataError names a broken one."""
        from ckpm.model.recipe import line_recipes

        return line_recipes(self)

    @cached_property
    def fetch_sources(self) -> tuple[FetchSource, ...]:
        """The ``source`` as a lock keeps it to fetch (an archive or a git tree; none for a host line)."""
        from ckpm.model.recipe import line_sources

        return line_sources(self)

    @cached_property
    def program(self) -> Program | None:
        """The program the ``run`` table describes; None without one (ProgramError when broken)."""
        from ckpm.model.recipe import line_program

        return line_program(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "IndexEntry":
        return cls(
            name=str(d["name"]),
            version_text=str(d["version"]),
            kind=str(d.get("kind") or "lib"),
            tags=tuple(str(t).lower() for t in d.get("tags") or ()),
            description=str(d.get("description") or ""),
            targets=tuple(d.get("targets") or ("*",)),
            deps_raw=tuple(d.get("deps") or ()),
            source=d.get("source") or {},
            cksum=d.get("cksum"),
            detect=tuple(d.get("detect") or ()),
            install=tuple(d.get("install") or ()),
            yanked=bool(d.get("yanked", False)),
            pubtime=d.get("pubtime"),
            raw=d,
        )

    @classmethod
    def from_line(cls, line: str, *, name: str | None = None) -> "IndexEntry":
        """Parse and check one index line (:func:`check_entry`); raises :class:`IndexDataError`."""
        return check_entry(load_index_line(line), name=name, clean=clean_line(line))

    def to_json(self) -> dict[str, Any]:
        if self.raw:
            d = dict(self.raw)
            d["yanked"] = self.yanked
            return d
        d = {
            "name": self.name,
            "version": self.version_text,
            "kind": self.kind,
            "tags": list(self.tags),
            "description": self.description,
            "targets": list(self.targets),
            "deps": [dict(x) for x in self.deps_raw],
            "source": dict(self.source),
            "cksum": self.cksum,
            "yanked": self.yanked,
        }
        if self.detect:
            d["detect"] = [dict(x) for x in self.detect]
        if self.install:
            d["install"] = [dict(x) for x in self.install]
        if self.pubtime:
            d["pubtime"] = self.pubtime
        return d

    def to_line(self) -> str:
        return json.dumps(self.to_json(), sort_keys=False, separators=(",", ":"))


@dataclass(frozen=True)
class ComponentSummary:
    """One component of an index as ``search`` sees it (a line of ``summary.jsonl``)."""

    name: str
    kind: str
    tags: frozenset[str]
    description: str
    versions: tuple[str, ...]

    @classmethod
    def from_entries(cls, entries: list[IndexEntry]) -> "ComponentSummary":
        last = entries[-1]
        tags: set[str] = set()
        for e in entries:
            tags.update(e.tags)
        return cls(last.name, last.kind, frozenset(tags), last.description, tuple(e.version_text for e in entries))

    @classmethod
    def of(cls, name: str, kind: str, tags: frozenset[str], description: str,
           versions: tuple[str, ...]) -> "ComponentSummary":
        """``ComponentSummary(...)`` without the frozen dataclass's ``__init__`` (one
        ``object.__setattr__`` per field): a search builds one per component, 10,000 of them."""
        obj = object.__new__(cls)
        obj.__dict__.update(name=name, kind=kind, tags=tags, description=description, versions=versions)
        return obj

    @classmethod
    def lazy(cls, name: str, kind: str, tags: frozenset[str], description: str,
             versions_text: str) -> "ComponentSummary":
        """A summary whose ``versions`` are kept as one tab-separated string and split when first
        read: a warm search filters 10,000 cached summaries by tags and shows the versions of
        the few it keeps, so the other 200,000 version strings are never made."""
        obj = object.__new__(cls)
        d = obj.__dict__
        d["name"], d["kind"], d["tags"], d["description"], d["_versions_text"] = (
            name, kind, tags, description, versions_text)
        return obj

    if not TYPE_CHECKING:  # for the type checker, ``versions`` is the plain field above
        def __getattr__(self, attr: str) -> Any:
            """Called only for an attribute not in the instance: ``versions`` of a :meth:`lazy` summary."""
            d = self.__dict__
            if attr == "versions" and "_versions_text" in d:
                text = d["_versions_text"]
                d["versions"] = got = tuple(text.split("\t")) if text else ()
                return got
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "tags": sorted(self.tags),
            "description": self.description,
            "versions": list(self.versions),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ComponentSummary":
        return cls(
            str(d["name"]), str(d.get("kind") or "lib"), frozenset(str(t).lower() for t in d.get("tags") or ()),
            str(d.get("description") or ""), tuple(d.get("versions") or ()),
        )
