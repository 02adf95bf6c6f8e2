"""Dependency resolution with resolvelib.

``factory`` finds candidates (index entries, git tags, host software) and does all
the I/O; ``provider`` only routes resolvelib's questions to requirements and
candidates; ``explain`` turns a failure into words a person can act on;
``resolve`` runs one resolution per target and merges them into a lock.
Resolution reads metadata only: it never downloads an archive, builds, or writes the store.
"""
