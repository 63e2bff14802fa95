"""In a real Chromium: a customer typing a new ticket's title is offered the knowledge
base's articles that match it, as links opening in a new tab, without leaving the form."""
from __future__ import annotations

from .test_browser import sign_in


def test_a_customer_typing_printer_sees_the_printer_article_and_keeps_the_form(page, live_server):
    sign_in(page, live_server, "jdupont")
    page.goto(f"{live_server.url}/new/ticket")
    page.evaluate("window.stayed = true")                     # gone if the whole page reloads
    page.locator("#input-title").press_sequentially("The printer shows a paper jam", delay=20)
    link = page.locator("#suggest-title a:has-text('Printer shows a paper jam but no paper is stuck')")
    link.wait_for(timeout=5000)
    assert link.get_attribute("target") == "_blank"
    assert "Core switch" not in page.inner_text("#suggest-title")        # internal: never offered
    assert page.evaluate("window.stayed") is True
    assert page.input_value("#input-title") == "The printer shows a paper jam"
    with page.context.expect_page() as opened:
        link.click()
    article = opened.value
    article.wait_for_load_state()
    assert "Clean the paper sensor" in article.content()
    article.close()
