"""Bad input gets a sentence, never a 5xx: random values thrown at every field kind, at the
filter language, at the web forms and at the API, and the cases found by attacking the demo
(a year 1, 1e999, thirty digits, a version `abc`, 99999999999999h, `$today-99999999999d`,
3,000 brackets, a bomb of YAML aliases, an offset of 5,000 nines)."""
from __future__ import annotations

import pytest
from demo_web import csrf_of, sign_in
from hypothesis import HealthCheck, given, settings, strategies as st
from starlette.testclient import TestClient

from deskbase.objects import fields as kinds
from deskbase.objects.errors import DeskbaseError
from deskbase.objects.filters import compile_filter, parse_filter_text
from deskbase.views.api_keys import add_key
from deskbase.views.app import create_app

KINDS = [kinds.IntegerKind(minimum=0, maximum=100), kinds.DecimalKind(), kinds.MoneyKind(), kinds.DateKind(),
         kinds.DateTimeKind(zone="Europe/Paris"), kinds.DurationKind(), kinds.EnumKind(values=("low", "high")),
         kinds.BooleanKind(), kinds.StringKind(), kinds.TextKind(), kinds.UserKind(), kinds.UsersKind(),
         kinds.TagsKind()]
ANYTHING = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**20, max_value=10**4000)
    | st.floats() | st.text() | st.decimals() | st.sampled_from(["1e999", "0001-01-01T00:00", "9999-12-31T23:59",
                                                                "99999999999999h", "-1e400", "NaN", "1" * 30]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)
BAD = {
    "reported_at": "0001-01-01T00:00", "estimated_cost": "1e999", "outage_loss": "1" * 30,
    "remaining_effort": "99999999999999h",
}


@settings(max_examples=400, deadline=None)
@given(value=ANYTHING, kind=st.sampled_from(KINDS))
def test_every_kind_reads_a_value_or_says_why(value, kind):
    try:
        kind.coerce(value)
    except DeskbaseError as refused:
        assert str(refused) and len(str(refused)) < 300
    except TypeError as unreadable:                # a Python object no form or JSON body can carry
        assert isinstance(value, (dict, list))
        assert unreadable


@pytest.fixture(scope="module")
def desk(app_store):
    with app_store(demo=True) as store:
        store.key = add_key(store, "bad-input", "cmartin")
        yield store


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=80) | st.builds(lambda a, b: "{" + a + ": " + b + "}", st.sampled_from(
    ["reported_at", "priority", "expenses_total", "all", "any", "not", "text", "id", "assignee"]), st.text(max_size=30)))
def test_the_filter_language_says_why_it_refuses(desk, text):
    ticket = desk.definitions.type("ticket")
    try:
        compile_filter(parse_filter_text(text), ticket)
    except DeskbaseError as refused:
        assert str(refused)


@pytest.mark.parametrize("text, said", [
    ("[" * 3000, "nests too deeply"),
    ("{reported_at: {gt: $today-99999999999d}}", "moves too far"),
    ("{reported_at: {gt: $now+999999999d}}", "moves too far"),
    ("{expenses_total: {gt: 1e400}}", "too large"),
    ("{a: &a [x,x,x,x,x,x,x,x,x], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], c: [*b,*b,*b,*b,*b,*b,*b,*b,*b]}", "aliases"),
    ("{title: " + "x" * 30_000 + "}", "too long"),
])
def test_hostile_filters_are_refused_with_a_sentence(desk, text, said):
    with pytest.raises(DeskbaseError, match=said):
        compile_filter(parse_filter_text(text), desk.definitions.type("ticket"))


def test_the_attacks_found_on_the_demo_answer_4xx_with_a_sentence(desk):
    with TestClient(create_app(desk), follow_redirects=False, raise_server_exceptions=False) as web:
        sign_in(web, "cmartin")
        token = csrf_of(web.get("/new/ticket").text)
        number = desk.read(lambda s: s.query("ticket", {"status": "in_progress"}, "id", limit=1).records[0].number)
        base = {"csrf": token, "title": "x", "kind": "incident", "criticality": "low"}
        for name, value in BAD.items():
            answer = web.post("/new/ticket", data={**base, name: value})
            assert answer.status_code == 422 and "class=\"error\"" in answer.text, (name, answer.status_code)
        for path, data in ((f"/r/{number}/edit", {"csrf": token, "version": "abc", "title": "y"}),
                           (f"/r/{number}/fire/release", {"csrf": token, "version": "abc", "time_spent": "5m"}),
                           (f"/r/{number}/fire/release", {"csrf": token, "time_spent": "99999999999999h",
                                                          "work_done": "x"})):
            answer = web.post(path, data=data)
            assert answer.status_code == 422 and ("not a number" in answer.text or "too long" in answer.text), path
        for query in ("f={reported_at: {gt: $today-99999999999d}}", "f=" + "[" * 3000, "page=" + "9" * 5000,
                      "f={expenses_total: {gt: 1e400}}", "add_value=[1, 2"):
            answer = web.get(f"/v/open_tickets?{query}")
            assert answer.status_code < 500, query
        bearer = {"Authorization": f"Bearer {desk.key}"}
        for path in ("/api/v1/ticket?offset=" + "9" * 5000, "/api/v1/ticket?limit=abc",
                     "/api/v1/ticket?filter={reported_at: {gt: $now+999999999d}}"):
            answer = web.get(path, headers=bearer)
            assert answer.status_code == 400 and answer.json()["error"], path
        answer = web.post("/api/v1/ticket", headers=bearer, json={"title": "x", "estimated_cost": "1e999"})
        assert answer.status_code == 422 and "estimated_cost" in answer.text
        answer = web.post("/api/v1/ticket", headers={**bearer, "content-type": "application/json"},
                          content="[" * 50_000)
        assert answer.status_code == 400 and "nests too deeply" in answer.json()["error"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.dictionaries(st.sampled_from(["title", "reported_at", "estimated_cost", "remaining_effort",
                                               "priority", "criticality", "category", "asset", "watchers",
                                               "outage_loss", "escalated"]),
                              st.text(max_size=40) | st.sampled_from(list(BAD.values())), min_size=1))
def test_random_forms_and_api_bodies_never_answer_5xx(desk, values):
    with TestClient(create_app(desk), follow_redirects=False, raise_server_exceptions=False) as web:
        sign_in(web, "cmartin")
        token = csrf_of(web.get("/new/ticket").text)
        assert web.post("/new/ticket", data={"csrf": token, **values}).status_code < 500
        answer = web.post("/api/v1/ticket", json=values, headers={"Authorization": f"Bearer {desk.key}"})
        assert answer.status_code < 500, answer.text


def test_a_body_past_the_limit_is_refused_without_being_read_in_full(desk, monkeypatch):
    """Said or not (a chunked upload has no length), a body past the limit gets 413 with a
    sentence, and reading stops at the limit."""
    import asyncio

    import deskbase.views.app as app_module
    monkeypatch.setattr(app_module, "MAX_REQUEST", 64 * 1024)
    app = create_app(desk)

    def chunked(path: str, kind: bytes = b"application/json") -> tuple[int, int, bytes]:
        """POST 16 MiB in 16 KiB chunks without a length: (status, chunks read, body)."""
        read, sent = [0], []

        async def receive():
            read[0] += 1
            return {"type": "http.request", "body": b"x" * 16384, "more_body": read[0] < 1000}

        async def send(message):
            sent.append(message)
        scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "headers": [(b"content-type", kind),
                             (b"authorization", f"Bearer {desk.key}".encode())],
                 "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "scheme": "http",
                 "http_version": "1.1", "root_path": "", "app": app}
        asyncio.run(app(scope, receive, send))
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], read[0], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    status, read, body = chunked("/api/v1/ticket")
    assert status == 413 and b"too large" in body and read <= 6            # 64 KiB: four chunks and one more
    status, read, body = chunked("/new/ticket", b"application/x-www-form-urlencoded")    # a page's form alike
    assert status == 413 and b"too large" in body and read <= 6
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as web:
        sign_in(web, "cmartin")
        answer = web.post("/new/ticket", content=b"x" * 70_000, headers={"content-type": "text/plain"})
        assert answer.status_code == 413 and "too large" in answer.text


def test_a_write_that_keeps_meeting_others_asks_to_try_again(desk, monkeypatch):
    """When every retry of a write met another's, the answer is 503 with Retry-After and a
    sentence — on a page and in the API — never a 500."""
    from ZODB.POSException import ConflictError

    def busy(*args, **kwargs):
        raise ConflictError()
    with TestClient(create_app(desk), follow_redirects=False, raise_server_exceptions=False) as web:
        sign_in(web, "cmartin")
        token = csrf_of(web.get("/new/ticket").text)
        monkeypatch.setattr(desk, "run", busy)
        answer = web.post("/new/ticket", data={"csrf": token, "title": "x", "kind": "incident"})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1" and "Try again" in answer.text
        answer = web.post("/api/v1/ticket", json={"title": "x"}, headers={"Authorization": f"Bearer {desk.key}"})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1" and "try again" in answer.text


@pytest.mark.parametrize("sent, kept", [
    ("invoice\u202efdp.exe", "invoice_fdp.exe"),           # shown as "invoiceexe.pdf" if kept
    ("../../etc/passwd", "etc_passwd"),
    ("report\r\nBcc: x@y.z.pdf", "report Bcc: x@y.z.pdf"),
    ("\u2067photo\u2069.png\x00", "photo_.png"),
    ("", "attachment"),
])
def test_a_file_name_keeps_no_control_or_reordering_character(desk, sent, kept):
    """Whoever sends the file (a form, the API, an e-mail), its name is made safe once."""
    from deskbase.objects.fields import Upload
    assert Upload(sent, b"data", "text/plain").filename == kept
    number = desk.read(lambda s: s.query("ticket", limit=1).records[0].number)
    desk.run(lambda s: s.update(number, {"attachments": [Upload("x" + sent + ".txt", b"data", "text/plain")]}))
    names = desk.read(lambda s: [item.filename for item in s.find(number)["attachments"]])
    assert names[-1] == Upload("x" + sent + ".txt", b"").filename and "\u202e" not in names[-1]


def test_what_ends_before_it_starts_or_costs_less_than_nothing_is_refused(desk):
    """An intervention, an absence or a contract ending before it starts, and a negative
    estimated cost, are refused with the sentence the definitions give."""
    from deskbase.objects.errors import ValidationError
    ticket = desk.read(lambda s: s.query("ticket", {"status": "in_progress"}, "id", limit=1).records[0].id)
    organization = desk.read(lambda s: s.query("organization", limit=1).records[0].id)
    for type_name, values in (
            ("intervention", {"ticket": ticket, "purpose": "Visit", "technician": "sbernard",
                              "starts": "2030-03-02 14:00", "ends": "2030-03-02 09:00"}),
            ("absence", {"operator": "sbernard", "starts": "2030-03-05 08:00", "ends": "2030-03-01 18:00",
                         "reason": "leave"}),
            ("contract", {"organization": organization, "name": "Backwards", "starts": "2030-06-01",
                          "ends": "2030-01-01"})):
        with pytest.raises(ValidationError) as refused:
            desk.run(lambda s, t=type_name, v=values: s.create(t, v))
        assert refused.value.errors == {"ends": "ends before it starts"}, type_name
    with pytest.raises(ValidationError) as refused:
        desk.run(lambda s: s.update(s.get("ticket", ticket), {"estimated_cost": "-10"}))
    assert "estimated_cost" in refused.value.errors
    made = desk.run(lambda s: s.create("absence", {"operator": "sbernard", "starts": "2030-03-05 08:00",
                                                     "reason": "leave"}))      # no end yet: fine
    assert made.number


def test_a_login_that_is_no_account_is_refused_with_the_nearest_one(desk):
    """A supervisor assigning `cmartn` (a typo) in a form or the API, or following with a
    made-up login, is told; a login already on a record stays, and the engine's own
    writes (jobs, imports) are its decision."""
    number = desk.read(lambda s: s.query("ticket", {"status": "in_progress"}, "id", limit=1).records[0].number)
    before = desk.read(lambda s: s.find(number)["assignee"])
    with TestClient(create_app(desk), follow_redirects=False) as web:
        sign_in(web, "cmartin")
        form = web.get(f"/r/{number}/edit").text
        version = desk.read(lambda s: s.find(number).version)
        answer = web.post(f"/r/{number}/edit", data={"csrf": csrf_of(form), "version": version, "assignee": "cmartn"})
        assert answer.status_code == 422 and "`cmartn` is not an account here; did you mean `cmartin`?" in answer.text
        answer = web.patch(f"/api/v1/ticket/{number}", headers={"Authorization": f"Bearer {desk.key}"},
                           json={"watchers": ["sbernard", "ghost.user"]})
        assert answer.status_code == 422 and "`ghost.user` is not an account here" in answer.text
        assert desk.read(lambda s: s.find(number)["assignee"]) == before          # nothing was written
        answer = web.patch(f"/api/v1/ticket/{number}", headers={"Authorization": f"Bearer {desk.key}"},
                           json={"watchers": ["sbernard"]})
        assert answer.status_code == 200 and answer.json()["watchers"] == ["sbernard"]
