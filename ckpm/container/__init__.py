"""``ckpm container``: a locked project as an OCI image that runs offline and can still be changed.

The image carries ckpm itself (from wheels of this installation), the project's tracked
files, its lock, the vendored sources and a store provisioned from them at build time, so
``ENGINE run IMAGE`` runs the project and ``run --flags …``, ``replay``, ``tune`` work
inside with no network. ``engine.py`` runs podman or docker; ``wheels.py`` packs ckpm's
wheels; ``context.py`` writes the build context and its Containerfile; ``build.py`` checks
the base against the lock's host pins and builds.
"""
