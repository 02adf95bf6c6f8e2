#!/usr/bin/env python3
"""Regenerate ckpm's embedded default index (``index/``) from ``tools/embedded/``.

    python tools/build_embedded_index.py            # rewrite index/
    python tools/build_embedded_index.py --out DIR  # write somewhere else
    python tools/build_embedded_index.py --check    # exit 1 if index/ is not up to date

The output is a pure function of the tables in ``tools/embedded/``: running the
script twice gives byte-identical files. It writes index format 1 (config.json,
one file per component at ``ckpm.index.layout.entry_path``, one JSON line per
version in ascending version order), ``summary.jsonl`` through
``ckpm.index.writer.reindex``, and ``schema.json`` (a copy of
``tools/embedded/schema.json``).
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
for p in (str(ROOT), str(TOOLS)):
    if p not in sys.path:
        sys.path.insert(0, p)

from ckpm.index.writer import init_index, reindex, write_component  # noqa: E402
from embedded import INDEX_NAME, all_components  # noqa: E402

SCHEMA_SRC = TOOLS / "embedded" / "schema.json"
DEFAULT_OUT = ROOT / "index"


def build(out: Path) -> int:
    """Write the whole index into the empty or missing folder ``out``; returns the component count."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out}: not empty")
    init_index(out, name=INDEX_NAME, api=None)
    components = all_components()
    for entries in components.values():
        write_component(out, entries)
    count = reindex(out)
    if count != len(components):  # pragma: no cover - a layout bug
        raise SystemExit(f"reindex found {count} components, expected {len(components)}")
    shutil.copyfile(SCHEMA_SRC, out / "schema.json")
    return count


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def differences(a: Path, b: Path) -> list[str]:
    """Relative paths that differ between two folders (missing on one side or different bytes)."""
    ta, tb = tree(a), tree(b)
    out = sorted(set(ta) ^ set(tb))
    for rel in sorted(set(ta) & set(tb)):
        if not filecmp.cmp(a / rel, b / rel, shallow=False):
            out.append(rel)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="index folder to (re)write (default: index/)")
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing; exit 1 on a difference")
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".embedded-index-", dir=out.parent))
    try:
        staged = tmp / "index"
        count = build(staged)
        if args.check:
            diff = differences(staged, out) if out.is_dir() else ["(missing)"]
            if diff:
                print(f"{out} is out of date; run tools/build_embedded_index.py. Differences:", file=sys.stderr)
                for rel in diff:
                    print(f"  {rel}", file=sys.stderr)
                return 1
            print(f"{out}: up to date ({count} components)")
            return 0
        # Swap the new tree into place: rename the old one aside first, so that a
        # crash leaves either the old or the new index, never a mix.
        old = tmp / "old"
        if out.exists():
            os.replace(out, old)
        os.replace(staged, out)
        lines = sum(len(v) for v in all_components().values())
        print(f"wrote {out}: {count} components, {lines} version lines")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
