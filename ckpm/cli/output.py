"""Output for people (rich on a terminal, plain text otherwise) and for programs (``--json``).

Every ``--json`` answer is one envelope::

    {"ok": true,  "command": "lock", "data": {...}, "warnings": [...]}
    {"ok": false, "command": "lock", "error": {"code": ..., "error": ..., "hint": ..., "details": [...]},
     "warnings": [...]}

Text that came from an index or a lock is escaped before it reaches a terminal.
"""
from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Callable, Iterator, Sequence

from ckpm.report import Reporter, escape_control


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 package``, ``2 packages``; ``words`` for an irregular plural (``prefix``, ``prefixes``)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def is_tty() -> bool:
    return sys.stdout.isatty()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def envelope(command: str, data: Any, warnings: Sequence[str]) -> dict[str, Any]:
    return {"ok": True, "command": command, "data": data, "warnings": list(warnings)}


def error_envelope(command: str, error: dict[str, Any], warnings: Sequence[str]) -> dict[str, Any]:
    return {"ok": False, "command": command, "error": error, "warnings": list(warnings)}


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A rich table on a terminal; aligned plain columns otherwise."""
    rows = [[escape_control(str(x)) for x in r] for r in rows]
    if is_tty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        t = Table(title=title, header_style="bold")
        for h in headers:
            t.add_column(h)
        for r in rows:
            t.add_row(*map(Text, r))  # cells are text: "[red]" in a description is shown, not applied
        Console().print(t)
        return
    if title:
        print(title)
    cells = [[str(h) for h in headers]] + rows
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def info(msg: str, *, lead: str = "", style: str | None = None) -> None:
    """A status line for people, on stderr so that stdout stays clean for programs.

    ``msg`` is text, never markup (it may hold names, versions or URLs from an index or a
    lock; rich would read ``[link=...]`` in them as a hyperlink): control characters are
    escaped and square brackets are shown as they are. ``lead`` is a short mark shown before it
    (``+``, ``-``) and ``style`` colours the mark, or the whole line when there is none.
    """
    text = escape_control(msg)
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.text import Text

        line = Text()
        if lead:
            line.append(lead, style=style)
            line.append(" ")
        line.append(text, style=None if lead else style)
        Console(stderr=True).print(line, highlight=False)
    else:
        sys.stderr.write(f"{lead} {text}\n" if lead else text + "\n")


def error(msg: str) -> None:
    sys.stderr.write(escape_control(msg) + "\n")


def _plain(label: str) -> Any:
    """A spinner's label as rich text (it may hold a URL from an index or a lock: never markup)."""
    from rich.text import Text

    return Text(escape_control(label) + "…")


class ConsoleReporter(Reporter):
    """The CLI's reporter: warnings and notes on stderr, a spinner for long work on a terminal.

    With ``--json`` (``quiet``) nothing is printed: warnings travel in the envelope.
    Without ``-v`` only the first ``shown`` warnings are printed, then a count.
    """

    def __init__(self, *, verbose: int = 0, quiet: bool = False, shown: int = 5) -> None:
        super().__init__()
        self.verbose = verbose
        self.quiet = quiet
        self.shown = shown
        self.hidden = 0
        self._status: Any = None
        self._labels: list[str] = []
        self._console: Any = None

    def _out(self, text: str) -> None:
        if self._status is not None:
            self._console.print(text, highlight=False, markup=False)
        else:
            sys.stderr.write(text + "\n")

    def on_warning(self, message: str) -> None:
        if self.quiet:
            return
        if not self.verbose and len(self.warnings) > self.shown:
            self.hidden += 1
            return
        first = message if self.verbose else message.splitlines()[0][:300] if message else message
        self._out(f"warning: {first}")

    def note(self, message: str) -> None:
        if not self.quiet:
            self._out(escape_control(message))

    def finish(self) -> None:
        """Say how many warnings were not shown."""
        if self.hidden and not self.quiet:
            sys.stderr.write(f"... and {self.hidden} more warnings (-v shows them)\n")
            self.hidden = 0

    @contextlib.contextmanager
    def progress(self, label: str) -> Iterator[None]:
        if self.quiet or not sys.stderr.isatty():
            yield
            return
        self._labels.append(label)
        outer = self._status is None
        if outer:
            from rich.console import Console

            self._console = Console(stderr=True)
            self._status = self._console.status(_plain(label))
            self._status.start()
        else:
            self._status.update(_plain(label))
        try:
            yield
        finally:
            self._labels.pop()
            if outer:
                self._status.stop()
                self._status = None
            elif self._labels:
                self._status.update(_plain(self._labels[-1]))

    def update(self, label: str) -> None:
        if self._status is not None:
            self._status.update(_plain(label))

    @contextlib.contextmanager
    def transfer(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A rich progress bar (bytes, speed, time left) on a terminal; nothing otherwise."""
        if self.quiet or not sys.stderr.isatty():
            yield lambda n: None
            return
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        paused = self._status
        if paused is not None:
            paused.stop()
        # the label holds a URL from an index or a lock: text, not markup
        bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                       TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        task = bar.add_task(escape_control(label), total=total)
        try:
            with bar:
                yield lambda n: bar.advance(task, n)
        finally:
            if paused is not None:
                paused.start()
