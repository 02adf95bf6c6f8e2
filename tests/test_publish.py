"""The client side of publishing that needs no registry: where tokens come from, the user
config they are kept in (mode 0600 from the first byte), targets, and ``ckpm.access``.

The registry paths (login's GET /api/v1/me, PUT /api/v1/publish, yank over HTTP) are tested
against the real service in ``registry/`` (tests/test_publish_registry.py once it is on main).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

import ckpm
from ckpm.errors import UsageError
from ckpm.publishing import AuthError, logout, parse_spec, resolve_target, token_for, write_private
from ckpm.publishing.credentials import _editing_config
from ckpm.settings import Settings, read_config
from ckpm.testing import GitRepoFactory, component_toml, entry

pytest_plugins = ["ckpm.testing"]

API = "http://127.0.0.1:9"  # never contacted by these tests


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", env={"HOME": str(tmp_path / "home"), **env},
                    config_path=tmp_path / "cfg" / "config.toml")


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_write_private_is_0600_from_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new file, and a file that was 0644 before: the temporary file renamed into place is
    already 0600 (checked at the moment of the rename), and so is the result."""
    seen: list[int] = []
    real = os.replace

    def watching(src: Any, dst: Any) -> None:
        seen.append(mode(Path(src)))
        real(src, dst)

    monkeypatch.setattr(os, "replace", watching)
    p = tmp_path / "new" / "config.toml"
    write_private(p, 'x = 1\n')
    assert mode(p) == 0o600 and mode(p.parent) & 0o077 == 0
    shared = tmp_path / "shared.toml"
    shared.write_text("[detect]\nroots = []\n")
    shared.chmod(0o644)
    write_private(shared, "[detect]\nroots = []\n[registries]\n")
    assert mode(shared) == 0o600
    assert seen == [0o600, 0o600]


def test_a_config_reached_through_a_link_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "ckpm.toml"
    real.parent.mkdir()
    real.write_text("[detect]\nroots = []\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    write_private(link, "[detect]\nroots = []\n[registries]\n")
    assert link.is_symlink() and "[registries]" in real.read_text() and mode(real) == 0o600


def test_plain_http_to_another_machine_is_the_only_exposed_transport() -> None:
    from ckpm.publishing import exposed_in_transit

    assert exposed_in_transit("http://registry.example.org/api")
    assert exposed_in_transit("http://10.0.0.5:8080")
    for safe in ("https://registry.example.org", "http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80"):
        assert not exposed_in_transit(safe), safe


def test_the_token_is_kept_with_the_rest_of_the_config_and_logout_forgets_it(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    cfg = Path(s.config_path)  # type: ignore[arg-type]
    cfg.parent.mkdir()
    cfg.write_text('# my settings\n[detect]\nroots = ["/data"]\n\n[mirrors]\n"https://a/" = ["/m/"]\n')
    cfg.chmod(0o644)
    with _editing_config(s) as doc:  # what login does after GET /api/v1/me answered
        doc["registries"] = {API: {"token": "tok-123", "user": "alice"}}
    assert mode(cfg) == 0o600
    text = cfg.read_text()
    assert text.startswith("# my settings\n") and 'roots = ["/data"]' in text
    assert read_config(cfg)["registries"][API]["token"] == "tok-123"
    assert token_for(API, settings_for(tmp_path)) == "tok-123"
    assert token_for(API + "/", settings_for(tmp_path)) == "tok-123"
    assert logout(API, settings=settings_for(tmp_path)) == [API]
    assert "registries" not in read_config(cfg) and read_config(cfg)["detect"] == {"roots": ["/data"]}
    assert logout(API, settings=settings_for(tmp_path)) == []
    assert token_for(API, settings_for(tmp_path)) is None


def test_token_order_option_then_environment_then_config(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    write_private(Path(s.config_path), f'[registries."{API}"]\ntoken = "from-config"\n')  # type: ignore[arg-type]
    assert token_for(API, settings_for(tmp_path)) == "from-config"
    assert token_for(API, settings_for(tmp_path, CKPM_TOKEN="from-env")) == "from-env"
    assert token_for(API, settings_for(tmp_path, CKPM_TOKEN="from-env"), "from-option") == "from-option"


def test_a_token_in_a_config_others_can_read_is_warned_about(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    cfg = Path(s.config_path)  # type: ignore[arg-type]
    cfg.parent.mkdir()
    cfg.write_text(f'[registries."{API}"]\ntoken = "t"\n')
    cfg.chmod(0o644)
    assert token_for(API, s) == "t"
    assert any("others may read it" in w and "chmod 600" in w for w in s.reporter.warnings)


@pytest.mark.parametrize("bad", ["", "has space", "new\nline", "x" * 5000, "tab\there", "é"])
def test_a_token_that_could_break_a_header_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(AuthError):
        token_for(API, settings_for(tmp_path), bad or " ")


def test_a_broken_config_is_reported_and_left_alone(tmp_path: Path) -> None:
    from ckpm.settings import SettingsError

    s = settings_for(tmp_path)
    cfg = Path(s.config_path)  # type: ignore[arg-type]
    cfg.parent.mkdir()
    cfg.write_text('[registries\ntoken = "t"\n')
    with pytest.raises(SettingsError, match="config.toml: not a valid ckpm config"):
        logout(settings=s)
    assert cfg.read_text() == '[registries\ntoken = "t"\n'


def test_targets_and_specs(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    assert resolve_target("git+file:///srv/i.git", None, s).kind == "git"
    assert resolve_target("/srv/i.git", None, s).describe() == "git index /srv/i.git"
    with pytest.raises(UsageError, match="--index GIT_URL"):
        resolve_target(None, None, s)
    with pytest.raises(UsageError, match="not both"):
        resolve_target("/srv/i.git", "http://x", s)
    with pytest.raises(UsageError, match="http"):
        resolve_target(None, "/srv/i.git", s)
    assert parse_spec("lib-foo@1.2.0") == ("lib-foo", "1.2.0")
    for bad in ("lib-foo", "Lib@1", "lib@", "@1.0"):
        with pytest.raises(UsageError):
            parse_spec(bad)


def test_access_publishes_and_yanks(tmp_path: Path, git_repo_factory: GitRepoFactory, git_index_factory: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKPM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CKPM_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("CKPM_INDEX", raising=False)
    index = git_index_factory({"lib-base": [entry("lib-base", "1.0.0")]})
    origin = git_repo_factory("tool-origin", bare=True)
    work = git_repo_factory("tool", bare=False)
    work.repo.remotes.create("origin", origin.url)
    work.commit({"ckpm.toml": component_toml("tool", "0.1.0", kind="tool")})
    work.tag("v0.1.0")
    work.repo.remotes["origin"].push(["refs/heads/main:refs/heads/main", "refs/tags/v0.1.0:refs/tags/v0.1.0"])
    out = ckpm.access({"action": "publish", "path": str(work.path), "index": index.url, "dry_run": True})
    assert out["return"] == 0 and out["dry_run"] and out["line"]["source"]["tag"] == "v0.1.0"
    out = ckpm.access({"action": "publish", "path": str(work.path), "index": index.url})
    assert out["return"] == 0 and len(out["index_commit"]) == 40
    out = ckpm.access({"action": "publish", "path": str(work.path), "index": index.url})
    assert out["return"] == 1 and out["code"] == "already-published"
    out = ckpm.access({"action": "yank", "spec": "tool@0.1.0", "index": index.url})
    assert out["return"] == 0 and out["yanked"] is True
    out = ckpm.access({"action": "logout"})
    assert out == {"return": 0, "forgotten": [], "warnings": []}
