"""The thin click CLI: parse options, call one library function, print, map errors to exit codes.

``main`` answers ``ckpm --version`` before importing click, so the most common probe of
an installed tool costs little more than starting Python.
"""
from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from ckpm import __version__

        sys.stdout.write(f"ckpm, version {__version__}\n")
        return
    from ckpm import perf
    from ckpm.cli.main import main as click_main

    perf.short_lived = True  # one command, then the process ends
    click_main()
