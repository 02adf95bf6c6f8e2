"""Index clients: read components from a registry index (format 1, DESIGN.md).

Every client implements :class:`ckpm.index.base.Index`. :func:`open_index` picks one
from a URL: a folder (path or ``file://``), a git repo (``git+file://``, ``git+https://``)
or static HTTP (``https://``). The clients know nothing of the resolver.
"""
from ckpm.index.base import Index, open_index, embedded_index_path

__all__ = ["Index", "open_index", "embedded_index_path"]
