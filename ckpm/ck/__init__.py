"""Collective Knowledge (CK) repositories brought over as ckpm components: the reader of CK's
layout (:mod:`ckpm.ck.layout`), the mapping of entries to index lines (:mod:`ckpm.ck.mapping`)
and the import with its report (:mod:`ckpm.ck.importer`). Nothing of a CK entry is run."""
from ckpm.ck.importer import CkImportError, ImportReport, import_ck

__all__ = ["CkImportError", "ImportReport", "import_ck"]
