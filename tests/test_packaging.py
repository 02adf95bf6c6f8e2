"""The wheel ships every subpackage and the embedded index."""
from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ckpm").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "ckpm._index" in listed


def test_index_folders_python_could_import_are_listed() -> None:
    """setuptools warns about (and may drop) data folders that look like packages but are not listed."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    index = ROOT / "index"
    importable = {"ckpm._index." + ".".join(d.relative_to(index).parts) for d in index.rglob("*")
                  if d.is_dir() and all(part.isidentifier() for part in d.relative_to(index).parts)}
    assert importable <= listed, f"add to [tool.setuptools] packages: {sorted(importable - listed)}"
