"""What a detect rule may declare: rules come from indexes (data written by someone else).

A rule is a declaration, checked before any of it is used: executables are bare names
found on PATH (never a path) that belong to the component (they contain its name's stem:
``gcc-*`` for ``compiler-gcc``), version arguments come from a small fixed set, the Python
interpreter is the user's (never one the rule names), names that become arguments
cannot look like options, folders and globs stay inside documented roots, versions
read from files are bounded and must look like versions. A rule that breaks a limit is
rejected with one warning naming where it came from, the component and the field; the
component is then simply not found on the host.

Rules of a third-party detector kind (a ``ckpm.detectors`` plugin, code the user
installed) are passed to the plugin as data, unchecked beyond being a JSON object. Rules
the user or ckpm itself wrote (``owned=False``: ckpm's toolchain rules, a rules file given
to ``python -m ckpm.detect``) may name any executable.

This module imports nothing heavy: ``sre_parse`` only when needed.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

#: the built-in detector kinds, whose rules are checked key by key
BUILTIN_KINDS = ("executable", "compiler", "python_package", "pkg_config", "library", "path")
#: routing priority among the built-in kinds (a compiler rule also carries ``executable``)
_PRIORITY = {"compiler": 10}

#: the keys each built-in kind accepts (``detector`` is accepted by all)
ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "executable": frozenset({"executable", "version_args", "version_regex", "search_paths", "exclude",
                             "exit_codes"}),
    "compiler": frozenset({"compiler", "languages", "executable", "search_paths", "exclude", "version_args",
                           "version_regex", "cross", "target", "dumpmachine"}),
    "python_package": frozenset({"python_package"}),
    "pkg_config": frozenset({"pkg_config", "search_paths"}),
    "library": frozenset({"library", "header", "version_regex", "search_paths", "include_paths"}),
    "path": frozenset({"path", "version_file", "version_regex", "version_from", "version", "type"}),
}

#: the only version arguments a rule may ask for
VERSION_ARGS = frozenset({"--version", "-version", "-V", "version", "-dumpfullversion", "-dumpversion"})

#: system prefixes that ``search_paths``, ``include_paths`` and ``path`` globs may name
SYSTEM_ROOTS: tuple[str, ...] = ("/usr", "/opt", "/lib", "/lib64", "/nix/store", "/snap")

#: commands never run as a probe, whatever their arguments: they act (power, privileges,
#: processes, files, disks) rather than print a version. Checked on the rule's names and
#: on the name of every executable found.
DENIED_EXECUTABLES: tuple[str, ...] = (
    "reboot", "poweroff", "halt", "shutdown", "init", "telinit", "systemctl", "loginctl",
    "sudo", "su", "doas", "pkexec", "runuser", "setpriv", "chroot", "nsenter", "unshare",
    "kill", "killall", "pkill", "xkill", "rm", "rmdir", "unlink", "mv", "cp", "ln", "dd", "shred",
    "truncate", "chmod", "chown", "chgrp", "chattr", "mkfs", "mkfs.*", "mke2fs", "mkswap", "swapoff",
    "swapon", "wipefs", "fdisk", "sfdisk", "gdisk", "parted", "mount", "umount", "crontab", "at",
    "passwd", "useradd", "userdel", "usermod", "xdg-open", "open",
)
MAX_NAME = 128          # an executable, package, library or pkg-config name
MAX_PATH = 4096         # a folder or glob
MAX_LIST = 32           # items in one list-valued field
MAX_REGEX = 512         # characters of a version_regex
MAX_RULE = 16 * 1024    # characters of a rule's canonical JSON
MAX_VERSION = 64        # characters of a detected version
VERSION_FILE_LIMIT = 64 * 1024  # bytes of a version_file that are read
MAX_GLOB_MATCHES = 1000  # matches of one path glob that are looked at

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PKG_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+@-]*$")
_PY_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_WORD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_TARGET = re.compile(r"^[A-Za-z0-9_.*?\[\]!+-]+$")
_GLOB = re.compile(r"[*?\[]")

#: leading words of a component name that say its kind, not what it is: ``compiler-gcc``'s
#: stem is ``gcc``, ``tool-cmake``'s is ``cmake``
KIND_WORDS = frozenset({"compiler", "tool", "tools", "lib", "library", "program", "prog", "app", "model",
                        "dataset", "data", "script", "py", "bin", "cli", "cmd",
                        "soft", "package", "pkg"})  # soft-compiler.gcc: a CK soft entry, imported
#: a stem shorter than this must be a whole word of the executable's name (``r`` in ``r-4*``),
#: not a part of one (``r`` in ``curl``)
MIN_SUBSTRING_STEM = 3
_WORDS = re.compile(r"[-_.]+")
_NAME_WORDS = re.compile(r"[-_.+*?\[\]!0-9]+")


def name_stem(component: str) -> str:
    """The stem of a component's name: its first word after the kind words (:data:`KIND_WORDS`):
    ``gcc`` for ``compiler-gcc`` and ``compiler-gcc-aarch64-linux-gnu``, ``gxx`` for
    ``compiler-gxx``, ``gcc`` for ``soft-compiler.gcc`` (CK's), ``evil`` for ``evil-tool``."""
    words = [w for w in _WORDS.split(component.lower()) if w]
    while len(words) > 1 and words[0] in KIND_WORDS:
        words = words[1:]
    return words[0] if words else component.lower()


def belongs_to(pattern: str, component: str) -> bool:
    """Does the executable name or glob ``pattern`` belong to ``component``: does it carry the
    component's stem (``++`` read as ``xx``, so ``g++`` belongs to ``compiler-gxx``)?"""
    stem = name_stem(component).replace("++", "xx")
    text = pattern.lower().replace("++", "xx")
    if len(stem) >= MIN_SUBSTRING_STEM:
        return stem in text
    return stem in {w for w in _NAME_WORDS.split(text) if w}


class RuleRejected(ValueError):
    """One limit a rule breaks (the field and why)."""


def canonical(rule: Mapping[str, Any]) -> str:
    """The canonical JSON text of a rule (sorted keys, compact): what its id and memo keys hash."""
    return json.dumps(rule, sort_keys=True, separators=(",", ":"), default=str)


def rule_id(rule: Mapping[str, Any]) -> str:
    """A stable id of a rule: ``sha256:`` and the first 16 hex digits of its canonical JSON's hash.

    The same rule gives the same id wherever it is read (index, lock, cleaned copy), so a
    lock can name the rule that found a package and ``recheck`` can take it from the index.
    """
    return "sha256:" + hashlib.sha256(canonical(rule).encode("utf-8")).hexdigest()[:16]


def kind_of(rule: Mapping[str, Any]) -> str | None:
    """The kind a rule routes to by its keys: ``detector`` if given, else the built-in kind it
    carries (the compiler wins over executable); None if it carries no built-in kind's key."""
    if rule.get("detector"):
        return str(rule["detector"])
    kinds = [k for k in rule if k in ALLOWED_KEYS]
    if not kinds:
        return None
    return max(kinds, key=lambda k: (_PRIORITY.get(k, 0), -list(rule).index(k)))


# -- the check ----------------------------------------------------------------------------------

def validate_rule(
    rule: Any,
    *,
    origin: str | None = None,
    component: str | None = None,
    number: int | None = None,
    kind: str | None = None,
    roots: "Roots | None" = None,
    owned: bool = True,
) -> tuple[dict[str, Any] | None, list[str]]:
    """Check a rule against what an index may declare: ``(cleaned rule, [])`` or ``(None, [warning])``.

    ``origin`` names where the rule came from (``"index default"``), ``component`` and
    ``number`` (1-based) place it, for the warning: ``index default: component evil-tool:
    detect rule 1: executable '/bin/sh' must be a bare name``. ``kind`` is the detector it
    routes to (default: judged from its keys). With ``roots``, the folders and globs it
    names are also checked against them (after ``~``/``$VAR`` expansion). The cleaned rule
    is a plain JSON copy with the same content, so ``rule_id`` is the same for both.
    ``owned`` (the default: a rule from an index, a lock, a CK import): with ``component``
    given, every executable the rule names must belong to it (:func:`belongs_to`); False for
    rules the user or ckpm wrote.
    """
    prefix = where(origin, component, number)
    try:
        if not isinstance(rule, Mapping) or not all(isinstance(k, str) for k in rule):
            raise RuleRejected("a rule must be a JSON object")
        try:
            text = canonical(rule)
            clean: dict[str, Any] = json.loads(text)
        except (TypeError, ValueError) as e:
            raise RuleRejected(f"not plain JSON ({e})") from None
        if len(text) > MAX_RULE:
            raise RuleRejected(f"longer than {MAX_RULE} characters")
        k = kind if kind is not None else kind_of(clean)
        if k is None or k not in ALLOWED_KEYS:
            det = clean.get("detector")
            if det is not None and (not isinstance(det, str) or not _WORD.match(det) or len(det) > MAX_NAME):
                raise RuleRejected(f"detector {show_value(det)} must be a bare name")
            return clean, []  # a plugin's rule: data for code the user installed
        _check_builtin(k, clean, roots)
        if owned and component is not None and k in ("executable", "compiler"):
            _check_owner(clean, component)
        return clean, []
    except RuleRejected as e:
        return None, [f"{prefix}{e}; rule ignored"]


def _check_owner(rule: Mapping[str, Any], component: str) -> None:
    """Every executable an index rule names belongs to its component."""
    for n in _strings(rule, "executable"):
        if not belongs_to(n, component):
            raise RuleRejected(
                f"executable {show_value(n)} does not belong to the component: an index rule may only run "
                f"executables whose names carry the component's stem {name_stem(component)!r} "
                f"(e.g. {name_stem(component)!r}, '{name_stem(component)}-*')")


def where(origin: str | None, component: str | None, number: int | None) -> str:
    """The prefix of a rule's warning: ``index lab: component c: detect rule 2: ``."""
    parts = [p for p in (origin, f"component {component}" if component else None,
                         f"detect rule {number}" if number is not None else "detect rule") if p]
    return ": ".join(parts) + ": "


def show_value(value: Any) -> str:
    """``repr(value)`` with control characters escaped, cut to 80 characters."""
    text = repr(value)
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)
    return text if len(text) <= 80 else text[:80] + "…"


def _check_builtin(kind: str, rule: dict[str, Any], roots: "Roots | None") -> None:
    det = rule.get("detector")
    if det is not None and det != kind:
        raise RuleRejected(f"detector {show_value(det)} is not {kind!r}")
    allowed = ALLOWED_KEYS[kind] | {"detector"}
    if kind == "executable" and "compiler" in rule:  # a compiler rule routed to executable explicitly
        allowed |= ALLOWED_KEYS["compiler"]
    unknown = sorted(set(rule) - allowed)
    if unknown:
        if "python" in unknown and kind == "python_package":
            raise RuleRejected("python: an index may not choose the interpreter (ckpm uses the user's: "
                               "CKPM_PYTHON or the one running ckpm)")
        raise RuleRejected(f"unknown key(s) {', '.join(map(repr, unknown))} for a {kind} rule "
                           f"(allowed: {', '.join(sorted(allowed))})")
    if kind in ("executable", "compiler"):
        names = _strings(rule, "executable", required=kind == "executable")
        for n in names:
            _bare_glob("executable", n)
            if denied(n):
                raise RuleRejected(f"executable {show_value(n)} is a command ckpm never runs as a probe")
        for n in _strings(rule, "exclude"):
            _bare_glob("exclude", n)
        _version_args(rule)
    if kind == "compiler" or (kind == "executable" and "compiler" in rule):
        fam = rule.get("compiler")
        if not isinstance(fam, str) or not _WORD.match(fam) or len(fam) > 32:
            raise RuleRejected(f"compiler {show_value(fam)} must be a short bare name (gcc, clang, nvcc)")
        for lang in _strings(rule, "languages"):
            if not _WORD.match(lang) or len(lang) > 16:
                raise RuleRejected(f"languages: {show_value(lang)} is not a language name")
        for b in ("cross", "dumpmachine"):
            if b in rule and not isinstance(rule[b], bool):
                raise RuleRejected(f"{b} must be true or false")
        if "target" in rule:
            t = rule["target"]
            if not isinstance(t, str) or not _TARGET.match(t) or len(t) > 64:
                raise RuleRejected(f"target {show_value(t)} must be a platform or triple glob")
    if kind == "executable" and "exit_codes" in rule:
        codes = rule["exit_codes"]
        if (not isinstance(codes, list) or not codes or len(codes) > 8
                or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in codes)):
            raise RuleRejected(f"exit_codes {show_value(codes)} must be a list of at most 8 integers 0-255")
    if kind == "python_package":
        for n in _strings(rule, "python_package", required=True):
            if not _PY_NAME.match(n) or len(n) > MAX_NAME:
                raise RuleRejected(f"python_package {show_value(n)} is not a distribution name")
    if kind == "pkg_config":
        for n in _strings(rule, "pkg_config", required=True):
            _bare_name("pkg_config", n)
    if kind == "library":
        for n in _strings(rule, "library", required=False):
            _bare_name("library", n)
        for h in _strings(rule, "header"):
            _relative("header", h)
        if "library" not in rule:
            raise RuleRejected("library is required (a name, a list, or [] with a header)")
        if not _strings(rule, "library") and not _strings(rule, "header"):
            raise RuleRejected("a library rule needs a library name or a header")
    if "version_regex" in rule:
        check_regex(rule["version_regex"])
    for field_ in ("search_paths", "include_paths"):
        for p in _strings(rule, field_):
            _folder_pattern(field_, p, roots)
    if kind == "path":
        for p in _strings(rule, "path", required=True):
            _folder_pattern("path", p, roots)
        if "version_file" in rule:
            vf = rule["version_file"]
            if not isinstance(vf, str):
                raise RuleRejected("version_file must be a string")
            _relative("version_file", vf)
        vfrom = rule.get("version_from")
        if vfrom is not None and vfrom != "name":
            raise RuleRejected(f"version_from {show_value(vfrom)} must be \"name\"")
        if "version_regex" in rule and "version_file" not in rule and vfrom != "name":
            raise RuleRejected("version_regex over the matched file is not allowed; name a version_file, "
                               "or set version_from = \"name\" to read the matched name")
        if "version" in rule:
            v = rule["version"]
            if not isinstance(v, (str, int, float)) or isinstance(v, bool) or len(str(v)) > MAX_VERSION \
                    or _CONTROL.search(str(v)):
                raise RuleRejected(f"version {show_value(v)} must be a version of at most {MAX_VERSION} characters")
        if "type" in rule and rule["type"] not in ("file", "dir"):
            raise RuleRejected(f"type {show_value(rule['type'])} must be \"file\" or \"dir\"")


def _strings(rule: Mapping[str, Any], key: str, *, required: bool = False) -> list[str]:
    """A field that is one string or a list of strings (bounded), as a list."""
    if key not in rule or rule[key] is None:
        if required:
            raise RuleRejected(f"{key} is required")
        return []
    v = rule[key]
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise RuleRejected(f"{key} must be a string or a list of strings")
    if len(items) > MAX_LIST:
        raise RuleRejected(f"{key} lists more than {MAX_LIST} items")
    if required and not items and key not in ("library",):
        raise RuleRejected(f"{key} is empty")
    for x in items:
        if _CONTROL.search(x):
            raise RuleRejected(f"{key} {show_value(x)} contains a control character")
    return items


def _bare_glob(field_: str, name: str) -> None:
    """A bare executable name, or a glob over bare names (``gcc-[0-9]*``, ``*-*-gcc``)."""
    if not name or len(name) > MAX_NAME:
        raise RuleRejected(f"{field_} {show_value(name)} must be a bare name of 1 to {MAX_NAME} characters")
    if "/" in name or "\\" in name or name.startswith(("-", "~", ".")) or ".." in name or ":" in name \
            or "$" in name:
        raise RuleRejected(f"{field_} {show_value(name)} must be a bare name (no path, no leading '-', '.' or '~'); "
                           "it is searched on PATH")


_DENIED_NAMES = frozenset(d for d in DENIED_EXECUTABLES if not _GLOB.search(d))
_DENIED_GLOBS = tuple(d for d in DENIED_EXECUTABLES if _GLOB.search(d))


def denied(name: str) -> bool:
    """Is ``name`` (an executable's file name, or a rule's pattern) one ckpm never runs as a probe?"""
    import fnmatch

    base = name.lower()
    if base.endswith(".exe"):
        base = base[:-4]
    # a set for the plain names and fnmatch for the few globs: compiling all of them into
    # one regular expression cost every warm `ckpm run` about 5 ms
    return base in _DENIED_NAMES or any(fnmatch.fnmatchcase(base, g) for g in _DENIED_GLOBS)


def _bare_name(field_: str, name: str) -> None:
    """A name that becomes a command-line argument or a file name: no option, no path."""
    if not name or len(name) > MAX_NAME or not _PKG_NAME.match(name) or ".." in name:
        raise RuleRejected(f"{field_} {show_value(name)} must be a bare name (letters, digits, '_.+-@'; "
                           "no leading '-', no '/')")


def _relative(field_: str, path: str) -> None:
    """A relative path inside the folder it is joined to (no ``..``, not absolute, no ``~``/``$``)."""
    parts = re.split(r"[/\\]", path)
    if (not path or len(path) > MAX_PATH or os.path.isabs(path) or path.startswith(("/", "\\", "~", "-", "$"))
            or ".." in parts or re.match(r"^[A-Za-z]:", path) or "$" in path):
        raise RuleRejected(f"{field_} {show_value(path)} must be a relative path without '..'")


def _version_args(rule: Mapping[str, Any]) -> None:
    if "version_args" not in rule:
        return
    v = rule["version_args"]
    args = [v] if isinstance(v, str) else v
    if not isinstance(args, list) or len(args) > 1 or not all(isinstance(a, str) and a in VERSION_ARGS
                                                              for a in args):
        raise RuleRejected(f"version_args {show_value(v)} must be one of {', '.join(sorted(VERSION_ARGS))} "
                           "(or [] for none)")


def _folder_pattern(field_: str, pattern: str, roots: "Roots | None") -> None:
    if not pattern or len(pattern) > MAX_PATH:
        raise RuleRejected(f"{field_} {show_value(pattern)} must be a path of 1 to {MAX_PATH} characters")
    if ".." in re.split(r"[/\\]", pattern):
        raise RuleRejected(f"{field_} {show_value(pattern)} must not contain '..'")
    if roots is not None and not roots.allows_pattern(roots.expand(pattern)):
        raise RuleRejected(f"{field_} {show_value(pattern)} is outside the folders detection may look in "
                           f"({roots.describe()}); list its folder in the user's path_roots to allow it")


# -- regular expressions ------------------------------------------------------------------------

def check_regex(regex: Any) -> None:
    """A version_regex: a string of bounded length that compiles, without nested unbounded
    repetition that could backtrack catastrophically (``(a+)+``, ``(\\w+\\s?)*``)."""
    if not isinstance(regex, str) or not regex or len(regex) > MAX_REGEX:
        raise RuleRejected(f"version_regex must be a string of 1 to {MAX_REGEX} characters")
    try:
        re.compile(regex)
    except (re.error, RecursionError, OverflowError) as e:
        raise RuleRejected(f"version_regex {show_value(regex)} does not compile: {e}") from None
    if _nested_quantifiers(regex):
        raise RuleRejected(f"version_regex {show_value(regex)} repeats a repetition (catastrophic backtracking)")


@functools.lru_cache(maxsize=1024)
def _nested_quantifiers(regex: str) -> bool:
    import importlib
    import warnings

    try:  # the parser behind re (Python 3.11+), else its deprecated public name
        sre_parse: Any = importlib.import_module("re._parser")
        C: Any = importlib.import_module("re._constants")
    except ImportError:  # pragma: no cover
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sre_parse = importlib.import_module("sre_parse")
            C = importlib.import_module("sre_constants")

    try:
        tree = sre_parse.parse(regex)
    except Exception:  # compiled above; be safe anyway
        return True
    repeats = {C.MAX_REPEAT, C.MIN_REPEAT}
    poss = getattr(C, "POSSESSIVE_REPEAT", None)
    if poss is not None:
        repeats.add(poss)
    maxrep = C.MAXREPEAT

    def subpatterns(op: Any, av: Any) -> list[Any]:
        if op in repeats:
            return [av[2]]
        if op is C.SUBPATTERN:
            return [av[-1]]
        if op is C.BRANCH:
            return list(av[1])
        if op in (C.ASSERT, C.ASSERT_NOT):
            return [av[1]]
        if op is getattr(C, "ATOMIC_GROUP", None):
            return [av]
        return []

    def unbounded(sub: Any) -> bool:
        for op, av in sub:
            if op in repeats and av[1] == maxrep:
                return True
            if any(unbounded(s) for s in subpatterns(op, av)):
                return True
        return False

    def anchored(sub: Any) -> bool:
        """A literal that each repetition must match (``(?:\\.\\d+)+`` is safe)."""
        for op, av in sub:
            if op is C.LITERAL:
                return True
            if op is C.SUBPATTERN and anchored(av[-1]):
                return True
        return False

    def bad(sub: Any) -> bool:
        for op, av in sub:
            if op in repeats and av[1] == maxrep and unbounded(av[2]) and not anchored(av[2]):
                return True
            if any(bad(s) for s in subpatterns(op, av)):
                return True
        return False

    return bad(tree)


# -- roots ----------------------------------------------------------------------------------------

_VAR = re.compile(r"\$(\w+)|\$\{([^}]+)\}")


def data_dir(env: Mapping[str, str] | None = None) -> str:
    """ckpm's data folder (:func:`ckpm.settings.user_dir`), a root detection may look in."""
    from ckpm.settings import user_dir

    return str(user_dir("data", env))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class Roots:
    """The folders that ``search_paths``, ``include_paths`` and ``path`` globs of a rule may name.

    The system prefixes (:data:`SYSTEM_ROOTS`), ckpm's data folder, the run's own
    ``search_paths`` (the caller's) and the user's ``path_roots``. A pattern's fixed
    part (before its first wildcard) must lie inside one, after expansion; every match
    is checked again on its real path, so ``..`` and symlinks cannot lead outside.
    """

    roots: tuple[str, ...]
    real: tuple[str, ...]
    env: Mapping[str, str]
    user: tuple[str, ...] = ()

    @classmethod
    def build(cls, path_roots: Iterable[str | os.PathLike[str]] = (), search_paths: Iterable[str] = (),
              env: Mapping[str, str] | None = None, *, system: Sequence[str] = SYSTEM_ROOTS) -> "Roots":
        environ = dict(os.environ if env is None else env)
        user = tuple(os.path.abspath(_expand(os.fspath(p), environ)) for p in path_roots if os.fspath(p))
        found: list[str] = [os.path.abspath(p) for p in system]
        try:
            found.append(os.path.abspath(data_dir(environ)))
        except Exception:  # no home folder: no data folder root
            pass
        found += [os.path.abspath(_expand(p, environ)) for p in search_paths if p and not _GLOB.search(p)]
        found += user
        roots = tuple(dict.fromkeys(os.path.normpath(p) for p in found))
        real = tuple(dict.fromkeys(os.path.realpath(p) for p in roots))
        return cls(roots, real, environ, user)

    def expand(self, path: str) -> str:
        return _expand(path, self.env)

    def allows_pattern(self, expanded: str) -> bool:
        """Does the fixed part of an (expanded) glob lie inside a root?"""
        p = os.path.normpath(os.path.abspath(expanded))
        parts = p.split(os.sep)
        fixed: list[str] = []
        for part in parts:
            if _GLOB.search(part):
                break
            fixed.append(part)
        head = os.sep.join(fixed) or os.sep
        return any(_inside(head, r) for r in self.roots) or any(_inside(os.path.realpath(head), r)
                                                                for r in self.real)

    def contains(self, path: str) -> bool:
        """Is ``path``, with every symlink resolved, inside a root?"""
        real = os.path.realpath(path)
        return any(_inside(real, r) for r in self.real)

    def describe(self) -> str:
        return ", ".join(self.roots[:12]) + (", …" if len(self.roots) > 12 else "")


def _expand(path: str, env: Mapping[str, str]) -> str:
    """``~`` and ``$VAR``/``${VAR}`` expanded from ``env`` (as :meth:`DetectContext.expand`)."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return env.get(name, m.group(0))

    p = _VAR.sub(sub, str(path))
    if p == "~" or p.startswith("~/"):
        home = env.get("HOME") or os.path.expanduser("~")
        p = home + p[1:]
    elif p.startswith("~"):
        p = os.path.expanduser(p)
    return p


def check_version(version: str) -> str | None:
    """Why a detected version is unacceptable (None if fine): at most :data:`MAX_VERSION`
    characters, no control characters, and it parses as a version."""
    if len(version) > MAX_VERSION:
        return f"longer than {MAX_VERSION} characters"
    if _CONTROL.search(version):
        return "contains control characters"
    from ckpm.model.version import try_version

    if try_version(version) is None:
        return "not a version"
    return None
