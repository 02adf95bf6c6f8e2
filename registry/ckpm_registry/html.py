"""The HTML pages: a search page and one page per component. Everything from the index is escaped."""
from __future__ import annotations

from html import escape
from typing import Any, Iterable
from urllib.parse import quote

from ckpm.model.entry import IndexEntry

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
a{color:#0645ad}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;
text-align:left;vertical-align:top}code{background:#f4f4f4;padding:.1rem .3rem}.yanked{color:#999}
.yanked td:first-child{text-decoration:line-through}.tag{display:inline-block;background:#eef;border-radius:3px;
padding:0 .3rem;margin:0 .2rem .2rem 0;font-size:.9em}input[type=search]{width:60%;padding:.3rem}
"""


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            "<header><a href=\"/\">ckpm registry</a></header>"
            f"{body}</body></html>\n")


def _tags(tags: Iterable[str]) -> str:
    return "".join(f'<span class="tag">{escape(t)}</span>' for t in sorted(tags))


def _dep(d: Any) -> str:
    if not isinstance(d, dict):
        return escape(str(d))
    name = str(d.get("name", ""))
    req = str(d.get("req", "*"))
    out = f'<a href="/components/{quote(name, safe="")}">{escape(name)}</a>'
    if req != "*":
        out += f" <code>{escape(req)}</code>"
    extra = []
    for key in ("tags", "no_tags", "targets"):
        if d.get(key):
            v = d[key]
            extra.append(f"{key} {', '.join(map(str, v)) if isinstance(v, list) else v}")
    for key in ("kind", "git"):
        if d.get(key):
            extra.append(f"{key} {d[key]}")
    if d.get("optional"):
        extra.append("optional")
    if extra:
        out += f" <small>({escape('; '.join(extra))})</small>"
    return out


def component_page(name: str, entries: list[IndexEntry], owners: list[str], latest: str | None) -> str:
    last = entries[-1]
    rows = []
    for e in reversed(entries):
        src = e.source or {}
        where = ""
        if src.get("git"):
            where = f"{src.get('git')} {src.get('tag') or ''} {str(src.get('rev') or '')[:12]}".strip()
        elif src.get("urls"):
            where = str(src["urls"][0])
        deps = "<br>".join(_dep(d) for d in e.deps_raw) or "—"
        cls = ' class="yanked"' if e.yanked else ""
        state = "yanked" if e.yanked else ""
        rows.append(f"<tr{cls} data-version=\"{escape(e.version_text)}\"><td>{escape(e.version_text)}</td>"
                    f"<td>{state}</td><td>{escape(e.pubtime or '')}</td><td>{deps}</td>"
                    f"<td><small>{escape(where)}</small></td></tr>")
    add = f"ckpm add {name}@{latest}" if latest else f"ckpm add {name}"
    body = (f"<h1>{escape(name)}</h1><p>{escape(last.description)}</p>"
            f"<p>kind <b>{escape(last.kind)}</b> · targets {escape(', '.join(last.targets))}</p>"
            f"<p>{_tags(last.tags)}</p>"
            f"<h2>Add it to a project</h2><pre><code id=\"add\">{escape(add)}</code></pre>"
            f"<h2>Versions</h2><table id=\"versions\"><thead><tr><th>version</th><th></th><th>published</th>"
            f"<th>dependencies</th><th>source</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<h2>Owners</h2><p id=\"owners\">{escape(', '.join(owners)) or '—'}</p>")
    return _page(f"{name} — ckpm registry", body)


def search_page(q: str, tags: str, result: dict[str, Any] | None, error: str | None = None) -> str:
    form = ("<form method=\"get\" action=\"/\" role=\"search\">"
            f"<input type=\"search\" name=\"q\" value=\"{escape(q)}\" placeholder=\"search components\" autofocus> "
            f"<input type=\"text\" name=\"tags\" value=\"{escape(tags)}\" placeholder=\"tags, comma-separated\"> "
            "<button type=\"submit\">Search</button></form>")
    parts = [f"<h1>ckpm registry</h1>{form}"]
    if error:
        parts.append(f"<p class=\"error\">{escape(error)}</p>")
    elif result is not None:
        comps = result["components"]
        parts.append(f"<p id=\"total\">{result['total']} component{'s' if result['total'] != 1 else ''}</p>")
        items = []
        for c in comps:
            versions = ", ".join(escape(v) + (" (yanked)" if v in c["yanked"] else "") for v in c["versions"])
            items.append(f"<li data-name=\"{escape(c['name'])}\"><a href=\"/components/{quote(c['name'], safe='')}\">"
                         f"<b>{escape(c['name'])}</b></a> {escape(c['latest'] or '')} — {escape(c['description'])}"
                         f"<br>{_tags(c['tags'])}<br><small>versions: <span class=\"versions\">{versions}</span>"
                         "</small></li>")
        parts.append(f"<ul id=\"results\">{''.join(items)}</ul>")
    return _page("ckpm registry", "".join(parts))


def error_page(status: int, message: str) -> str:
    return _page(f"{status} — ckpm registry", f"<h1>{status}</h1><p>{escape(message)}</p>")
