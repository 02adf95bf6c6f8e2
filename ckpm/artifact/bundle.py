"""An artifact bundle: one file that holds a project as an evaluator needs it, verified member by member.

The bundle is an uncompressed POSIX tar (pax format) laid out as::

    ckpm-artifact.json            the manifest (first member): format, ckpm version, project,
                                  targets, host pins, experiments, and every other member's
                                  size, kind and sha256
    project/…                     the project's tracked files (``git ls-files`` in a git
                                  repository, else the folder less .ckpm/, VCS folders and
                                  caches), its ckpm.toml and ckpm.lock, and the experiment
                                  records of .ckpm/experiments/
    sources/<host>/<path>         every source the lock needs, as ``ckpm vendor`` lays it out:
                                  the folder is a mirror (``sync --mirror sources``)

Packing is deterministic: members sorted by name, every time :data:`MTIME`, owner 0:0 with
no names, modes 0644 or 0755 (symlinks 0777), no folders (unpacking makes them). The same
project gives the same bytes. The tar is not compressed: the data sets and source archives
in it are compressed already, a flipped byte is found in the member it hits (a compressed
stream would hide which), and the bytes depend on no compressor's version.

Everything read back is bounded (:data:`MAX_MEMBERS`, :data:`MAX_MEMBER_BYTES`,
:data:`MAX_TOTAL_BYTES`, :data:`MAX_MANIFEST_BYTES`) and checked: :func:`verify` streams the
tar and compares each member with the manifest; :func:`unpack_verified` extracts it with the
store's safe unpacker (ckpm/store/unpack.py: no member outside the folder, no device, no
write through a symlink, a budget of bytes and files) and then hashes what was written, so
what is used is what was verified. A mismatch is an :class:`ArtifactDamaged` naming the member.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterator, Sequence

from ckpm import __version__
from ckpm.errors import CkpmError, StaleLock
from ckpm.fsutil import sha256_file
from ckpm.model.lockfile import LOCKFILE, Lock
from ckpm.model.manifest import MANIFEST
from ckpm.model.source import HostSource
from ckpm.workspace import Workspace

FORMAT = 1
KIND = "ckpm-artifact"
MANIFEST_NAME = "ckpm-artifact.json"
PROJECT = "project"
SOURCES = "sources"
EXPERIMENTS = ".ckpm/experiments"
#: every member's modification time: 1980-01-01, as reproducible wheels use
MTIME = 315532800
MAX_MEMBERS = 100_000
MAX_MEMBER_BYTES = 4 << 30
MAX_TOTAL_BYTES = 8 << 30
MAX_MANIFEST_BYTES = 32 << 20
#: folders never packed from a project that is not a git repository (state, VCS, caches)
SKIP_DIRS = frozenset({".ckpm", ".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache",
                       ".ruff_cache", ".tox", ".nox", ".venv"})
SKIP_SUFFIXES = (".pyc", ".pyo")
CHUNK = 1 << 20


class ArtifactError(CkpmError):
    """A bundle that cannot be made or used (no lock, too large, not a bundle)."""

    code = "artifact"


class ArtifactDamaged(ArtifactError):
    """A bundle whose members are not what its manifest says: ``member`` names the first one."""

    code = "artifact-damaged"
    exit_code = 7

    def __init__(self, message: str, *, member: str | None = None, hint: str | None = None,
                 details: list[str] | None = None) -> None:
        super().__init__(message, hint=hint or "the bundle was damaged or changed after packing: "
                         "get it again from its source", details=details)
        self.member = member

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "member": self.member}


@dataclass(frozen=True)
class Member:
    """One member of a bundle: a file (``path`` on disk) or a symlink (``link``)."""

    name: str
    path: Path | None = None
    kind: str = "file"  # file | symlink
    executable: bool = False
    link: str = ""


@dataclass
class PackResult:
    """What :func:`pack` wrote."""

    path: Path
    size: int
    sha256: str
    manifest: dict[str, Any]
    skipped: list[str] = field(default_factory=list)  # files left out, and why

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {"path": str(self.path), "size": self.size, "sha256": self.sha256, "project": m["project"],
                "targets": m["targets"], "totals": m["totals"], "experiments": m["experiments"],
                "skipped": self.skipped}


# -- packing ------------------------------------------------------------------------------------

def pack(project: Workspace | Path, out: Path, *, settings: Any = None, targets: Sequence[str] | None = None,
         experiments: bool = True, check: bool = True) -> PackResult:
    """Write the bundle of ``project`` to ``out`` (atomically); see the module's note.

    The lock must hold (``api.check``; a StaleLock or HostDriftError otherwise). ``targets``
    names the targets the bundle is for (default: the lock's); ``experiments=False`` leaves
    the records out (what a remote worker gets). ``check=False`` is for a caller that has just
    checked the lock itself.
    """
    from ckpm import api, provision

    ws = project if isinstance(project, Workspace) else Workspace(Path(project), settings, search_up=False)
    out = Path(out).absolute()
    lock = ws.read_lock()
    if lock is None:
        raise StaleLock(f"{ws.root}: no {LOCKFILE}: an artifact is made from a locked project",
                        hint="run `ckpm lock` (or `ckpm run --record NAME`) first")
    if check:
        res = api.check(ws, targets=list(targets) if targets else None, lock=lock)
        res.raise_for_status(ws, locked=True)
    for t in targets or ():
        if t not in lock.targets:
            raise StaleLock(f"{LOCKFILE} has no resolution for {t} (it has {', '.join(lock.targets) or 'none'})",
                            hint=f"run `ckpm lock --target {t}` with the other targets you need")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ckpm-artifact-") as tmp:
        vendored = Path(tmp) / "sources"
        vendored.mkdir()
        provision.vendor(ws, lock, vendored)
        lock = ws.read_lock() or lock  # vendoring may pin a first-use sha256 into the lock
        skipped: list[str] = []
        members = _project_members(ws.root, out, skipped)
        members[f"{PROJECT}/{MANIFEST}"] = Member(f"{PROJECT}/{MANIFEST}", ws.manifest_path)
        members[f"{PROJECT}/{LOCKFILE}"] = Member(f"{PROJECT}/{LOCKFILE}", ws.lock_path)
        exps: dict[str, int] = {}
        if experiments:
            for m in _experiment_members(ws.root, skipped):
                members[m.name] = m
                name = m.name.split("/")[3]
                exps[name] = exps.get(name, 0) + 1
        for m in _tree_members(vendored, SOURCES, skipped, skip_dirs=frozenset()):
            members[m.name] = m
        ordered = [members[k] for k in sorted(members)]
        if len(ordered) > MAX_MEMBERS:
            raise ArtifactError(f"{ws.root}: {len(ordered)} files is more than a bundle holds ({MAX_MEMBERS})")
        entries = [_describe(m) for m in ordered]
        total = sum(e["size"] for e in entries)
        if total > MAX_TOTAL_BYTES:
            raise ArtifactError(f"{ws.root}: {total >> 20} MiB is more than a bundle holds ({MAX_TOTAL_BYTES >> 30} GiB)")
        manifest = {
            "format": FORMAT, "kind": KIND, "ckpm_version": __version__,
            "project": {"name": ws.manifest.name, "version": ws.manifest.version, "git": _git_head(ws.root)},
            "targets": sorted(targets) if targets else list(lock.targets),
            "lock_targets": list(lock.targets),
            "host_pins": host_pins(lock),
            "experiments": dict(sorted(exps.items())),
            "totals": {"members": len(entries), "bytes": total,
                       "project_files": sum(1 for e in entries if e["name"].startswith(PROJECT + "/")
                                            and not e["name"].startswith(f"{PROJECT}/{EXPERIMENTS}/")),
                       "sources": sum(1 for e in entries if e["name"].startswith(SOURCES + "/")),
                       "records": sum(exps.values())},
            "members": entries,
        }
        data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
        tmp_out = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with open(tmp_out, "wb") as f:
                _write_tar(f, data, ordered, entries)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_out, 0o666 & ~_umask())
            os.replace(tmp_out, out)
        finally:
            if tmp_out.exists():
                tmp_out.unlink()
    return PackResult(out, out.stat().st_size, sha256_file(out), manifest, skipped)


def pack_bytes(ws: Workspace, *, targets: Sequence[str] | None = None, experiments: bool = False,
               check: bool = True, limit: int = MAX_TOTAL_BYTES) -> bytes:
    """The bundle as bytes (for a remote worker), at most ``limit`` bytes."""
    with tempfile.TemporaryDirectory(prefix="ckpm-pack-") as tmp:
        res = pack(ws, Path(tmp) / "project.ckpm.tar", targets=targets, experiments=experiments, check=check)
        if res.size > limit:
            raise ArtifactError(f"{ws.root}: the project's bundle is {res.size >> 20} MiB, more than {limit >> 20} MiB",
                                hint="give the workers a shared store or mirror, or make the vendored sources smaller")
        return res.path.read_bytes()


def host_pins(lock: Lock) -> list[dict[str, Any]]:
    """The host software the lock pins: what the evaluator's machine must already have."""
    out = []
    for p in sorted(lock.packages, key=lambda p: p.ident):
        if isinstance(p.source, HostSource):
            out.append({"name": p.name, "version": p.version, "path": p.source.path or "",
                        "fact": p.source.fact or "", "targets": list(p.targets)})
    return out


def _umask() -> int:
    from ckpm.fsutil import current_umask

    return current_umask()


def _git_head(root: Path) -> str | None:
    repo = _git_repo(root)
    if repo is None or repo.head_is_unborn:
        return None
    try:
        return str(repo.head.target)
    except Exception:  # noqa: BLE001 - a detached or broken HEAD is only left out
        return None


def _git_repo(root: Path) -> Any:
    try:
        import pygit2

        found = pygit2.discover_repository(str(root))
        if not found:
            return None
        repo = pygit2.Repository(found)
        return repo if repo.workdir else None
    except Exception:  # noqa: BLE001 - not a readable repository: the folder is packed instead
        return None


def _project_members(root: Path, out: Path, skipped: list[str]) -> dict[str, Member]:
    """The tracked files (git), else the folder's files less state, VCS folders and caches."""
    root = root.resolve()
    repo = _git_repo(root)
    members: dict[str, Member] = {}
    if repo is not None:
        work = Path(repo.workdir).resolve()
        try:
            prefix = root.relative_to(work).as_posix()
        except ValueError:
            prefix = None
        if prefix is not None:
            prefix = "" if prefix == "." else prefix + "/"
            for entry in repo.index:
                path = str(entry.path)
                if not path.startswith(prefix):
                    continue
                rel = path[len(prefix):]
                if rel.split("/")[0] == ".ckpm":
                    continue
                m = _member_of(root / rel, f"{PROJECT}/{rel}", out, skipped)
                if m is not None:
                    members[m.name] = m
            if members:
                return members
    for m in _tree_members(root, PROJECT, skipped, skip_dirs=SKIP_DIRS, out=out):
        members[m.name] = m
    return members


def _experiment_members(root: Path, skipped: list[str]) -> Iterator[Member]:
    from ckpm.experiment.record import list_experiments

    base = root / EXPERIMENTS
    for name in list_experiments(root):
        for p in sorted((base / name).glob("*.json")):
            m = _member_of(p, f"{PROJECT}/{EXPERIMENTS}/{name}/{p.name}", None, skipped)
            if m is not None:
                yield m


def _tree_members(top: Path, prefix: str, skipped: list[str], *, skip_dirs: frozenset[str],
                  out: Path | None = None) -> Iterator[Member]:
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d in skip_dirs:
                continue
            if (here / d).is_symlink():
                filenames.append(d)  # a symlink to a folder: packed as a symlink
            else:
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if f.endswith(SKIP_SUFFIXES):
                continue
            p = here / f
            rel = p.relative_to(top).as_posix()
            m = _member_of(p, f"{prefix}/{rel}", out, skipped)
            if m is not None:
                yield m


def _member_of(path: Path, name: str, out: Path | None, skipped: list[str]) -> Member | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None  # tracked but deleted
    if out is not None and path.absolute() == out:
        return None
    if out is not None and path.name.startswith(f".{out.name}.") and path.name.endswith(".tmp"):
        return None
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        if os.path.isabs(target) or len(target) > 4096:
            skipped.append(f"{name}: a symlink to an absolute path ({target})")
            return None
        return Member(name, path, "symlink", link=target)
    if stat.S_ISREG(st.st_mode):
        if st.st_size > MAX_MEMBER_BYTES:
            raise ArtifactError(f"{path}: {st.st_size >> 20} MiB is more than a bundle member may be "
                                f"({MAX_MEMBER_BYTES >> 30} GiB)")
        if _is_bundle(path):
            skipped.append(f"{name}: an artifact bundle (never packed into another)")
            return None
        return Member(name, path, "file", executable=bool(st.st_mode & 0o111))
    if stat.S_ISDIR(st.st_mode):
        return None  # a submodule (a gitlink): its files are not this project's
    skipped.append(f"{name}: not a regular file")
    return None


def _is_bundle(path: Path) -> bool:
    """Does the file start as a bundle does (a tar whose first member is the manifest)?"""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return len(head) == 512 and head[:100].rstrip(b"\0") == MANIFEST_NAME.encode() and head[257:262] == b"ustar"


def _describe(m: Member) -> dict[str, Any]:
    if m.kind == "symlink":
        data = m.link.encode("utf-8", "surrogateescape")
        return {"name": m.name, "kind": "symlink", "link": m.link, "size": 0,
                "sha256": hashlib.sha256(data).hexdigest()}
    assert m.path is not None
    h = hashlib.sha256()
    size = 0
    with open(m.path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
    return {"name": m.name, "kind": "file", "size": size, "sha256": h.hexdigest(), "executable": m.executable}


def _info(name: str, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = MTIME
    ti.mode = mode
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def _write_tar(f: BinaryIO, manifest: bytes, members: list[Member], entries: list[dict[str, Any]]) -> None:
    with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
        tf.addfile(_info(MANIFEST_NAME, len(manifest)), io.BytesIO(manifest))
        first: dict[tuple[str, bool], str] = {}  # (sha256, executable) → the member that holds the bytes
        for m, e in zip(members, entries):
            same = first.get((e["sha256"], m.executable)) if m.kind == "file" and e["size"] else None
            if same is not None:  # the same bytes again (a vendored copy of a tracked file): a hard link
                ti = _info(m.name, 0, 0o755 if m.executable else 0o644)
                ti.type = tarfile.LNKTYPE
                ti.linkname = same
                tf.addfile(ti)
                continue
            if m.kind == "file" and e["size"]:
                first[(e["sha256"], m.executable)] = m.name
            if m.kind == "symlink":
                ti = _info(m.name, 0, 0o777)
                ti.type = tarfile.SYMTYPE
                ti.linkname = m.link
                tf.addfile(ti)
                continue
            assert m.path is not None
            with open(m.path, "rb") as src:
                reader = _HashingReader(src, e["size"])
                tf.addfile(_info(m.name, e["size"], 0o755 if m.executable else 0o644), reader)
                if reader.hexdigest() != e["sha256"]:
                    raise ArtifactError(f"{m.path} changed while it was packed", hint="pack again")


class _HashingReader(io.RawIOBase):
    """Reads exactly ``size`` bytes of a file, hashing them (a file that shrank is an error)."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.left = size
        self.h = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        if len(data) < n:
            raise ArtifactError(f"{getattr(self.f, 'name', 'a file')} changed while it was packed", hint="pack again")
        self.left -= len(data)
        self.h.update(data)
        return data

    def hexdigest(self) -> str:
        return self.h.hexdigest()


# -- reading ------------------------------------------------------------------------------------

def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """The manifest, checked: format, kind, and a list of well-formed members."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ArtifactDamaged(f"{where}: the manifest is larger than {MAX_MANIFEST_BYTES >> 20} MiB",
                              member=MANIFEST_NAME)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ArtifactDamaged(f"{where}: the manifest {MANIFEST_NAME} is not readable JSON ({type(e).__name__})",
                              member=MANIFEST_NAME) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ArtifactDamaged(f"{where}: not a ckpm artifact bundle (its manifest is not one)", member=MANIFEST_NAME)
    if doc.get("format") != FORMAT:
        raise ArtifactError(f"{where}: an artifact bundle of format {doc.get('format')!r}; this ckpm reads format {FORMAT}",
                            hint="use the ckpm version that made it: " + str(doc.get("ckpm_version")))
    members = doc.get("members")
    if not isinstance(members, list) or len(members) > MAX_MEMBERS:
        raise ArtifactDamaged(f"{where}: the manifest's member list is missing or too long", member=MANIFEST_NAME)
    seen: set[str] = set()
    for m in members:
        ok = (isinstance(m, dict) and isinstance(m.get("name"), str) and m.get("kind") in ("file", "symlink")
              and isinstance(m.get("sha256"), str) and len(m["sha256"]) == 64
              and isinstance(m.get("size"), int) and 0 <= m["size"] <= MAX_MEMBER_BYTES)
        if not ok or m["name"] in seen or not _safe_name(m["name"]):
            raise ArtifactDamaged(f"{where}: the manifest lists a member it cannot describe: {str(m)[:120]}",
                                  member=MANIFEST_NAME)
        seen.add(m["name"])
    for key in ("project", "targets", "host_pins", "experiments", "totals"):
        if key not in doc:
            raise ArtifactDamaged(f"{where}: the manifest has no {key}", member=MANIFEST_NAME)
    return doc


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return (bool(name) and len(name) <= 4096 and not p.is_absolute() and ".." not in p.parts and "\\" not in name
            and p.parts[0] in (PROJECT, SOURCES) and "\x00" not in name)


def _compare(doc: dict[str, Any], found: dict[str, dict[str, Any]], where: str) -> None:
    """Every member the manifest lists is there with its size and sha256, and nothing else is."""
    problems: list[tuple[str, str]] = []
    listed = {e["name"]: e for e in doc["members"]}
    for name, e in listed.items():
        got = found.get(name)
        if got is None:
            problems.append((name, "is missing"))
        elif got["kind"] != e["kind"]:
            problems.append((name, f"is a {got['kind']}, the manifest says a {e['kind']}"))
        elif got["sha256"] != e["sha256"] or got["size"] != e["size"]:
            problems.append((name, f"has sha256 {got['sha256'][:16]}… ({got['size']} bytes), the manifest says "
                                   f"{e['sha256'][:16]}… ({e['size']} bytes)"))
    for name in sorted(set(found) - set(listed)):
        problems.append((name, "is not in the manifest"))
    if problems:
        first, why = problems[0]
        more = [f"{n} {w}" for n, w in problems[1:11]]
        raise ArtifactDamaged(f"{where}: member {first} {why}", member=first, details=more)


def _entry_of(kind: str, data_iter: Iterator[bytes] | None, link: str = "") -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    if kind == "symlink":
        h.update(link.encode("utf-8", "surrogateescape"))
    else:
        assert data_iter is not None
        for chunk in data_iter:
            h.update(chunk)
            size += len(chunk)
    return {"kind": kind, "sha256": h.hexdigest(), "size": size}


def verify(bundle: Path) -> dict[str, Any]:
    """Read the bundle through once; every member checked against the manifest (ArtifactDamaged
    names the first that differs). Returns the manifest. Nothing is written."""
    bundle = Path(bundle)
    where = str(bundle)
    found: dict[str, dict[str, Any]] = {}
    doc: dict[str, Any] | None = None
    last: str | None = None
    try:
        with tarfile.open(bundle, mode="r:", encoding="utf-8") as tf:
            for i, info in enumerate(tf):
                if i > MAX_MEMBERS + 1:
                    raise ArtifactDamaged(f"{where}: more than {MAX_MEMBERS} members", member=info.name)
                if i == 0:
                    if info.name != MANIFEST_NAME or not info.isreg():
                        raise ArtifactDamaged(f"{where}: the first member is not the manifest {MANIFEST_NAME}",
                                              member=info.name)
                    fh = tf.extractfile(info)
                    assert fh is not None
                    doc = parse_manifest(fh.read(MAX_MANIFEST_BYTES + 1), where)
                    last = info.name
                    continue
                if info.name in found or not _safe_name(info.name):
                    raise ArtifactDamaged(f"{where}: member {info.name!r} is unsafe or appears twice", member=info.name)
                if info.issym():
                    found[info.name] = _entry_of("symlink", None, info.linkname)
                elif info.islnk():
                    target = found.get(info.linkname)
                    if target is None or target["kind"] != "file":
                        raise ArtifactDamaged(f"{where}: member {info.name} links to {info.linkname!r}, "
                                              "not an earlier file", member=info.name)
                    found[info.name] = dict(target)
                elif info.isreg():
                    if info.size > MAX_MEMBER_BYTES:
                        raise ArtifactDamaged(f"{where}: member {info.name} is larger than {MAX_MEMBER_BYTES >> 30} GiB",
                                              member=info.name)
                    fh = tf.extractfile(info)
                    assert fh is not None
                    found[info.name] = _entry_of("file", iter(lambda: fh.read(CHUNK), b""))
                else:
                    raise ArtifactDamaged(f"{where}: member {info.name} is neither a file nor a symlink",
                                          member=info.name)
                last = info.name
    except (tarfile.TarError, EOFError) as e:
        after = f" after member {last}" if last else ""
        raise ArtifactDamaged(f"{where}: not a readable tar{after} ({e})", member=last) from None
    except OSError as e:
        raise ArtifactError(f"cannot read {where}: {e.strerror or e}") from None
    if doc is None:
        raise ArtifactDamaged(f"{where}: empty, or not a ckpm artifact bundle", member=None)
    _compare(doc, found, where)
    return doc


def read_manifest(bundle: Path) -> dict[str, Any]:
    """The manifest alone (the first member), checked as data; the members are not hashed."""
    where = str(bundle)
    try:
        with tarfile.open(bundle, mode="r:", encoding="utf-8") as tf:
            info = tf.next()
            if info is None or info.name != MANIFEST_NAME or not info.isreg():
                raise ArtifactDamaged(f"{where}: not a ckpm artifact bundle (no manifest first)", member=None)
            fh = tf.extractfile(info)
            assert fh is not None
            return parse_manifest(fh.read(MAX_MANIFEST_BYTES + 1), where)
    except tarfile.TarError as e:
        raise ArtifactDamaged(f"{where}: not a readable tar ({e})", member=None) from None
    except OSError as e:
        raise ArtifactError(f"cannot read {where}: {e.strerror or e}") from None


def read_member(bundle: Path, name: str, limit: int = 64 << 20) -> bytes | None:
    """One member's bytes (at most ``limit``), or None when the bundle has none of that name."""
    try:
        with tarfile.open(bundle, mode="r:", encoding="utf-8") as tf:
            for info in tf:
                if info.name == name and info.isreg():
                    fh = tf.extractfile(info)
                    assert fh is not None
                    return fh.read(limit)
    except (tarfile.TarError, OSError) as e:
        raise ArtifactDamaged(f"{bundle}: not a readable tar ({e})", member=name) from None
    return None


@dataclass
class Unpacked:
    """A verified bundle on disk: ``project`` (the project folder), ``sources`` (the mirror)."""

    root: Path
    manifest: dict[str, Any]

    @property
    def project(self) -> Path:
        return self.root / PROJECT

    @property
    def sources(self) -> Path:
        return self.root / SOURCES


def unpack_verified(bundle: Path, dest: Path) -> Unpacked:
    """Extract ``bundle`` into ``dest`` (absent or empty) with the safe unpacker, then check
    every file written against the manifest. ArtifactDamaged names the first member that differs
    (``dest`` is removed again then)."""
    import shutil

    from ckpm.errors import UnpackError
    from ckpm.store.unpack import UnpackBudget, unpack

    bundle, dest = Path(bundle), Path(dest)
    budget = UnpackBudget(max_bytes=MAX_TOTAL_BYTES + MAX_MANIFEST_BYTES, max_files=MAX_MEMBERS + 1)
    try:
        unpack(bundle, dest, budget=budget, strip=0)
    except UnpackError as e:
        raise ArtifactDamaged(e.message, member=None) from None
    try:
        mpath = dest / MANIFEST_NAME
        if not mpath.is_file() or mpath.is_symlink():
            raise ArtifactDamaged(f"{bundle}: not a ckpm artifact bundle (no {MANIFEST_NAME})", member=MANIFEST_NAME)
        with open(mpath, "rb") as f:
            doc = parse_manifest(f.read(MAX_MANIFEST_BYTES + 1), str(bundle))
        found: dict[str, dict[str, Any]] = {}
        for top in (PROJECT, SOURCES):
            base = dest / top
            if not base.exists():
                continue
            for dirpath, dirnames, filenames in os.walk(base):
                here = Path(dirpath)
                for d in list(dirnames):
                    if (here / d).is_symlink():
                        filenames.append(d)
                        dirnames.remove(d)
                for fname in filenames:
                    p = here / fname
                    name = p.relative_to(dest).as_posix()
                    if p.is_symlink():
                        found[name] = _entry_of("symlink", None, os.readlink(p))
                    else:
                        with open(p, "rb") as fh:
                            found[name] = _entry_of("file", iter(lambda: fh.read(CHUNK), b""))
        extra = sorted(p.name for p in dest.iterdir() if p.name not in (PROJECT, SOURCES, MANIFEST_NAME))
        if extra:
            raise ArtifactDamaged(f"{bundle}: member {extra[0]} is not in the manifest", member=extra[0])
        _compare(doc, found, str(bundle))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return Unpacked(dest, doc)
