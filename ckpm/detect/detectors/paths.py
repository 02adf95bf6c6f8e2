"""``{"path": "glob", "version_file": "VERSION"}``: files or folders (data sets, models).

``path`` is a glob (``**`` allowed) with ``~`` and ``$VAR`` expanded; relative paths are
taken from the current folder. The version comes, in order, from:

- ``version_file`` (relative to a matched folder, or to a matched file's folder), its
  first line, or the first group of ``version_regex`` over it;
- ``version_regex`` over the matched file itself, or over its name with
  ``"version_from": "name"``;
- a fixed ``version``; else ``"0"`` (marked ``version_unknown``).

A declared version source that is missing or does not match is a warning.
Optional ``type``: ``"file"`` or ``"dir"`` keeps only that kind of match.
"""
from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ckpm.detect.detectors.base import RuleDetector, as_list, extract_version, read_head, same_path
from ckpm.detect.fingerprint import combine, fingerprint_of
from ckpm.detect.probe import truncate
from ckpm.detect.record import Detected

if TYPE_CHECKING:
    from ckpm.detect.context import DetectContext


class PathDetector(RuleDetector):
    """Files and folders at declared paths, versioned from a file or a name."""

    kind = "path"

    def detect(self, name: str, rule: Mapping[str, Any], ctx: "DetectContext") -> Iterable[Detected]:
        seen: set[str] = set()
        for pat in as_list(rule.get("path")):
            p = os.path.abspath(ctx.expand(pat))
            for match in sorted(glob.glob(p, recursive=True)) if any(c in p for c in "*?[") else [p]:
                if not os.path.exists(match) or os.path.realpath(match) in seen:
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
            vf = ctx.expand(str(rule["version_file"]))
            base = match if os.path.isdir(match) else os.path.dirname(match)
            vfile = vf if os.path.isabs(vf) else os.path.join(base, vf)
            text = read_head(vfile, 1 << 16)
            if text is None:
                ctx.warn(f"{label}: version file {vfile} not found")
                return None
            version = extract_version(text, regex) if regex else (text.strip().splitlines() or [""])[0].strip()
            if not version:
                ctx.warn(f"{label}: no version in {vfile} (regex {regex!r}): {truncate(text)!r}")
                return None
            extra["version_file"] = vfile
        elif regex:
            if rule.get("version_from") == "name" or os.path.isdir(match):
                text = os.path.basename(match.rstrip("/"))
            else:
                text = read_head(match) or ""
            version = extract_version(text, regex)
            if not version:
                ctx.warn(f"{label}: no match for version_regex {regex!r} in {truncate(text)!r}")
                return None
        elif rule.get("version"):
            version = str(rule["version"])
        else:
            version = "0"
            extra["version_unknown"] = True
        fp = combine(fingerprint_of(match), fingerprint_of(vfile) if vfile else "")
        return Detected(name, version, match, self.kind, fp, extra)

    def recheck(self, record: Detected, ctx: "DetectContext") -> Detected | None:
        if not record.path or not os.path.exists(record.path):
            return None
        rule = dict(record.extra.get("rule") or {})
        d = self.probe(record.name, rule, record.path, ctx)
        return d if d is not None and same_path(d.path, record.path) else None
