"""An index in a local folder (a path or ``file://`` URL)."""
from __future__ import annotations

import json
from pathlib import Path

from ckpm.errors import IndexError_
from ckpm.index.base import parse_lines, parse_summary
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.model.entry import ComponentSummary, IndexEntry, valid_name


class FolderIndex:
    """Reads component files straight from a folder; memoises what it read."""

    def __init__(self, root: Path, *, name: str | None = None, url: str | None = None) -> None:
        self.root = Path(root)
        self.url = url or str(self.root)
        cfg = self.root / CONFIG
        if not cfg.is_file():
            raise IndexError_(
                f"{self.url}: not an index (no {CONFIG})",
                hint="an index folder has config.json and one file per component; see docs/formats.md",
            )
        try:
            self.config = json.loads(cfg.read_text())
        except ValueError as e:
            raise IndexError_(f"{cfg}: malformed config.json ({e})") from None
        self.name = name or str(self.config.get("name") or self.root.name)
        self._cache: dict[str, list[IndexEntry]] = {}
        self._summaries: list[ComponentSummary] | None = None

    def entries(self, name: str) -> list[IndexEntry]:
        n = name.lower()
        hit = self._cache.get(n)
        if hit is not None:
            return hit
        if not valid_name(n):
            out: list[IndexEntry] = []
        else:
            p = self.root / entry_path(n)
            try:
                text = p.read_text(encoding="utf-8")
            except FileNotFoundError:
                text = ""
            out = parse_lines(text, str(p)) if text else []
        self._cache[n] = out
        return out

    def summaries(self) -> list[ComponentSummary]:
        if self._summaries is None:
            s = self.root / SUMMARY
            if s.is_file():
                self._summaries = parse_summary(s.read_text(encoding="utf-8"))
            else:
                self._summaries = [ComponentSummary.from_entries(self.entries(n)) for n in self.all_names()]
                self._summaries = [x for x in self._summaries if x.versions]
        return self._summaries

    def all_names(self) -> list[str]:
        names = []
        for p in self.root.rglob("*"):
            if p.is_file() and p.name not in (CONFIG, SUMMARY) and not p.name.startswith(".") and valid_name(p.name):
                rel = p.relative_to(self.root).as_posix()
                try:
                    if entry_path(p.name) == rel:
                        names.append(p.name)
                except ValueError:
                    continue
        return sorted(names)

    def revision(self) -> str | None:
        return None
