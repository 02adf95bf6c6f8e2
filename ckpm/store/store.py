"""The store: one folder (a prefix) per built package, named by what went into it.

Layout under the store's root::

    prefixes/<key>/                   a prefix; complete when it holds .ckpm-prefix.json
    prefixes/<key>/.ckpm-prefix.json  the marker, written last (meta, the build's result, key, time)
    tmp/<key>-<16 hex>/               a staging folder while <key> is being built: destdir/ (the
                                      DESTDIR) and the build's work folders (sources, build tree)
    locks/<key>.lock                  held while <key> is built or removed
    roots/<sha256 of a project>.json  the prefixes a project's lock uses (for gc)

A key (:func:`prefix_key`) hashes the name, version, target, recipe and the keys of the
dependencies, so a prefix never changes once complete: a different input is a different key.

:meth:`Store.install` builds under the key's lock into a staging root, renames the staged
prefix onto its final path (same file system: atomic) and writes the marker last. A process
killed half-way leaves a staging folder or a prefix without a marker; the next install (which
holds the lock, so nobody else is building that key) removes them and starts again, and
:meth:`Store.gc` removes every staging folder whose key's lock is free (its owner is gone).
Everything of one build lives in its staging folder, so nothing else is left behind.

:meth:`Store.complete` is the one definition of "this prefix is usable": the marker exists,
is small, is a JSON object and names the key.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timezone
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Iterator, Mapping

from ckpm.settings import STORE_ENV, default_store_dir  # noqa: F401  (re-exported)
from ckpm.errors import StoreError
from ckpm.fsutil import LockTimeout, atomic_write, file_lock, remove_tree, walk_tree
from ckpm.report import Reporter, escape_control

MARKER = ".ckpm-prefix.json"
MARKER_FORMAT = 1
MAX_MARKER_BYTES = 1 << 20
MAX_ROOT_BYTES = 16 << 20
MAX_KEY = 200
HASH_LEN = 20
_KEY = re.compile(r"[A-Za-z0-9._+-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_STAGING = re.compile(r"(?P<key>.+)-[0-9a-f]{16}")
#: seconds after which gc takes a legacy ``tmp/build-*`` folder (of ckpm before the staging layout) for dead
LEGACY_WORK_AGE = 3600


# -- keys ----------------------------------------------------------------------------------------

def _safe(part: str, limit: int = 64) -> str:
    """``part`` spelled with [A-Za-z0-9._+-] only, no ``..``, no leading dot, at most ``limit`` characters."""
    out = _UNSAFE.sub("_", part)
    out = re.sub(r"\.{2,}", "_", out).lstrip(".")[:limit]
    return out or "_"


def _jsonable(value: Any) -> Any:
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, (datetime, date, dtime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=lambda v: json.dumps(v, sort_keys=True, default=_jsonable))
    raise TypeError(f"a {type(value).__name__} has no canonical JSON form")


def prefix_key(name: str, version: str, target: str, recipe: Mapping[str, Any], deps: Mapping[str, str]) -> str:
    """``<name>-<version>-<target>-<hash>``: the hash (first 20 hex of sha256) covers all the inputs.

    ``deps`` maps each dependency's name to its own prefix key, so a rebuilt dependency
    gives a new key to everything above it. The JSON is canonical (sorted keys, no spaces,
    ASCII), so the key is the same on every machine and Python version.
    """
    payload = {"name": name, "version": version, "target": target, "recipe": dict(recipe),
               "deps": {str(k): str(v) for k, v in deps.items()}}
    try:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                               allow_nan=False, default=_jsonable)
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot make a store key for {escape_control(name)} {escape_control(version)}: "
                         f"its recipe is not plain data ({e})") from None
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:HASH_LEN]
    return f"{_safe(name)}-{_safe(version, 40)}-{_safe(target, 40)}-{digest}"


def check_key(key: str) -> str:
    """``key`` when it can name a folder of the store; a StoreError otherwise."""
    if (not isinstance(key, str) or not _KEY.fullmatch(key) or ".." in key or key.startswith(".")
            or len(key) > MAX_KEY):
        raise StoreError(f"not a valid store key: {escape_control(repr(key))}",
                         hint=f"a key is made of A-Z a-z 0-9 . _ + - (no '..', no leading dot), "
                              f"at most {MAX_KEY} characters")
    return key


# -- entries ---------------------------------------------------------------------------------------

@dataclass
class StoreEntry:
    """A complete prefix, as its marker describes it."""

    key: str
    path: Path
    name: str
    version: str
    target: str
    meta: dict[str, Any] = field(default_factory=dict)
    size: int | None = None  # bytes of its files, counted when it was installed


def _tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (symlinks not followed, a hard-linked file counted once)."""
    total, seen = 0, set()
    for folder, dirs, files in walk_tree(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(folder, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def _stray_files(staging: Path, limit: int = 3) -> list[str]:
    """Up to ``limit`` non-folders left in a staging root once its prefix was moved out (paths relative to it)."""
    out: list[str] = []
    for folder, dirs, files in walk_tree(staging):
        for name in sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(folder, d))):
            out.append("/" + os.path.relpath(os.path.join(folder, name), staging))
            if len(out) >= limit:
                return out
    return out


def _remove(path: Path) -> None:
    """Remove a file, a symlink or a folder tree at ``path`` (never following a symlink); absent is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        try:
            remove_tree(path)  # iterative, and makes a read-only folder a build left writable
        except OSError:
            pass
        if os.path.lexists(path):
            raise StoreError(f"cannot remove {escape_control(str(path))} from the store")
    else:
        os.unlink(path)


class Store:
    """The prefixes under ``root``, built once per key and shared by every project of this user."""

    def __init__(self, root: Path, reporter: Reporter | None = None) -> None:
        self.root = Path(root).expanduser().absolute()
        self.reporter = reporter if reporter is not None else Reporter()

    # -- paths

    @property
    def prefixes(self) -> Path:
        return self.root / "prefixes"

    def path(self, key: str) -> Path:
        """The final path of prefix ``key`` (which need not exist)."""
        return self.prefixes / check_key(key)

    def _lock_path(self, key: str) -> Path:
        return self.root / "locks" / f"{key}.lock"

    @contextlib.contextmanager
    def _lock(self, key: str, *, wait: bool = True) -> Iterator[None]:
        """Hold ``key``'s lock (saying once that we wait); ``wait=False``: LockTimeout when it is taken."""
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self._lock_path(key), what=f"building {key}",
                                              timeout=None if wait else 0,
                                              on_wait=self.reporter.note if wait else None))
            except LockTimeout:
                raise
            except OSError as e:
                raise StoreError(f"cannot lock {key} in the store at {escape_control(str(self.root))}: "
                                 f"{e.strerror or e}") from None
            yield

    # -- reading

    def complete(self, key: str) -> StoreEntry | None:
        """The entry for ``key`` when its prefix is complete (its marker is there and valid), else None."""
        prefix = self.path(key)
        marker = prefix / MARKER
        try:
            fd = os.open(marker, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            self.reporter.warning(f"store prefix {key}: cannot read its marker ({e.strerror or e}); it is "
                                  "treated as incomplete")
            return None
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_MARKER_BYTES + 1)
        why = self._invalid_marker(key, prefix, data)
        if isinstance(why, str):
            self.reporter.warning(f"store prefix {key}: {why}; it is treated as incomplete and will be rebuilt")
            return None
        return why

    def _invalid_marker(self, key: str, prefix: Path, data: bytes) -> StoreEntry | str:
        """The entry a marker describes, or why it is not a valid marker for ``key``."""
        if len(data) > MAX_MARKER_BYTES:
            return f"its marker is larger than {MAX_MARKER_BYTES} bytes"
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return "its marker is not valid JSON"
        if not isinstance(doc, dict):
            return "its marker is not a JSON object"
        if doc.get("key") != key:
            return f"its marker names another key ({escape_control(repr(doc.get('key')))[:100]})"
        if doc.get("format") != MARKER_FORMAT:
            return f"its marker has an unknown format ({escape_control(repr(doc.get('format')))[:40]})"
        name, version, target = doc.get("name"), doc.get("version"), doc.get("target")
        if not (isinstance(name, str) and isinstance(version, str) and isinstance(target, str)
                and isinstance(doc.get("meta"), dict)):
            return "its marker lacks name, version, target or meta"
        size = doc.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            return "its marker has an invalid size"
        try:
            if not stat.S_ISDIR(os.lstat(prefix).st_mode):
                return "it is not a folder"
        except OSError:
            return "it cannot be read"
        return StoreEntry(key=key, path=prefix, name=name, version=version, target=target, meta=doc["meta"],
                          size=size)

    def entries(self) -> list[StoreEntry]:
        """Every complete prefix, by key."""
        out = []
        for key in self._keys(self.prefixes):
            entry = self.complete(key)
            if entry is not None:
                out.append(entry)
        return out

    @staticmethod
    def _keys(folder: Path) -> list[str]:
        try:
            names = sorted(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [n for n in names if _KEY.fullmatch(n) and ".." not in n and not n.startswith(".") and len(n) <= MAX_KEY]

    # -- building

    def install(self, key: str, build: Callable[[Path, Path], dict[str, Any] | None], *,
                meta: Mapping[str, Any]) -> StoreEntry:
        """The complete prefix ``key``, built now by ``build(destdir, prefix)`` unless it is already there.

        ``prefix`` is the final path (configure software with it); the build installs into
        ``destdir / prefix.relative_to(prefix.anchor)``, as ``make install DESTDIR=destdir``
        does (a build that installs straight into ``prefix`` is accepted too). Holds the key's
        lock throughout, so two processes build a key once: the second waits, then reuses.
        A build that raises leaves nothing behind and its exception propagates. ``destdir``
        lies in the build's staging folder; ``destdir.parent`` is the place for the build's
        other work folders, removed with it.
        """
        import secrets

        check_key(key)
        with self._lock(key):
            entry = self.complete(key)
            if entry is not None:
                for name in self._staging_names(key):  # a killed build's, while another finished it
                    with contextlib.suppress(OSError, StoreError):
                        _remove(self.root / "tmp" / name)
                return entry
            prefix = self.path(key)
            try:
                self._clear(key)
                staging = self.root / "tmp" / f"{key}-{secrets.token_hex(8)}"
                destdir = staging / "destdir"
                destdir.mkdir(parents=True)
                self.prefixes.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot prepare {key} in the store at {escape_control(str(self.root))}: "
                                 f"{e.strerror or e}") from None
            try:
                result = build(destdir, prefix)
                return self._commit(key, destdir, prefix, meta, result)
            except BaseException:
                with contextlib.suppress(OSError, StoreError):
                    _remove(prefix)
                raise
            finally:
                with contextlib.suppress(OSError, StoreError):
                    _remove(staging)

    def _clear(self, key: str) -> None:
        """Remove what a dead build of ``key`` left (an unmarked prefix, staging roots); the lock is held."""
        _remove(self.path(key))
        for name in self._staging_names(key):
            _remove(self.root / "tmp" / name)

    def _staging_names(self, key: str | None = None) -> list[str]:
        try:
            names = os.listdir(self.root / "tmp")
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for n in names:
            m = _STAGING.fullmatch(n)
            if m and (key is None or m.group("key") == key):
                out.append(n)
        return sorted(out)

    def _commit(self, key: str, staging: Path, prefix: Path, meta: Mapping[str, Any],
                result: Mapping[str, Any] | None) -> StoreEntry:
        """Move the staged prefix into place and write its marker (last)."""
        if result is not None and not isinstance(result, Mapping):
            raise StoreError(f"the build of {key} returned a {type(result).__name__}, not a mapping or None")
        merged = {**dict(meta), **dict(result or {})}
        staged = staging / prefix.relative_to(prefix.anchor)
        if os.path.isdir(staged) and not os.path.islink(staged):
            if os.path.lexists(prefix):
                raise StoreError(f"the build of {key} installed both into DESTDIR and into the prefix itself")
            try:
                os.rename(staged, prefix)
            except OSError as e:
                raise StoreError(f"cannot move the built {key} into place: {e.strerror or e}") from None
        elif not os.path.isdir(prefix) or os.path.islink(prefix):
            raise StoreError(f"the build of {key} installed nothing into {escape_control(str(staged))}",
                             hint="install with DESTDIR set to the staging root (make install DESTDIR=…)")
        stray = _stray_files(staging)
        if stray:
            self.reporter.warning(f"the build of {key} installed files outside its prefix, which were dropped: "
                                  + ", ".join(escape_control(s) for s in stray))
        doc = {"format": MARKER_FORMAT, "key": key, "name": str(meta.get("name", "")),
               "version": str(meta.get("version", "")), "target": str(meta.get("target", "")),
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "size": _tree_size(prefix), "meta": merged}
        try:
            text = json.dumps(doc, indent=1, sort_keys=True, allow_nan=False, default=_jsonable) + "\n"
        except (TypeError, ValueError) as e:
            raise StoreError(f"cannot record the prefix {key}: its meta or the build's result is not plain data "
                             f"({e})") from None
        if len(text.encode("utf-8", "surrogatepass")) > MAX_MARKER_BYTES:
            raise StoreError(f"cannot record the prefix {key}: its meta takes more than {MAX_MARKER_BYTES} bytes")
        atomic_write(prefix / MARKER, text.encode("utf-8", "surrogateescape"), mode=0o644)
        entry = self.complete(key)
        if entry is None:  # pragma: no cover - the marker was just written
            raise StoreError(f"the prefix {key} was written but its marker cannot be read back")
        return entry

    # -- roots and gc

    def register_root(self, project: Path, keys: Iterable[str]) -> None:
        """Record that ``project``'s lock uses the prefixes ``keys`` (gc keeps them while its ckpm.lock exists)."""
        where = str(Path(project).resolve())
        keys = sorted({check_key(k) for k in keys})
        name = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()
        text = json.dumps({"project": where, "keys": keys}, indent=1, ensure_ascii=True) + "\n"
        path = self.root / "roots" / f"{name}.json"
        try:
            if path.read_text(encoding="utf-8") == text:
                return  # a warm sync: nothing changed, nothing written
        except (OSError, UnicodeDecodeError):
            pass
        try:
            atomic_write(path, text)
        except OSError as e:
            raise StoreError(f"cannot register {escape_control(where)} in the store: {e.strerror or e}") from None

    def _roots(self) -> Iterator[tuple[Path, str | None, list[str]]]:
        """Each root file with its project (None: unreadable) and keys."""
        folder = self.root / "roots"
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
        except (FileNotFoundError, NotADirectoryError):
            return
        for n in names:
            path = folder / n
            try:
                with open(path, "rb") as f:
                    doc = json.loads(f.read(MAX_ROOT_BYTES + 1).decode("utf-8"))
                project, keys = doc["project"], doc["keys"]
                if not isinstance(project, str) or not isinstance(keys, list):
                    raise ValueError
                yield path, project, [k for k in keys if isinstance(k, str)]
            except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
                yield path, None, []

    def gc(self, *, dry_run: bool = False,
           keys_of_lock: Callable[[str], set[str] | None] | None = None) -> list[str]:
        """Remove every prefix that no project still using ckpm needs; the keys removed (or that would be).

        A root counts while its project folder has a ``ckpm.lock``; other roots are removed.
        ``keys_of_lock(project)`` gives the keys the project's *current* lock uses (None: it
        cannot be read): those count, and the keys the root recorded only while the record is
        newer than the lock (a sync under way, or one since the last lock). Without it, the
        recorded keys count. A prefix being built (its lock held) is skipped; every staging
        folder whose key's lock is free (its owner is gone) is removed.
        """
        live: set[str] = set()
        for path, project, keys in self._roots():
            lock = os.path.join(project, "ckpm.lock") if project is not None else None
            if project is None or lock is None or not os.path.isfile(lock):
                if not dry_run:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                continue
            now = keys_of_lock(project) if keys_of_lock is not None else None
            if now is None:
                live.update(keys)
                continue
            live.update(now)
            with contextlib.suppress(OSError):
                if os.stat(path).st_mtime_ns >= os.stat(lock).st_mtime_ns:
                    live.update(keys)
        removed = []
        for key in self._keys(self.prefixes):
            if key in live:
                continue
            try:
                with self._lock(key, wait=False):
                    if not dry_run:
                        _remove(self.prefixes / key)
                removed.append(key)
            except LockTimeout:
                continue
        for name in self._staging_names():
            key = _STAGING.fullmatch(name).group("key")  # type: ignore[union-attr]
            with contextlib.suppress(LockTimeout, StoreError):
                with self._lock(key, wait=False):
                    if not dry_run:
                        _remove(self.root / "tmp" / name)
        if not dry_run:
            self._remove_legacy_work(time.time())
        return removed

    def _remove_legacy_work(self, now: float) -> None:
        """Remove the ``tmp/build-*`` work folders that ckpm versions before the staging layout
        left beside the staging folders (no key, so no lock says whose they are): those
        untouched for :data:`LEGACY_WORK_AGE` seconds, which no build still writes."""
        try:
            names = os.listdir(self.root / "tmp")
        except OSError:
            return
        for n in names:
            if not n.startswith("build-"):
                continue
            path = self.root / "tmp" / n
            with contextlib.suppress(OSError, StoreError):
                if now - os.lstat(path).st_mtime >= LEGACY_WORK_AGE:
                    _remove(path)
