"""The knowledge base (T19): articles written by the staff, read by customers once
published for them, linked from tickets and offered while a customer types a new ticket's
title; and the tickets a dispatcher opens for an external contractor (T9), which the
contractor reads and answers in the portal."""
from __future__ import annotations

import re

import pytest
from demo_web import sign_in

from deskbase.objects.errors import ValidationError
from deskbase.rules.access.identity import identity_of
from deskbase.rules.access.scopes import AccessDenied


def number_of(store, type_name: str, **values) -> str:
    page = store.read(lambda s: s.query(type_name, values, limit=2))
    assert page.total == 1, values
    return page.records[0].number


def as_person(store, login: str, work):
    return store.read(work, identity=identity_of(store, login))


def test_customers_read_only_the_published_articles_meant_for_them(demo):
    every = demo.read(lambda s: s.count("article"))
    theirs = as_person(demo, "jdupont", lambda s: [r.values for r in s.query("article", limit=None).records])
    assert 0 < len(theirs) < every
    assert all(values["published"] and values["audience"] == "public" for values in theirs)
    assert as_person(demo, "sbernard", lambda s: s.count("article")) == every


def test_the_knowledge_base_is_searched_in_full_text_without_accents(demo):
    found = as_person(demo, "sbernard", lambda s: [r["title"] for r in s.query("article", {"text": "bourrage"}).records])
    assert found == ["L'imprimante affiche un bourrage papier sans feuille coincée"]
    assert as_person(demo, "sbernard", lambda s: s.count("article", {"text": "feuille coincee"})) == 1


def test_a_ticket_names_its_articles_and_an_article_counts_its_tickets(demo, client):
    ticket = number_of(demo, "ticket", title="L'imprimante du quai B n'imprime plus les bons de livraison")
    sign_in(client, "sbernard")
    page = client.get(f"/r/{ticket}").text
    assert "Knowledge base articles" in page and "bourrage papier sans feuille" in page
    article = demo.read(lambda s: s.query("article", {"text": "bourrage"}).records[0])
    assert article["used_in"] == 1
    page = client.get(f"/r/{article.number}").text          # a technician has no list to link to
    summary = page.split("Tickets naming this article</h2>")[1]
    assert re.search(r"<th>In progress</th><td>1</td>", summary.split("</section>")[0])


def test_the_title_of_a_new_ticket_asks_for_suggestions_as_it_is_typed(demo, client):
    sign_in(client, "jdupont")
    form = client.get("/new/ticket").text
    field = re.search(r'<input type="text" id="input-title"[^>]*>', form).group(0)
    assert 'hx-get="/forms/ticket/suggest/title"' in field and 'hx-trigger="input changed delay:300ms"' in field
    assert 'id="suggest-title"' in form


def test_a_customer_typing_printer_is_offered_the_public_printer_article_in_a_new_tab(client):
    sign_in(client, "jdupont")
    answer = client.get("/forms/ticket/suggest/title", params={"title": "the printer says paper jam"})
    assert answer.status_code == 200
    links = re.findall(r'<a href="/r/(KB-\d+)" target="_blank" rel="noopener">([^<]+)</a>', answer.text)
    assert links and links[0][1] == "Printer shows a paper jam but no paper is stuck"
    assert len(links) <= 5


def test_drafts_and_internal_articles_are_never_suggested(client):
    sign_in(client, "jdupont")
    assert "KB-" not in client.get("/forms/ticket/suggest/title", params={"title": "erp closing locked"}).text
    sign_in(client, "sbernard")          # staff may read it, the suggestion's filter still leaves it out
    offered = client.get("/forms/ticket/suggest/title", params={"title": "core switch configuration"}).text
    assert "Core switch" not in offered


def test_short_words_suggest_nothing_and_a_field_without_suggestions_answers_404(client):
    sign_in(client, "jdupont")
    assert "KB-" not in client.get("/forms/ticket/suggest/title", params={"title": "my pc"}).text
    assert client.get("/forms/ticket/suggest/description", params={"description": "printer"}).status_code == 404


# -- external contractors (T9) -----------------------------------------------------------------

def test_the_original_ticket_page_lists_the_ticket_opened_for_the_contractor(demo, client):
    vendor = demo.read(lambda s: s.query("ticket", {"partner": {"empty": False}}).records[0])
    original = demo.read(lambda s: s.get("ticket", vendor["opened_from"]).number)
    sign_in(client, "cmartin")
    page = client.get(f"/r/{original}").text
    assert "Opened from" in page and f"/r/{vendor.number}" in page
    assert "External contractor" in client.get(f"/r/{vendor.number}").text


def test_the_contractor_reads_only_the_tickets_opened_for_them_in_the_portal(demo, client):
    vendor = demo.read(lambda s: s.query("ticket", {"partner": {"empty": False}}).records[0])
    assert vendor["partner_login"] == "jcerny"
    sign_in(client, "jcerny")
    home = client.get("/").text
    assert 'class="portal"' in home and "/v/tickets_for_us" in home
    listed = set(re.findall(r'href="/r/(T-\d+)"', client.get("/v/tickets_for_us").text))
    assert listed == {vendor.number}
    other = demo.read(lambda s: s.get("ticket", vendor["opened_from"]).number)
    assert client.get(f"/r/{other}").status_code == 404


def test_the_contractor_answers_by_comment_on_their_ticket_only(demo):
    vendor = demo.read(lambda s: s.query("ticket", {"partner": {"empty": False}}).records[0])
    identity = identity_of(demo, "jcerny")
    demo.run(lambda s: s.create("comment", {"ticket": vendor.id, "author_kind": "customer", "visibility": "public",
                                            "body": "Fixační jednotka objednána, montáž ve čtvrtek."}),
             identity=identity)
    with pytest.raises((AccessDenied, ValidationError)):
        demo.run(lambda s: s.create("comment", {"ticket": vendor["opened_from"], "author_kind": "customer",
                                                "visibility": "public", "body": "?"}), identity=identity)


def test_a_supervisor_opens_a_contractor_ticket_from_the_original_page(demo, client):
    original = number_of(demo, "ticket", title="L'imprimante du quai B n'imprime plus les bons de livraison")
    original_id = demo.read(lambda s: s.find(original).id)
    partner = demo.read(lambda s: s.query("contact", {"kind": "partner", "login": "jcerny"}).records[0].id)
    sign_in(client, "cmartin")
    link = re.search(r'href="(/new/ticket\?opened_from=\d+[^"]*)"', client.get(f"/r/{original}").text).group(1)
    form = client.get(link.replace("&amp;", "&")).text
    assert 'name="partner"' in form
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    sent = client.post(link.replace("&amp;", "&"), data={
        "csrf": token, "opened_from": str(original_id), "partner": str(partner), "kind": "service_request",
        "title": "Remplacement du capteur – PrintServis", "channel": "staff", "criticality": "medium",
        "priority": "medium"})
    assert sent.status_code == 303
    made = demo.read(lambda s: s.query("ticket", {"opened_from": original_id}, "-id").records[0].values)
    assert made["partner_login"] == "jcerny"
