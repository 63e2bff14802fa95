"""Standing in (P8, T20) on the staffing application: a leave makes its stand-in act for
the person away (`$me.acting_for`) for its days only, the history names whom they acted
for, messages meant for the person away reach the stand-in too, and a wrong
`substitution:` section is reported at its place."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from deskbase.objects.errors import DefinitionErrors
from deskbase.rules.access.identity import identity_of
from deskbase.rules.access.scopes import AccessDenied
from deskbase.rules.messages.outbox import list_messages


def day(offset: int) -> str:
    return (datetime.now(timezone.utc).date() + timedelta(days=offset)).isoformat()


@pytest.mark.parametrize("first, last, standing_in", [
    (-1, 1, True),
    (0, 0, True),            # a one-day leave: today is its first and last day
    (-3, -1, False),         # over
    (1, 3, False),           # not yet
    (-1, None, True),        # no end given: until it is set
])
def test_stand_in_acts_for_the_person_away_only_during_the_leave(staffing, first, last, standing_in):
    staffing.leave("ann", "bob", day(first), None if last is None else day(last))
    acting_for = identity_of(staffing.store, "bob").acting_for
    assert acting_for == (("ann",) if standing_in else None)
    assert identity_of(staffing.store, "ann").acting_for is None


def test_stand_in_acts_for_everyone_they_replace(staffing):
    staffing.leave("cid", "bob", day(-1), day(1))
    staffing.leave("ann", "bob", day(0), day(2))
    staffing.leave("fay", "ann", day(0), day(2))     # ann is away herself: still fay's stand-in on paper
    assert identity_of(staffing.store, "bob").acting_for == ("ann", "cid")


def test_stand_in_reads_and_updates_the_records_of_the_person_away(staffing):
    number = staffing.request(handler="ann")["id"]
    bob = identity_of(staffing.store, "bob")

    def rename(session):
        session.update(session.get("request", number), {"title": "printer on fire"})
    with pytest.raises(AccessDenied):
        staffing.store.run(rename, identity=bob)
    assert staffing.store.read(lambda s: s.count("request"), identity=bob) == 0

    staffing.leave("ann", "bob", day(0), day(1))
    bob = identity_of(staffing.store, "bob")        # identities are built per request: this one knows
    assert staffing.store.read(lambda s: s.count("request"), identity=bob) == 1
    staffing.store.run(rename, identity=bob)


def test_history_says_whom_the_stand_in_acted_for_on_their_records_only(staffing):
    staffing.leave("ann", "bob", day(0), day(1))
    hers, his = staffing.request(handler="ann")["id"], staffing.request(handler="bob")["id"]
    bob = identity_of(staffing.store, "bob")
    for number in (hers, his):
        staffing.store.run(lambda s: s.update(s.get("request", number), {"title": "done by bob"}), identity=bob)
    last = staffing.store.read(lambda s: [s.get("request", n).history.entries[-1] for n in (hers, his)])
    assert (last[0]["by"], last[0]["acting_for"]) == ("bob", "ann")
    assert (last[1]["by"], last[1]["acting_for"]) == ("bob", None)


def test_a_message_meant_for_the_person_away_reaches_the_stand_in_too(staffing):
    number = staffing.request(handler="ann")["id"]
    staffing.leave("ann", "bob", day(0), day(1))
    staffing.store.run(lambda s: s.update(s.get("request", number), {"title": "printer again"}))
    recipients = staffing.store.read(lambda s: sorted(m.recipients[0] for m in list_messages(s, None, limit=10)))
    assert recipients == ["ann@staffing.example", "bob@staffing.example"]


def test_a_leave_without_a_stand_in_makes_nobody_act_for_the_person_away(staffing):
    staffing.leave("ann", None, day(0), day(1))
    assert [identity_of(staffing.store, login).acting_for for login in ("bob", "cid")] == [None, None]


@pytest.mark.parametrize("old, new, expected", [
    ("  type: leave\n", "  type: leaves\n",
     "staffing.yaml:86:9: substitution.type: `leaves` is not a type; did you mean `leave`?"),
    ("  deputy: stand_in\n", "  deputy: first_day\n",
     "substitution.deputy: `first_day` is a date field; `deputy` names a user field of `leave`"),
    ("  ends: last_day\n", "  ends: lastday\n",
     "substitution.ends: `lastday` is not a field of type `leave`; did you mean `last_day`?"),
    ("    index: [who, stand_in,", "    index: [who,",
     "substitution.deputy: `stand_in` is not indexed: absences are found through their indexes; "
     "add `stand_in` to the `index` of `leave`"),
    ("      last_day:  {kind: date}", "      last_day:  {kind: datetime}",
     "substitution.ends: `starts` and `ends` must be of the same kind"),
])
def test_substitution_errors_are_located_with_a_suggestion(staffing_with, old, new, expected):
    with pytest.raises(DefinitionErrors) as errors:
        staffing_with((old, new))
    messages = [str(error) for error in errors.value.errors]
    assert any(expected in message for message in messages), messages
