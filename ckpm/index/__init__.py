"""Index clients: read components from a registry index (format 1, docs/formats.md).

Every client implements :class:`ckpm.index.base.Index`. :func:`open_index` (in
:mod:`ckpm.index.open`) picks one from a URL: a folder (path or ``file://``), a git repo
(``git+file://``, ``git+https://``) or static HTTP (``https://``). The clients know
nothing of the resolver. Index data is someone else's data: every line is checked
against the limits in :mod:`ckpm.model.entry` (see docs/formats.md, "Limits").
"""
from ckpm.index.base import Index
from ckpm.index.open import EMBEDDED, embedded_index_path, open_index

__all__ = ["Index", "open_index", "embedded_index_path", "EMBEDDED"]
