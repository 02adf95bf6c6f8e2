"""An index in a local folder (a path or ``file://`` URL)."""
from __future__ import annotations

from pathlib import Path

from ckpm.errors import IndexError_
from ckpm.index.base import FileIndex, layout_names, summaries_from_entries
from ckpm.index.layout import CONFIG
from ckpm.model.entry import ComponentSummary


class FolderIndex(FileIndex):
    """Reads component files straight from a folder; memoises what it read."""

    def __init__(self, root: Path, *, name: str | None = None, url: str | None = None) -> None:
        super().__init__(name or None)
        self.root = Path(root)
        self.url = url or str(self.root)
        self._check_config()  # a folder that is no index fails when opened

    def all_names(self) -> list[str]:
        """Every component that has a file at its layout path (walks the folder)."""
        return layout_names(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def _read(self, rel: str) -> str | None:
        try:
            data = (self.root / rel).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return self._decode(data, rel)

    def _where(self, rel: str) -> str:
        return str(self.root / rel)

    def _default_name(self) -> str:
        return self.root.name

    def _not_an_index(self) -> IndexError_:
        return IndexError_(f"{self.url}: not an index (no {CONFIG})",
                           hint="an index folder has config.json and one file per component; see docs/formats.md")

    def _scan_summaries(self) -> list[ComponentSummary]:
        return summaries_from_entries(self.entries(n) for n in self.all_names())
