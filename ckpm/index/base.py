"""The Index protocol that every client implements, and :class:`FileIndex`, the shared reader.

Index data is someone else's data. Every file is read through :meth:`FileIndex._read_file`
(size caps) and every line through :func:`parse_component` / :func:`parse_summary_text`
(line cap, JSON depth, then :func:`ckpm.model.entry.check_entry`): a bad line is skipped
and reported as ``INDEX/FILE:LINE: what is wrong``, a file over its caps is refused as a
whole with one error. The limits live in :mod:`ckpm.model.entry`; docs/formats.md
("Limits") lists them and says which problems skip a line and which refuse a file.

This module imports none of the clients built on it; :func:`ckpm.index.open_index`
(:mod:`ckpm.index.open`) picks one from a URL.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, TypeVar, runtime_checkable

from ckpm.errors import IndexReadError
from ckpm.index.layout import CONFIG, SUMMARY, entry_path
from ckpm.gcpause import paused_gc
from ckpm.model.entry import (
    MAX_CONFIG_BYTES, MAX_FIELD_LEN, MAX_FILE_BYTES, MAX_NAME_LEN, MAX_SUMMARY_BYTES,
    MAX_SUMMARY_LINE_BYTES, MAX_VERSIONS, NAME_RE, ComponentSummary, IndexDataError, IndexEntry,
    check_entry, check_summary, fast_entries, fast_summary_fields, load_index_line, load_json_line, shown,
    summary_fields, utf8_len, valid_name,
)
from ckpm.report import Reporter, escape_control

if TYPE_CHECKING:
    from pathlib import Path

    from ckpm.index.summary_cache import Scanned

SUPPORTED_FORMAT = 1

T = TypeVar("T")

#: bad lines of one file reported one by one; the rest are counted in one more message
MAX_LINE_WARNINGS = 20


@runtime_checkable
class Index(Protocol):
    """A registry of components. Reads are lazy and memoised per instance.

    Problems in the index's data that do not stop a read (a skipped line, a stale
    summary entry, a cached copy used because the server is down) go to its
    :attr:`reporter` (:class:`ckpm.report.Reporter`), which keeps them in order, once each.
    """

    name: str
    url: str
    reporter: Reporter

    def entries(self, name: str) -> list[IndexEntry]:
        """Every valid published version of ``name``, oldest first; [] when unknown.

        Raises IndexReadError when the component's file is refused as a whole (over a cap).
        """
        ...

    def find_entry(self, name: str, version: str) -> IndexEntry | None:
        """The entry of ``name`` at ``version`` as ``entries(name)`` has it, or None (reads only
        what it needs where it can). Raises IndexReadError as ``entries`` does."""
        ...

    def summaries(self) -> list[ComponentSummary]:
        """One summary per component (for search, tag queries and suggestions).

        Folder and git indexes leave out a summary line whose component file is gone;
        an HTTP index cannot tell cheaply, so callers must tolerate a summary whose
        ``entries()`` is [] (a stale summary.jsonl).
        """
        ...

    def all_names(self) -> list[str]:
        """The component names of the index, sorted (its files where they can be listed, else its summary)."""
        ...

    def revision(self) -> str | None:
        """A commit or content revision that identifies this state of the index, if any."""
        ...

    def update(self) -> str | None:
        """Bring the index up to date (fetch a git index, revalidate HTTP, re-read a folder)
        and forget what was read; returns the new revision, if any."""
        ...

    def close(self) -> None:
        """Release what the index holds open (sessions); reads after it may reopen them."""
        ...


# -- parsing, shared by the clients and the writer --------------------------------------------

def _split(text: str) -> list[str]:
    """JSON Lines are separated by ``\\n`` only (a JSON string may hold U+2028 or a form feed)."""
    return text.split("\n")


def _size_text(text: str) -> str:
    n = utf8_len(text) if len(text) <= 4 * MAX_SUMMARY_BYTES else len(text)
    return f"{n:,} bytes"


def size_error(origin: str, size: str, limit: int, what: str) -> IndexDataError:
    """The one error for a file refused because it is over its size cap."""
    return IndexDataError(f"{origin}: {what} of {size}, over the cap of {limit:,} bytes; refused")


def check_text_size(text: str, origin: str, limit: int, what: str) -> None:
    """Raise :func:`size_error` when ``text`` is over ``limit`` bytes of UTF-8."""
    if len(text) > limit or (len(text) * 4 > limit and utf8_len(text) > limit):
        raise size_error(origin, _size_text(text), limit, what)


def _check_component_caps(text: str, origin: str) -> list[str]:
    """Refuse a component file over its size or its count of versions (IndexDataError); else its lines."""
    check_text_size(text, origin, MAX_FILE_BYTES, "a component file")
    lines = _split(text)  # at most MAX_FILE_BYTES, so split it
    if len(lines) - 1 >= MAX_VERSIONS:  # as many \n
        count = sum(1 for line in lines if line.strip())
        if count > MAX_VERSIONS:
            raise IndexDataError(f"{origin}: {count:,} versions, over the cap of {MAX_VERSIONS:,} per component; "
                                 "refused")
    return lines


#: what a line of someone else's JSON can raise besides IndexDataError (reported, never raised)
_LINE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError)


def _parse_lines(text: str, origin: str, what: str, parse: Callable[[str], T], *,
                 lines: list[str] | None = None, done: list[T | None] | None = None) -> tuple[list[T], list[str]]:
    """``parse`` of each non-empty line, and ``ORIGIN:LINE: what is wrong; line skipped`` for each that fails.

    ``lines`` is ``_split(text)`` when the caller has it; ``done``, aligned with ``lines``,
    what a faster path already made of a line (None: ``parse`` that line).
    """
    out: list[T] = []
    problems: list[str] = []
    if lines is None:
        lines = _split(text)
    for no, line in enumerate(lines, 1):
        if done is not None:
            got = done[no - 1]
            if got is not None:
                out.append(got)
                continue
        if not line.strip():
            continue
        try:
            out.append(parse(line))
        except IndexDataError as e:
            problems.append(f"{origin}:{no}: {e.message}; line skipped")
        except _LINE_ERRORS as e:
            problems.append(f"{origin}:{no}: malformed {what} ({type(e).__name__}: {shown(str(e))}); line skipped")
    return out, problems


def parse_component(text: str, origin: str, name: str | None = None) -> tuple[list[IndexEntry], list[str]]:
    """The valid lines of a component file, and one message per skipped line.

    ``origin`` names the file in messages (``ORIGIN:LINE: what is wrong; line skipped``);
    ``name`` is the component the file holds (each line's ``name`` must equal it). Raises
    :class:`IndexDataError` when the file is refused as a whole: over
    :data:`~ckpm.model.entry.MAX_FILE_BYTES` or over :data:`~ckpm.model.entry.MAX_VERSIONS` lines.
    """
    lines = _check_component_caps(text, origin)
    done = fast_entries(text, lines, name)
    out = [e for e in done if e is not None]
    if len(out) == len(lines) - (not lines[-1]):  # usually: each line but the last, empty one
        return out, []
    return _parse_lines(text, origin, "index line", lambda line: IndexEntry.from_line(line, name=name),
                        lines=lines, done=done)


def find_in_component(text: str, origin: str, name: str, version: str) -> IndexEntry | None:
    """The first valid line of ``version`` in a component file, or None; checks only that line.

    What ``next(e for e in parse_component(...)[0] if e.version_text == version)`` gives,
    without checking (or building) the other versions: checking that a lock still holds
    needs one line of each locked package's file. Raises :class:`IndexDataError` when the
    file is refused as a whole.
    """
    for line in _check_component_caps(text, origin):
        if not line.strip():
            continue
        try:
            raw = load_index_line(line)
            if type(raw) is dict and raw.get("version") == version:
                return check_entry(raw, name=name)
        except (IndexDataError, *_LINE_ERRORS):
            continue
    return None


def summary_of_component(text: str, origin: str, name: str, *,
                         fast: bool = True) -> tuple[ComponentSummary | None, list[str]]:
    """The summary of one component file (None when no line is usable), and one message per skipped line.

    Used to search an index that publishes no summary.jsonl: it reads what a summary shows
    (versions, kind, tags, description; :func:`~ckpm.model.entry.summary_fields`) and builds
    no :class:`IndexEntry`, so a scan of 10,000 files holds one file at a time. The caps and
    messages are those of :func:`parse_component` (which raises for a file refused whole).
    The usual lines are read by :func:`~ckpm.model.entry.fast_summary_fields` (``fast=False``:
    each line on its own, the reference the tests hold it to).
    """
    lines = _check_component_caps(text, origin)

    def fields(line: str) -> tuple[str, str, str, str]:
        raw = load_index_line(line)
        got = summary_fields(raw, name)
        if got is None:  # unusual: the full check says what is wrong (or that it is fine)
            e = check_entry(raw, name=name)
            got = e.version_text, e.kind, ",".join(e.tags), e.description
        return got

    done = fast_summary_fields(text, lines, name) if fast else None
    got, problems = _parse_lines(text, origin, "index line", fields, lines=lines, done=done)
    versions = [v for v, _, _, _ in got]
    tags = {t for _, _, low, _ in got if low for t in low.split(",")}
    if not got:
        return None, problems
    _, kind, _, description = got[-1]
    return ComponentSummary(name, kind, frozenset(tags), description, tuple(versions)), problems


def parse_summary_text(text: str, origin: str) -> tuple[list[ComponentSummary], list[str]]:
    """The valid lines of ``summary.jsonl`` (first line of each name wins), and one message per skipped line.

    Raises :class:`IndexDataError` when the file is over
    :data:`~ckpm.model.entry.MAX_SUMMARY_BYTES`.
    """
    check_text_size(text, origin, MAX_SUMMARY_BYTES, "summary.jsonl")
    seen: set[str] = set()

    def one(line: str) -> ComponentSummary:
        if utf8_len(line) > MAX_SUMMARY_LINE_BYTES:
            raise IndexDataError(f"line is {utf8_len(line):,} bytes long (at most {MAX_SUMMARY_LINE_BYTES:,})")
        s = check_summary(load_json_line(line))
        if s.name in seen:
            raise IndexDataError(f"a second line for {shown(s.name)}")
        seen.add(s.name)
        return s

    return _parse_lines(text, origin, "summary line", one)


def parse_lines(text: str, origin: str, name: str | None = None) -> list[IndexEntry]:
    """All or nothing: the entries of a component file, or IndexReadError naming the first bad line."""
    out, problems = parse_component(text, origin, name)
    if problems:
        raise IndexDataError(problems[0].removesuffix("; line skipped"))
    return out


def limit_of(rel: str) -> tuple[int, str]:
    """The size cap of the index file at layout path ``rel``, and what the file is called in messages."""
    if rel == CONFIG:
        return MAX_CONFIG_BYTES, CONFIG
    if rel == SUMMARY:
        return MAX_SUMMARY_BYTES, SUMMARY
    return MAX_FILE_BYTES, "a component file"


def at_layout_path(leaf: str, rel: str) -> bool:
    """Whether the file ``rel`` (whose last part is ``leaf``) is the component file of ``leaf``."""
    return valid_name(leaf) and leaf not in (CONFIG, SUMMARY) and entry_path(leaf) == rel


def in_layout_dir(leaf: str, rel_dir: str) -> bool:
    """``at_layout_path(leaf, rel_dir + leaf)``, the folder compared first: a walk of 10,000
    component files asks this for each, and the name's check runs once instead of twice."""
    n = len(leaf)
    if n >= 4:
        ok = rel_dir == f"{leaf[:2]}/{leaf[2:4]}/"
    elif n == 3:
        ok = rel_dir == f"3/{leaf[0]}/"
    else:
        ok = rel_dir == f"{n}/"
    return ok and leaf not in (CONFIG, SUMMARY) and valid_name(leaf)


#: many valid names (NAME_RE), each followed by "/" (which no file name holds): one match checks a folder's files
_NAMES_RE = re.compile(f"(?:{NAME_RE.pattern}/)*")


def layout_leaves(rel_dir: str, leaves: list[str]) -> list[str]:
    """``[leaf for leaf in leaves if in_layout_dir(leaf, rel_dir)]``, with the folder read once
    and the names checked in one match: a walk of 10,000 component files spends a third of its
    time on that check, file by file."""
    parts = rel_dir.split("/")
    if len(parts) == 3 and len(parts[0]) == 2 and len(parts[1]) == 2 and not parts[2]:
        prefix = parts[0] + parts[1]  # "ab/cd/": names of four or more characters starting "abcd"
        keep = [leaf for leaf in leaves if leaf.startswith(prefix)]
    elif len(parts) == 3 and parts[0] == "3" and len(parts[1]) == 1 and not parts[2]:
        first = parts[1]  # "3/a/": names of three characters starting "a"
        keep = [leaf for leaf in leaves if len(leaf) == 3 and leaf[0] == first]
    elif len(parts) == 2 and parts[0] in ("1", "2") and not parts[1]:
        n = int(parts[0])
        keep = [leaf for leaf in leaves if len(leaf) == n]
    else:
        return []  # no other folder holds a component file
    if not keep:
        return keep
    if (_NAMES_RE.fullmatch("/".join(keep) + "/") is not None and max(map(len, keep)) <= MAX_NAME_LEN
            and CONFIG not in keep and SUMMARY not in keep):
        return keep
    return [leaf for leaf in keep if in_layout_dir(leaf, rel_dir)]  # some name is bad: each on its own


def layout_names(rel_paths: Iterable[str]) -> list[str]:
    """The component names whose files stand at their layout path among ``rel_paths``, sorted."""
    return sorted(leaf for rel in rel_paths if at_layout_path(leaf := rel.rsplit("/", 1)[-1], rel))


# -- the shared reader --------------------------------------------------------------------------

class FileIndex(ABC):
    """An index read file by file: name, config, entries and summaries, memoised per instance.

    Subclasses say how a file is read (:meth:`_read`), how it is named in messages
    (:meth:`_where`), and what to do without ``summary.jsonl`` (:meth:`_scan_summaries`).
    Nothing is read until the first use of :attr:`config`, :meth:`entries` or :meth:`summaries`.

    Problems in the data go to ``reporter.warning`` (:class:`ckpm.report.Reporter`; without
    one, the index has its own, which only collects them).
    """

    url: str
    #: whether a scan may read half the component files in a forked child (ckpm.index.scan)
    parallel_scan = False

    def __init__(self, name: str | None, *, reporter: "Reporter | None" = None) -> None:
        self._name = name
        self.reporter: Reporter = reporter if reporter is not None else Reporter()
        self._config: dict[str, Any] | None = None
        self._entries: dict[str, list[IndexEntry]] = {}
        self._refused: dict[str, IndexReadError] = {}
        self._summaries: list[ComponentSummary] | None = None
        self._listing: frozenset[str] | None = None
        # where scanned summaries are kept, and the identity of the index they belong to (None: not kept)
        self.summary_cache: "tuple[Path, str] | None" = None
        # where parsed component files are kept (ckpm.index.parsed_cache; None: not kept)
        self.parsed_cache: "Path | None" = None

    # -- what a subclass provides ---------------------------------------------------------

    @abstractmethod
    def _read(self, rel: str) -> str | None:
        """The text of the file at layout path ``rel``; None when the index has no such file.

        May raise :class:`IndexDataError` (e.g. :func:`size_error`) to refuse a file
        before reading it all.
        """

    @abstractmethod
    def _where(self, rel: str) -> str:
        """How messages name the file ``rel`` of this index (a path or URL)."""

    @abstractmethod
    def _default_name(self) -> str:
        """The name when neither the constructor nor config.json gives one."""

    @abstractmethod
    def _not_an_index(self) -> IndexReadError:
        """The error for an index without config.json."""

    def _file_keys(self) -> dict[str, str]:
        """Every component file at its layout path: name → a key that changes with its content."""
        raise NotImplementedError

    def _content_key(self, rel: str) -> str | None:
        """A key that changes whenever the content of the file at ``rel`` does, known before it
        is read (a folder's ``size:mtime_ns:inode``, a git index's blob id), or None: then
        :meth:`_key_after_read` is asked once the file was read."""
        return None

    def _key_after_read(self, rel: str) -> str | None:
        """The key of the content of ``rel`` as it was just read (an HTTP index's strong ETag), or None."""
        return None

    def _scan_summaries(self) -> list[ComponentSummary]:
        """The summaries of an index that publishes no summary.jsonl: each component file read
        once, one at a time (:func:`summary_of_component`), and kept in
        :attr:`summary_cache` by the file's key (ckpm.index.summary_cache), so that
        the next scan reads only what changed.

        A component file that is refused as a whole is reported as a warning and left out
        (one bad component must not break search).
        """
        from ckpm.index.scan import scan
        from ckpm.index.summary_cache import load, save

        keys = self._file_keys()
        where = self.summary_cache
        old = load(*where) if where is not None else {}
        names = sorted(keys)
        todo = [n for n in names if (h := old.get(n)) is None or h.key != keys[n]]
        read = scan(lambda n: self._scan_file(n, keys[n]), todo, parallel=self.parallel_scan)
        changed = bool(todo)
        fresh = {}
        for name in names:
            hit = read[name] if name in read else old[name]
            fresh[name] = hit
            if hit.problems:
                self._warn_lines(list(hit.problems), self._where(entry_path(name)))
        # unchanged when every line was a hit (the same objects) and no file is gone: no need to
        # compare 10,000 summaries field by field
        if where is not None and (changed or len(fresh) != len(old)):
            save(*where, fresh)
        return [h.summary for h in fresh.values() if h.summary is not None]

    def _scan_file(self, name: str, key: str) -> "Scanned":
        """What a scan finds in component ``name``'s file, whose key is ``key`` (no warning said)."""
        from ckpm.index.summary_cache import Scanned

        rel = entry_path(name)
        try:
            text = self._read_file(rel)
            summary, problems = summary_of_component(text or "", self._where(rel), name)
        except IndexDataError as e:
            summary, problems = None, [e.message]
        return Scanned(key, summary, tuple(problems))

    # -- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name given to the constructor, else config.json's ``name`` (reads the index)."""
        if self._name is None:
            self._name = str(self.config.get("name") or self._default_name())
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def config(self) -> dict[str, Any]:
        """The parsed config.json of the index (read once; a missing one means this is no index)."""
        if self._config is None:
            where = self._where(CONFIG)
            text = self._read_file(CONFIG)
            if text is None:
                raise self._not_an_index()
            try:
                cfg = load_json_line(text)
            except IndexDataError as e:
                raise IndexReadError(escape_control(f"{where}: malformed {CONFIG} ({e.message})")) from None
            if not isinstance(cfg, dict):
                raise IndexReadError(f"{where}: malformed {CONFIG} (not an object)")
            fmt = cfg.get("format", SUPPORTED_FORMAT)
            if not isinstance(fmt, int) or fmt > SUPPORTED_FORMAT:
                raise IndexReadError(escape_control(f"{self.url}: index format {shown(fmt)} is newer than this ckpm "
                                                 f"reads ({SUPPORTED_FORMAT})"), hint="upgrade ckpm")
            name = cfg.get("name")
            if name is not None and (not isinstance(name, str) or not name.isprintable()
                                     or len(name) > MAX_FIELD_LEN):
                raise IndexReadError(escape_control(f"{where}: malformed {CONFIG} (name {shown(name)} is not a "
                                                 "printable string)"))
            self._config = cfg
        return self._config

    def revision(self) -> str | None:
        """None: this kind of index has no revision that names its whole state."""
        return None

    # -- reads ----------------------------------------------------------------------------

    def entries(self, name: str) -> list[IndexEntry]:
        """Every valid version of ``name``, oldest first; [] when the index has no such file.

        A bad line is skipped with a warning; a file over its caps raises IndexReadError.
        """
        n = name.lower()
        hit = self._entries.get(n)
        if hit is not None:
            return hit
        out: list[IndexEntry] = []
        if valid_name(n):
            out = self._entries_of(n)
        self._entries[n] = out
        return out

    def _entries_of(self, n: str) -> list[IndexEntry]:
        """The entries of component ``n`` (a valid name): kept in :attr:`parsed_cache` under its
        file's key when they are there, else read, parsed and (when no line has a problem) kept."""
        folder = self.parsed_cache
        rel = entry_path(n)
        key = None
        if folder is not None:
            refused = self._refused.get(n)
            if refused is not None:
                raise refused
            self._check_config()
            key = self._content_key(rel)
            if key is not None:
                from ckpm.index.parsed_cache import load as load_parsed

                hit = load_parsed(folder, n, key)
                if hit is not None:
                    return hit

        def parse(text: str, where: str) -> list[IndexEntry]:
            nonlocal key
            if folder is not None and key is None:
                from ckpm.index.parsed_cache import load as load_parsed

                key = self._key_after_read(rel)
                hit = load_parsed(folder, n, key) if key is not None else None
                if hit is not None:
                    return hit
            found, problems = parse_component(text, where, n)
            self._warn_lines(problems, where)
            if folder is not None and key is not None and found and not problems:
                from ckpm.index.parsed_cache import save as save_parsed

                save_parsed(folder, n, key, found)
            return found

        return self._read_component(n, parse) or []

    def find_entry(self, name: str, version: str) -> IndexEntry | None:
        """The entry of ``name`` at ``version`` (as it appears in ``entries(name)``), or None.

        Reads only that version's line when the component has not been read yet.
        """
        n = name.lower()
        hit = self._entries.get(n)
        # (not from the parsed-index cache: rebuilding every version of a file costs more than
        # parsing its one line; an unchanged re-lock of 3,063 packages took 2.6 times as long)
        if hit is not None:
            return next((e for e in hit if e.version_text == version), None)
        if not valid_name(n):
            return None
        return self._read_component(n, lambda text, where: find_in_component(text, where, n, version))

    def _read_component(self, n: str, parse: Callable[[str, str], T]) -> T | None:
        """``parse(text, where)`` of component ``n``'s file, None when it has none (or it is empty).

        A file refused as a whole raises IndexDataError, and is remembered as refused.
        """
        refused = self._refused.get(n)
        if refused is not None:
            raise refused
        self._check_config()  # a location that is no index fails here, not as "unknown component"
        rel = entry_path(n)
        try:
            text = self._read_file(rel)
            return parse(text, self._where(rel)) if text else None
        except IndexDataError as e:
            self._refused[n] = e
            raise

    def summaries(self) -> list[ComponentSummary]:
        """summary.jsonl when the index has one (bad and stale lines left out), else :meth:`_scan_summaries`."""
        if self._summaries is None:
            self._check_config()
            key = self._summary_key()
            text = self._read_file(SUMMARY)
            with paused_gc():  # 10,000 summaries that all stay alive: nothing for the collector
                if text is None:
                    self._summaries = self._scan_summaries()
                else:
                    self._summaries = self._drop_stale(self._published_summaries(text, key))
        return self._summaries

    def _summary_key(self) -> str | None:
        """A key that changes whenever summary.jsonl's content does (taken before it is read), or
        None: then its parsed lines are not kept in :attr:`summary_cache`."""
        return None

    def _published_summaries(self, text: str, key: str | None) -> list[ComponentSummary]:
        """The lines of summary.jsonl (``text``, whose key is ``key``): parsed and checked, or
        the parsed lines kept in the cache when the file's key is the same (ckpm.index.summary_cache)."""
        from ckpm.index.summary_cache import Scanned, load, published_path, save

        where = self._where(SUMMARY)
        cache = None
        if key is not None and self.summary_cache is not None:
            scan_path, url = self.summary_cache
            cache = published_path(scan_path), f"{url}#{SUMMARY}@{key}"
            kept = load(*cache)
            # each line's key is the number of lines: a line lost or damaged since is a miss
            count = str(len(kept))
            if kept and all(h.key == count and h.summary is not None for h in kept.values()):
                return [h.summary for h in kept.values() if h.summary is not None]
        items, problems = parse_summary_text(text, where)
        self._warn_lines(problems, where)
        if cache is not None and not problems and items:
            count = str(len(items))
            save(*cache, {s.name: Scanned(count, s) for s in items}, in_order=True)
        return items

    def all_names(self) -> list[str]:
        """The names in the index's summary (a client that can list its files overrides this)."""
        return sorted(s.name for s in self.summaries())

    def update(self) -> str | None:
        """Re-read: forget what was read and check config.json again; returns :meth:`revision`."""
        self._forget()
        self._check_config()
        return self.revision()

    def close(self) -> None:
        """Nothing to release."""

    # -- helpers for subclasses -----------------------------------------------------------

    def _check_config(self) -> None:
        self.config

    def _forget(self) -> None:
        """Drop what was read, so that the next reads see the index as it is now."""
        self._config = None
        self._entries.clear()
        self._refused.clear()
        self._summaries = None
        self._listing = None

    def _decode(self, data: bytes, rel: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise IndexDataError(f"{self._where(rel)}: not UTF-8 text ({e.reason} at byte {e.start}); refused") from None

    def _read_file(self, rel: str) -> str | None:
        """:meth:`_read`, with the file's size cap (:func:`limit_of`) enforced."""
        text = self._read(rel)
        if text is not None:
            limit, what = limit_of(rel)
            if len(text) * 4 > limit:  # else it cannot be over (and its name is not needed)
                check_text_size(text, self._where(rel), limit, what)
        return text

    def _has_file(self, rel: str) -> bool | None:
        """Whether the index has the file ``rel``; None when that is not cheap to know.

        A client whose :meth:`all_names` lists its files (folder, git) answers from that
        listing (read once per state); a folder overrides this with a stat.
        """
        if type(self).all_names is FileIndex.all_names:
            return None
        if self._listing is None:
            self._listing = frozenset(entry_path(n) for n in self.all_names())
        return rel in self._listing

    def _drop_stale(self, items: list[ComponentSummary]) -> list[ComponentSummary]:
        return self._keep_present(items, [self._has_file(entry_path(s.name)) for s in items])

    def _keep_present(self, items: list[ComponentSummary], present: list[bool | None]) -> list[ComponentSummary]:
        """``items`` but those whose file is known absent (``False``; None: cannot tell), each said once."""
        out = []
        for s, there in zip(items, present):
            if there is False:
                self._warn(f"{self._where(SUMMARY)}: {s.name!r} has no component file (a stale summary; "
                           "`ckpm index reindex` rebuilds it); left out")
                continue
            out.append(s)
        return out

    def _warn_lines(self, problems: list[str], where: str) -> None:
        for p in problems[:MAX_LINE_WARNINGS]:
            self._warn(p)
        if len(problems) > MAX_LINE_WARNINGS:
            self._warn(f"{where}: {len(problems) - MAX_LINE_WARNINGS} more bad lines skipped")

    def _warn(self, message: str) -> None:
        """A warning to the reporter (which says it once)."""
        self.reporter.warning(message)
