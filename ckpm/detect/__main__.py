"""``python -m ckpm.detect [RULES.json] [--index URL] [--json]``: run detection, print the result.

RULES.json maps component names to rule lists (``-``: read stdin). With ``--index``,
the rules come from an index's entries (``embedded``: the index shipped with ckpm).
Prints a table (or ``--json``); warnings go to stderr. Exits 0 unless the input is bad.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from ckpm.report import Reporter


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ckpm.detect", description="Detect host facts and installed software.")
    p.add_argument("rules", nargs="?", help="JSON file: {component: [rule, ...]} ('-' for stdin)")
    p.add_argument("--index", metavar="URL", help="take the rules from this index ('embedded' for the default one)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--refresh", action="store_true", help="ignore the cache and probe everything again")
    p.add_argument("--cache-dir", help="folder of the host profile (default: $CKPM_CACHE_DIR or the user cache)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds allowed to each probe (default 3)")
    p.add_argument("--python", help="interpreter whose packages python_package rules look at")
    p.add_argument("--search-path", action="append", default=[], help="folder searched before PATH (repeatable)")
    p.add_argument("--path-root", action="append", default=[],
                   help="folder that rules' path globs and search_paths may name, beside the system prefixes "
                        "(repeatable)")
    return p


def load_rules(args: argparse.Namespace, reporter: Reporter | None = None) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if args.index:
        from ckpm.detect.rules import rules_from_index
        from ckpm.index import open_index

        idx = open_index(None if args.index == "embedded" else args.index)
        origin = f"index {getattr(idx, 'name', None) or args.index}"
        rules.update(rules_from_index(idx, origin=origin, reporter=reporter))
    if args.rules:
        text = sys.stdin.read() if args.rules == "-" else open(args.rules, encoding="utf-8").read()
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the rules file must hold a JSON object: {component: [rule, ...]}")
        rules.update(data)
    return rules


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    reporter = Reporter()  # the index's rejected rules, then what detection said
    try:
        rules = load_rules(args, reporter)
    except (OSError, ValueError) as e:
        print(f"error: cannot read rules: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # e.g. an index that cannot be opened: one line, no traceback
        print(f"error: cannot read rules: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    from ckpm.detect import detect

    result = detect(rules, refresh=args.refresh, cache_dir=args.cache_dir, timeout=args.timeout,
                    search_paths=args.search_path, python=args.python, path_roots=args.path_root,
                    reporter=reporter)
    # (a RULES.json file is the user's own; an index's rules were checked by rules_from_index)
    result.warnings = list(reporter.warnings)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        rows = [(n, d.version, d.detector, d.path or d.extra.get("name") or "") for n, d in result.facts.items()]
        for name, recs in result.found.items():
            rows += [(name, d.version, d.detector, d.path or "") for d in recs] or [(name, "-", "-", "not found")]
        widths = [max([len(str(r[i])) for r in rows] + [4]) for i in range(3)]
        for r in rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[3]))
        print(f"({result.probes_run} probes run, {result.cache_hits} cached)")
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
