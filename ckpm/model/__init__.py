"""The data model: versions, specifiers, targets, requirements, manifests and lockfiles.

Pure data and parsing; this package imports none of ckpm's other packages.
"""
