"""Text fields with `format: markdown` as pages show them: CommonMark rendered by
markdown-it-py with raw HTML turned off (it is shown as text), then cleaned by nh3 with an
allow-list of tags and attributes, links opening without access to this page."""
from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h1", "h2", "h3", "h4",
         "hr", "table", "thead", "tbody", "tr", "th", "td"}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def to_html(text: str) -> Markup:
    """Safe HTML for a Markdown text: nothing in it can run or restyle the page."""
    rendered = _parser().render(text or "")
    cleaned = nh3.clean(rendered, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                        link_rel="noopener noreferrer nofollow")
    return Markup(cleaned)
