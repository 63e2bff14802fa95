"""Who sees and changes which tickets in the shipped helpdesk (T7, T8): the access matrix
role × ticket state × action, scopes in queries, counts and search, customers' hidden
and read-only fields, and reference data per role."""
from __future__ import annotations

import pytest

from deskbase.rules.access.identity import create_account, identity_of
from deskbase.rules.access.scopes import AccessDenied, decide
from deskbase.rules.process.workflows import fire

PASSWORD = "a long test password"
OPEN = ("awaiting", "unassigned", "tinas", "toms", "toms_wifi")
ALL = OPEN + ("tinas_closed",)

# Which tickets each person may read, update and delete (T7, T8).
RIGHTS = {
    "admin": {"read": ALL, "update": ALL, "delete": ALL},
    "supervisor": {"read": ALL, "update": ALL, "delete": ALL},
    "dispatcher": {"read": OPEN, "update": OPEN, "delete": ()},
    # member of `wifi`, a child of `network`: the tickets of both groups
    "specialist": {"read": ("toms", "toms_wifi"), "update": ("toms", "toms_wifi"), "delete": ()},
    # what nobody has taken, and their own
    "tina": {"read": ("awaiting", "unassigned", "tinas", "tinas_closed"),
             "update": ("awaiting", "unassigned", "tinas", "tinas_closed"), "delete": ()},
    "customer_user": {"read": ("awaiting", "unassigned", "tinas", "tinas_closed"), "update": (), "delete": ()},
    "customer_power_user": {"read": ("toms", "toms_wifi"), "update": (), "delete": ()},
}


@pytest.fixture(scope="module")
def helpdesk(app_store):
    """A store with two customers, nested groups, six tickets and one account per role."""
    with app_store() as store:
        def work(session):
            ids = {"acme": session.create("organization", {"name": "Acme", "code": "ACME"}).id,
                   "globex": session.create("organization", {"name": "Globex", "code": "GLOBEX"}).id}
            ids["hotline"] = session.create("group", {"name": "Hotline"}).id
            ids["network"] = session.create("group", {"name": "Network", "level": "l2"}).id
            ids["wifi"] = session.create("group", {"name": "Wi-Fi", "level": "l2", "parent": ids["network"]}).id
            ids["acme_contact"] = session.create("contact", {"name": "Ann", "organization": ids["acme"]}).id
            ids["globex_contact"] = session.create("contact", {"name": "Gus", "organization": ids["globex"]}).id
            ids["acme_asset"] = session.create("asset", {"name": "Printer", "organization": ids["acme"],
                                                         "notes": "spare toner in the cupboard"}).id
            ids["globex_asset"] = session.create("asset", {"name": "Switch", "organization": ids["globex"]}).id
            tickets = {
                "awaiting": {"title": "printer jammed", "organization": ids["acme"], "group": ids["hotline"]},
                "unassigned": {"title": "mail slow", "status": "unassigned", "organization": ids["acme"]},
                "tinas": {"title": "vpn down", "status": "in_progress", "assignee": "tina", "organization": ids["acme"],
                          "internal_notes": "customer was rude"},
                "toms": {"title": "switch broken", "status": "in_progress", "assignee": "tom",
                         "organization": ids["globex"], "group": ids["network"]},
                "toms_wifi": {"title": "wifi weak", "status": "in_progress", "assignee": "tom",
                         "organization": ids["globex"], "group": ids["wifi"]},
                "tinas_closed": {"title": "old printer", "status": "closed", "assignee": "tina",
                                 "organization": ids["acme"]},
            }
            for key, values in tickets.items():
                ids[key] = session.create("ticket", values).id
            return ids
        store.ids = store.run(work)
        ids = store.ids
        accounts = {
            "admin": dict(roles=["administrator"]),
            "supervisor": dict(roles=["supervisor"]),
            "dispatcher": dict(roles=["dispatcher"]),
            "specialist": dict(roles=["specialist"], groups=[ids["wifi"]]),
            "tina": dict(roles=["technician"], groups=[ids["hotline"]]),
            "tom": dict(roles=["technician"], groups=[ids["network"]]),
            "customer_user": dict(roles=["customer_user"], organization=ids["acme"]),
            "customer_power_user": dict(roles=["customer_power_user"], organization=ids["globex"]),
        }
        for login, options in accounts.items():
            create_account(store, login, name=login.title(), password=PASSWORD, **options)
        yield store


def me(store, login: str):
    return identity_of(store, login)


def visible(store, login: str, filter=None) -> set[str]:
    names = {record_id: key for key, record_id in store.ids.items() if _type_of(key) == "ticket"}
    page = store.read(lambda s: s.query("ticket", filter, limit=None), identity=me(store, login))
    return {names[r.id] for r in page.records}


MATRIX = [(login, ticket, action, ticket in rights[action])
          for login, rights in RIGHTS.items() for ticket in ALL for action in ("read", "update", "delete")]


@pytest.mark.parametrize("login, ticket, action, allowed", MATRIX,
                         ids=[f"{l}-{a}-{t}-{'yes' if ok else 'no'}" for l, t, a, ok in MATRIX])
def test_access_matrix(helpdesk, login, ticket, action, allowed):
    definitions = helpdesk.definitions

    def work(session):
        record = session.get("ticket", helpdesk.ids[ticket])
        return decide(session.identity, action, definitions.type("ticket"), record,
                      definitions=definitions, context=session.context(record.values))
    decision = helpdesk.read(work, identity=me(helpdesk, login))
    assert decision.allowed is allowed, decision.reason


@pytest.mark.parametrize("login", list(RIGHTS))
def test_query_count_and_search_return_exactly_the_readable_tickets(helpdesk, login):
    readable = set(RIGHTS[login]["read"])
    assert visible(helpdesk, login) == readable
    assert helpdesk.read(lambda s: s.count("ticket"), identity=me(helpdesk, login)) == len(readable)
    assert visible(helpdesk, login, {"text": "printer"}) == readable & {"awaiting", "tinas_closed"}


def test_technician_sees_tickets_awaiting_pickup_or_unassigned(helpdesk):
    assert {"awaiting", "unassigned"} <= visible(helpdesk, "tom")


def test_technician_sees_their_own_tickets(helpdesk):
    assert {"tinas", "tinas_closed"} <= visible(helpdesk, "tina")


def test_technician_does_not_see_ticket_assigned_to_another(helpdesk):
    assert "toms" not in visible(helpdesk, "tina")
    assert "tinas" not in visible(helpdesk, "tom")


def test_nobody_writes_on_a_ticket_they_may_not_read_it_does_not_exist_for_them(helpdesk):
    from deskbase.objects.errors import ValidationError
    toms = helpdesk.read(lambda s: s.get("ticket", helpdesk.ids["toms"]).number)
    for who, kind, values in (("tina", "comment", {"body": "I was here"}),
                              ("tina", "work_entry", {"duration": "1h"})):
        with pytest.raises(ValidationError) as refused:
            helpdesk.run(lambda s: s.create(kind, {"ticket": helpdesk.ids["toms"], **values}),
                         identity=me(helpdesk, who))
        assert f"there is no Ticket {toms}" in str(refused.value)
    with pytest.raises(AccessDenied, match="whose organization is your organization"):   # the ticket's, copied
        helpdesk.run(lambda s: s.create("comment", {"ticket": helpdesk.ids["toms"], "body": "Not ours",
                                                    "organization": helpdesk.ids["acme"]}),
                     identity=me(helpdesk, "customer_user"))
    assert helpdesk.read(lambda s: s.count("comment", {"ticket": helpdesk.ids["toms"]})) == 0
    # the one who works it writes on it, and the entry takes the ticket's organization
    comment = helpdesk.run(lambda s: dict(s.create("comment", {"ticket": helpdesk.ids["toms"], "body": "On it"}).values),
                           identity=me(helpdesk, "tom"))
    assert comment["organization"] == helpdesk.ids["globex"]


def test_technician_refusal_says_why(helpdesk):
    with pytest.raises(AccessDenied) as denied:
        helpdesk.run(lambda s: s.update(helpdesk.ids["toms"], {"priority": "high"}, type_name="ticket"),
                     identity=me(helpdesk, "tina"))
    assert denied.value.reason.startswith("the role technician may update only Ticket records whose status is "
                                          "awaiting_pickup or unassigned, or whose assignee is you")
    assert denied.value.reason.endswith(": this one is not")


@pytest.mark.parametrize("status", ["awaiting_pickup", "unassigned"])
def test_technician_may_take_a_ticket_awaiting_pickup(helpdesk, status):
    """Tom takes a Hotline ticket nobody has taken (he is not of Hotline): it is his, in progress."""
    created = helpdesk.run(lambda s: s.create("ticket", {"title": "screen flickers", "status": status,
                                                         "organization": helpdesk.ids["acme"],
                                                         "group": helpdesk.ids["hotline"]}).id)
    try:
        taken = helpdesk.run(lambda s: dict(fire(s, s.get("ticket", created), "take", {"time_spent": "5m"}).values),
                             identity=me(helpdesk, "tom"))
        assert (taken["status"], taken["assignee"]) == ("in_progress", "tom")
        assert helpdesk.read(lambda s: s.get("ticket", created)["assignee"], identity=me(helpdesk, "tom")) == "tom"
    finally:
        def remove(session):
            for entry in session.query("work_entry", {"ticket": created}, limit=None).records:
                session.delete(entry)
            session.delete(created, type_name="ticket")
        helpdesk.run(remove)


def test_customer_user_cannot_create_a_ticket(helpdesk):
    with pytest.raises(AccessDenied, match="the role customer_user may not create Ticket records"):
        helpdesk.run(lambda s: s.create("ticket", {"title": "help", "organization": helpdesk.ids["acme"]}),
                     identity=me(helpdesk, "customer_user"))


def test_customer_power_user_creates_tickets_for_their_organization_only(helpdesk):
    identity = me(helpdesk, "customer_power_user")
    created = helpdesk.run(lambda s: s.create("ticket", {"title": "printer on fire", "channel": "portal",
                                                         "organization": helpdesk.ids["globex"]}).id,
                           identity=identity)
    try:
        with pytest.raises(AccessDenied, match="whose organization is your organization"):
            helpdesk.run(lambda s: s.create("ticket", {"title": "for someone else",
                                                       "organization": helpdesk.ids["acme"]}), identity=identity)
        with pytest.raises(AccessDenied, match="whose organization is your organization"):
            helpdesk.run(lambda s: s.create("ticket", {"title": "for nobody"}), identity=identity)
    finally:
        helpdesk.run(lambda s: s.delete(created, type_name="ticket"))


def test_customer_power_user_cannot_set_the_assignee_of_a_new_ticket(helpdesk):
    with pytest.raises(AccessDenied) as denied:
        helpdesk.run(lambda s: s.create("ticket", {"title": "take it", "assignee": "tom",
                                                   "organization": helpdesk.ids["globex"]}),
                     identity=me(helpdesk, "customer_power_user"))
    assert denied.value.fields == {"assignee": "is read-only for you"}


def test_customers_do_not_see_internal_notes(helpdesk):
    from deskbase.rules.access.scopes import visible_values
    definitions = helpdesk.definitions
    ticket = definitions.type("ticket")
    values = helpdesk.read(lambda s: dict(s.get("ticket", helpdesk.ids["tinas"]).values))
    assert "internal_notes" not in visible_values(me(helpdesk, "customer_user"), ticket, values,
                                                  definitions=definitions)
    assert visible_values(me(helpdesk, "tina"), ticket, values, definitions=definitions)["internal_notes"] == \
        "customer was rude"


def test_dispatcher_may_route_open_tickets_but_not_rewrite_them(helpdesk):
    identity = me(helpdesk, "dispatcher")
    helpdesk.run(lambda s: s.update(helpdesk.ids["awaiting"], {"group": helpdesk.ids["network"], "assignee": "tom"},
                                    type_name="ticket"), identity=identity)
    helpdesk.run(lambda s: s.update(helpdesk.ids["awaiting"], {"group": helpdesk.ids["hotline"], "assignee": None},
                                    type_name="ticket"), identity=identity)
    with pytest.raises(AccessDenied) as denied:
        helpdesk.run(lambda s: s.update(helpdesk.ids["awaiting"], {"title": "reworded"}, type_name="ticket"),
                     identity=identity)
    assert denied.value.fields == {"title": "is read-only for you"}


@pytest.mark.parametrize("login, type_name, readable", [
    ("customer_user", "organization", {"acme"}),
    ("customer_user", "contact", {"acme_contact"}),
    ("customer_user", "asset", {"acme_asset"}),
    ("customer_power_user", "asset", {"globex_asset"}),
    ("tina", "organization", {"acme", "globex"}),
    ("tina", "asset", {"acme_asset", "globex_asset"}),
    ("dispatcher", "group", {"hotline", "network", "wifi"}),
    ("customer_user", "group", set()),
])
def test_reference_data_per_role(helpdesk, login, type_name, readable):
    page = helpdesk.read(lambda s: s.query(type_name, limit=None), identity=me(helpdesk, login))
    keys = {record_id: key for key, record_id in helpdesk.ids.items() if _type_of(key) == type_name}
    assert {keys[r.id] for r in page.records} == readable


def _type_of(key: str) -> str:
    if key in ("acme", "globex"):
        return "organization"
    if key in ("hotline", "network", "wifi"):
        return "group"
    return "contact" if key.endswith("_contact") else "asset" if key.endswith("_asset") else "ticket"


def test_customers_do_not_see_asset_notes(helpdesk):
    from deskbase.rules.access.scopes import hidden_fields
    definitions = helpdesk.definitions
    assert "notes" in hidden_fields(me(helpdesk, "customer_user"), definitions.type("asset"), definitions)


def test_a_ticket_moved_to_another_organization_takes_its_comments_along(helpdesk):
    def setup(session):
        ticket = session.create("ticket", {"title": "moved", "organization": helpdesk.ids["acme"]})
        session.create("comment", {"ticket": ticket.id, "body": "seen by the owner of the ticket"})
        return ticket.number
    number = helpdesk.run(setup)
    readers = {"customer_user": "acme", "customer_power_user": "globex"}

    def comments_seen(who):
        return helpdesk.read(lambda s: s.count("comment", {"text": "owner"}), identity=me(helpdesk, who))
    assert comments_seen("customer_user") == 1 and comments_seen("customer_power_user") == 0
    helpdesk.run(lambda s: s.update(number, {"organization": helpdesk.ids["globex"]}))
    assert comments_seen("customer_user") == 0 and comments_seen("customer_power_user") == 1, readers
