"""The static HTML report: one self-contained file with every experiment, its configuration and plots.

The page has inline CSS, plots as base64 PNG ``data:`` URIs, no JavaScript and no external
resource, so it can be mailed, archived or attached to a CI run. Every string that came
from a record (program output, paths, names, environment values) is escaped with
``html.escape``; a Content-Security-Policy that allows no script is a second fence.
"""
from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ckpm.experiment.record import Experiment, ExperimentError, list_experiments
from ckpm.experiment.results import (compare_records, config_items, fmt_number, load, lock_digest, metric,
                                     metric_names, program_name)
from ckpm.fsutil import atomic_write
from ckpm.report import Reporter

#: lock text shown in the page at most (the digest always names the whole)
MAX_LOCK_CHARS = 64 << 10

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222;
 padding:0 1em;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f7f7f7;padding:.6em;overflow:auto;max-height:30em}
.ok{color:#16794a}.fail{color:#b42318;font-weight:600}.better{color:#16794a;font-weight:600}
.worse{color:#b42318;font-weight:600}.same{color:#666}.note{color:#666;font-style:italic}
.problems{color:#b42318}img{max-width:100%;border:1px solid #eee}
nav a{margin-right:1em}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML (elements and quoted attributes)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are already-escaped HTML."""
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _ok(ok: Any) -> str:
    return '<span class="ok">ok</span>' if ok is True else '<span class="fail">failed</span>'


def _range(s: Mapping[str, Any] | None) -> str:
    if s is None:
        return ""
    lo, med, hi = (esc(fmt_number(s[k])) for k in ("min", "median", "max"))
    return f"{med} <small>[{lo}–{hi}]</small>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _plot(experiments: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], metrics: Sequence[str],
          title: str) -> str:
    """The frontier plot of the first two metrics (time against size when both are there), or a note why not."""
    if len(metrics) < 2:
        return ""
    x, y = metrics[0], metrics[1]
    from ckpm.experiment.plot import PlotUnavailable, render_png

    try:
        png = render_png(experiments, x=x, y=y, title=title)
    except PlotUnavailable as e:
        return f'<p class="note">No plot: {esc(e.message)} ({esc(e.hint)}).</p>'
    except ExperimentError as e:
        return f'<p class="note">No plot: {esc(e.message)}.</p>'
    return _img(png, f"{y} against {x}")


def _records_table(exp: Experiment) -> str:
    names = metric_names(exp.records)
    rows = []
    for r in exp.records:
        rows.append([f"<code>{esc(r.get('id'))}</code>", esc(r.get("created")), _ok(r.get("ok")),
                     *(_range(metric(r, m)) for m in names)])
    return _table(["record", "created", "result", *names], rows, numeric=range(3, 3 + len(names)))


def _configuration(r: Mapping[str, Any]) -> str:
    prog = r.get("program")
    rows = [["program", esc(program_name(r))]]
    if isinstance(prog, Mapping):
        rows += [[f"program.{esc(k)}", f"<code>{esc(v)}</code>"] for k, v in prog.items() if k != "name"]
    rows += [[esc(k), f"<code>{esc(v)}</code>"] for k, v in config_items(r).items()]
    rows.append(["target", esc(r.get("target"))])
    host = r.get("host")
    if isinstance(host, Mapping):
        rows += [[f"host.{esc(k)}", esc(v)] for k, v in host.items()]
    rows.append(["ckpm", esc(r.get("ckpm_version"))])
    out = [_table(["setting", "value"], rows)]
    cmds = [c for c in r.get("command_lines") or [] if isinstance(c, list)]
    if cmds:
        out.append("<h4>Command lines</h4><pre>" + "\n".join(esc(" ".join(map(str, c))) for c in cmds) + "</pre>")
    checks = [v for v in r.get("validation") or [] if isinstance(v, Mapping)]
    if checks:
        out.append("<h4>Validation</h4>" + _table(["check", "result", "detail"], [
            [esc(v.get("check")), _ok(v.get("ok")), esc(v.get("detail"))] for v in checks]))
    lock = r.get("lock")
    if isinstance(lock, str):
        shown = lock[:MAX_LOCK_CHARS]
        cut = f"\n… ({len(lock) - len(shown)} more characters in the record)" if len(shown) < len(lock) else ""
        out.append(f"<details><summary>Lock <code>{esc(lock_digest(lock))}</code></summary>"
                   f"<pre>{esc(shown)}{esc(cut)}</pre></details>")
    return "".join(out)


def _comparison(base: Mapping[str, Any], r: Mapping[str, Any]) -> str:
    cmp = compare_records(base, r)
    rows = []
    for m in cmp.metrics:
        cls = "same" if m.improved is None else "better" if m.improved else "worse"
        rows.append([esc(m.metric), _range(m.a), _range(m.b), esc("" if m.ratio is None else f"{m.ratio:.3f}×"),
                     f'<span class="{cls}">{esc(m.verdict)}</span>'])
    out = [f"<p>Latest <code>{esc(cmp.b)}</code> against <code>{esc(cmp.a)}</code> "
           "(a change is named only when the ranges of the repetitions do not overlap).</p>"]
    out.append(_table(["metric", "a", "b", "b/a", "verdict"], rows, numeric=(1, 2, 3)) if rows
               else '<p class="note">No metric in common.</p>')
    if cmp.differences:
        out.append("<h4>Configuration differences</h4>" + _table(["what", "a", "b"], [
            [esc(d["what"]), f"<code>{esc(d['a'])}</code>", f"<code>{esc(d['b'])}</code>"] for d in cmp.differences]))
    else:
        out.append('<p class="note">Same configuration.</p>')
    return "".join(out)


def _plot_metrics(records: Sequence[Mapping[str, Any]]) -> list[str]:
    names = metric_names(records)
    if "time" in names and "size" in names:
        return ["time", "size"] + [m for m in names if m not in ("time", "size")]
    return names


def render(project: Path, *, names: Sequence[str] | None = None, reporter: Reporter | None = None,
           now: datetime | None = None) -> str:
    """The report's HTML text over experiments ``names`` (default: all of them, sorted)."""
    names = list(dict.fromkeys(names)) if names else list_experiments(project)
    experiments = [load(project, n, reporter) for n in names]
    when = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>ckpm experiments: {esc(Path(project).resolve().name)}</title><style>{CSS}</style></head><body>",
             f"<h1>Experiments of {esc(Path(project).resolve().name)}</h1>",
             f"<p>{len(experiments)} experiments in <code>{esc(Path(project).resolve())}</code>; "
             f"written {esc(when)} by ckpm.</p>"]
    if not experiments:
        parts.append('<p class="note">No experiments yet: record one with <code>ckpm run --record NAME</code>.</p>')
    else:
        parts.append("<nav>" + "".join(f'<a href="#exp-{esc(e.name)}">{esc(e.name)}</a>' for e in experiments)
                     + "</nav>")
        all_metrics = metric_names([e.latest for e in experiments if e.latest])
        summary = []
        for e in experiments:
            r = e.latest
            summary.append([f'<a href="#exp-{esc(e.name)}">{esc(e.name)}</a>', str(len(e.records)),
                            esc(program_name(r)) if r else "", _ok(r.get("ok")) if r else "",
                            *(_range(metric(r, m)) if r else "" for m in all_metrics)])
        parts.append("<h2>Summary</h2><p>Latest record of each experiment: median [min–max].</p>")
        parts.append(_table(["experiment", "records", "program", "latest", *all_metrics], summary,
                            numeric=range(4, 4 + len(all_metrics))))
        if len(experiments) > 1:
            every = [r for e in experiments for r in e.records]
            parts.append(_plot([(e.name, e.records) for e in experiments], _plot_metrics(every),
                               "every record of every experiment"))
    base = experiments[0].latest if experiments else None
    for e in experiments:
        parts.append(f'<h2 id="exp-{esc(e.name)}">{esc(e.name)}</h2>')
        if e.problems:
            parts.append('<ul class="problems">' + "".join(f"<li>left out: {esc(p)}</li>" for p in e.problems)
                         + "</ul>")
        if not e.records:
            parts.append('<p class="note">No readable records.</p>')
            continue
        parts.append(f"<h3>Records ({len(e.records)})</h3><p>median [min–max] over the repetitions.</p>")
        parts.append(_records_table(e))
        parts.append(_plot([(e.name, e.records)], _plot_metrics(e.records), f"{e.name}: every record"))
        latest = e.latest
        assert latest is not None
        parts.append(f"<h3>Configuration of the latest record <code>{esc(latest.get('id'))}</code></h3>")
        parts.append(_configuration(latest))
        if base is not None and e is not experiments[0]:
            parts.append(f"<h3>Against {esc(experiments[0].name)}</h3>")
            parts.append(_comparison(base, latest))
    parts.append("</body></html>\n")
    return "".join(parts)


def report(project: Path, out: Path, *, names: Sequence[str] | None = None,
           reporter: Reporter | None = None) -> Path:
    """Write the static HTML report over experiments ``names`` (default: all) to ``out``, atomically."""
    text = render(project, names=names, reporter=reporter)
    out = Path(out)
    atomic_write(out, text)
    return out
