"""One channel for what the library has to tell a person: warnings and progress.

The API takes a :class:`Reporter` (from :class:`ckpm.settings.Settings`) and passes it
down to the index clients, git sources, the candidate factory, the host adapter and
detection, as resolvelib passes its reporter to the resolver. Each of those takes one
always: given none, it makes a fresh base Reporter, so no part keeps warnings of its own.
The library never prints: the base class collects warnings (deduplicated, in order: the
warn-once of every part) and ignores progress; the CLI subclass shows a spinner on a
terminal and prints warnings on stderr; ``--json`` carries the collected warnings in its
envelope.
"""
from __future__ import annotations

import contextlib
import re
from typing import Callable, Iterator

#: finds a character that :func:`escape_control` escapes
_PLAIN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]").search


def escape_control(text: str) -> str:
    """``text`` with control characters (and lone surrogates) shown as escapes, safe to print.

    Index and lock text comes from someone else: printed raw, an ESC sequence could
    rewrite the user's terminal.
    """
    if _PLAIN(text) is None:  # the usual text: nothing to escape, and no loop over its characters
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 and ch not in "\n\t" or 0x7F <= o < 0xA0 or 0xD800 <= o <= 0xDFFF:
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


class Reporter:
    """Collects warnings; progress is a no-op. Subclass to show things to a person."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self._seen: set[str] = set()

    def warning(self, message: str) -> None:
        """A non-fatal problem the user should see (kept once, in order)."""
        message = escape_control(message)
        if message not in self._seen:
            self._seen.add(message)
            self.warnings.append(message)
            self.on_warning(message)

    def warn_all(self, messages: "list[str] | tuple[str, ...]") -> None:
        for m in messages:
            self.warning(m)

    def on_warning(self, message: str) -> None:
        """Called once per new warning (the CLI prints it)."""

    def note(self, message: str) -> None:
        """Something worth saying that is not a problem (e.g. waiting for a file lock)."""

    @contextlib.contextmanager
    def progress(self, label: str) -> Iterator[None]:
        """Wrap a long operation (a clone, the index reads, a resolution) named by ``label``."""
        yield

    def update(self, label: str) -> None:
        """Change the label of the operation in progress (e.g. the resolution round)."""

    @contextlib.contextmanager
    def transfer(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Wrap a download of ``total`` bytes (None: unknown) named by ``label``; yields
        ``advance(n)``, called with each chunk's size. The CLI draws a progress bar on a
        terminal; the base class ignores it."""
        yield lambda n: None
