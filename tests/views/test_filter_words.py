"""Filters of the definitions said in words, in the reader's language, or left as written
when words would not say them plainly."""
from __future__ import annotations

import pytest

from deskbase.views.filter_words import filter_words


@pytest.mark.parametrize("spec, language, said", [
    ({"any": [{"status": ["awaiting_pickup", "unassigned"]}, {"assignee": "$me"}]}, "en",
     "Status is one of Awaiting pickup, Unassigned, or Assignee is the person themselves"),
    ({"organization": "$me.organization", "status": {"not_in": ["closed"]}}, "fr",
     "Organisation est son organisation et Statut n’est aucun de Clos"),
    ({"estimated_cost": {"gt": 500}}, "en", "Estimated cost more than 500"),
    ({"merged_into": None}, "en", "Merged into is empty"),
    ({"contract": {"sla_level": "premium"}}, "en", "Contract: SLA level is Premium (24/7)"),
    ({"not": {"escalated": True}}, "en", "not (Escalated is yes)"),
])
def test_a_filter_reads_as_a_sentence(helpdesk_definitions, spec, language, said):
    assert filter_words(spec, helpdesk_definitions.types["ticket"], helpdesk_definitions, language) == said


@pytest.mark.parametrize("spec", [{"text": "printer"}, {"reported_at": {"gte": "$today-7d"}}, {"colour": "red"}])
def test_what_words_would_not_say_plainly_is_left_as_written(helpdesk_definitions, spec):
    assert filter_words(spec, helpdesk_definitions.types["ticket"], helpdesk_definitions, "en") is None
