"""Downloads: mirrors, verification, resume (see ckpm/fetch/download.py).

- :mod:`ckpm.fetch.mirrors`: the ``[mirrors]`` rules (:class:`Mirrors`) and the vendor layout
  (:func:`vendor_relpath`);
- :mod:`ckpm.fetch.download`: :func:`fetch_file`, the one place that downloads a file;
- :mod:`ckpm.fetch.cache`: the download cache's layout (verified files by hash, partial files).
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {'Fetched': 'ckpm.fetch.download', 'fetch_file': 'ckpm.fetch.download', 'Mirrors': 'ckpm.fetch.mirrors', 'vendor_relpath': 'ckpm.fetch.mirrors'}


def __getattr__(name: str) -> Any:
    """Exports load their module on first use, so that a warm ``ckpm sync`` or ``ckpm run``
    that builds nothing imports only what it needs."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
