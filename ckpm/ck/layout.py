"""Reading a Collective Knowledge (CK) repository as CK v1/v2 write it — as data only.

Layout::

    .ckr.json                          the repository's description (data_uoa, data_uid, dict.url)
    <module>/.cm/alias-a-<alias>       the entry's UID (one line)
    <module>/.cm/alias-u-<uid>         the entry's alias (one line)
    <module>/<alias>/.cm/meta.json     the entry's metadata (tags, deps, run_cmds, …)
    <module>/<alias>/.cm/info.json     provenance (backup_data_uid, data_name, control)
    <module>/<alias>/.cm/desc.json     a description of the metadata's keys (not needed here)
    <module>/<alias>/…                 the entry's own files (sources, data, scripts)

Nothing here runs anything: ``customize.py`` and any other Python or shell in an entry is
code, and only listed (so that the report can say what was not carried over). Everything
is bounded: sizes of the JSON files, nesting depth, number of modules, entries and files;
names are validated, links and special files are skipped, nothing outside the root is read.
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ckpm.model.entry import json_too_deep

MAX_META_BYTES = 1 << 20          #: meta.json, info.json, desc.json, .ckr.json
MAX_ALIAS_FILE = 1024             #: alias-a-*/alias-u-* files
MAX_MODULES = 1000
MAX_ENTRIES_PER_MODULE = 20_000
MAX_FILES_PER_ENTRY = 10_000
MAX_ENTRY_BYTES = 512 << 20       #: the files of one entry, in all
MAX_DEPTH = 32                    #: JSON nesting, folder nesting of an entry's files

NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")
UID_RE = re.compile(r"[0-9a-f]{16}")
CODE_SUFFIXES = (".py", ".sh", ".bat", ".pl", ".rb", ".ps1")


@dataclass
class CkEntry:
    """One entry: its module, alias, UID, metadata and files (paths relative to its folder)."""

    module: str
    alias: str
    uid: str | None
    path: Path
    meta: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    size: int = 0
    problems: list[str] = field(default_factory=list)   # files skipped while listing

    @property
    def where(self) -> str:
        return f"{self.module}/{self.alias}"

    @property
    def code_files(self) -> list[str]:
        """Files that are code (scripts, hooks): never run, reported as not carried over."""
        return [f for f in self.files if f.endswith(CODE_SUFFIXES)]


@dataclass
class Skipped:
    """An entry (or a module) that could not be read, and why."""

    where: str
    reason: str
    module: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"entry": self.where, "module": self.module, "reason": self.reason}


@dataclass
class CkRepo:
    root: Path
    alias: str | None
    uid: str | None
    url: str | None
    entries: list[CkEntry]
    skipped: list[Skipped]


def read_json(path: Path, limit: int = MAX_META_BYTES) -> Any:
    """A bounded JSON file (ValueError naming the problem)."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path.name} is not a regular file")
    if st.st_size > limit:
        raise ValueError(f"{path.name} has {st.st_size:,} bytes, over the cap of {limit:,}")
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not UTF-8") from None
    if json_too_deep(text, MAX_DEPTH):
        raise ValueError(f"{path.name} is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except ValueError as e:
        where = f"line {getattr(e, 'lineno', '?')}: {getattr(e, 'msg', e)}"
        raise ValueError(f"{path.name} is not JSON ({where})") from None


def _small_text(path: Path) -> str | None:
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ALIAS_FILE:
            return None
        return path.read_text("utf-8", errors="replace").strip().splitlines()[0].strip() if st.st_size else ""
    except (OSError, IndexError):
        return None


def _is_dir(p: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(p).st_mode)
    except OSError:
        return False


def list_files(folder: Path) -> tuple[list[str], int, list[str]]:
    """The regular files of an entry (``.cm`` left out), sorted: (paths, bytes, problems).
    Links, special files, names with odd characters and anything past the caps are skipped."""
    files: list[str] = []
    total = 0
    problems: list[str] = []
    stack: list[tuple[Path, PurePosixPath, int]] = [(folder, PurePosixPath(), 0)]
    while stack:
        d, rel, depth = stack.pop()
        try:
            names = sorted(os.listdir(d))
        except OSError as e:
            problems.append(f"{rel or '.'}: cannot list ({e.strerror or e})")
            continue
        for n in names:
            if rel == PurePosixPath() and n in (".cm", ".git"):
                continue
            p = d / n
            r = rel / n
            if n in (".", "..") or "\\" in n or any(ord(c) < 32 for c in n):
                problems.append(f"{r}: an odd file name; skipped")
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                problems.append(f"{r}: a symbolic link; skipped")
            elif stat.S_ISDIR(st.st_mode):
                if depth + 1 >= MAX_DEPTH:
                    problems.append(f"{r}: nested too deep; skipped")
                else:
                    stack.append((p, r, depth + 1))
            elif stat.S_ISREG(st.st_mode):
                if len(files) >= MAX_FILES_PER_ENTRY or total + st.st_size > MAX_ENTRY_BYTES:
                    problems.append(f"{r}: over the cap of {MAX_FILES_PER_ENTRY:,} files or "
                                    f"{MAX_ENTRY_BYTES >> 20} MiB per entry; skipped")
                    continue
                files.append(str(r))
                total += st.st_size
            else:
                problems.append(f"{r}: not a regular file; skipped")
    return sorted(files), total, problems


def read_repo(root: Path, *, modules: tuple[str, ...] | None = None) -> CkRepo:
    """Every entry of the CK repository at ``root`` (a folder). Bad entries go to ``skipped``."""
    root = Path(root)
    alias = uid = url = None
    skipped: list[Skipped] = []
    ckr = root / ".ckr.json"
    if ckr.exists():
        try:
            d = read_json(ckr)
            if isinstance(d, dict):
                a, u = d.get("data_alias") or d.get("data_uoa"), d.get("data_uid")
                alias = a if isinstance(a, str) and NAME_RE.fullmatch(a) else None
                uid = u if isinstance(u, str) and UID_RE.fullmatch(u) else None
                dd = d.get("dict")
                if isinstance(dd, dict) and isinstance(dd.get("url"), str) and len(dd["url"]) <= 2048:
                    url = dd["url"]
        except (OSError, ValueError) as e:
            skipped.append(Skipped(".ckr.json", str(e)))
    entries: list[CkEntry] = []
    try:
        top = sorted(os.listdir(root))
    except OSError as e:
        raise ValueError(f"{root}: cannot list the repository ({e.strerror or e})") from None
    count = 0
    for mod in top:
        if mod.startswith(".") or not _is_dir(root / mod) or (modules is not None and mod not in modules):
            continue
        if not NAME_RE.fullmatch(mod):
            skipped.append(Skipped(mod, "not a module name", mod))
            continue
        mdir = root / mod
        try:
            names = sorted(os.listdir(mdir))
        except OSError as e:
            skipped.append(Skipped(mod, f"cannot list ({e.strerror or e})", mod))
            continue
        if not any(_is_dir(mdir / n / ".cm") for n in names[:200]) and not _is_dir(mdir / ".cm"):
            continue  # a folder of the repository that is not a CK module (docs, scripts)
        count += 1
        if count > MAX_MODULES:
            skipped.append(Skipped(mod, f"over the cap of {MAX_MODULES} modules", mod))
            continue
        aliases: dict[str, str] = {}
        if _is_dir(mdir / ".cm"):
            for n in sorted(os.listdir(mdir / ".cm"))[:4 * MAX_ENTRIES_PER_MODULE]:
                if n.startswith("alias-a-"):
                    u = _small_text(mdir / ".cm" / n)
                    if u is not None and UID_RE.fullmatch(u):
                        aliases[n[len("alias-a-"):]] = u
        n_entries = 0
        for n in names:
            if n == ".cm" or not _is_dir(mdir / n):
                continue
            where = f"{mod}/{n}"
            if not _is_dir(mdir / n / ".cm"):
                skipped.append(Skipped(where, "no .cm folder: not a CK entry", mod))
                continue
            n_entries += 1
            if n_entries > MAX_ENTRIES_PER_MODULE:
                skipped.append(Skipped(where, f"over the cap of {MAX_ENTRIES_PER_MODULE:,} entries per module", mod))
                continue
            if not NAME_RE.fullmatch(n):
                skipped.append(Skipped(where, "the alias is not a name (letters, digits, _ . + -)", mod))
                continue
            try:
                meta = read_json(mdir / n / ".cm" / "meta.json")
            except FileNotFoundError:
                skipped.append(Skipped(where, ".cm/meta.json is missing", mod))
                continue
            except (OSError, ValueError) as e:
                skipped.append(Skipped(where, f".cm/{e}", mod))
                continue
            if not isinstance(meta, dict):
                skipped.append(Skipped(where, ".cm/meta.json is not a JSON object", mod))
                continue
            info: dict[str, Any] = {}
            if (mdir / n / ".cm" / "info.json").exists():
                try:
                    i = read_json(mdir / n / ".cm" / "info.json")
                    info = i if isinstance(i, dict) else {}
                except (OSError, ValueError):
                    info = {}
            # an entry without an alias lives in a folder named by its UID (alias-u-<uid> names no alias)
            u = aliases.get(n) or info.get("backup_data_uid") or meta.get("backup_data_uid") \
                or (n if UID_RE.fullmatch(n) else None)
            files, size, problems = list_files(mdir / n)
            entries.append(CkEntry(mod, n, u if isinstance(u, str) and UID_RE.fullmatch(u) else None,
                                   mdir / n, meta, info, files, size, problems))
    return CkRepo(root, alias, uid, url, entries, skipped)
