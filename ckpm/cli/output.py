"""Output for people (rich on a terminal, plain text otherwise) and for programs (``--json``)."""
from __future__ import annotations

import json
import sys
from typing import Any, Sequence


def is_tty() -> bool:
    return sys.stdout.isatty()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A rich table on a terminal; tab-free aligned columns otherwise."""
    if is_tty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, header_style="bold")
        for h in headers:
            t.add_column(h)
        for r in rows:
            t.add_row(*(str(x) for x in r))
        Console().print(t)
        return
    if title:
        print(title)
    cells = [[str(h) for h in headers]] + [[str(x) for x in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def info(msg: str) -> None:
    """A status line for people, on stderr so that stdout stays clean for programs."""
    if sys.stderr.isatty():
        from rich.console import Console

        Console(stderr=True).print(msg, highlight=False)
    else:
        sys.stderr.write(_strip_markup(msg) + "\n")


def _strip_markup(s: str) -> str:
    import re

    return re.sub(r"\[/?[a-z ]+\]", "", s)


def error(msg: str) -> None:
    sys.stderr.write(msg + "\n")
