"""Issue 24, finding 9: an operator's mistake with ``ckpm-registry`` is one ``error:`` line with a
hint and ckpm's exit codes (1 a bad input, 64 a wrong command line), never a traceback.

Each case runs the real ``ckpm-registry`` command line in a subprocess, as an operator would.
"""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ckpm.errors import EXIT_CODES, UsageError


def registry(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm_registry", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def one_error(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """The process failed with ``code``: one ``error:`` line (and a hint or usage), no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert code in EXIT_CODES
    err = proc.stderr
    assert "Traceback" not in err and 'File "' not in err, err
    lines = [x for x in err.splitlines() if x.strip()]
    errors = [x for x in lines if x.lower().startswith("error:")]
    assert len(errors) == 1, err
    assert len(lines) <= 4, err
    for w in words:
        assert w in err, (w, err)


@pytest.fixture
def bare_index(git_index_factory: Any) -> Path:
    return Path(git_index_factory({}, name="lab").git.path)


def test_missing_index(tmp_path: Path) -> None:
    proc = registry("serve", "--index", str(tmp_path / "nothing.git"), "--port", "0")
    one_error(proc, 1, "no git repository", "hint:")


def test_non_bare_repository(git_repo_factory: Any, tmp_path: Path) -> None:
    work = git_repo_factory("lib-a", {"v1.0.0": {"ckpm.toml": "x = 1\n"}}, bare=False)
    proc = registry("serve", "--index", str(work.path), "--port", "0")
    one_error(proc, 1, "working tree", "hint:", "git clone --bare")


def test_port_in_use(bare_index: Path) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    try:
        port = held.getsockname()[1]
        proc = registry("serve", "--index", str(bare_index), "--port", str(port))
        one_error(proc, 1, f"port {port}", "in use", "hint:")
    finally:
        held.close()


@pytest.mark.parametrize("port", ["99999", "-1", "eighty"])
def test_port_out_of_range(bare_index: Path, port: str) -> None:
    proc = registry("serve", "--index", str(bare_index), "--port", port)
    one_error(proc, UsageError.exit_code, "--port")
    assert "Usage: ckpm-registry serve" in proc.stderr


def test_tokens_file_that_is_not_one(bare_index: Path) -> None:
    proc = registry("serve", "--index", str(bare_index), "--port", "0", "--tokens", "/etc/passwd")
    one_error(proc, 1, "/etc/passwd", "hint:", "token")


def test_tokens_file_that_is_a_folder(bare_index: Path, tmp_path: Path) -> None:
    proc = registry("serve", "--index", str(bare_index), "--port", "0", "--tokens", str(tmp_path))
    one_error(proc, UsageError.exit_code, "--tokens")


def test_unknown_host(bare_index: Path) -> None:
    proc = registry("serve", "--index", str(bare_index), "--port", "0", "--host", "no such host!")
    one_error(proc, 1, "cannot listen", "hint:")


def test_owners_and_tokens_mistakes(bare_index: Path, tmp_path: Path) -> None:
    one_error(registry("owners", "add", "Bad Name!", "alice", "--index", str(bare_index)), UsageError.exit_code,
              "not a component name")
    one_error(registry("owners", "add", "lib-a", "not a login", "--index", str(bare_index)), UsageError.exit_code,
              "not a login")
    one_error(registry("owners", "list", "lib-a", "--index", str(tmp_path / "missing.git")), 1,
              "no git repository", "hint:")
    one_error(registry("token", "remove", "nobody", "--tokens", str(tmp_path / "t.toml")), 1,
              "nobody has no token", "hint:")
    one_error(registry("token", "add", "alice", "--tokens", "/etc/passwd"), 1, "/etc/passwd")
    one_error(registry("serve"), UsageError.exit_code, "--index")
    one_error(registry("frobnicate"), UsageError.exit_code, "frobnicate")


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    proc = registry("-v", "serve", "--index", str(tmp_path / "nothing.git"), "--port", "0")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "error: no git repository" in proc.stderr


def test_help_is_one_style() -> None:
    top = registry("--help")
    assert top.returncode == 0 and "Usage: ckpm-registry" in top.stdout
    for cmd in ("serve", "token", "owners"):
        assert cmd in top.stdout
    serve = registry("serve", "-h")
    assert serve.returncode == 0 and "--index" in serve.stdout and "--port" in serve.stdout


def test_a_database_or_owners_file_that_cannot_be_used_is_one_error(bare_index: Path) -> None:
    """Errors of the service are ServiceErrors (CkpmErrors): the database URL and the owners file
    reach the operator as one line too."""
    one_error(registry("serve", "--index", str(bare_index), "--port", "0", "--database", "mysql://x"), 1,
              "--database takes")
    state = bare_index / "ckpm-registry"
    state.mkdir(exist_ok=True)
    (state / "owners.json").write_text("{not json")
    one_error(registry("owners", "list", "lib-a", "--index", str(bare_index)), 1, "owners.json", "not JSON")


def test_every_error_class_of_the_registry_is_under_one_root() -> None:
    import importlib
    import inspect
    import pkgutil

    import ckpm_registry
    from ckpm.errors import CkpmError
    from ckpm_registry.errors import ServiceError

    found = {}
    for mod in pkgutil.iter_modules(ckpm_registry.__path__):
        if mod.name == "__main__":
            continue
        m = importlib.import_module(f"ckpm_registry.{mod.name}")
        for name, obj in vars(m).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("ckpm_registry"):
                found[f"{obj.__module__}.{name}"] = obj
    assert len(found) >= 7, found
    assert [n for n, c in found.items() if not issubclass(c, ServiceError)] == []
    assert issubclass(ServiceError, CkpmError)
