"""The suite's own setup: ckpm's pytest fixtures (opt-in, as any project would), a clean environment."""
from __future__ import annotations

import os

import pytest

pytest_plugins = ["ckpm.testing"]


@pytest.fixture(autouse=True)
def _no_inherited_ckpm_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never inherit the caller's CKPM_* settings (overrides, index, python, config, cache)."""
    for k in list(os.environ):
        if k.startswith("CKPM_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CKPM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "ckpm-cache"))
    monkeypatch.setenv("CKPM_CONFIG", str(tmp_path_factory.getbasetemp() / "no-ckpm-config.toml"))
    monkeypatch.setenv("CKPM_STORE", str(tmp_path_factory.getbasetemp() / "ckpm-store"))
