"""``ckpm.toml``: project manifests (``[project]``) and component manifests (``[component]``).

Reading uses tomllib (fast, exact errors with a line number); ``add``/``remove``
edit the file with tomlkit so the user's comments and order survive. Every error
names the file and the line and, for an unknown key, suggests the nearest known one.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ckpm.errors import CkpmError, ManifestError, NoProject, unknown_key_message
from ckpm.model.entry import KINDS, valid_name
from ckpm.model.requirement import Requirement, requirement_from_manifest, split_tags
from ckpm.model.targets import pattern_problem, validate_target
from ckpm.model.version import try_version
from ckpm.report import Reporter

MANIFEST = "ckpm.toml"

TOP_KEYS = ("project", "component", "dependencies", "index", "targets", "detect", "install", "tool", "run", "mirrors")
PROJECT_KEYS = (
    "name", "version", "description", "authors", "license", "readme", "homepage", "repository", "keywords",
)
COMPONENT_KEYS = PROJECT_KEYS + ("kind", "tags", "targets")
INDEX_KEYS = ("name", "url")
TARGETS_KEYS = ("default",)

_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _line_of(text: str, table: str | None, key: str | None = None) -> int | None:
    """Best-effort line number of ``key`` inside ``[table]`` (or of the table header)."""
    current: str | None = None
    header_line = None
    for no, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            current = m.group(1).strip().strip('"')
            if table is None and key is not None and current.split(".")[0] == key:
                return no
            if current == table and header_line is None:
                header_line = no
                if key is None:
                    return no
            continue
        if current == table and key is not None:
            s = line.strip()
            if re.match(rf'^"?{re.escape(key)}"?\s*=', s):
                return no
        if table is None and current is None and key is not None:
            if re.match(rf'^"?{re.escape(key)}"?\s*[=.]', line.strip()):
                return no
    return header_line


MAX_MANIFEST_CHARS = 1 << 20  # a manifest is a page of text; a component's comes from someone else


def load_toml(text: str, origin: str) -> dict[str, Any]:
    """Parse TOML, turning a syntax error into a ManifestError with the line.

    Bounded: a text over :data:`MAX_MANIFEST_CHARS`, or nested deeper than the parser can
    follow, is one clear error, never a traceback.
    """
    if len(text) > MAX_MANIFEST_CHARS:
        raise ManifestError(origin, f"larger than {MAX_MANIFEST_CHARS:,} characters; not read")
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ManifestError(origin, "invalid TOML: arrays or tables nested too deeply") from None
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _TOML_LINE.search(msg)
        line = int(m.group(1)) if m else None
        raise ManifestError(origin, "invalid TOML: " + _TOML_LINE.sub("", msg).strip(), line) from None


def _check_keys(text: str, origin: str, table: str | None, data: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for k in data:
        if k not in known:
            raise ManifestError(origin, unknown_key_message(k, known, where), _line_of(text, table, k))


def _parse_dependencies(text: str, origin: str, deps: Any, table: str = "dependencies",
                        reporter: Reporter | None = None) -> dict[str, Requirement]:
    if not isinstance(deps, Mapping):
        raise ManifestError(origin, f"[{table}] must be a table", _line_of(text, table))
    out: dict[str, Requirement] = {}
    for key, value in deps.items():
        line: int | None = None  # found only when needed: one scan per dependency made big manifests quadratic

        def where() -> int | None:
            nonlocal line
            if line is None:
                line = _line_of(text, table, key)
            return line

        if not valid_name(key.lower()) and not (key.startswith("__") and valid_name(key[2:].lower())):
            raise ManifestError(origin, f"{key!r} is not a valid dependency name (lower case letters, digits, . _ -)",
                                where())
        try:
            req = requirement_from_manifest(key, value)
            for t in req.targets or ():
                if not any(ch in t for ch in "*?["):
                    validate_target(t)
                elif reporter is not None and (problem := pattern_problem(t)):
                    reporter.warning(f"{origin}:{where()}: dependency {key!r}: {problem}; it matches no target")
        except CkpmError as e:
            raise ManifestError(origin, f"dependency {key!r}: {e.message}", where(), hint=e.hint) from None
        except ValueError as e:
            raise ManifestError(origin, str(e), where()) from None
        out[req.key] = req
    return out


@dataclass
class IndexRef:
    """An ``[[index]]`` table: where components are looked up, in order."""

    name: str
    url: str


@dataclass
class ProjectManifest:
    """A project's ``ckpm.toml``."""

    path: Path
    name: str
    version: str | None
    description: str
    dependencies: dict[str, Requirement]
    indexes: list[IndexRef]
    targets: list[str]
    data: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    def content_hash(self) -> str:
        """Hash of what resolution depends on (deps, indexes, targets), not comments or layout."""
        canon = {
            "dependencies": {k: _canon(self.data.get("dependencies", {}).get(k)) for k in sorted(self.dependencies)},
            "index": [[i.name, i.url] for i in self.indexes],
            "targets": sorted(self.targets),
        }
        blob = json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()


def _canon(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _canon(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_canon(x) for x in v]
    return v


def parse_project_manifest(text: str, path: Path, reporter: Reporter | None = None) -> ProjectManifest:
    """Parse a project manifest's text; raises ManifestError naming ``path`` and the line.

    ``reporter`` hears of what is odd but not wrong (a target pattern that matches nothing);
    without one, that is not checked.
    """
    origin = str(path)
    data = load_toml(text, origin)
    _check_keys(text, origin, None, data, TOP_KEYS, "ckpm.toml")
    proj = data.get("project")
    if proj is None:
        if "component" in data:
            raise ManifestError(origin, "this is a component manifest ([component]); project commands need [project]",
                                _line_of(text, "component"), hint="run `ckpm init` in a folder for your project")
        raise ManifestError(origin, "missing [project] table", 1, hint="start the file with [project] and name = \"...\"")
    if not isinstance(proj, Mapping):
        raise ManifestError(origin, "[project] must be a table", _line_of(text, None, "project"))
    _check_keys(text, origin, "project", proj, PROJECT_KEYS, "[project]")
    name = proj.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(origin, "[project] needs name = \"...\"", _line_of(text, "project"))
    version = proj.get("version")
    if version is not None and (not isinstance(version, str) or try_version(version) is None):
        raise ManifestError(origin, f"[project] version {version!r} is not a version", _line_of(text, "project", "version"))
    deps = _parse_dependencies(text, origin, data.get("dependencies", {}), reporter=reporter)
    indexes = []
    raw_idx = data.get("index", [])
    if not isinstance(raw_idx, list):
        raise ManifestError(origin, "index must be an array of tables: [[index]]", _line_of(text, None, "index"))
    for i, t in enumerate(raw_idx):
        _check_keys(text, origin, "index", t, INDEX_KEYS, "[[index]]")
        if "url" not in t:
            raise ManifestError(origin, "[[index]] needs url = \"...\"", _line_of(text, "index"))
        indexes.append(IndexRef(name=str(t.get("name") or f"index{i}"), url=str(t["url"])))
    targets_t = data.get("targets", {})
    if not isinstance(targets_t, Mapping):
        raise ManifestError(origin, "[targets] must be a table", _line_of(text, None, "targets"))
    _check_keys(text, origin, "targets", targets_t, TARGETS_KEYS, "[targets]")
    targets = list(targets_t.get("default", []))
    for t in targets:
        try:
            validate_target(str(t))
        except CkpmError as e:
            raise ManifestError(origin, e.message, _line_of(text, "targets", "default"), hint=e.hint) from None
    return ProjectManifest(
        path=Path(path), name=name, version=version, description=str(proj.get("description", "")),
        dependencies=deps, indexes=indexes, targets=[str(t) for t in targets], data=data,
    )


def load_project(path: Path, reporter: Reporter | None = None) -> ProjectManifest:
    """Read ``path`` (a ckpm.toml); raises ManifestError. ``reporter``: as :func:`parse_project_manifest`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (some Windows editors write one) is not TOML
    except FileNotFoundError:
        raise NoProject(str(path), "no such file", hint="run `ckpm init` to create a project") from None
    except UnicodeDecodeError as e:
        raise ManifestError(str(path), f"not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise ManifestError(str(path), f"cannot read it ({e.strerror or e})") from None
    return parse_project_manifest(text, path, reporter)


def parse_component_manifest(text: str, origin: str) -> dict[str, Any]:
    """A component's ckpm.toml → an index-format dict (name, version, kind, tags, deps…)."""
    from difflib import get_close_matches

    data = load_toml(text, origin)
    _check_keys(text, origin, None, data, TOP_KEYS, "ckpm.toml")
    comp = data.get("component")
    if not isinstance(comp, Mapping):
        raise ManifestError(origin, "missing [component] table", 1,
                            hint="a component's ckpm.toml starts with [component] name, version, kind")
    _check_keys(text, origin, "component", comp, COMPONENT_KEYS, "[component]")
    name = comp.get("name")
    if not isinstance(name, str) or not valid_name(name):
        raise ManifestError(origin, f"[component] name {name!r} is not valid (lower case letters, digits, . _ -)",
                            _line_of(text, "component", "name"))
    _check_component_types(text, origin, data, comp)
    kind = comp.get("kind", "lib")
    if kind not in KINDS:
        near = get_close_matches(str(kind), list(KINDS), n=1)
        raise ManifestError(origin, f"kind {kind!r} is not one of {', '.join(KINDS)}"
                            + (f"; did you mean {near[0]!r}?" if near else ""), _line_of(text, "component", "kind"))
    version = comp.get("version")
    if version is not None and try_version(str(version)) is None:
        raise ManifestError(origin, f"version {version!r} is not a version", _line_of(text, "component", "version"))
    deps = _parse_dependencies(text, origin, data.get("dependencies", {}))
    targets = comp.get("targets", ["*"])
    if isinstance(targets, str):
        targets = [targets]
    out: dict[str, Any] = {
        "name": name,
        "version": str(version) if version is not None else None,
        "kind": kind,
        "tags": sorted(split_tags(comp.get("tags"))),
        "description": " ".join(str(comp.get("description", "")).split()),  # one line, as an index line's
        "targets": list(targets),
        "deps": [r.to_index_dep() for r in deps.values()],
    }
    if data.get("detect"):
        out["detect"] = list(data["detect"])
    if data.get("install"):
        out["install"] = list(data["install"])
    if isinstance(data.get("run"), dict):
        out["run"] = dict(data["run"])
    _check_as_index_line(text, origin, out)
    return out


#: the type of each [component] field a component manifest may give (str, or a list of str)
_COMPONENT_TYPES: dict[str, str] = {
    "name": "str", "version": "str", "description": "str", "license": "str", "readme": "str", "homepage": "str",
    "repository": "str", "kind": "str", "authors": "strs", "keywords": "strs", "tags": "str|strs",
    "targets": "str|strs",
}
#: the top-level tables of a component manifest that must be arrays of tables ([[install]], [[detect]])
_ARRAYS_OF_TABLES = ("detect", "install")


def _check_component_types(text: str, origin: str, data: Mapping[str, Any], comp: Mapping[str, Any]) -> None:
    """Every field of a component manifest has the type it must have (ManifestError naming
    the field and its line): someone else's file is checked before any of it is used."""
    for key, want in _COMPONENT_TYPES.items():
        if key not in comp:
            continue
        v = comp[key]
        ok = (isinstance(v, str) if want == "str" else
              isinstance(v, list) and all(isinstance(x, str) for x in v) if want == "strs" else
              isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)))
        if not ok:
            spelled = {"str": "a string", "strs": "a list of strings",
                       "str|strs": "a string or a list of strings"}[want]
            raise ManifestError(origin, f"[component] {key} must be {spelled}, not {_toml_type(v)}",
                                _line_of(text, "component", key))
    for key in _ARRAYS_OF_TABLES:
        if key not in data:
            continue
        v = data[key]
        if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
            raise ManifestError(origin, f"{key} must be an array of tables ([[{key}]]), not {_toml_type(v)}",
                                _line_of(text, None, key),
                                hint=f"write each one under its own [[{key}]] header")
    if "run" in data and not isinstance(data["run"], Mapping):
        raise ManifestError(origin, f"run must be a table ([run]), not {_toml_type(data['run'])}",
                            _line_of(text, None, "run"))
    for key in ("index", "targets", "mirrors", "tool"):
        if key in data and not isinstance(data[key], (Mapping, list)):
            raise ManifestError(origin, f"{key} must be a table, not {_toml_type(data[key])}",
                                _line_of(text, None, key))


def _check_as_index_line(text: str, origin: str, line: Mapping[str, Any]) -> None:
    """The index line a component manifest becomes passes the index line's own checks (types,
    sizes, names), so a git component is held to what an index line is held to."""
    from ckpm.model.entry import IndexDataError, check_entry

    probe = {k: v for k, v in line.items() if k != "run" and v is not None}
    probe.setdefault("version", "0")
    try:
        check_entry(json.loads(json.dumps(probe, default=str)))
    except IndexDataError as e:
        raise ManifestError(origin, f"as an index line: {e}") from None


def _toml_type(v: Any) -> str:
    """How a TOML value's type is spelled in a message."""
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, Mapping):
        return "a table"
    if isinstance(v, list):
        return "an array"
    return type(v).__name__


def find_project(start: Path) -> Path:
    """The ckpm.toml in ``start`` or the nearest parent folder that has one."""
    start = Path(start).resolve()
    for d in (start, *start.parents):
        p = d / MANIFEST
        if p.is_file():
            return p
    raise NoProject(str(start / MANIFEST), "no ckpm.toml here or in any parent folder",
                        hint="run `ckpm init NAME` to create a project, or pass -C DIR")
