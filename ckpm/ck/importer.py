"""``ckpm import ck``: a CK repository (a folder, or a git repository at a commit) → a
format-1 index of ordinary ckpm components, and a report of what was and was not carried over.

Where an imported component's files come from (its ``source``):

- a git repository: ``{"git": URL, "rev": COMMIT, "subdir": "<module>/<alias>"}`` — the
  entry's folder at that commit, exported by ``ckpm sync`` without a checkout;
- a folder: a reproducible tar of the entry's files written beside the index
  (``<index>/ck-files/<name>.tar``), named by a ``file://`` URL with its sha256 and size.

Imported components are written into ``--into`` (made when missing); a component already
there is rewritten (an imported index is generated, not published). Nothing of the
repository is run.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ckpm.ck.layout import CkEntry, CkRepo, Skipped, read_repo
from ckpm.ck.mapping import MAPPERS, Mapped, map_entries
from ckpm.errors import CkpmError
from ckpm.fsutil import atomic_write

FILES_DIR = "ck-files"
URL_RE = re.compile(r"^(?:https?|git|ssh|file)://|^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:")


class CkImportError(CkpmError):
    """The repository cannot be read at all (one bad entry never raises: it is reported)."""

    code = "ck-import"


@dataclass
class ImportReport:
    source: str
    into: str
    rev: str | None
    repo_alias: str | None
    items: list[Mapped] = field(default_factory=list)
    unreadable: list[Skipped] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for m in self.items:
            c = out.setdefault(m.entry.module, {"entries": 0, "imported": 0, "skipped": 0})
            c["entries"] += 1
            c["imported" if m.line is not None else "skipped"] += 1
        for s in self.unreadable:
            if s.module:
                c = out.setdefault(s.module, {"entries": 0, "imported": 0, "skipped": 0})
                c["entries"] += 1
                c["skipped"] += 1
        return dict(sorted(out.items()))

    @property
    def imported(self) -> list[Mapped]:
        return [m for m in self.items if m.line is not None]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "into": self.into, "rev": self.rev, "repo": self.repo_alias,
                "counts": self.counts(), "entries": [m.to_dict() for m in self.items],
                "unreadable": [s.to_dict() for s in self.unreadable]}


def _git_url(src: str) -> str | None:
    """The git URL of ``src`` when it is a remote repository's URL."""
    return src if URL_RE.match(src) else None


def _local_git(src: str) -> Path | None:
    """The git directory of a local repository (bare, or a work tree's ``.git``)."""
    p = Path(src)
    if (p / "HEAD").is_file() and (p / "objects").is_dir():
        return p
    if (p / ".git" / "HEAD").is_file():
        return p / ".git"
    return None


def export_local(gitdir: Path, rev: str | None, dest: Path, *, max_bytes: int = 4 << 30,
                 max_files: int = 500_000) -> tuple[str, list[str]]:
    """Write the tree of ``rev`` (default HEAD) of a local repository into ``dest`` without a
    checkout (no hooks, filters or submodules; links left out); returns the commit and the
    paths whose objects the repository does not hold (a partial mirror), which are left out."""
    import pygit2

    try:
        repo = pygit2.Repository(str(gitdir))
        obj = repo.revparse_single(rev or "HEAD")
        commit = obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError) as e:
        raise CkImportError(f"{gitdir}: no commit {rev or 'HEAD'} ({e})",
                            hint="give a branch, tag or full commit: --rev") from None
    missing: list[str] = []
    budget = [max_bytes, max_files]

    def walk(tree: Any, at: Path, rel: str, depth: int) -> None:
        if depth > 64:
            missing.append(f"{rel}: nested too deep")
            return
        at.mkdir(parents=True, exist_ok=True)
        for e in tree:
            n = e.name
            if n in ("", ".", "..", ".git") or "/" in n or "\\" in n or "\0" in n:
                continue
            r = f"{rel}{n}"
            if e.filemode == pygit2.GIT_FILEMODE_TREE:
                try:
                    walk(repo[e.id], at / n, r + "/", depth + 1)
                except KeyError:
                    missing.append(r + "/")
            elif e.filemode in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
                try:
                    data = repo[e.id].read_raw()
                except (KeyError, pygit2.GitError):
                    missing.append(r)
                    continue
                budget[0] -= len(data)
                budget[1] -= 1
                if budget[0] < 0 or budget[1] < 0:
                    raise CkImportError(f"{gitdir}: the tree at {str(commit.id)[:12]} is over "
                                        f"{max_bytes >> 20} MiB or {max_files:,} files")
                (at / n).write_bytes(data)
                if e.filemode == pygit2.GIT_FILEMODE_BLOB_EXECUTABLE:
                    os.chmod(at / n, 0o755)

    walk(commit.tree, dest, "", 0)
    return str(commit.id), missing


def _resolve_commit(gs: Any, rev: str | None) -> str:
    import pygit2

    if rev is not None and re.fullmatch(r"[0-9a-f]{40}", rev):
        return rev
    repo = gs._ready()
    for ref in ([rev] if rev else ["HEAD", "refs/heads/main", "refs/heads/master"]):
        try:
            obj = repo.revparse_single(ref)
            commit = obj.peel(pygit2.Commit)
            return str(commit.id)
        except (KeyError, ValueError, pygit2.GitError):
            continue
    raise CkImportError(f"{gs.url}: no commit {rev or 'HEAD'}", hint="give a branch, tag or full commit: --rev")


def _entry_tar(entry: CkEntry, top: str) -> bytes:
    """A reproducible tar of the entry's files under one top folder (sorted, mtime 0)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tf:
        for rel in sorted(entry.files, key=lambda r: r.encode()):
            fd = os.open(entry.path / rel, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # listed as a file: still one
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read(max(st.st_size, 0) + 1)[:st.st_size]
            ti = tarfile.TarInfo(f"{top}/{rel}")
            ti.mode = 0o755 if st.st_mode & 0o111 else 0o644
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _known_ldflags(into: Path) -> list[tuple[frozenset[str], list[str]]]:
    """(tags, -l flags) of the CK packages already imported into ``into``."""
    out: list[tuple[frozenset[str], list[str]]] = []
    if not (into / "config.json").is_file():
        return out
    from ckpm.index.folder import FolderIndex

    idx = FolderIndex(into)
    try:
        for s in idx.summaries():
            if not s.name.startswith("package-"):
                continue
            for e in idx.entries(s.name):
                ck = e.raw.get("ck")
                if isinstance(ck, Mapping) and isinstance(ck.get("ldflags"), list):
                    out.append((frozenset(e.tags), [str(x) for x in ck["ldflags"] if isinstance(x, str)]))
    except CkpmError:
        pass
    return out


def import_ck(src: str | Path, into: Path, *, rev: str | None = None, settings: Any = None,
              modules: tuple[str, ...] | None = None) -> ImportReport:
    """Import the CK repository ``src`` into the index folder ``into``; returns the report."""
    from ckpm.index.writer import init_index, reindex, write_component

    src = str(src)
    into = Path(into)
    url = _git_url(src)
    tmp: str | None = None
    commit: str | None = None
    try:
        local = _local_git(src) if url is None else None
        missing: list[str] = []
        if local is not None:
            tmp = tempfile.mkdtemp(prefix="ckpm-ck-")
            commit, missing = export_local(local, rev, Path(tmp) / "tree")
            root = Path(tmp) / "tree"
        elif url is not None:
            from ckpm.index.gitsource import GitComponentSource
            from ckpm.errors import GitSourceError

            gs = GitComponentSource(url, cache_dir=getattr(settings, "cache_dir", None),
                                    offline=bool(getattr(settings, "offline", False)),
                                    reporter=getattr(settings, "reporter", None))
            try:
                commit = _resolve_commit(gs, rev)
                tmp = tempfile.mkdtemp(prefix="ckpm-ck-")
                gs.export(commit, Path(tmp) / "tree", max_bytes=4 << 30)
            except GitSourceError as e:
                raise CkImportError(e.message, hint=e.hint) from None
            root = Path(tmp) / "tree"
        else:
            root = Path(src)
            if rev is not None:
                raise CkImportError(f"{src} is a folder, not a git repository: --rev needs a git repository")
            if not root.is_dir():
                raise CkImportError(f"{src}: no such folder or git repository",
                                    hint="give a CK repository folder (with .ckr.json) or a git URL")
        try:
            repo: CkRepo = read_repo(root, modules=modules)
        except ValueError as e:
            raise CkImportError(str(e)) from None
        if not repo.entries and not any(s.module for s in repo.skipped):
            raise CkImportError(f"{src}: no CK entries (no <module>/<alias>/.cm/meta.json)"
                                + (f" in the modules {', '.join(modules)}" if modules else ""),
                                hint="give the folder that holds .ckr.json and the module folders")
        for ent in repo.entries:
            pre = f"{ent.module}/{ent.alias}/"
            gone = [m[len(pre):] for m in missing if m.startswith(pre)]
            if gone:
                ent.problems.append(f"{len(gone)} file(s) not in the git repository's objects (a partial copy): "
                                  + ", ".join(gone[:5]) + (" …" if len(gone) > 5 else ""))
        # packages first: programs link the libraries they name
        pkgs = map_entries([e for e in repo.entries if e.module == "package"])
        known = _known_ldflags(into) + [(frozenset(m.line["tags"]), list(m.line["ck"]["ldflags"]))
                                        for m in pkgs if m.line and m.line["ck"].get("ldflags")]

        def link_flags(tags: list[str]) -> list[str] | None:
            hits = [f for t, f in known if set(tags) <= t]
            return hits[-1] if hits else None

        rest = map_entries([e for e in repo.entries if e.module != "package"], link_flags)
        items = sorted(pkgs + rest, key=lambda m: (m.entry.module, m.entry.alias))
        report = ImportReport(src, str(into), commit, repo.alias, items, repo.skipped)
        seen: dict[str, Mapped] = {}
        for m in report.imported:
            if m.name in seen:
                m.skipped = f"its component name {m.name} is taken by {seen[m.name].entry.where}"
                m.line = None
            else:
                seen[m.name] = m
        init_index(into, name=f"ck-{repo.alias}" if repo.alias else "ck")
        for m in report.imported:
            assert m.line is not None
            line = dict(m.line)
            if repo.alias:
                line["ck"] = {**line["ck"], "repo": repo.alias}
            if url is not None and commit is not None:
                line["source"] = {"git": url, "rev": commit, "subdir": f"{m.entry.module}/{m.entry.alias}"}
            else:
                try:
                    data = _entry_tar(m.entry, m.name)
                except OSError as e:
                    m.skipped, m.line = f"cannot read its files ({e.strerror or e})", None
                    continue
                path = into / FILES_DIR / f"{m.name}.tar"
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data)
                line["source"] = {"urls": [path.resolve().as_uri()], "sha256": hashlib.sha256(data).hexdigest(),
                                  "size": len(data)}
            for rec in line.get("install", []):
                srcs = rec.get("sources") or []
                for i, sv in enumerate(srcs):
                    if "ck_entry_file" not in sv:
                        continue
                    if url is not None:
                        m.skipped = ("its sources are an archive inside the entry: imported from a folder or a "
                                     "local repository only")
                        break
                    try:
                        data = (m.entry.path / sv["ck_entry_file"]).read_bytes()
                    except OSError as e:
                        m.skipped = f"cannot read {sv['ck_entry_file']} ({e.strerror or e})"
                        break
                    fname = re.sub(r"[^A-Za-z0-9_.+-]", "-", sv["ck_entry_file"])
                    path = into / FILES_DIR / f"{m.name}--{fname}"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, data)
                    srcs[i] = {"urls": [path.resolve().as_uri()], "sha256": hashlib.sha256(data).hexdigest(),
                               "size": len(data)}
            if m.skipped:
                m.line = None
                continue
            try:
                write_component(into, [line])
            except CkpmError as e:
                m.skipped = f"its index line is refused: {e.message}"
                m.line = None
        reindex(into)
        return report
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def format_counts(report: ImportReport) -> list[tuple[str, int, int, int]]:
    return [(mod, c["entries"], c["imported"], c["skipped"]) for mod, c in report.counts().items()]


__all__ = ["CkImportError", "ImportReport", "import_ck", "MAPPERS", "json"]
