"""Mirrors: where else a source's file may be found, and where ``ckpm vendor`` puts it.

A ``[mirrors]`` table (in ``ckpm.toml``, and in the user config) maps a URL prefix to
replacement prefixes, tried in order before the URL itself::

    [mirrors]
    "https://zlib.net/fossils/" = ["https://mirror.example/zlib/", "vendor/zlib.net/fossils/"]
    "https://" = ["file:///srv/vendored/"]

For each URL of a source, the rule with the longest matching prefix applies (rule order
breaks ties); its replacements come first, then the URL itself. A replacement is an
``http(s)://`` or ``file://`` URL prefix, or a folder (relative to the file that holds the
table), which becomes a ``file://`` URL.

A ``file://`` replacement maps the rest of the URL the way :func:`vendor_relpath` lays files
out (``https://ZLIB.net:8080/a%20b?x=1`` under the rule ``https://`` reads
``<folder>/zlib.net_8080/a b_<hash>``), so one rule per scheme turns a folder made by
``ckpm vendor`` into a mirror. Every path segment is percent-decoded one at a time and
refused when it is empty, ``.``, ``..`` or holds a separator, so a URL from a lock or an
index can never name a file outside the mirror's folder: such a URL simply gets no
``file://`` candidate from the rule (its other candidates are unchanged).

Matching compares scheme and host case-insensitively; the rest of the URL is compared as
written. Everything here is pure string work: no I/O but turning a relative folder into
an absolute path.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote, unquote, urlsplit

#: bounds on a [mirrors] table (it is data someone else may have written)
MAX_RULES = 256
MAX_REPLACEMENTS = 16
MAX_STRING = 2048
#: the longest path segment :func:`vendor_relpath` makes (bytes, a common file-system limit)
MAX_SEGMENT_BYTES = 255

SCHEMES = ("http", "https", "file")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_DRIVE_RE = re.compile(r"^[A-Za-z]:[\\/]")
_HOST_RE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _split_authority(url: str) -> tuple[str, str, str]:
    """``(scheme, authority, rest)`` of ``scheme://authority/rest`` (scheme and authority as
    written; ``rest`` starts at the first ``/``, ``?`` or ``#`` after the authority)."""
    scheme, sep, tail = url.partition("://")
    if not sep:
        return "", "", url
    m = re.search(r"[/?#]", tail)
    cut = m.start() if m else len(tail)
    return scheme, tail[:cut], tail[cut:]


def normalize_url(url: str) -> str:
    """``url`` with its scheme and authority lowercased (they are case-insensitive), the
    rest as written: the form prefixes are matched in."""
    scheme, authority, rest = _split_authority(url)
    if not scheme:
        return url
    return f"{scheme.lower()}://{authority.lower()}{rest}"


def _check_string(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: {what} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{where}: {what} is empty")
    if len(value) > MAX_STRING:
        raise ValueError(f"{where}: {what} is longer than {MAX_STRING} characters")
    if _CONTROL_RE.search(value):
        raise ValueError(f"{where}: {what} {value!r} holds a control character")
    return value


def _check_url_prefix(value: str, what: str, where: str) -> str:
    """An ``http(s)://`` or ``file://`` prefix, normalized; ValueError naming it otherwise."""
    m = _SCHEME_RE.match(value)
    scheme = m.group(1).lower() if m else ""
    if scheme not in SCHEMES or not value[len(scheme) + 1:].startswith("//"):
        raise ValueError(f"{where}: {what} {value!r} is not an http://, https:// or file:// URL prefix")
    norm = normalize_url(value)
    if scheme == "file":
        _, authority, _ = _split_authority(norm)
        if authority not in ("", "localhost"):
            raise ValueError(f"{where}: {what} {value!r} names a host ({authority!r}); "
                             "a file:// URL needs three slashes: file:///absolute/path/")
    return norm


def _replacement(value: Any, key: str, where: str, base: Path | None) -> str:
    """One replacement prefix of the rule for ``key``, as a URL prefix."""
    what = f"the mirror {value!r} of {key!r}" if isinstance(value, str) else f"a mirror of {key!r}"
    value = _check_string(value, what, where)
    m = _SCHEME_RE.match(value)
    if m and not _DRIVE_RE.match(value):
        out = _check_url_prefix(value, f"the mirror of {key!r}", where)
    else:
        # a folder: relative to the file that holds the table
        folder = Path(value).expanduser()
        if not folder.is_absolute():
            if base is None:
                raise ValueError(f"{where}: the mirror folder {value!r} of {key!r} is relative, "
                                 "and there is no folder to read it from; give an absolute path")
            folder = base / folder
        out = Path(folder).absolute().as_uri()
        out += "" if out.endswith("/") else "/"
    # a prefix that ends at a folder boundary is replaced by one that does too
    if key.endswith("/") and not out.endswith("/"):
        out += "/"
    return out


@dataclass(frozen=True)
class Mirrors:
    """URL rewrite rules: ``(prefix, replacements in order)``, in rule order."""

    rules: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_table(cls, table: Any, *, where: str, base: Path | None = None) -> "Mirrors":
        """Validate a TOML ``[mirrors]`` table (``{prefix: [replacement, ...]}``; a single
        string is one replacement). Folder replacements are relative to ``base``.
        ValueError naming ``where`` and the bad entry."""
        if not isinstance(table, Mapping):
            raise ValueError(f"{where}: [mirrors] must be a table of URL prefix = [mirrors], "
                             f"not {type(table).__name__}")
        if len(table) > MAX_RULES:
            raise ValueError(f"{where}: [mirrors] has {len(table)} rules; at most {MAX_RULES} are allowed")
        rules: list[tuple[str, tuple[str, ...]]] = []
        seen: dict[str, int] = {}
        for key, values in table.items():
            key = _check_url_prefix(_check_string(key, "a [mirrors] key", where), "the [mirrors] key", where)
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, (list, tuple)):
                raise ValueError(f"{where}: the mirrors of {key!r} must be a list of URLs or folders, "
                                 f"not {type(values).__name__}")
            if len(values) > MAX_REPLACEMENTS:
                raise ValueError(f"{where}: {key!r} has {len(values)} mirrors; at most {MAX_REPLACEMENTS} are allowed")
            reps = _dedup(_replacement(v, key, where, base) for v in values)
            if key in seen:  # two keys that differ only in the case of the host
                i = seen[key]
                rules[i] = (key, _dedup(rules[i][1] + reps))
            else:
                seen[key] = len(rules)
                rules.append((key, reps))
        return cls(tuple(rules))

    def then(self, other: "Mirrors") -> "Mirrors":
        """These rules first (the project's), then ``other``'s (the user config's). A prefix
        both have keeps one rule: this one's replacements, then the other's."""
        merged: dict[str, tuple[str, ...]] = {}
        for prefix, reps in self.rules + other.rules:
            merged[prefix] = _dedup(merged.get(prefix, ()) + reps)
        return Mirrors(tuple(merged.items()))

    def rule_for(self, url: str) -> tuple[str, tuple[str, ...]] | None:
        """The rule that applies to ``url``: the longest matching prefix, the first on a tie."""
        norm = normalize_url(url)
        best: tuple[str, tuple[str, ...]] | None = None
        for prefix, reps in self.rules:
            if norm.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, reps)
        return best

    def candidates(self, urls: Sequence[str], *, offline: bool = False) -> list[str]:
        """The URLs to try, in order: for each URL, its rule's replacements, then the URL
        itself; duplicates removed. ``offline`` keeps only ``file://`` URLs."""
        out: list[str] = []
        for url in urls:
            rule = self.rule_for(url)
            if rule is not None:
                prefix, reps = rule
                for rep in reps:
                    cand = rewrite(url, prefix, rep)
                    if cand is not None:
                        out.append(cand)
            out.append(url)
        result = list(_dedup(out))
        if offline:
            result = [u for u in result if u[:7].lower() == "file://"]
        return result


def _dedup(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def rewrite(url: str, prefix: str, replacement: str) -> str | None:
    """``url`` (which starts with ``prefix``, once normalized) under ``replacement``; None when
    it cannot be mapped safely (a ``..`` segment, or a query for a folder mirror)."""
    norm = normalize_url(url)
    rest = norm[len(prefix):]
    if not replacement.lower().startswith("file:"):
        # URL to URL: the rest as written, but never a dot segment that climbs out of the prefix
        path = rest.split("?", 1)[0].split("#", 1)[0]
        if any(unquote(s) in (".", "..") for s in re.split(r"[/\\]", path)):
            return None
        return replacement + rest
    scheme = prefix.split("://", 1)[0]
    after = prefix[len(scheme) + 3:]
    if scheme in ("http", "https") and (after == "" or after.endswith("/")):
        # the vendor layout: the prefix covers whole segments (host, then folders)
        try:
            segments = url_segments(norm)
        except ValueError:
            return None
        k = 0 if after == "" else after.count("/")
        if k >= len(segments):
            return None
        tail = segments[k:]
    else:
        # the prefix ends mid-segment, or maps one folder to another: the rest as written
        if "?" in rest or "#" in rest:
            return None
        try:
            tail = [_segment(s, url, allow_empty=(i == 0 and not prefix.endswith("/")))
                    for i, s in enumerate(rest.split("/"))]
        except ValueError:
            return None
        if len(tail) > 1 and tail[0] == "" and replacement.endswith("/"):
            tail = tail[1:]
        if not tail or not tail[-1]:
            return None
    return replacement + "/".join(quote(s, safe="") for s in tail)


def _segment(raw: str, url: str, *, allow_empty: bool = False) -> str:
    """One path segment, percent-decoded (strict UTF-8), checked to be a plain file name."""
    try:
        seg = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"{url!r}: the path segment {raw!r} is not valid UTF-8 once decoded") from None
    if seg == "" and allow_empty:
        return seg
    if seg in ("", ".", ".."):
        raise ValueError(f"{url!r}: an empty, '.' or '..' path segment cannot be mapped to a file")
    if any(c in seg for c in "/\\:") or _CONTROL_RE.search(seg):
        raise ValueError(f"{url!r}: the path segment {seg!r} holds '/', '\\', ':' or a control character")
    if len(seg.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise ValueError(f"{url!r}: a path segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return seg


def url_segments(url: str) -> list[str]:
    """The file-name segments of an http(s) URL in the vendor layout: ``[host, folder..., file]``
    (see :func:`vendor_relpath`). ValueError for a URL that cannot be mapped."""
    if not isinstance(url, str) or len(url) > MAX_STRING:
        raise ValueError("a URL must be a string of at most %d characters" % MAX_STRING)
    if _CONTROL_RE.search(url) or "\\" in url:
        raise ValueError(f"{url!r}: a backslash or a control character in a URL cannot be mapped to a file")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{url!r}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: only http:// and https:// URLs have a vendor path")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError(f"{url!r}: the URL has no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{url!r}: the host cannot be encoded as IDNA") from None
    host = host.lower()
    if ":" in host:  # an IPv6 literal
        host = "ipv6_" + host.replace(":", "-")
    if not _HOST_RE.match(host) or len(host) > MAX_SEGMENT_BYTES - 6:
        raise ValueError(f"{url!r}: the host {host!r} cannot be used as a folder name")
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}_{port}"
    raw_path = parts.path
    if not raw_path.startswith("/"):
        raise ValueError(f"{url!r}: the URL has no path to a file")
    segments = [host] + [_segment(s, url) for s in raw_path[1:].split("/")]
    if parts.query:
        digest = hashlib.sha256(parts.query.encode("utf-8")).hexdigest()[:12]
        segments[-1] = _segment(f"{segments[-1]}_{digest}", url)
    return segments


def vendor_relpath(url: str) -> str:
    """Where ``ckpm vendor DIR`` puts the file of ``url``, relative to DIR: ``<host>/<path>``.

    ``https://zlib.net/fossils/zlib-1.3.1.tar.gz`` → ``zlib.net/fossils/zlib-1.3.1.tar.gz``.
    The host is lowercased (a port other than the scheme's default kept as ``host_8080``);
    each path segment is percent-decoded on its own and must then be a plain file name (not
    empty, ``.`` or ``..``; no ``/``, ``\\``, ``:`` or control character); a query string
    becomes a 12-digit hash suffix of the file name (``dl_1a2b3c4d5e6f``); userinfo and
    fragment are dropped. The result is relative, with no ``..``: joined to DIR it stays
    inside. The mirror rule ``"https://" = ["file:///abs/DIR/"]`` reads exactly this path.
    ValueError for a URL that cannot be mapped.
    """
    return "/".join(url_segments(url))
