"""Downloads: mirrors, verification, resume (see ckpm/fetch/download.py).

- :mod:`ckpm.fetch.mirrors`: the ``[mirrors]`` rules (:class:`Mirrors`) and the vendor layout
  (:func:`vendor_relpath`);
- :mod:`ckpm.fetch.download`: :func:`fetch_file`, the one place that downloads a file;
- :mod:`ckpm.fetch.cache`: the download cache's layout (verified files by hash, partial files).
"""
from __future__ import annotations

from ckpm.lazy import lazy_exports

_EXPORTS = {
    "Fetched": "ckpm.fetch.download", "fetch_file": "ckpm.fetch.download",
    "Mirrors": "ckpm.fetch.mirrors", "vendor_relpath": "ckpm.fetch.mirrors",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)  # a warm sync or run imports only what it uses
__all__ = sorted(_EXPORTS)
