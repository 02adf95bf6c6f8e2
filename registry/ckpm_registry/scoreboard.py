"""The results pages: a program's scoreboard (machines, reproductions, unexpected records, the Pareto
frontier drawn as SVG by the server) and one page per record. Every pushed string is escaped; the
only script is the inline table sorter below, and nothing is loaded from another host."""
from __future__ import annotations

import math
from html import escape
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from ckpm_registry.html import _page

SORTER = """
document.querySelectorAll('table.sortable th').forEach(function(th, i){th.addEventListener('click', function(){
var tb=th.closest('table').tBodies[0], rows=Array.prototype.slice.call(tb.rows), d=th.dataset.dir==='asc'?-1:1;
th.dataset.dir=d===1?'asc':'desc';rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].textContent,
y=b.cells[i].dataset.v||b.cells[i].textContent,nx=parseFloat(x),ny=parseFloat(y);
if(!isNaN(nx)&&!isNaN(ny))return d*(nx-ny);return d*x.localeCompare(y);});rows.forEach(function(r){tb.appendChild(r);});
});});
"""
BOARD_STYLE = ("<style>body{max-width:80rem}svg{border:1px solid #ddd;background:#fff}.front{fill:#c00}"
               ".pt{fill:#9ab}th{cursor:pointer}.unexpected{color:#a40}small{color:#666}td.host{font-size:.85em}"
               "</style>")


def num(v: Any) -> str:
    """A number for people: integers as they are, others to 4 significant digits."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return escape(str(v))
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


def _host_text(host: Mapping[str, Any]) -> str:
    parts = [f"{host.get('cpu_model') or '?'} × {host.get('cpu_count') or '?'}", str(host.get("os") or ""),
             str(host.get("arch") or ""), str(host.get("libc") or "")]
    return ", ".join(p for p in parts if p)


def _link(rid: str, text: str | None = None) -> str:
    return f'<a href="/records/{quote(rid, safe="")}">{escape(text or rid[:12])}</a>'


def frontier_svg(points: Sequence[Mapping[str, Any]], front: Sequence[Mapping[str, Any]], x: str, y: str,
                 width: int = 640, height: int = 400) -> str:
    """The records' (x, y) medians as dots and the Pareto frontier as linked red dots joined by steps."""
    every = list(points) + list(front)
    if not every:
        return '<p id="no-frontier">no record has both metrics</p>'
    pad = 50
    xs = [p["x"] for p in every]
    ys = [p["y"] for p in every]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    dx = (x1 - x0) or abs(x0) or 1.0
    dy = (y1 - y0) or abs(y0) or 1.0

    def px(v: float) -> float:
        return pad + (v - x0) / dx * (width - 2 * pad)

    def py(v: float) -> float:
        return height - pad - (v - y0) / dy * (height - 2 * pad)

    out = [f'<svg id="frontier" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="Pareto frontier of {escape(x)} and {escape(y)}">',
           f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#444"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#444"/>',
           f'<text x="{width / 2:.0f}" y="{height - 12}" text-anchor="middle">{escape(x)}</text>',
           f'<text x="14" y="{height / 2:.0f}" text-anchor="middle" transform="rotate(-90 14 {height / 2:.0f})">'
           f'{escape(y)}</text>',
           f'<text x="{pad}" y="{height - pad + 16}" font-size="11">{num(x0)}</text>',
           f'<text x="{width - pad}" y="{height - pad + 16}" font-size="11" text-anchor="end">{num(x1)}</text>',
           f'<text x="{pad - 4}" y="{height - pad}" font-size="11" text-anchor="end">{num(y0)}</text>',
           f'<text x="{pad - 4}" y="{pad + 4}" font-size="11" text-anchor="end">{num(y1)}</text>']
    for p in points:
        out.append(f'<circle class="pt" cx="{px(p["x"]):.1f}" cy="{py(p["y"]):.1f}" r="3"/>')
    if front:
        steps = []
        for i, p in enumerate(front):
            if i:
                steps.append(f'{px(p["x"]):.1f},{py(front[i - 1]["y"]):.1f}')
            steps.append(f'{px(p["x"]):.1f},{py(p["y"]):.1f}')
        out.append(f'<polyline points="{" ".join(steps)}" fill="none" stroke="#c00" stroke-width="1.5"/>')
    for p in front:
        out.append(f'<a href="/records/{quote(str(p["id"]), safe="")}"><circle class="front" data-id="'
                   f'{escape(str(p["id"]))}" cx="{px(p["x"]):.1f}" cy="{py(p["y"]):.1f}" r="5">'
                   f'<title>{escape(x)} {num(p["x"])}, {escape(y)} {num(p["y"])}</title></circle></a>')
    out.append("</svg>")
    return "".join(out)


def _select(name: str, values: Sequence[str], chosen: str, blank: str | None) -> str:
    opts = [f'<option value="">{escape(blank)}</option>'] if blank is not None else []
    for v in values:
        sel = " selected" if v == chosen else ""
        opts.append(f'<option value="{escape(v)}"{sel}>{escape(v)}</option>')
    return f'<label>{name} <select name="{name}">{"".join(opts)}</select></label> '


def board_page(data: Mapping[str, Any], metrics: Sequence[str], filters: Mapping[str, str]) -> str:
    program = str(data["program"])
    x, y = str(data["x"]), str(data["y"])
    form = (f'<form id="filters" method="get" action="/results/{quote(program, safe="")}">'
            + _select("target", data["targets"], filters.get("target", ""), "any target")
            + _select("compiler", data["compilers"], filters.get("compiler", ""), "any compiler")
            + _select("user", data["users"], filters.get("user", ""), "any user")
            + _select("x", metrics, x, None) + _select("y", metrics, y, None)
            + '<button type="submit">Show</button></form>')
    repro = "".join(
        f'<li class="reproduced" data-lock="{escape(r["lock"])}">lock <code>{escape(r["lock"][:19] or "(none)")}'
        f'</code>: reproduced on {r["machines"]} machine{"s" if r["machines"] != 1 else ""} by {r["users"]} '
        f'user{"s" if r["users"] != 1 else ""}</li>' for r in data["reproduced"])
    heads = "".join(f"<th>{escape(m)}<br><small>best (median)</small></th>" for m in metrics)
    rows = []
    for mach in data["machines"]:
        cells = []
        for m in metrics:
            s = mach["metrics"].get(m)
            if s is None:
                cells.append('<td data-v=""></td>')
            else:
                cells.append(f'<td data-v="{s["best"]!r}">{_link(s["best_id"], num(s["best"]))} '
                             f'<small class="median">({num(s["median"])})</small></td>')
        rows.append(f'<tr class="machine" data-user="{escape(mach["user"])}"><td>{escape(mach["user"])}</td>'
                    f'<td class="host">{escape(_host_text(mach["host"]))}</td><td>{escape(mach["target"])}</td>'
                    f'<td>{escape(mach["compiler"])}</td><td data-v="{mach["records"]}">{mach["records"]}</td>'
                    f'{"".join(cells)}</tr>')
    table = (f'<table id="machines" class="sortable"><thead><tr><th>user</th><th>machine</th><th>target</th>'
             f'<th>compiler</th><th>records</th>{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    flags = "".join(
        f'<li class="unexpected">{_link(f["id"])}: {escape(f["metric"])} {num(f["value"])} against the median '
        f'{num(f["median"])} of its lock and host class ({_link(f["median_id"], "the median record")})</li>'
        for f in data["unexpected"])
    body = (f"<h1>{escape(program)}</h1>{BOARD_STYLE}{form}"
            f'<ul id="reproduced">{repro or "<li>no validated record yet</li>"}</ul>'
            f"<h2>Pareto frontier: {escape(x)} and {escape(y)}</h2>"
            f"{frontier_svg(data['points'], data['frontier'], x, y)}"
            f'<p><small>{len(data["frontier"])} record(s) on the frontier; red dots link to them</small></p>'
            f'<h2>Machines</h2><p id="count">{len(data["machines"])} machine row'
            f'{"s" if len(data["machines"]) != 1 else ""} (click a heading to sort)</p>{table}'
            f'<h2>Unexpected behaviour</h2><ul id="unexpected">{flags or "<li>none</li>"}</ul>'
            f"<script>{SORTER}</script>")
    return _page(f"{program} results — ckpm registry", body)


def _kv_table(items: Mapping[str, Any], tid: str) -> str:
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(_text(v))}</td></tr>" for k, v in items.items())
    return f'<table id="{tid}">{rows or "<tr><td>—</td></tr>"}</table>'


def _text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return " ".join(_text(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={_text(x)}" for k, x in v.items())
    return "" if v is None else str(v)


def _flat(prefix: str, v: Any) -> dict[str, Any]:
    if isinstance(v, Mapping):
        out: dict[str, Any] = {}
        for k, x in v.items():
            out.update(_flat(f"{prefix}.{k}" if prefix else str(k), x))
        return out
    return {prefix: v}


def record_page(item: Mapping[str, Any]) -> str:
    rec = item.get("record") or {}
    prog = rec.get("program") or {}
    name = str(item["program"])
    head = {"program": name, "version": prog.get("version"), "command": prog.get("command"),
            "experiment": rec.get("experiment"), "record id (local)": rec.get("local_id"),
            "pushed by": item["user"], "pushed": item["pushed"], "created": rec.get("created"),
            "target": item["target"], "compiler": item["compiler"], "lock": item["lock"],
            "validated": "yes" if item["ok"] else "no", "ckpm": rec.get("ckpm_version")}
    metrics = rec.get("metrics") or {}
    mrows = "".join(
        f'<tr data-metric="{escape(k)}"><td>{escape(k)}</td><td>{num(m.get("median"))}</td><td>{num(m.get("min"))}'
        f'</td><td>{num(m.get("max"))}</td><td>{num(m.get("n"))}</td><td>{escape(str(m.get("better")))}</td>'
        f'<td>{escape(" ".join(num(v) for v in m.get("values") or []))}</td></tr>'
        for k, m in metrics.items() if isinstance(m, Mapping))
    lock = rec.get("lock") or {}
    pk = "".join(f"<tr><td>{escape(_text(p.get('name')))}</td><td>{escape(_text(p.get('version')))}</td>"
                 f"<td>{escape(_text(p.get('source')))}</td></tr>"
                 for p in lock.get("packages") or [] if isinstance(p, Mapping))
    val = rec.get("validation") or {}
    checks = "".join(f"<li>{'ok' if c.get('ok') else 'FAILED'}: {escape(_text(c.get('check')))}</li>"
                     for c in val.get("checks") or [] if isinstance(c, Mapping))
    flags = "".join(f'<li class="unexpected">{escape(f["metric"])} {num(f["value"])} against the median '
                    f'{num(f["median"])} ({_link(f["median_id"], "the median record")})</li>'
                    for f in item.get("unexpected") or [])
    back = f'/results/{quote(name, safe="")}'
    body = (f'<h1>{escape(name)} <small>record {escape(str(item["id"]))}</small></h1>'
            f'<p><a href="{back}">the scoreboard of {escape(name)}</a></p>'
            f'{_kv_table(head, "summary")}'
            f'<h2>Metrics</h2><table id="metrics"><thead><tr><th>metric</th><th>median</th><th>min</th><th>max</th>'
            f'<th>n</th><th>better</th><th>values</th></tr></thead><tbody>{mrows}</tbody></table>'
            f'<h2>Unexpected</h2><ul id="flags">{flags or "<li>none</li>"}</ul>'
            f'<h2>Configuration</h2>{_kv_table(_flat("", rec.get("config") or {}), "config")}'
            f'<h2>Point</h2>{_kv_table(_flat("", rec.get("point") or {}), "point")}'
            f'<h2>Host</h2>{_kv_table(_flat("", rec.get("host") or {}), "host")}'
            f'<h2>Lock</h2><p>hash <code id="lock-hash">{escape(_text(lock.get("hash")))}</code></p>'
            f'<table id="packages"><thead><tr><th>package</th><th>version</th><th>source</th></tr></thead>'
            f'<tbody>{pk}</tbody></table>'
            f'<h2>Validation</h2><ul id="validation">{checks or "<li>—</li>"}</ul>')
    return _page(f"{name} record {str(item['id'])[:12]} — ckpm registry", body)


def error_page(status: int, message: str) -> str:
    return _page(f"{status} — ckpm registry", f"<h1>{status}</h1><p>{escape(message)}</p>")
