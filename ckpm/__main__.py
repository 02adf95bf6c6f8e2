"""``python -m ckpm``: the same as the ``ckpm`` command."""
from ckpm.cli import main

main()
