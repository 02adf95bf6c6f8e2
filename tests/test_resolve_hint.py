"""The hint beside a lock: a project whose last lock needed the complete search starts there."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ckpm import api
from ckpm.resolve import hint
from ckpm.resolve import resolve as rr
from ckpm.settings import Settings
from ckpm.testing import entry
from ckpm.index.writer import init_index, write_component


def _project(tmp_path: Path) -> tuple[Path, Path]:
    index = tmp_path / "index"
    init_index(index, "lab")
    write_component(index, [entry("lib-a", "1.0"), entry("lib-a", "2.0")])
    write_component(index, [entry("lib-b", "1.0", deps=["lib-a >=1"]), entry("lib-b", "2.0", deps=["lib-a <2"])])
    proj = tmp_path / "proj"
    api.init_project(proj, "proj")
    with open(proj / "ckpm.toml", "a") as f:
        f.write(f'lib-b = "*"\n\n[[index]]\nname = "lab"\nurl = "{index}"\n')
    return proj, tmp_path / "cache"


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each resolve_target call's ``complete_first`` and method; ``seen.append("force")`` makes the
    next call use the complete search whatever the hint says (as a stuck first pass would)."""
    calls: list[Any] = []
    real = rr.resolve_target

    def spy(*a: Any, **k: Any) -> Any:
        budget = k["budget"]
        asked = budget.complete_first
        if calls and calls[-1] == "force":
            calls.pop()
            budget.complete_first = True
        res = real(*a, **k)
        calls.append((asked, res.method))
        return res

    monkeypatch.setattr(rr, "resolve_target", spy)
    return calls


def _lock(proj: Path, cache: Path, **kw: Any) -> str:
    api.lock(api.Workspace(proj, Settings(cache_dir=cache, no_host=True)), api.LockOptions(**kw))
    return (proj / "ckpm.lock").read_text()


def test_a_lock_that_needed_the_complete_search_starts_there_next_time(tmp_path: Path, seen: list[Any]) -> None:
    proj, cache = _project(tmp_path)
    plain = _lock(proj, cache)
    assert seen == [(False, "resolvelib")]
    assert not (cache / "resolve-hints").exists() or not list((cache / "resolve-hints").iterdir())
    seen.append("force")  # this lock's first pass is "stuck": the complete search answers, and it is noted
    assert _lock(proj, cache, upgrade=True) == plain
    assert seen[-1] == (False, "sat")
    path = hint.hint_path(cache, proj / "ckpm.lock")
    assert path.is_file()
    assert _lock(proj, cache, upgrade=True) == plain  # starts with the complete search: the same lock
    assert seen[-1] == (True, "sat")
    # a changed manifest drops the hint: only the first pass can tell whether the graph is easy now
    text = (proj / "ckpm.toml").read_text()
    (proj / "ckpm.toml").write_text(text.replace('lib-b = "*"', 'lib-b = "*"\nlib-a = "*"'))
    assert 'key = "lib-a", name = "lib-a", version = "1.0"' in _lock(proj, cache, upgrade=True)
    assert seen[-1] == (False, "resolvelib")
    assert not path.exists()  # a lock by resolvelib leaves no hint


@pytest.mark.parametrize("damage", [
    b"", b"not json", b"[]", b'{"format": 1}', b'{"format": 2, "manifest": "M", "complete": []}',
    b'{"format": 1, "manifest": "M", "complete": "linux-x86_64"}', b'{"format": 1, "manifest": "M", "complete": [1]}',
    b" " * (hint.MAX_HINT_BYTES + 1),
])
def test_a_damaged_hint_is_no_hint(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "h.json"
    path.write_bytes(damage.replace(b'"M"', b'"abc"'))
    assert hint.read(path, "abc") == frozenset()


def test_a_hint_reads_back_and_is_not_rewritten_when_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "hints" / "h.json"
    hint.write(path, "abc", {"linux-x86_64"}, frozenset())
    assert hint.read(path, "abc") == {"linux-x86_64"}
    assert hint.read(path, "other") == frozenset()
    mtime = path.stat().st_mtime_ns
    path.chmod(0o444)
    hint.write(path, "abc", {"linux-x86_64"}, frozenset({"linux-x86_64"}))
    assert path.stat().st_mtime_ns == mtime
    hint.write(path, "abc", set(), frozenset({"linux-x86_64"}))
    assert not path.exists()
    (tmp_path / "ro").mkdir(mode=0o500)
    hint.write(tmp_path / "ro" / "sub" / "h.json", "abc", {"x"}, frozenset())  # cannot be written: no error
