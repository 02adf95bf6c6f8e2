"""The registry's HTML pages, rendered by headless chromium (Debian's /usr/bin/chromium)."""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from registry_support import CHROMIUM, RunningRegistry, chromium_dom, line_from_repo, make_users, tagged_component


@pytest.fixture
def registry(tmp_path: Path, git_index_factory: Any, git_repo_factory: Any) -> Iterator[RunningRegistry]:
    gi = git_index_factory({}, name="lab")
    tokens = tmp_path / "tokens.toml"
    reg = RunningRegistry(index=str(gi.git.path), tokens=tokens, tokens_of=make_users(tokens, "alice"),
                          refresh=0.0).start()
    jpeg = tagged_component(git_repo_factory, "lib-jpeg", ["9.0.0", "9.1.0", "9.2.0"])
    tool = tagged_component(git_repo_factory, "tool-convert", ["1.0.0"])
    for v in ("9.0.0", "9.1.0", "9.2.0"):
        assert reg.publish(line_from_repo(jpeg, v, tags=("lib", "image"))).status_code == 201
    evil = '<script>document.title="pwned"</script>'
    line = line_from_repo(tool, "1.0.0", tags=("tool", "image"), deps={"lib-jpeg": ">=9"})
    line["description"] = f"converts images {evil}"
    assert reg.publish(line).status_code == 201
    assert reg.yank("lib-jpeg", "9.2.0").status_code == 200
    try:
        yield reg
    finally:
        reg.stop()


def _rows(dom: str) -> dict[str, str]:
    """version → the text of its row in the rendered versions table."""
    out = {}
    for m in re.finditer(r'<tr[^>]*data-version="([^"]+)"[^>]*>(.*?)</tr>', dom, re.S):
        out[html.unescape(m.group(1))] = re.sub(r"<[^>]+>", " ", m.group(2))
    return out


def test_pages_answer_html_to_a_browser(registry: RunningRegistry) -> None:
    r = requests.get(f"{registry.url}/components/lib-jpeg", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    r = requests.get(f"{registry.url}/components/lib-nope", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    r = requests.get(f"{registry.url}/components/lib-nope", timeout=30)  # a program: the JSON error
    assert r.status_code == 404 and r.json()["error"]["code"] == "not-found"
    page = requests.get(f"{registry.url}/components/tool-convert", timeout=30).text
    assert "<script>document" not in page and "&lt;script&gt;" in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (CI installs it)")
def test_component_page_in_chromium(registry: RunningRegistry, tmp_path: Path) -> None:
    dom = chromium_dom(f"{registry.url}/components/lib-jpeg", tmp_path)
    assert "<title>lib-jpeg — ckpm registry</title>" in dom
    rows = _rows(dom)
    assert list(rows) == ["9.2.0", "9.1.0", "9.0.0"]  # newest first
    assert "yanked" in rows["9.2.0"] and "yanked" not in rows["9.1.0"] and "yanked" not in rows["9.0.0"]
    assert 'id="add">ckpm add lib-jpeg@9.1.0<' in dom  # the newest version that is not yanked
    assert 'id="owners">alice<' in dom
    # the dependent's page links its dependency, and the index's text stays text
    dom = chromium_dom(f"{registry.url}/components/tool-convert", tmp_path)
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom).group(1)  # type: ignore[union-attr]
    assert '<a href="/components/lib-jpeg">lib-jpeg</a>' in dom and "&gt;=9" in dom


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (CI installs it)")
def test_search_page_in_chromium(registry: RunningRegistry, tmp_path: Path) -> None:
    dom = chromium_dom(f"{registry.url}/?q=jpeg", tmp_path)
    assert '<form method="get" action="/"' in dom and 'value="jpeg"' in dom
    items = re.findall(r'<li data-name="([^"]+)">(.*?)</li>', dom, re.S)
    assert [name for name, _ in items] == ["lib-jpeg"]
    versions = re.search(r'<span class="versions">(.*?)</span>', items[0][1]).group(1)  # type: ignore[union-attr]
    assert versions == "9.0.0, 9.1.0, 9.2.0 (yanked)"
    dom = chromium_dom(f"{registry.url}/?tags=image", tmp_path)
    assert [name for name, _ in re.findall(r'<li data-name="([^"]+)">(.*?)</li>', dom, re.S)] == [
        "lib-jpeg", "tool-convert"]
    assert '<p id="total">2 components</p>' in dom
