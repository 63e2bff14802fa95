"""The charts of home pages drawn from figures kept a while (`charts.KeptFigures`): shared by
readers who would get the same ones, never by readers of different scopes, worked out again
in the background once old, and the tiles beside them always counted afresh."""
from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from deskbase.cli.serving import charts_fresh
from deskbase.objects.errors import DeskbaseError
from deskbase.rules.access.identity import identity_of
from deskbase.views.app import create_app

CHART = 'aria-label="Open tickets: Status"'


@pytest.fixture(scope="module")
def store(app_store):
    with app_store(demo=True) as opened:
        yield opened


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def web(store):
    """(a client of an app whose kept figures follow `clock`, the clock, the kept figures)."""
    app = create_app(store)
    kept = app.state.web.kept_figures
    kept.clock = clock = Clock()
    with TestClient(app, follow_redirects=False) as client:
        yield client, clock, kept


def sign_in(client: TestClient, login: str, password: str = "demo-password") -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post("/login", data={"login": login, "password": password, "csrf": token}).status_code == 303


def home(client: TestClient) -> tuple[dict[str, int], int, str]:
    """(the open tickets chart's figures by status, the open tickets tile's count, the chart's caption)."""
    page = client.get("/").text
    chart = page[page.index(CHART):]
    chart = chart[:chart.index("</svg>")]
    caption = page[:page.index(CHART)]
    caption = caption[caption.rindex("<figcaption>"):]
    tile = int(re.search(r'<a href="/v/open_tickets"><strong>(\d+)</strong>', page).group(1))
    return {label: int(count) for label, count in re.findall(r"<title>([^<]+): (\d+)</title>", chart)}, tile, caption


def new_ticket(store) -> None:
    store.run(lambda s: s.create("ticket", {"title": "Kept figures", "description": "counted later",
                                            "kind": "service_request", "criticality": "low", "channel": "email",
                                            "organization": s.query("organization", limit=1).records[0].id}))


def expected(store, login: str) -> dict[str, int]:
    view = store.definitions.views["open_tickets"]
    return {status: count for status, count in store.read(lambda s: s.count_by("ticket", "status", view.filter),
                                                          identity=identity_of(store, login))}


def test_a_chart_is_drawn_from_kept_figures_a_while_and_worked_out_again_once_old(web, store):
    client, clock, kept = web
    sign_in(client, "cmartin")
    first, tile, caption = home(client)
    assert sum(first.values()) == tile and "counted" not in caption
    new_ticket(store)

    clock.now += 20                                   # within a minute: the figures kept, the tile afresh
    kept_figures, tile, caption = home(client)
    assert kept_figures == first and tile == sum(first.values()) + 1
    assert "counted" not in caption                   # as good as new: nothing said

    clock.now += 100                                  # older: shown once more while worked out again
    again, _, caption = home(client)
    assert again == first and "counted 2 min ago" in caption
    kept.settle()
    fresh, tile, caption = home(client)
    assert sum(fresh.values()) == tile == sum(first.values()) + 1 and "counted" not in caption

    new_ticket(store)
    clock.now += 3600                                 # far too old: the page waits for new figures
    latest, tile, caption = home(client)
    assert sum(latest.values()) == tile == sum(first.values()) + 2 and "counted" not in caption


def test_readers_of_one_scope_share_figures_and_readers_of_others_never(web, store):
    client, clock, _ = web
    sign_in(client, "cmartin")                        # a supervisor reads every ticket
    home(client)
    clock.now += 90
    administrator = TestClient(client.app, follow_redirects=False)
    sign_in(administrator, "admin", "demo-admin-2026")    # reads every ticket too: the same figures
    assert "counted 1 min ago" in home(administrator)[2]
    dispatcher = TestClient(client.app, follow_redirects=False)
    sign_in(dispatcher, "jroux")                      # reads the open tickets only: a scope of its own
    assert "counted" not in home(dispatcher)[2]
    technicians = {}
    for login in ("sbernard", "khaddad"):            # a technician's scope names them ($me)
        reader = TestClient(client.app, follow_redirects=False)
        sign_in(reader, login)
        technicians[login] = home(reader)
        assert "counted" not in technicians[login][2]
    assert technicians["sbernard"][0] != technicians["khaddad"][0]
    for login, (figures, _, _) in technicians.items():
        by_status = expected(store, login)
        assert figures["In progress"] == by_status["in_progress"]
    client.app.state.web.kept_figures.settle()


def test_the_time_figures_are_kept_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("DESKBASE_CHARTS_FRESH", raising=False)
    assert charts_fresh() == 60
    monkeypatch.setenv("DESKBASE_CHARTS_FRESH", "0")
    assert charts_fresh() == 0
    for wrong in ("soon", "-5", "100000"):
        monkeypatch.setenv("DESKBASE_CHARTS_FRESH", wrong)
        with pytest.raises(DeskbaseError, match="not a number of seconds between 0 and 86400"):
            charts_fresh()


def test_figures_worked_out_later_are_never_replaced_by_older_ones(store):
    from deskbase.views.charts import KeptFigures
    clock = Clock()
    kept = KeptFigures(store, clock=clock)
    kept._keep(("key",), 1010.0, "newer")
    kept._keep(("key",), 1005.0, "older, from a thread that began first")
    assert kept._kept[("key",)] == (1010.0, "newer")
