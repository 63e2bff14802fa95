"""Interventions (T20): planned from a ticket's page, refused for a technician who is away
(a declared absence) or already booked then, listed per technician and day."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from demo_web import sign_in

from deskbase.objects.errors import ValidationError
from deskbase.rules.access.identity import identity_of

PARIS = ZoneInfo("Europe/Paris")


def printer_ticket(store):
    return store.read(lambda s: s.query(
        "ticket", {"title": "L'imprimante du quai B n'imprime plus les bons de livraison"}).records[0])


def slot(days: int, hour: int, hours: int = 2) -> tuple[datetime, datetime]:
    start = datetime.combine(datetime.now(PARIS).date() + timedelta(days=days), datetime.min.time(), PARIS) \
        + timedelta(hours=hour)
    return start, start + timedelta(hours=hours)


def plan(store, login: str, technician: str, days: int, hour: int, **values):
    ticket = printer_ticket(store)
    starts, ends = slot(days, hour)
    return store.run(lambda s: s.create("intervention", {"ticket": ticket.id, "purpose": "Visite", "technician": technician,
                                                          "starts": starts, "ends": ends, **values}),
                     identity=identity_of(store, login))


def test_a_technician_away_then_cannot_be_planned_and_the_sentence_says_until_when(demo):
    with pytest.raises(ValidationError) as refused:
        plan(demo, "jroux", "khaddad", 1, 9)             # away from today-2d to today+5d (60_absences.yaml)
    sentence = refused.value.errors["technician"]
    until = (datetime.now(PARIS).date() + timedelta(days=5)).isoformat()
    assert sentence.startswith("khaddad is away from ") and f"to {until} 00:00" in sentence
    assert "choose another technician or time" in sentence


def test_after_the_absence_the_same_technician_can_be_planned(demo):
    planned = plan(demo, "jroux", "khaddad", 6, 9)
    assert planned["status"] == "planned" and planned["organization"] == printer_ticket(demo)["organization"]


def test_a_technician_already_booked_then_is_refused(demo):
    with pytest.raises(ValidationError) as refused:
        plan(demo, "jroux", "tdvorak", 1, 10)            # 75_interventions.yaml: tomorrow 9:00-11:00
    assert "tdvorak already has intervention INT-" in refused.value.errors["technician"]


def test_the_ticket_page_plans_an_intervention_and_a_refusal_comes_back_on_the_form(demo, client):
    ticket = printer_ticket(demo)
    csrf = sign_in(client, "jroux")
    page = client.get(f"/r/{ticket.number}").text
    assert "Interventions (" in page and f"/new/intervention?ticket={ticket.id}" in page
    starts, ends = slot(2, 14)
    form = {"csrf": csrf, "ticket": str(ticket.id), "purpose": "Contrôle après réparation", "technician": "khaddad",
            "starts": starts.strftime("%Y-%m-%dT%H:%M"), "ends": ends.strftime("%Y-%m-%dT%H:%M"), "status": "planned"}
    refused = client.post(f"/new/intervention?return=/r/{ticket.number}", data=form)
    assert refused.status_code == 422 and "khaddad is away from" in refused.text
    done = client.post(f"/new/intervention?return=/r/{ticket.number}", data={**form, "technician": "sbernard"})
    assert done.status_code == 303 and done.headers["location"] == f"/r/{ticket.number}"
    assert "Contrôle après réparation" in client.get(f"/r/{ticket.number}").text


def test_the_planning_lists_the_coming_week_by_technician_and_a_technician_reads_only_theirs(demo, client):
    sign_in(client, "jroux")
    planning = client.get("/v/intervention_planning").text
    assert "Remplacement du capteur du bac 2" in planning and "Zamjena pristupne" not in planning   # that one is past
    assert "Interventions, next 7 days" in client.get("/").text
    theirs = demo.read(lambda s: {r["technician"] for r in s.query("intervention", limit=None).records},
                       identity=identity_of(demo, "tdvorak"))
    assert theirs == {"tdvorak"}
