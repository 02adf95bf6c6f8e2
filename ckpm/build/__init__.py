"""Builds: recipes (make, cmake, script, pip, copy) and toolchains (native and cross)."""
