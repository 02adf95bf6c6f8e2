"""CK entries → ckpm index lines (format 1), as data: nothing of an entry is run here.

Each mapper returns a :class:`Mapped`: the line (without ``source``, which the importer
adds: a git commit and sub-folder, or an archive of the entry's files kept beside the
index), or the reason the entry was skipped, and, per entry, what could not be carried
over (CK's Python hooks, scripts, placeholders ckpm has no equivalent of).
"""
from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ckpm.ck.layout import CkEntry
from ckpm.model.entry import MAX_TAG_LEN, MAX_TAGS, valid_name
from ckpm.model.envnames import reserved_env
from ckpm.model.program import NAME_RE as PROG_NAME_RE, ENV_RE, PLACEHOLDER_RE, ProgramError, parse_program

#: the file a data set's prefix holds under a fixed name: CK's ``$#dataset_filename#$``
DATASET_FILE = "ck-dataset-file"
VERSION = "0.0.0"
MAX_DATASET_FILES = 16
PREFIX = {"program": "program", "dataset": "dataset", "soft": "soft", "package": "package"}
OS_TARGETS = {"linux": "linux-*", "macos": "macos-*", "darwin": "macos-*", "osx": "macos-*",
              "windows": "windows-*", "win": "windows-*", "mingw": "windows-*"}
SHELL_CHARS = re.compile(r"[|<>;&`]|\$\(")
CK_VAR = re.compile(r"\$#([A-Za-z0-9_]+)#\$|\$<<([A-Za-z0-9_]+)>>\$")
#: variables a CK entry may not set for the program: the loader's, the shell's, ckpm's own
C_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
LANGS = {"c": "c", "cpp": "c++", "c++": "c++", "cxx": "c++"}
DETECT_LANGS = {"c": "c", "cpp": "cxx", "c++": "cxx", "cxx": "cxx"}  # as detect rules name them
MAX_CMDS = 64


@dataclass
class Mapped:
    entry: CkEntry
    name: str
    kind: str
    line: dict[str, Any] | None = None
    skipped: str | None = None
    not_carried: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        return {"module": e.module, "alias": e.alias, "uid": e.uid, "component": self.name,
                "imported": self.line is not None, "reason": self.skipped, "not_carried": list(self.not_carried)}


def component_name(module: str, alias: str) -> str:
    """``program`` + ``cbench-automotive-susan`` → ``program-cbench-automotive-susan``
    (lower case; other characters become ``-``; a long name is cut and given a hash)."""
    base = f"{PREFIX.get(module, module)}-{alias}".lower()
    base = re.sub(r"[^a-z0-9._-]+", "-", base).strip("-._") or "ck-entry"
    if len(base) > 64:
        base = base[:55].rstrip("-._") + "-" + hashlib.sha256(alias.encode()).hexdigest()[:8]
    return base


def tags_of(v: Any) -> list[str]:
    """CK tags (a list or a comma-separated string) as ckpm tags: lower case, checked."""
    if isinstance(v, str):
        v = v.split(",")
    if not isinstance(v, list):
        return []
    out: list[str] = []
    for t in v:
        if not isinstance(t, str):
            continue
        t = t.strip().lower()
        if t and len(t) <= MAX_TAG_LEN and re.fullmatch(r"[a-z0-9][a-z0-9._+:-]*", t) and t not in out:
            out.append(t)
    return out[:MAX_TAGS]


def _int_version(v: Any) -> str | None:
    if isinstance(v, list) and v and len(v) <= 8 and all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 10**9 for x in v):
        return ".".join(str(x) for x in v)
    return None


def targets_of(os_tags: Any) -> list[str] | None:
    """``only_for_target_os_tags`` → target patterns; [] when none of them is a platform ckpm knows."""
    if not isinstance(os_tags, list) or not os_tags:
        return None
    out = []
    for t in os_tags:
        p = OS_TARGETS.get(t.lower()) if isinstance(t, str) else None
        if p and p not in out:
            out.append(p)
    return out


def dep_key(key: str) -> str | None:
    k = re.sub(r"[^a-z0-9._-]+", "-", key.lower()).strip("-._")
    return k if k and valid_name(k) else None


def deps_of(d: Any, where: str, notes: list[str], *,
            build_tags: tuple[str, ...] = ("compiler",)) -> list[dict[str, Any]]:
    """CK ``deps``/``compile_deps``/``run_deps`` → index dependencies (capability keys by tags)."""
    if not isinstance(d, Mapping):
        return []
    items = [(k, v) for k, v in d.items() if isinstance(k, str) and isinstance(v, Mapping)]
    items.sort(key=lambda kv: (kv[1].get("sort") if isinstance(kv[1].get("sort"), int) else 0, kv[0]))
    out: list[dict[str, Any]] = []
    for k, v in items[:64]:
        key = dep_key(k)
        tags = tags_of(v.get("tags"))
        if key is None or not tags:
            notes.append(f"{where}.{k}: a dependency without a usable key or tags; left out")
            continue
        dep: dict[str, Any] = {"name": key, "tags": tags}
        no = tags_of(v.get("no_tags"))
        if no:
            dep["no_tags"] = no
        lo, hi = _int_version(v.get("version_from")), _int_version(v.get("version_to"))
        req = ",".join(([f">={lo}"] if lo else []) + ([f"<={hi}"] if hi else []))
        if req:
            dep["req"] = req
        for os_key in ("only_for_target_os_tags", "only_for_host_os_tags"):
            if os_key in v:
                ts = targets_of(v.get(os_key))
                if ts == []:
                    dep = {}
                    notes.append(f"{where}.{k}: only for {v.get(os_key)!r}, no platform ckpm targets; left out")
                    break
                if ts:
                    dep["targets"] = ts
        if not dep:
            continue
        if any(t in tags for t in build_tags):
            dep["kind"] = "build"
        if v.get("skip_installed") or v.get("force_target_as_host"):
            notes.append(f"{where}.{k}: CK install options (skip_installed, force_target_as_host) are not carried over")
        out.append(dep)
    return out


def _why_missing(entry: CkEntry) -> str:
    gone = [p for p in entry.problems if "not in the git repository" in p or "skipped" in p]
    return f" ({gone[0]})" if gone else ""


def _base(entry: CkEntry, kind: str) -> tuple[str, list[str], list[str]]:
    name = component_name(entry.module, entry.alias)
    notes: list[str] = list(entry.problems)
    if "customize.py" in entry.files:
        notes.append("customize.py is Python code: not run, its hooks are not carried over")
    other = [f for f in entry.code_files if f != "customize.py"]
    if other:
        notes.append(f"code files kept as files, never run by the import: {', '.join(other[:8])}"
                     + (" …" if len(other) > 8 else ""))
    return name, tags_of(entry.meta.get("tags")), notes


def _description(entry: CkEntry, default: str) -> str:
    """``CK program cbench-automotive-susan (ffbf51c23a91343c): …``: ``ckpm search`` finds the
    alias and the UID people know."""
    head = f"CK {entry.module} {entry.alias}" + (f" ({entry.uid})" if entry.uid else "")
    for k in ("data_name", "soft_name", "template_type"):
        v = entry.meta.get(k) if k in entry.meta else entry.info.get(k)
        if isinstance(v, str) and v.strip():
            text = re.sub(r"[\x00-\x1f\x7f]", " ", v.strip())[:200]
            return f"{head}: {text}"
    return f"{head}: {default}"


def _line(entry: CkEntry, name: str, kind: str, tags: list[str], description: str, *, targets: list[str] | None = None,
          deps: list[dict[str, Any]] | None = None, version: str = VERSION, **extra: Any) -> dict[str, Any]:
    ck = {"module": entry.module, "alias": entry.alias}
    if entry.uid:
        ck["uid"] = entry.uid
    line: dict[str, Any] = {"name": name, "version": version, "kind": kind, "tags": tags,
                            "description": description, "targets": targets or ["*"], "deps": deps or [], "ck": ck}
    line.update(extra)
    return line


# -- data sets ----------------------------------------------------------------------------------

def map_dataset(entry: CkEntry) -> Mapped:
    name, tags, notes = _base(entry, "dataset")
    files = entry.meta.get("dataset_files")
    steps: list[dict[str, Any]] = [{"kind": "copy"}]
    if isinstance(files, list) and files:
        first = files[0]
        if not isinstance(first, str) or first not in entry.files:
            return Mapped(entry, name, "dataset", skipped=f"dataset_files names {str(first)[:80]!r}, which is not a "
                                                           "file of the entry" + _why_missing(entry), not_carried=notes)
        steps.append({"kind": "copy", "from": first, "to": DATASET_FILE})
        for i, other in enumerate(files[1:MAX_DATASET_FILES], 1):  # CK's $#dataset_filename_N#$
            if isinstance(other, str) and other in entry.files:
                steps.append({"kind": "copy", "from": other, "to": f"{DATASET_FILE}-{i}"})
        if len(files) > MAX_DATASET_FILES:
            notes.append(f"{len(files)} dataset_files: the first {MAX_DATASET_FILES} have fixed names")
    elif not entry.files:
        return Mapped(entry, name, "dataset", skipped="no files and no dataset_files", not_carried=notes)
    else:
        notes.append("no dataset_files: the data set's files are copied, with no default input file")
    if "dataset" not in tags:
        tags = ["dataset", *tags][:MAX_TAGS]
    line = _line(entry, name, "dataset", tags, _description(entry, "a data set"),
                 install=[{"targets": ["*"], "steps": steps}])
    line["ck"]["files"] = [f for f in (files or []) if isinstance(f, str)][:64]
    return Mapped(entry, name, "dataset", line, None, notes)


# -- soft (detection) ---------------------------------------------------------------------------

def _linux_value(v: Any) -> str | None:
    if isinstance(v, Mapping):
        v = v.get("linux")
    return v if isinstance(v, str) and 0 < len(v) <= 512 else None


def map_soft(entry: CkEntry) -> Mapped:
    from ckpm.detect.trust import VERSION_ARGS, validate_rule

    name, tags, notes = _base(entry, "soft")
    cust = entry.meta.get("customize") if isinstance(entry.meta.get("customize"), Mapping) else {}
    assert isinstance(cust, Mapping)
    f = _linux_value(cust.get("soft_file")) or _linux_value(cust.get("soft_file_universal")) \
        or _linux_value(entry.meta.get("soft_file")) or _linux_value(entry.meta.get("soft_file_universal"))
    if f is None:
        return Mapped(entry, name, "soft", skipped="its metadata names no file to look for on Linux "
                                                   "(CK finds it with customize.py, which is code)", not_carried=notes)
    f = f.replace("$#file_ext#$", "").replace("$#sep#$", "/").replace("$#file_ext_dll#$", ".so")
    if "$#" in f or "$<<" in f:
        return Mapped(entry, name, "soft", skipped=f"soft_file {f[:80]!r} needs CK placeholders ckpm does not have",
                      not_carried=notes)
    base = f.rstrip("/").rsplit("/", 1)[-1]
    rule: dict[str, Any]
    lib = re.fullmatch(r"lib([A-Za-z0-9_+-][A-Za-z0-9_.+-]*?)\.(?:so(?:\.[0-9.]+)?|a|dylib)", base)
    if lib:
        rule = {"library": lib.group(1)}
        kind = "lib"
    elif re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*", base) and "." not in base.split("-")[0][:1]:
        vargs: list[str] = []
        vcmd = _linux_value(cust.get("soft_version_cmd"))
        if vcmd:
            first = vcmd.split()[0] if vcmd.split() else ""
            if first in VERSION_ARGS:
                vargs = [first]
            else:
                notes.append(f"soft_version_cmd {vcmd[:60]!r}: not one of the version flags ckpm may pass; "
                             "the version is not read")
        rule = {"executable": [base]}
        if vargs:
            rule["version_args"] = vargs
            rule["version_regex"] = r"(\d+\.\d+(?:\.\d+)?)"
        kind = "tool"
        langs = [DETECT_LANGS[t[5:]] for t in tags if t.startswith("lang-") and t[5:] in DETECT_LANGS]
        if "compiler" in tags and langs:
            family = "clang" if ("llvm" in tags or "clang" in tags or base.startswith("clang")) else \
                "gcc" if ("gcc" in tags or base.startswith(("gcc", "g++"))) else None
            if family is not None:
                rule = {"compiler": family, "languages": sorted(set(langs)), **rule}
            kind = "compiler"
    else:
        return Mapped(entry, name, "soft", skipped=f"soft_file {f[:80]!r} is neither a program nor a library name",
                      not_carried=notes)
    clean, problems = validate_rule(rule, origin=f"CK {entry.where}")
    if clean is None:
        return Mapped(entry, name, "soft", skipped=problems[0], not_carried=notes)
    targets = targets_of(cust.get("only_for_target_os_tags"))
    if targets == []:
        return Mapped(entry, name, "soft", skipped=f"only for {cust.get('only_for_target_os_tags')!r}",
                      not_carried=notes)
    if "compiler" in tags and kind != "compiler":
        notes.append("a compiler ckpm cannot drive (not C or C++ by gcc or clang): detected as a tool")
    if cust.get("env_prefix"):
        notes.append(f"the environment CK's customize.py sets ({cust.get('env_prefix')}_*) is not carried over; "
                     "ckpm gives prefixes as {dep.KEY} and <NAME>_ROOT")
    deps = deps_of(entry.meta.get("deps"), "deps", notes)
    line = _line(entry, name, kind, tags, _description(entry, "software detection"), targets=targets,
                 deps=deps, detect=[clean])
    return Mapped(entry, name, "soft", line, None, notes)


# -- packages (install recipes) -----------------------------------------------------------------

_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=\"?([A-Za-z0-9_.+ -]*)\"?\s*$", re.M)


def _shell_vars(text: str) -> dict[str, str]:
    """Plain ``NAME=value`` assignments of a script, read as text (never run)."""
    return {m.group(1): m.group(2).strip() for m in _ASSIGN.finditer(text)}


def _package_source(env: Mapping[str, Any]) -> tuple[str | None, str]:
    """The download URL a package's ``install_env`` declares, or (None, why not)."""
    def get(k: str) -> str | None:
        v = env.get(f"{k}_LINUX", env.get(k))
        return v if isinstance(v, str) and v.strip() else None

    url = get("PACKAGE_URL")
    if url is None:
        return None, "no download URL (install_env.PACKAGE_URL)"
    url = url.strip()
    if "$#" in url or "${" in url or "$<<" in url:
        return None, f"its download URL {url[:80]!r} needs CK placeholders"
    if str(env.get("PACKAGE_GIT", "")).upper() == "YES":
        m = re.fullmatch(r"https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?", url)
        ref = get("PACKAGE_GIT_CHECKOUT")
        if m is None:
            return None, f"a git repository outside GitHub ({url[:60]}): no archive URL to pin"
        if ref is None or ref in ("master", "main", "trunk", "develop") \
                or not re.fullmatch(r"[A-Za-z0-9_.+-]{1,128}", ref):
            return None, f"tracks a branch of {url[:60]} ({ref or 'the default branch'}): no version to pin"
        return f"https://github.com/{m.group(1)}/{m.group(2)}/archive/{ref}.tar.gz", ""
    name = get("PACKAGE_NAME")
    if name is None:
        return None, "the file to download is named by customize.py (code), not by the metadata"
    if "$#" in name or "${" in name or "/" in name.strip("/") and ".." in name:
        return None, f"its file name {name[:60]!r} needs CK placeholders"
    full = url.rstrip("/") + "/" + name.strip().lstrip("/")
    if not re.fullmatch(r"https?://[^\s\"'`$\\]{1,2000}", full):
        return None, f"{full[:80]!r} is not an http(s) URL ckpm downloads"
    return full, ""


def map_package(entry: CkEntry) -> Mapped:
    name, tags, notes = _base(entry, "package")
    meta = entry.meta
    cust = meta.get("customize") if isinstance(meta.get("customize"), Mapping) else {}
    assert isinstance(cust, Mapping)
    env = cust.get("install_env") if isinstance(cust.get("install_env"), Mapping) else meta.get("install_env")
    if not isinstance(env, Mapping):
        env = {}
    deps = deps_of(meta.get("deps"), "deps", notes)
    version = VERSION
    v = cust.get("version") or meta.get("version")
    if isinstance(v, str) and re.fullmatch(r"[0-9]+(\.[0-9]+){0,3}", v):
        version = v
    recipe: dict[str, Any] | None = None
    ldflags: list[str] = []
    if env.get("PACKAGE_URL") or env.get("PACKAGE_URL_LINUX"):
        full, why = _package_source(env)
        if full is None:
            return Mapped(entry, name, "package", skipped=why, not_carried=notes)
        build = str(env.get("PACKAGE_BUILD_TYPE") or "").lower()
        skip_make = str(env.get("PACKAGE_SKIP_LINUX_MAKE", "")).upper() == "YES"
        flags = [str(env.get(k) or "") for k in ("PACKAGE_CONFIGURE_FLAGS", "PACKAGE_CONFIGURE_FLAGS_LINUX")]
        args = [a for f in flags for a in f.split() if a]
        ok_arg = (re.compile(r"-D[A-Za-z_][A-Za-z0-9_]*(?::[A-Z]+)?=[A-Za-z0-9_.,:/+=-]*") if build == "cmake"
                  else re.compile(r"--?[A-Za-z0-9][A-Za-z0-9_-]*(?:=[A-Za-z0-9_.,:/+=-]*)?"))
        bad = [a for a in args if not ok_arg.fullmatch(a)]
        if bad:
            notes.append(f"configure flags left out (placeholders, or not plain options): {' '.join(bad[:5])}")
            args = [a for a in args if a not in bad]
        steps: list[dict[str, Any]] = []
        if str(env.get("PACKAGE_AUTOGEN", "")).upper() == "YES":
            steps.append({"kind": "script", "run": ["sh ./autogen.sh"]})
        if build == "cmake":
            steps.append({"kind": "cmake", "args": args})
        elif build in ("configure", "autotools") or (build == "make" and not skip_make):
            steps.append({"kind": "make", "configure": "auto", "configure_args": args})
        elif build == "make":
            return Mapped(entry, name, "package", not_carried=notes,
                          skipped="build type make with PACKAGE_SKIP_LINUX_MAKE: its install script builds it "
                                  "(code, not carried over)")
        elif skip_make or build in ("none", "skip"):
            steps = [{"kind": "copy"}]
            notes.append("no build: the download is unpacked into the prefix")
        else:
            return Mapped(entry, name, "package", skipped=f"declares no build type (CK's install script "
                                                          f"{meta.get('process_script') or ''} decides: code)",
                          not_carried=notes)
        recipe = {"targets": ["linux-*", "macos-*"], "sources": [{"urls": [full]}], "steps": steps}
        if str(env.get("PACKAGE_PATCH", "")).upper() == "YES" or any(f.startswith("patch") for f in entry.files):
            notes.append("CK's patches are not applied")
        if meta.get("process_script") or meta.get("use_scripts_from_another_entry"):
            notes.append("CK's install script is code: not run; ckpm's own "
                         f"{'/'.join(s['kind'] for s in steps)} step builds it from the declared URL and flags")
    else:
        recipe, ldflags, why = _library_from_sources(entry)
        if recipe is None:
            return Mapped(entry, name, "package", skipped=why, not_carried=notes)
        notes.append("built by a recipe ckpm wrote from the entry's declared files (CK_SOURCE_FILES, LIB_NAME, "
                     "CK_INCLUDE_FILE read as text from its make script, which is not run)")
    if not ldflags:
        efp = _linux_value(meta.get("end_full_path")) or _linux_value(cust.get("end_full_path"))
        if efp:
            m = re.fullmatch(r"(?:.*/)?lib([A-Za-z0-9_+-]+)\.(?:a|so)", efp.replace("$#sep#$", "/"))
            if m:
                ldflags = [f"-l{m.group(1)}"]
    kind = "lib" if "lib" in tags else "tool"
    targets = targets_of(meta.get("only_for_target_os_tags")) if "only_for_target_os_tags" in meta else None
    if targets == []:
        return Mapped(entry, name, "package", skipped=f"only for {meta.get('only_for_target_os_tags')!r}",
                      not_carried=notes)
    from ckpm.model.recipe_checks import check_recipe

    # an archive of the entry is named by the importer (a file URL and its sha256): checked as a URL
    problems = check_recipe({**recipe, "sources": [{"urls": ["https://ck-entry.invalid/file"]} if "ck_entry_file" in x
                                                   else x for x in recipe.get("sources", [])]}
                            if recipe.get("sources") else recipe)
    if problems:
        return Mapped(entry, name, "package", skipped=f"the recipe made from it is refused: {problems[0]}",
                      not_carried=notes)
    line = _line(entry, name, kind, tags, _description(entry, "a package"), deps=deps, version=version,
                 targets=targets or ["linux-*", "macos-*"], install=[recipe])
    if ldflags:
        line["ck"]["ldflags"] = ldflags
    return Mapped(entry, name, "package", line, None, notes)


ARCHIVE_RE = re.compile(r".+\.(?:tar\.bz2|tar\.gz|tgz|tar\.xz|tar)$")
MAX_ARCHIVE_MEMBERS = 10_000
MAX_SCRIPT = 64 * 1024
MAX_ARCHIVE_BYTES = 512 << 20


def _read_text(path: Any) -> str:
    with open(path, "rb") as fh:
        return fh.read(MAX_SCRIPT).decode("utf-8", "replace")


def _archive_make(entry: CkEntry, archive: str) -> tuple[dict[str, str], set[str], str] | None:
    """The make script's variables inside a CK package's own source archive (read as text,
    members listed, nothing extracted): (variables, files beside it, its folder once ckpm
    unpacks the archive, dropping a single top folder as it does)."""
    import tarfile

    try:
        with tarfile.open(entry.path / archive) as tf:
            members = []
            total = 0
            for i, m in enumerate(tf):  # headers only; a bomb stops at the caps
                total += max(m.size, 0)
                if i >= MAX_ARCHIVE_MEMBERS or total > MAX_ARCHIVE_BYTES:
                    return None
                members.append(m)
            make = next((m for m in members if m.isfile() and m.name.rstrip("/").split("/")[-1] == "ck-make.sh"
                         and m.name.count("/") <= 1 and m.size <= MAX_SCRIPT), None)
            if make is None:
                return None
            fh = tf.extractfile(make)
            text = fh.read(MAX_SCRIPT).decode("utf-8", "replace") if fh else ""
    except (OSError, tarfile.TarError, EOFError):
        return None
    folder = make.name.rsplit("/", 1)[0] if "/" in make.name else ""
    if folder and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}", folder):
        return None  # its folder's name goes into the recipe's command lines: a plain name only
    beside = {m.name.rsplit("/", 1)[-1] for m in members if m.isfile()
              and (m.name.rsplit("/", 1)[0] if "/" in m.name else "") == folder}
    tops = {m.name.strip("./").split("/")[0] for m in members if m.name.strip("./")}
    only_dir = len(tops) == 1 and all("/" in m.name.strip("./") or m.isdir() for m in members)
    where = "" if (only_dir and folder in tops) or not folder else folder
    return _shell_vars(text), beside, where


def _library_from_sources(entry: CkEntry) -> tuple[dict[str, Any] | None, list[str], str]:
    """A static C library whose scripts declare its files (``CK_SOURCE_FILES``, ``LIB_NAME``,
    ``CK_INCLUDE_FILE``, read as text, never run): a recipe ckpm writes compiles them. The
    files are the entry's own, or in one source archive of the entry (``lib-rtl-polybench``)."""
    v: dict[str, str] = {}
    for f in ("process.sh", "ck-make.sh", "scripts.linux/ck-make.sh"):
        if f in entry.files:
            try:
                v.update(_shell_vars(_read_text(entry.path / f)))
            except OSError as e:
                return None, [], f"cannot read {f} ({e.strerror or e})"
    files = set(entry.files)
    inner: str | None = None
    where = ""
    if not v.get("CK_SOURCE_FILES"):
        archives = [f for f in entry.files if ARCHIVE_RE.fullmatch(f) and "/" not in f]
        got = _archive_make(entry, archives[0]) if len(archives) == 1 else None
        if got is not None:
            inner = archives[0]
            v.update(got[0])
            files, where = got[1], got[2]
    what = entry.meta.get("process_script")
    srcs = v.get("CK_SOURCE_FILES", "").split()
    lib = v.get("LIB_NAME", "")
    inc = v.get("CK_INCLUDE_FILE", "").split()
    if not srcs or not lib:
        return None, [], (f"installs with its script {what!r} (code, not carried over); no download URL or "
                          "build type in its metadata" if what else "no download URL (install_env.PACKAGE_URL) "
                                                                     "and no declared source files")
    if not re.fullmatch(r"lib[A-Za-z0-9_+-]{1,64}", lib):
        return None, [], f"LIB_NAME {lib[:40]!r} is not a library name"
    for n in srcs + inc:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}", n) or n not in files:
            return None, [], f"{n[:60]!r}, named by its make script, is not one of its files"
    if not all(n.endswith((".c", ".cc", ".cpp", ".cxx")) for n in srcs):
        return None, [], "CK_SOURCE_FILES are not C or C++ sources"
    objs = [re.sub(r"\.[a-z]+$", ".o", s) for s in srcs]
    cxx = any(not s.endswith(".c") for s in srcs)
    cd = f"cd {where} && " if where else ""
    lines = ['mkdir -p "$DESTDIR$PREFIX/lib" "$DESTDIR$PREFIX/include"']
    lines += [f"{cd}{'$CXX' if cxx else '$CC'} -O2 -fPIC -I. -c {s} -o {o}" for s, o in zip(srcs, objs)]
    lines.append(f'{cd}${{AR:-ar}} rcs "$DESTDIR$PREFIX/lib/{lib}.a" {" ".join(objs)}')
    if inc:
        lines.append(f'{cd}cp {" ".join(inc)} "$DESTDIR$PREFIX/include/"')
    recipe: dict[str, Any] = {"targets": ["linux-*", "macos-*"], "steps": [{"kind": "script", "run": lines}]}
    if inner is not None:
        recipe["sources"] = [{"ck_entry_file": inner}]  # the importer names the file: a URL and its sha256
    return recipe, [f"-l{lib[3:]}"], ""


# -- programs ------------------------------------------------------------------------------------

def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


class _NotCarried(Exception):
    pass


def _translate_cmd(text: str, outputs: set[str], inputs: "set[str] | frozenset[str]" = frozenset()) -> list[str]:
    """``$#BIN_FILE#$ $#dataset_path#$$#dataset_filename#$ out.tmp -c`` → args with ckpm placeholders."""
    if len(text) > 4096:
        raise _NotCarried("longer than 4096 characters")
    if SHELL_CHARS.search(text):
        raise _NotCarried("uses the shell (pipes, redirections, several commands)")
    try:
        tokens = shlex.split(text)
    except ValueError as e:
        raise _NotCarried(f"cannot be split into arguments ({e})") from None
    if not tokens or tokens[0] != "$#BIN_FILE#$":
        raise _NotCarried("does not start with the program's binary ($#BIN_FILE#$)")
    args = []
    for tok in tokens[1:]:
        if PLACEHOLDER_RE.search(tok):
            raise _NotCarried(f"the argument {tok[:40]!r} looks like a ckpm placeholder")

        def sub(m: re.Match[str]) -> str:
            v = m.group(1)
            if v == "dataset_path":
                return "{input}/"
            if v == "dataset_filename":
                return DATASET_FILE
            n = re.fullmatch(r"dataset_filename_([0-9]{1,2})", v)
            if n and 0 < int(n.group(1)) < MAX_DATASET_FILES:
                return f"{DATASET_FILE}-{int(n.group(1))}"
            if v in ("src_path", "src_path_local"):
                return "{src}/src/"  # the entry's files are in src/ of the program's prefix
            if v == "BIN_FILE":
                return "{bin}"
            raise _NotCarried(f"the CK placeholder {m.group(0)} has no ckpm equivalent")

        tok = CK_VAR.sub(sub, tok)
        tok = tok.replace("{input}//", "{input}/").replace("{src}/src//", "{src}/src/")
        if tok in outputs and "/" not in tok:
            tok = "{out}/" + tok
        elif tok in inputs and "/" not in tok:
            tok = "{src}/src/" + tok  # CK copies run_input_files beside the program; ckpm names them
        if "\0" in tok or len(tok) > 4096:
            raise _NotCarried("a bad argument")
        args.append(tok)
    return args


def map_program(entry: CkEntry, link_flags: Callable[[list[str]], list[str] | None] | None = None) -> Mapped:
    """A CK program → a program component whose ``run`` table ``ckpm run`` compiles and runs.

    ``link_flags(tags)``: the ``-l`` flags of the package a library dependency's tags
    name (from the packages imported), None when no package is known."""
    name, tags, notes = _base(entry, "program")
    meta = entry.meta

    def skip(why: str) -> Mapped:
        return Mapped(entry, name, "program", skipped=why, not_carried=notes)

    lang_raw = str(meta.get("main_language") or ("cpp" if meta.get("compiler_env") == "CK_CXX" else "c")).lower()
    language = LANGS.get(lang_raw)
    if language is None:
        return skip(f"main language {lang_raw[:20]!r}: ckpm run compiles C and C++ programs")
    srcs = meta.get("source_files")
    if not isinstance(srcs, list) or not srcs or len(srcs) > 256:
        return skip("no source_files")
    for s in srcs:
        if not isinstance(s, str) or s not in entry.files or ".." in s.split("/") or s.startswith("/"):
            return skip(f"source file {str(s)[:80]!r} is not a file of the entry" + _why_missing(entry)
                        + (" (CK takes it from another entry or a placeholder)"
                           if isinstance(s, str) and "$#" in s else ""))
    if any(not s.endswith((".c", ".cc", ".cpp", ".cxx", ".C")) for s in srcs):
        language_files = [s for s in srcs if not s.endswith((".c", ".cc", ".cpp", ".cxx", ".C", ".h", ".hpp"))]
        if language_files:
            return skip(f"source files that are not C or C++: {', '.join(language_files[:4])}")
    if language == "c" and any(s.endswith((".cc", ".cpp", ".cxx", ".C")) for s in srcs):
        language = "c++"
    cflags: list[str] = ["-O3"]
    bcv = meta.get("build_compiler_vars")
    if isinstance(bcv, Mapping):
        for k, v in bcv.items():
            if not isinstance(k, str) or not C_NAME.fullmatch(k):
                notes.append(f"build_compiler_vars {str(k)[:40]!r}: not a macro name; left out")
                continue
            sv = "" if v is None else str(v)
            if sv == "":
                cflags.append(f"-D{k}")
            elif re.fullmatch(r"[A-Za-z0-9_.+-]{1,256}", sv) or re.fullmatch(r'"[A-Za-z0-9_.+ /-]{0,256}"', sv):
                cflags.append(f"-D{k}={sv}")
            else:
                notes.append(f"build_compiler_vars {k}={sv[:40]!r}: not a plain value; left out")
    for key in ("include_dirs",):
        for d in meta.get(key, []) if isinstance(meta.get(key), list) else []:
            if isinstance(d, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./+-]{0,255}", d) \
                    and ".." not in d.split("/"):
                cflags.append(f"-Isrc/{d}")
            else:
                notes.append(f"include_dirs {str(d)[:40]!r} left out")
    ldflags: list[str] = []
    ldv = meta.get("extra_ld_vars")
    if isinstance(ldv, str):
        for tok in ldv.split():
            if tok == "$<<CK_EXTRA_LIB_M>>$":
                ldflags.append("-lm")
            elif re.fullmatch(r"-l[A-Za-z0-9_+-]+|-pthread", tok):
                ldflags.append(tok)
            else:
                notes.append(f"extra_ld_vars {tok[:40]!r}: not carried over")
    for k in ("compiler_flags_as_env", "linker_add_lib_as_env", "compiler_add_include_as_env_from_deps"):
        if meta.get(k):
            notes.append(f"{k}: CK environment variables from its soft entries are not carried over")
    deps = deps_of(meta.get("compile_deps"), "compile_deps", notes)
    compiler_key = next((d["name"] for d in deps if "compiler" in d["tags"]), None)
    if compiler_key is None:
        deps.insert(0, {"name": "compiler", "tags": ["compiler", "lang-c" if language == "c" else "lang-cpp"],
                        "kind": "build"})
        compiler_key = "compiler"
    for d in deps:
        if d["name"] == compiler_key:
            continue
        flags = link_flags(d["tags"]) if link_flags is not None else None
        if flags is None:
            notes.append(f"compile dependency {d['name']} ({','.join(d['tags'])}): no imported package names its "
                         "library, so no -l flag is added")
        else:
            ldflags = [*flags, *[f for f in ldflags if f not in flags]]
    run_deps = deps_of(meta.get("run_deps"), "run_deps", notes)
    for d in run_deps:
        if d["name"] not in {x["name"] for x in deps}:
            d.pop("kind", None)
            deps.append(d)
    env: dict[str, str] = {}
    rv = meta.get("run_vars")
    if isinstance(rv, Mapping):
        for k, v in list(rv.items())[:128]:
            val: str | None = str(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else None
            if isinstance(k, str) and ENV_RE.fullmatch(k) and not reserved_env(k) and val is not None \
                    and len(val) <= 1024 \
                    and "$#" not in val and not PLACEHOLDER_RE.search(val) and "\0" not in val:
                env[k] = val
            else:
                notes.append(f"run_vars {str(k)[:40]}: reserved (the loader's, the shell's, ckpm's) "
                             "or not a plain variable; left out")
    rc = meta.get("run_cmds")
    if not isinstance(rc, Mapping) or not rc:
        return skip("no run_cmds")
    commands: dict[str, dict[str, Any]] = {}
    written: dict[str, list[str]] = {}
    timers: set[str | None] = set()
    dataset_tags: list[str] | None = None
    for cname, c in list(rc.items())[:MAX_CMDS]:
        cw = f"run_cmds.{str(cname)[:40]}"
        if not isinstance(cname, str) or not PROG_NAME_RE.fullmatch(cname) or not isinstance(c, Mapping):
            notes.append(f"{cw}: not a command name; left out")
            continue
        rt = c.get("run_time") if isinstance(c.get("run_time"), Mapping) else {}
        assert isinstance(rt, Mapping)
        main = rt.get("run_cmd_main")
        if not isinstance(main, str):
            notes.append(f"{cw}: no run_cmd_main (CK runs a script or a CK module); left out")
            continue
        outs = {o for k in ("run_output_files", "run_correctness_output_files") for o in _list(rt.get(k))
                if isinstance(o, str)}
        ins = {o for o in _list(rt.get("run_input_files")) if isinstance(o, str) and o in entry.files}
        try:
            args = _translate_cmd(main, outs, ins)
        except _NotCarried as e:
            notes.append(f"{cw}: {main[:80]!r} {e}; left out")
            continue
        unnamed = sorted(f for f in ins if "{src}/src/" + f not in args)
        if unnamed:
            notes.append(f"{cw}: run_input_files {', '.join(unnamed[:4])} are copied by CK beside the program; "
                         "ckpm does not copy them (the program finds them only when given their paths)")
        uses_input = any("{input}" in a for a in args)
        dt = tags_of(c.get("dataset_tags")) or tags_of(meta.get("dataset_tags"))  # per command, else the program's
        if uses_input and not dt:
            notes.append(f"{cw}: reads a data set but names no dataset_tags; left out")
            continue
        cenv: dict[str, str] = {}
        timer = rt.get("fine_grain_timer_file")
        if isinstance(timer, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", timer):
            cenv["XOPENME_TIME_FILE"] = "{out}/" + timer  # xopenme writes its timers there
        else:
            timer = None
        crv = rt.get("run_vars")
        if isinstance(crv, Mapping):
            for k, v in list(crv.items())[:128]:
                if isinstance(k, str) and ENV_RE.fullmatch(k) and not reserved_env(k) and \
                        isinstance(v, (str, int, float)) and \
                        not isinstance(v, bool) and "$#" not in str(v) and not PLACEHOLDER_RE.search(str(v)):
                    cenv[k] = str(v)
                else:
                    notes.append(f"{cw}.run_vars {str(k)[:40]}: reserved (the loader's, an interpreter's, the "
                                 "shell's, ckpm's) or not a plain variable; left out")
        if str(c.get("ignore_return_code", "no")).lower() == "yes":
            notes.append(f"{cw}: ignore_return_code: ckpm checks the exit status all the same")
        if rt.get("post_process_via_ck") or rt.get("post_process_cmds") or rt.get("pre_process_via_ck"):
            notes.append(f"{cw}: pre- and post-processing (code) is not run")
        if uses_input:
            if dataset_tags is None:
                dataset_tags = dt
            elif dt != dataset_tags:
                notes.append(f"{cw}: takes data sets tagged {','.join(dt)}; choose one with --input")
        commands[cname] = {"args": args, "env": cenv}
        timers.add(timer)
        written[cname] = [a[len("{out}/"):] for a in args if a.startswith("{out}/") and a[len("{out}/"):] in outs]
    if not commands:  # the table shows the reason: each command's own, not only the count
        why = "; ".join(n for n in notes if n.startswith("run_cmds.") and n.endswith("left out")) or "none found"
        return skip(f"no run command could be carried over ({why[:300]})")
    run: dict[str, Any] = {
        "sources": [f"src/{s}" for s in srcs if not s.endswith((".h", ".hpp"))],
        "language": language,
        "binary": re.sub(r"[^A-Za-z0-9_.-]", "-", entry.alias)[:64] or "a",
        "compiler": compiler_key,
        "cflags": cflags,
        "ldflags": ldflags,
        "command": next(iter(commands)),
        "flags": {"speed": ["-O3"], "size": ["-Os"], "debug": ["-O0", "-g"]},
        "env": env,
        "commands": commands,
        "timeout": 600,
    }
    # ckpm checks a program's outputs whatever the command: the files every command writes
    exists = [f for f in next(iter(written.values()), []) if all(f in w for w in written.values())]
    for cname, w in written.items():
        if any(f not in exists for f in w):
            notes.append(f"run_cmds.{cname}: its own output files ({', '.join(f for f in w if f not in exists)}) "
                         "are not checked (ckpm checks the outputs common to all commands)")
    timer = next(iter(timers)) if len(timers) == 1 else None
    if timer and "-DXOPENME" in cflags:
        # the program times its kernel with xopenme: the file is written, and its figure is a metric
        if timer not in exists:
            exists.append(timer)
        run["metrics"] = {"execution_time": {"json": "execution_time", "file": timer}}
    if exists:
        run["validate"] = {"exists": exists}
    if dataset_tags is not None:
        made = dep_key("ck-data-" + "-".join(dataset_tags))
        key = made[:64].rstrip("-._") if made else "ck-data"
        deps.append({"name": key, "tags": dataset_tags})
        run["input"] = key
    try:
        parse_program(run, name=name, where=f"CK {entry.where}")
    except ProgramError as e:
        return skip(f"its run description does not check: {e.message}")
    line = _line(entry, name, "program", tags if "program" in tags else ["program", *tags][:MAX_TAGS],
                 _description(entry, "a program"), deps=deps, targets=["linux-*", "macos-*"],
                 install=[{"targets": ["*"], "steps": [{"kind": "copy", "to": "src"}]}], run=run)
    return Mapped(entry, name, "program", line, None, notes)


MAPPERS: dict[str, Any] = {"dataset": map_dataset, "soft": map_soft, "package": map_package, "program": map_program}


def map_entries(entries: Iterable[CkEntry], link_flags: Callable[[list[str]], list[str] | None] | None = None
                ) -> list[Mapped]:
    out = []
    for e in entries:
        fn = MAPPERS.get(e.module)
        if fn is None:
            out.append(Mapped(e, component_name(e.module, e.alias), e.module,
                              skipped=f"CK module {e.module!r} has no ckpm counterpart"))
        elif e.module == "program":
            out.append(fn(e, link_flags))
        else:
            out.append(fn(e))
    return out
