"""Wheels of the running ckpm and of its dependencies, for an image's build context.

The image installs ckpm with ``pip install --no-index`` from these files, so its build
needs no network. They are made here, offline, from the distributions this ckpm runs
with (``importlib.metadata``): each distribution's installed files (its ``RECORD``) are
packed again as a wheel with its own tags. An editable install of ckpm (a source tree) is
packed from the folders its editable finder maps. The result is what runs on this machine,
so it suits a base whose Python has the same version and machine (checked before
building); members are sorted and dated 1980-01-01, so the same installation gives the
same bytes and the engine's cache of the layer holds across builds.

What is not carried: files a distribution installed outside its site-packages (scripts,
which pip writes again from ``entry_points.txt``; headers and data under ``.data``), and
byte-compiled ``__pycache__`` files.
"""
from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ckpm.errors import CkpmError

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
PACK_FORMAT = 1  # of the packing below: a change makes the cached wheels stale
SKIP_DIST_INFO = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


class WheelError(CkpmError):
    """A distribution ckpm needs cannot be packed as a wheel."""

    code = "container-wheels"


@dataclass(frozen=True)
class PackedWheel:
    name: str
    version: str
    file: str
    size: int


def requirement_closure(root: str = "ckpm") -> list[md.Distribution]:
    """``root`` and every distribution it requires here (markers evaluated for this interpreter),
    sorted by name."""
    seen: dict[str, md.Distribution] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    env = default_environment()
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in seen:
            continue
        dist = _installed(name)
        seen[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(
                    req.marker.evaluate({**env, "extra": x}) for x in (extras | {""})):  # type: ignore[dict-item]
                continue
            todo.append((req.name, frozenset(req.extras)))
    return [seen[k] for k in sorted(seen)]


def _installed(name: str) -> md.Distribution:
    """The installed distribution ``name`` (a ``.dist-info``: an ``.egg-info`` of a source
    tree on ``sys.path`` is what ``setup.py`` left there, not an installation)."""
    for dist in md.distributions(name=name):
        if str(getattr(dist, "_path", "")).endswith(".dist-info"):
            return dist
    raise WheelError(f"{name} is required by ckpm but not installed as a wheel", hint="reinstall ckpm with pip")


def pack_wheels(dest: Path, root: str = "ckpm", *, cache_dir: Path | None = None) -> list[PackedWheel]:
    """Write a wheel of ``root`` and of each distribution it requires into ``dest``.

    With ``cache_dir``, a wheel already packed from the same files (names, sizes and
    modification times) is copied from there instead of packed again."""
    dest.mkdir(parents=True, exist_ok=True)
    return [pack_distribution(d, dest, cache_dir=cache_dir) for d in requirement_closure(root)]


def pack_distribution(dist: md.Distribution, dest: Path, *, cache_dir: Path | None = None) -> PackedWheel:
    """One installed distribution packed again as a wheel in ``dest``."""
    name = dist.metadata["Name"]
    version = dist.version
    info_dir = Path(str(dist._path))  # type: ignore[attr-defined]  # the .dist-info folder
    site = info_dir.parent
    editable = _editable_roots(dist, site)
    members: dict[str, Path] = {}
    if editable is not None:
        for package, folder in editable.items():
            for f in sorted(folder.rglob("*")):
                parts = f.relative_to(folder).parts
                if f.is_file() and "__pycache__" not in parts and f.suffix != ".pyc":
                    members["/".join((*package.split("."), *parts))] = f
        tags = ["py3-none-any"]
        purelib = True
    else:
        for entry in dist.files or []:
            name_in = entry.as_posix()
            if (name_in.startswith(("../", info_dir.name + "/")) or "/__pycache__/" in f"/{name_in}"
                    or name_in.endswith(".pyc")):
                continue
            path = site / name_in
            if path.is_file():
                members[name_in] = path
        tags, purelib = _wheel_tags(info_dir)
    info_name = f"{_safe(name)}-{_safe(version)}.dist-info"
    for f in sorted(info_dir.rglob("*")):
        in_info = f.relative_to(info_dir).as_posix()
        if f.is_file() and in_info not in SKIP_DIST_INFO and in_info != "WHEEL":
            members[f"{info_name}/{in_info}"] = f
    wheel_meta = ("Wheel-Version: 1.0\nGenerator: ckpm (repacked from an installation)\n"
                  f"Root-Is-Purelib: {'true' if purelib else 'false'}\n" + "".join(f"Tag: {t}\n" for t in tags))
    fname = f"{_safe(name)}-{_safe(version)}-{_compress_tags(tags)}.whl"
    out = dest / fname
    cached = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps([PACK_FORMAT, wheel_meta, sorted(
            (arc, path.stat().st_size, path.stat().st_mtime_ns) for arc, path in members.items())]).encode())
        cached = cache_dir / key.hexdigest()[:32] / fname
        if cached.is_file():
            shutil.copyfile(cached, out)
            return PackedWheel(name, version, fname, out.stat().st_size)
    tmp = dest / f".{fname}.part"
    record: list[str] = []
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc in sorted(m for m in members if not m.startswith(info_name + "/")):
            record.append(_write(zf, arc, members[arc].read_bytes(), members[arc]))
        for arc in sorted(m for m in members if m.startswith(info_name + "/")):
            record.append(_write(zf, arc, members[arc].read_bytes(), members[arc]))
        record.append(_write(zf, f"{info_name}/WHEEL", wheel_meta.encode(), None))
        record.append(f"{info_name}/RECORD,,")
        _write(zf, f"{info_name}/RECORD", ("\n".join(record) + "\n").encode(), None)
    tmp.replace(out)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        part = cached.with_name(f".{fname}.{os.getpid()}.part")
        shutil.copyfile(out, part)
        part.replace(cached)
    return PackedWheel(name, version, fname, out.stat().st_size)


def _write(zf: zipfile.ZipFile, arc: str, data: bytes, src: Path | None) -> str:
    info = zipfile.ZipInfo(arc, ZIP_DATE)
    executable = src is not None and src.stat().st_mode & 0o111
    info.external_attr = (0o755 if executable else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arc},sha256={digest},{len(data)}"


def _editable_roots(dist: md.Distribution, site: Path) -> dict[str, Path] | None:
    """For an editable install (``direct_url.json`` says so): package name → source folder,
    read from setuptools' editable finder (its ``MAPPING``, read as data, never imported)."""
    text = dist.read_text("direct_url.json")
    if not text or '"editable": true' not in text.replace("'", '"'):
        return None
    roots: dict[str, Path] = {}
    for entry in dist.files or []:
        rel = entry.as_posix()
        if rel.startswith("__editable__") and rel.endswith("_finder.py"):
            tree = ast.parse((site / rel).read_text())
            for node in ast.walk(tree):
                target: ast.expr
                value: ast.expr | None
                if isinstance(node, ast.AnnAssign):
                    target, value = node.target, node.value
                elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], node.value
                else:
                    continue
                if isinstance(target, ast.Name) and target.id == "MAPPING" and value is not None:
                    mapping = ast.literal_eval(value)
                    if isinstance(mapping, dict):
                        roots.update({str(k): Path(str(v)) for k, v in mapping.items()})
    if not roots:
        raise WheelError(f"{dist.metadata['Name']} is installed in editable mode in a way ckpm cannot pack",
                         hint="install it normally (pip install .) and build again")
    return roots


def _wheel_tags(info_dir: Path) -> tuple[list[str], bool]:
    text = (info_dir / "WHEEL").read_text() if (info_dir / "WHEEL").is_file() else ""
    tags = re.findall(r"^Tag:\s*(\S+)\s*$", text, re.M) or ["py3-none-any"]
    purelib = bool(re.search(r"^Root-Is-Purelib:\s*true\s*$", text, re.M | re.I))
    return tags, purelib


def _compress_tags(tags: Iterable[str]) -> str:
    parts: list[list[str]] = [[], [], []]
    for t in tags:
        for i, p in enumerate(t.split("-", 2)):
            for q in p.split("."):
                if q not in parts[i]:
                    parts[i].append(q)
    return "-".join(".".join(p) for p in parts)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", s)


def interpreter() -> tuple[str, str]:
    """This interpreter's ``MAJOR.MINOR`` and machine, which the base's must equal."""
    import platform

    return f"{sys.version_info[0]}.{sys.version_info[1]}", platform.machine()
