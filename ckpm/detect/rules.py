"""Detection rules gathered from an index: component name → the ``detect`` rules of its entries.

Duck-typed over :class:`ckpm.index.Index` (``summaries()``, ``entries(name)``), so that
this package does not import the index clients. With ``origin=`` (``"index lab"``), each
rule is validated (:func:`ckpm.detect.trust.validate_rule`): a rejected rule is left
out and its warning goes to the ``reporter``. Detection validates again anyway, so a
caller that skips this step is still safe; passing ``origin`` only makes the warning
name the index.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from ckpm.detect.trust import canonical, rule_id, validate_rule
from ckpm.report import Reporter


def rules_from_index(
    index: Any, *, origin: str | None = None, reporter: Reporter | None = None,
) -> dict[str, list[Mapping[str, Any]]]:
    """Every component that declares ``detect`` rules, with the union of its versions' rules
    (newest version's first, duplicates dropped), sorted by name.

    ``origin`` (``"index NAME"``): validate each rule, naming this origin in the warnings
    sent to ``reporter``; without it, no validation.
    """
    out: dict[str, list[Mapping[str, Any]]] = {}
    for summary in sorted(index.summaries(), key=lambda s: s.name):
        rules = rules_of_entries(index.entries(summary.name), origin=origin, reporter=reporter)
        if rules:
            out[summary.name] = rules
    return out


def rules_of_entries(
    entries: Any, *, origin: str | None = None, reporter: Reporter | None = None,
) -> list[Mapping[str, Any]]:
    """The union of the ``detect`` rules of one component's entries, newest first, no duplicates.

    With ``origin``, rules that break a limit are left out, one warning each to ``reporter``
    (``index lab: component evil-tool: detect rule 1: executable '/bin/sh'
    must be a bare name; rule ignored``); the number is the rule's place in its entry.
    """
    rules: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for entry in reversed(list(entries)):
        for number, rule in enumerate(getattr(entry, "detect", ()) or (), 1):
            try:
                key = canonical(rule)
            except (TypeError, ValueError):
                key = repr(rule)
            if key in seen:
                continue
            seen.add(key)
            if origin is None:
                rules.append(dict(rule))
                continue
            clean, problems = validate_rule(rule, origin=origin, component=getattr(entry, "name", None),
                                            number=number)
            if reporter is not None:
                reporter.warn_all(problems)
            if clean is not None:
                rules.append(clean)
    return rules


def rule_by_id(rules: Iterable[Mapping[str, Any]], rid: str) -> Mapping[str, Any] | None:
    """The rule whose :func:`~ckpm.detect.trust.rule_id` is ``rid`` (what a lock records), or None."""
    return next((r for r in rules if rule_id(r) == rid), None)
