"""The built-in detectors, one module per rule form.

Each is registered under the ``ckpm.detectors`` entry-point group (and in
:data:`ckpm.detect.registry.BUILTIN` for source trees without package metadata).
"""
