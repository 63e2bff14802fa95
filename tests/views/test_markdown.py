"""Text fields with `format: markdown`: shown as CommonMark, and nothing in them runs or
restyles the page — raw HTML is text, scripts and event handlers never reach it, links
cannot reach back to the page."""
from __future__ import annotations

from deskbase.views.markdown import to_html


def test_lists_headings_emphasis_and_links_are_formatted():
    html = str(to_html("## Steps\n\n1. Switch it **off**\n2. See [the guide](https://example.org/guide)\n"))
    assert "<h2>Steps</h2>" in html and "<ol>" in html and "<strong>off</strong>" in html
    assert '<a href="https://example.org/guide" rel="noopener noreferrer nofollow">the guide</a>' in html


def test_nothing_in_it_can_run_or_restyle_the_page():
    html = str(to_html('<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))\n\n'
                       '<div style="position:fixed">over</div>'))
    assert "<script" not in html and "<img" not in html and "href=\"javascript" not in html and "<div" not in html
    assert "&lt;script&gt;" in html                          # shown as the text that was typed


def test_an_article_page_shows_its_markdown_formatted(demo_store):
    from starlette.testclient import TestClient

    from deskbase.views.app import create_app

    from .test_web import sign_in
    number = demo_store.read(lambda s: s.query("article", {"text": "bourrage"}).records[0].number)
    with TestClient(create_app(demo_store), follow_redirects=False) as client:
        sign_in(client, "sbernard", "demo-password")
        page = client.get(f"/r/{number}").text
    assert '<div class="markdown"><ol>' in page
