"""Builds: install recipes and the toolchains they run with.

- :mod:`ckpm.build.toolchain`: :class:`Toolchain` and :func:`find_toolchain` (native and cross
  compilers found by ckpm's compiler detection; qemu to run a cross target's programs).
- :mod:`ckpm.build.recipes`: :func:`run_recipe` runs a recipe's steps (script, make, cmake,
  pip, copy) in a :class:`BuildContext`, in the clean environment of :func:`build_env`.
- recipes are checked where they enter (:mod:`ckpm.model.recipe`, :func:`ckpm.model.recipe_checks.check_recipe`):
  the build takes typed :class:`~ckpm.model.recipe.Recipe` values.
- :mod:`ckpm.build.environment`: :func:`deps_env`, the variables that make dependency
  prefixes visible (to a build, and to ``ckpm env``).
- :mod:`ckpm.build.process`: how one build command runs (log, deadline, process group).

Only what the user asked to provision is built: a recipe is data from an index or a
manifest, checked whole before its first command, run outside the source tree's original
and outside the store's finished prefixes (into a staging folder the store hands out).
"""
