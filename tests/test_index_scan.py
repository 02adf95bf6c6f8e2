"""A cold scan of a folder index read by two processes (ckpm.index.scan): the same summaries
and warnings as one process, and a child that fails is only slower. Real forks and files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ckpm.index import scan as scan_mod
from ckpm.index.folder import FolderIndex
from ckpm.index.layout import entry_path
from ckpm.index.scan import can_fork, scan
from ckpm.index.summary_cache import Scanned
from ckpm.index.writer import init_index, write_component
from ckpm.model.entry import MAX_FILE_BYTES, ComponentSummary
from ckpm.testing import entry

needs_fork = pytest.mark.skipif(not can_fork(), reason="a forked reader needs Linux and two cores")


def _index(root: Path, n: int) -> Path:
    init_index(root, "lab")
    for i in range(n):
        write_component(root, [entry(f"lib-{i:03d}", "1.0", tags=[f"g{i % 3}"]),
                               entry(f"lib-{i:03d}", "1.1", tags=["x"], description=f"number {i}")])
    # the odd files: bad lines, a file refused whole, one with no usable line
    p = root / entry_path("lib-007")
    p.write_text(p.read_text() + '{"name":"lib-007","version":"bad version"}\nnot json\n')
    p = root / entry_path("lib-021")
    p.write_text(p.read_text() + "\n" * (MAX_FILE_BYTES + 1))
    p = root / entry_path("lib-030")
    p.write_text('{"name":"someone-else","version":"1.0"}\n')
    (root / "summary.jsonl").unlink(missing_ok=True)
    return root


def _read(root: Path, cache: Path) -> tuple[list[tuple[str, str, list[str], str, tuple[str, ...]]], list[str]]:
    idx = FolderIndex(root, cache_dir=cache)
    got = [(s.name, s.kind, sorted(s.tags), s.description, tuple(s.versions)) for s in idx.summaries()]
    return got, idx.reporter.warnings


@needs_fork
def test_two_processes_read_the_same_summaries_and_warnings_as_one(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = _index(tmp_path / "idx", 40)
    monkeypatch.setattr(FolderIndex, "parallel_scan", False)
    one = _read(root, tmp_path / "one")
    monkeypatch.setattr(FolderIndex, "parallel_scan", True)
    monkeypatch.setattr(scan_mod, "MIN_FILES", 10)
    two = _read(root, tmp_path / "two")
    assert two == one
    names = [n for n, *_ in one[0]]
    assert len(names) == 38 and "lib-021" not in names and "lib-030" not in names  # refused, no usable line
    assert any("lib-021" in w for w in one[1]) and any("bad version" in w for w in one[1])
    # what two processes kept in the cache is what one kept: the next search reads it the same
    assert _read(root, tmp_path / "two") == one
    assert (sorted((tmp_path / "two" / "index-summary").iterdir())[0].read_text()
            == sorted((tmp_path / "one" / "index-summary").iterdir())[0].read_text())


def _by_pid(name: str) -> Scanned:
    return Scanned(f"{os.getpid()}", ComponentSummary(name, "lib", frozenset({"t"}), "d", ("1.0",)), ("p",))


@needs_fork
def test_the_child_reads_the_second_half(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_mod, "MIN_FILES", 4)
    names = [f"c{i}" for i in range(10)]
    got = scan(_by_pid, names)
    assert list(got) == names
    here = str(os.getpid())
    assert [got[n].key == here for n in names] == [True] * 5 + [False] * 5
    s = got["c9"]
    assert s.summary == ComponentSummary("c9", "lib", frozenset({"t"}), "d", ("1.0",)) and s.problems == ("p",)
    assert scan(_by_pid, names, parallel=False)["c9"].key == here


def _forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children scan() forks (the real fork, recorded)."""
    pids: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return pids


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@needs_fork
@pytest.mark.parametrize("how", ["raises", "killed", "unmarshallable"])
def test_a_child_that_fails_is_only_slower(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr(scan_mod, "MIN_FILES", 4)
    pids = _forks(monkeypatch)
    parent = os.getpid()

    def read_one(name: str) -> Scanned:
        if os.getpid() != parent:
            if how == "raises":
                raise RuntimeError("broken child")
            if how == "killed":
                os.kill(os.getpid(), 9)
            return Scanned("k", ComponentSummary(name, "lib", frozenset(), "", (object(),)), ())  # type: ignore[arg-type]
        return _by_pid(name)

    names = [f"c{i}" for i in range(8)]
    got = scan(read_one, names)
    assert list(got) == names and {s.key for s in got.values()} == {str(parent)}
    assert len(pids) == 1 and _reaped(pids[0])


@needs_fork
def test_an_error_here_stops_and_reaps_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_mod, "MIN_FILES", 4)
    pids = _forks(monkeypatch)
    parent = os.getpid()

    def read_one(name: str) -> Scanned:
        if os.getpid() == parent and name == "c1":
            raise KeyboardInterrupt
        return _by_pid(name)

    with pytest.raises(KeyboardInterrupt):
        scan(read_one, [f"c{i}" for i in range(8)])
    assert len(pids) == 1 and _reaped(pids[0])


def test_few_files_or_threads_are_read_here(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    names = [f"c{i}" for i in range(8)]
    here = {str(os.getpid())}
    assert {s.key for s in scan(_by_pid, names).values()} == here  # under MIN_FILES
    monkeypatch.setattr(scan_mod, "MIN_FILES", 4)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert not can_fork()  # a fork would copy the locks the other thread holds
        assert {s.key for s in scan(_by_pid, names).values()} == here
    finally:
        stop.set()
        t.join()
