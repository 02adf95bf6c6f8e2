"""``{"path": "glob", "version_file": "VERSION"}``: files or folders (data sets, models).

``path`` is a glob (``**`` allowed) with ``~`` and ``$VAR`` expanded; relative paths are
taken from the current folder. Every match must lie, on its real path, inside the roots
detection may look in (see :mod:`ckpm.detect.trust`). The version comes, in order, from:

- ``version_file`` (relative to a matched folder, or to a matched file's folder, no ``..``):
  at most its first 64 KiB are read; its first line, or the first group of
  ``version_regex`` over it;
- ``version_regex`` over the matched name with ``"version_from": "name"``;
- a fixed ``version``; else ``"0"`` (marked ``version_unknown``).

The content of the matched file itself is never read. A version read from a file or a
name must parse as a version of at most 64 characters. A declared version source that is
missing or does not match is a warning. Optional ``type``: ``"file"`` or ``"dir"`` keeps
only that kind of match.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ckpm.detect.detectors.base import RuleDetector, as_list, extract_version, read_head
from ckpm.detect.fingerprint import combine, fingerprint_of
from ckpm.detect.probe import truncate
from ckpm.detect.record import Detected
from ckpm.detect.trust import VERSION_FILE_LIMIT, check_version

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext


class PathDetector(RuleDetector):
    """Files and folders at declared paths, versioned from a version file or a name."""

    kind = "path"

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        seen: set[str] = set()
        for pat in as_list(rule.get("path")):
            p = os.path.abspath(ctx.expand(pat))
            if not ctx.roots.allows_pattern(p):
                ctx.warn(f"{name}: path {pat!r} is outside the folders detection may look in; skipped")
                continue
            for match in ctx.glob(p, recursive=True):
                if not os.path.lexists(match) or os.path.realpath(match) in seen:
                    continue
                if not ctx.roots.contains(match):
                    ctx.warn(f"{name}: {match} leads outside the folders detection may look in; skipped")
                    continue
                if not os.path.exists(match):
                    continue
                kind = rule.get("type")
                if (kind == "file" and not os.path.isfile(match)) or (kind == "dir" and not os.path.isdir(match)):
                    continue
                seen.add(os.path.realpath(match))
                rec = self.probe(name, rule, match, ctx)
                if rec is not None:
                    yield rec

    def probe(self, name: str, rule: Mapping[str, Any], match: str, ctx: "DetectContext") -> Detected | None:
        """Version one match (None, with a warning, if a declared source fails)."""
        regex = rule.get("version_regex")
        label = f"{name}: {match}"
        version: str | None = None
        vfile: str | None = None
        extra: dict[str, Any] = {"rule": dict(rule), "type": "dir" if os.path.isdir(match) else "file"}
        if rule.get("version_file"):
            base = match if os.path.isdir(match) else os.path.dirname(match)
            vfile = os.path.join(base, str(rule["version_file"]))
            if not os.path.lexists(vfile):
                ctx.warn(f"{label}: version file {vfile} not found")
                return None
            if not ctx.roots.contains(vfile):
                ctx.warn(f"{label}: version file {vfile} leads outside the folders detection may look in; skipped")
                return None
            if not os.path.isfile(vfile):
                ctx.warn(f"{label}: version file {vfile} is not a regular file; skipped")
                return None
            text = read_head(vfile, VERSION_FILE_LIMIT)
            if text is None:
                ctx.warn(f"{label}: version file {vfile} cannot be read")
                return None
            version = extract_version(text, regex) if regex else (text.strip().splitlines() or [""])[0].strip()
            if not version:
                ctx.warn(f"{label}: no version in the first {VERSION_FILE_LIMIT // 1024} KiB of {vfile} "
                         f"(regex {regex!r}): {truncate(text, 80)!r}")
                return None
            extra["version_file"] = vfile
        elif regex:  # validation allows a regex without a version file only over the name
            text = os.path.basename(match.rstrip("/"))
            version = extract_version(text, regex)
            if not version:
                ctx.warn(f"{label}: no match for version_regex {regex!r} in {truncate(text)!r}")
                return None
        elif rule.get("version"):
            version = str(rule["version"])
        else:
            version = "0"
            extra["version_unknown"] = True
        if not extra.get("version_unknown"):
            why = check_version(version)
            if why is not None:
                ctx.warn(f"{label}: version {truncate(version, 40)!r} rejected ({why}); skipped")
                return None
        fp = combine(fingerprint_of(match), fingerprint_of(vfile) if vfile else "")
        return Detected(name, version, match, self.kind, fp, extra)
