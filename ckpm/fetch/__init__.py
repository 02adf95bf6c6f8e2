"""Downloads: mirrors, verification, resume (see ckpm/fetch/download.py).

- :mod:`ckpm.fetch.mirrors`: the ``[mirrors]`` rules (:class:`Mirrors`) and the vendor layout
  (:func:`vendor_relpath`);
- :mod:`ckpm.fetch.download`: :func:`fetch_file`, the one place that downloads a file;
- :mod:`ckpm.fetch.cache`: the download cache's layout (verified files by hash, partial files).
"""
from ckpm.fetch.download import Fetched, fetch_file
from ckpm.fetch.mirrors import Mirrors, vendor_relpath

__all__ = ["Fetched", "Mirrors", "fetch_file", "vendor_relpath"]
