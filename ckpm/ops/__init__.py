"""The commands above the library API: one typed function per command that ``ckpm/cli/``
and ``ckpm.access()`` both call, so that those two are adapters (parse, call, print or
return) and what a command does lives once (as cargo's ``ops/`` and uv's ``commands/``).

One module per area, each imported on first use (nothing is imported here, so that
``ckpm --version`` and ``ckpm run`` load only what they need):

- :mod:`ckpm.ops.session`: the settings of a command, its project, its indexes;
- :mod:`ckpm.ops.sync`: ``sync``, ``fetch``, ``vendor``, ``env`` (over ``ckpm.api``);
- :mod:`ckpm.ops.store`: ``store ls/path/gc``, ``cache ls/clean``;
- :mod:`ckpm.ops.index`: ``index reindex``;
- :mod:`ckpm.ops.run`: ``run``, ``replay`` (over ``ckpm.pipeline``);
- :mod:`ckpm.ops.tune`: ``tune`` (with ``--push``);
- :mod:`ckpm.ops.results`: ``results ls/show/compare/plot/report/export/import/push/pull``;
- :mod:`ckpm.ops.publish`: ``publish``, ``yank``, ``login``, ``logout``;
- :mod:`ckpm.ops.artifact`: ``artifact pack/inspect/evaluate``;
- :mod:`ckpm.ops.container`: ``container build/file``;
- :mod:`ckpm.ops.ck`: ``import ck``.

The commands that change a project (``init``, ``add``, ``remove``, ``lock``, ``check``) and the
read-only questions (``tree``, ``why``, ``search``…) are ``ckpm.api`` and ``ckpm.queries``, which
the adapters call directly: with ``ckpm.ops`` they are the facade (``tests/test_layers.py``).
"""
