"""Artifact bundles: a project, its lock, its vendored sources and its experiment records in
one verified file (``ckpm artifact pack``), and their evaluation on another machine.

The library API other parts build on (remote runs, containers)::

    from ckpm.artifact import pack, verify, unpack_verified
    res = pack(project_dir, out_file)             # PackResult: path, size, sha256, manifest
    doc = verify(out_file)                        # the manifest, every member checked
    un = unpack_verified(out_file, dest)          # Unpacked: .project, .sources (a mirror), .manifest

The evaluation (``ckpm.artifact.evaluate``: ``evaluate``, ``inspect``) replays experiments, so
it lives in a module above the pipeline; this package's own modules do not.
"""
from ckpm.artifact.bundle import (ArtifactDamaged, ArtifactError, PackResult, Unpacked, host_pins, pack, pack_bytes,
                                  read_manifest, unpack_verified, verify)

__all__ = ["ArtifactDamaged", "ArtifactError", "PackResult", "Unpacked", "host_pins", "pack", "pack_bytes",
           "read_manifest", "unpack_verified", "verify"]
