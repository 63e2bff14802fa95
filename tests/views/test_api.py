"""The JSON API through Starlette's TestClient: API keys acting as accounts, lists, records,
creates, updates, transitions and uploads scoped exactly like the web interface, errors as
JSON with their status, and the OpenAPI document generated from the definitions."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from deskbase.rules.access.identity import create_account, disable_account, identity_of
from deskbase.rules.application import open_store
from deskbase.views.api_keys import add_key, list_keys, revoke_key
from deskbase.views.app import create_app

PASSWORD = "correct horse battery"
STATUSES = ["awaiting_pickup", "unassigned", "in_progress", "awaiting_reply", "disagreement",
            "correction_in_progress", "resolved", "rejected", "cancelled", "closed"]


@pytest.fixture(scope="module")
def helpdesk_store(app_store):
    with app_store(demo=True) as store:
        yield store


@pytest.fixture(scope="module")
def keys(helpdesk_store):
    """One key per demo person the tests act as."""
    logins = ("sbernard", "psvoboda", "cmartin", "jroux")
    return {login: add_key(helpdesk_store, f"key-{login}", login) for login in logins}


@pytest.fixture
def client(helpdesk_store):
    with TestClient(create_app(helpdesk_store), follow_redirects=False) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def organization_of(store, login: str) -> int:
    return identity_of(store, login).organization


def first_ticket(store, spec) -> str:
    return store.read(lambda s: s.query("ticket", spec, "id", limit=1).records[0].number)


def test_a_monitoring_key_opens_an_incident_with_one_post(client, helpdesk_store):
    organization = organization_of(helpdesk_store, "psvoboda")
    create_account(helpdesk_store, "monitoring", name="Monitoring", password=PASSWORD,
                   roles=["customer_power_user"], organization=organization)
    key = add_key(helpdesk_store, "zabbix", "monitoring")
    response = client.post("/api/v1/ticket", headers=bearer(key), json={
        "kind": "incident", "title": "Disk full on srv-db-01", "description": "/var at 100 %",
        "channel": "api", "criticality": "critical", "organization": f"ORG-{organization:04d}"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/api/v1/ticket/{created['number']}"
    assert created["organization"] == organization and created["status"] == "awaiting_pickup"
    stored = helpdesk_store.read(lambda s: s.find(created["number"]))
    assert stored["organization"] == organization and stored["kind"] == "incident"
    assert stored["created_by"] == "monitoring"


def test_a_list_with_filter_and_sort_is_what_the_person_sees_in_the_store(client, helpdesk_store, keys):
    spec = {"status": {"not_in": ["closed", "cancelled"]}}
    response = client.get("/api/v1/ticket", headers=bearer(keys["sbernard"]),
                          params={"filter": json.dumps(spec), "sort": "-priority,id", "limit": 500})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = helpdesk_store.read(lambda s: s.query("ticket", spec, "-priority,id", limit=500),
                                   identity=identity_of(helpdesk_store, "sbernard"))
    assert body["total"] == expected.total > 0
    assert [r["number"] for r in body["records"]] == [r.number for r in expected.records]
    yaml_filter = client.get("/api/v1/ticket", headers=bearer(keys["sbernard"]),
                             params={"filter": "{status: {not_in: [closed, cancelled]}}", "limit": 0})
    assert yaml_filter.json()["total"] == expected.total and yaml_filter.json()["records"] == []


def test_the_limit_is_at_most_500_and_pages_follow_offset(client, keys):
    response = client.get("/api/v1/ticket", headers=bearer(keys["cmartin"]),
                          params={"limit": 10000, "sort": "id", "offset": 3})
    body = response.json()
    assert body["limit"] == 500 and body["offset"] == 3 and len(body["records"]) == min(500, body["total"] - 3)
    assert body["records"][0]["number"] == "T-000004"


def test_a_customer_key_never_sees_another_organizations_ticket(client, helpdesk_store, keys):
    own = organization_of(helpdesk_store, "psvoboda")
    listed = client.get("/api/v1/ticket", headers=bearer(keys["psvoboda"]), params={"limit": 500}).json()
    expected = helpdesk_store.read(lambda s: s.count("ticket", {"organization": own}))
    assert listed["total"] == expected > 0
    assert {r["organization"] for r in listed["records"]} == {own}
    others = first_ticket(helpdesk_store, {"organization": {"ne": own}})
    missing = client.get(f"/api/v1/ticket/{others}", headers=bearer(keys["psvoboda"]))
    absent = client.get("/api/v1/ticket/T-999999", headers=bearer(keys["psvoboda"]))
    assert missing.status_code == absent.status_code == 404
    assert missing.json()["error"] == f"there is no Ticket numbered `{others}`"
    other_id = helpdesk_store.read(lambda s: s.find(others)["organization"])
    counted = client.get("/api/v1/ticket", headers=bearer(keys["psvoboda"]),
                         params={"filter": json.dumps({"organization": other_id}), "limit": 0})
    assert counted.json()["total"] == 0
    patched = client.patch(f"/api/v1/ticket/{others}", headers=bearer(keys["psvoboda"]), json={"title": "mine now"})
    assert patched.status_code == 404


def test_hidden_fields_are_left_out_and_cannot_be_filtered_on(client, helpdesk_store, keys):
    own = first_ticket(helpdesk_store, {"organization": organization_of(helpdesk_store, "psvoboda")})
    record = client.get(f"/api/v1/ticket/{own}", headers=bearer(keys["psvoboda"])).json()
    assert record["number"] == own and "title" in record and "version" in record
    assert "internal_notes" not in record and "remaining_effort" not in record
    staff = client.get(f"/api/v1/ticket/{own}", headers=bearer(keys["cmartin"])).json()
    assert "internal_notes" in staff
    probing = client.get("/api/v1/ticket", headers=bearer(keys["psvoboda"]),
                         params={"filter": '{internal_notes: {empty: false}}'})
    assert probing.status_code == 400 and "`internal_notes`" in probing.json()["error"]
    sorting = client.get("/api/v1/ticket", headers=bearer(keys["psvoboda"]), params={"sort": "responsible_area"})
    assert sorting.status_code == 400


def test_a_read_only_field_is_refused_with_the_reason(client, helpdesk_store, keys):
    number = first_ticket(helpdesk_store, {"status": "awaiting_pickup"})
    response = client.patch(f"/api/v1/ticket/{number}", headers=bearer(keys["jroux"]), json={"title": "Renamed"})
    assert response.status_code == 403
    body = response.json()
    assert "`title` is read-only for you" in body["error"] and body["fields"] == {"title": "is read-only for you"}
    assert helpdesk_store.read(lambda s: s.find(number)["title"]) != "Renamed"
    allowed = client.patch(f"/api/v1/ticket/{number}", headers=bearer(keys["jroux"]), json={"priority": "high"})
    assert allowed.status_code == 200 and allowed.json()["priority"] == "high"
    own = first_ticket(helpdesk_store, {"organization": organization_of(helpdesk_store, "psvoboda")})
    customer = client.patch(f"/api/v1/ticket/{own}", headers=bearer(keys["psvoboda"]), json={"priority": "urgent"})
    assert customer.status_code == 403 and "may not update Ticket records" in customer.json()["error"]


def test_a_transition_fires_with_its_inputs(client, helpdesk_store, keys):
    number = first_ticket(helpdesk_store, {"status": "awaiting_pickup"})
    offered = client.get(f"/api/v1/ticket/{number}/transitions", headers=bearer(keys["sbernard"])).json()
    take = next(t for t in offered["transitions"] if t["name"] == "take")
    assert take["inputs"]["time_spent"]["required"] is True
    refused = client.post(f"/api/v1/ticket/{number}/transitions/take", headers=bearer(keys["sbernard"]), json={})
    assert refused.status_code == 422 and refused.json()["fields"] == {"time_spent": "is required"}
    fired = client.post(f"/api/v1/ticket/{number}/transitions/take", headers=bearer(keys["sbernard"]),
                        json={"time_spent": "15m", "work_done": "Looked at the logs"})
    assert fired.status_code == 200, fired.text
    assert fired.json()["status"] == "in_progress" and fired.json()["assignee"] == "sbernard"
    worked = helpdesk_store.read(lambda s: s.query("work_entry", {"ticket": s.find(number).id}).records)
    assert [(e["performer"], e["duration"]) for e in worked if e["description"] == "Looked at the logs"] == [
        ("sbernard", 15 * 60)]
    again = client.post(f"/api/v1/ticket/{number}/transitions/take", headers=bearer(keys["sbernard"]),
                        json={"time_spent": "5m"})
    assert again.status_code == 422 and "cannot be fired while" in again.json()["error"]


def test_an_edit_from_an_old_version_is_refused_with_409(client, helpdesk_store, keys):
    number = first_ticket(helpdesk_store, {"status": "in_progress"})
    version = client.get(f"/api/v1/ticket/{number}", headers=bearer(keys["cmartin"])).json()["version"]
    first = client.patch(f"/api/v1/ticket/{number}", headers=bearer(keys["cmartin"]),
                         json={"remaining_effort": "2h", "version": version})
    assert first.status_code == 200 and first.json()["version"] == version + 1
    assert first.json()["remaining_effort"] == 7200
    stale = client.patch(f"/api/v1/ticket/{number}", headers=bearer(keys["cmartin"]),
                         json={"remaining_effort": "3h", "version": version})
    assert stale.status_code == 409 and "after you opened it" in stale.json()["error"]


def test_invalid_values_are_refused_with_422_field_by_field(client, keys):
    response = client.post("/api/v1/ticket", headers=bearer(keys["cmartin"]),
                           json={"criticality": "apocalyptic", "titel": "typo"})
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert "is not one of" in fields["criticality"] and "did you mean `title`?" in fields["titel"]
    assert fields["title"] == "is required"


def test_a_bad_filter_is_a_400_with_the_message(client, keys):
    broken = client.get("/api/v1/ticket", headers=bearer(keys["cmartin"]), params={"filter": "{status: [open"})
    assert broken.status_code == 400 and "not valid JSON or YAML" in broken.json()["error"]
    unknown = client.get("/api/v1/ticket", headers=bearer(keys["cmartin"]), params={"filter": '{"priorty": "high"}'})
    assert unknown.status_code == 400 and "did you mean `priority`?" in unknown.json()["error"]
    sort = client.get("/api/v1/ticket", headers=bearer(keys["cmartin"]), params={"sort": "description"})
    assert sort.status_code == 400 and "description" in sort.json()["error"]
    paging = client.get("/api/v1/ticket", headers=bearer(keys["cmartin"]), params={"offset": "-1"})
    assert paging.status_code == 400


def test_files_are_uploaded_and_an_oversized_one_is_refused(client, helpdesk_store, keys):
    number = first_ticket(helpdesk_store, {"status": "in_progress"})
    url = f"/api/v1/ticket/{number}/attachments/attachments"
    uploaded = client.post(url, headers=bearer(keys["cmartin"]),
                           files={"file": ("trace.txt", b"disk full at 03:12\n", "text/plain")})
    assert uploaded.status_code == 200, uploaded.text
    assert {"filename": "trace.txt", "content_type": "text/plain", "size": 19} in uploaded.json()["attachments"]
    stored = helpdesk_store.read(lambda s: [(a.filename, a.read()) for a in s.find(number)["attachments"]])
    assert ("trace.txt", b"disk full at 03:12\n") in stored
    big = client.post(url, headers=bearer(keys["cmartin"]),
                      files={"file": ("dump.txt", b"x" * (25 * 2**20 + 1), "text/plain")})
    assert big.status_code == 413 and "files up to 25600 KiB are accepted" in big.json()["error"]
    program = client.post(url, headers=bearer(keys["cmartin"]),
                          files={"file": ("tool.exe", b"MZ", "application/octet-stream")})
    assert program.status_code == 422 and "not an accepted kind of file" in program.json()["fields"]["attachments"]
    not_files = client.post(f"/api/v1/ticket/{number}/attachments/title", headers=bearer(keys["cmartin"]),
                            files={"file": ("a.txt", b"a", "text/plain")})
    assert not_files.status_code == 422


def test_unknown_revoked_and_disabled_keys_get_401(client, helpdesk_store):
    create_account(helpdesk_store, "leaver", name="Leaver", password=PASSWORD, roles=["supervisor"])
    key = add_key(helpdesk_store, "leaver-script", "leaver")
    assert client.get("/api/v1/ticket?limit=1", headers=bearer(key)).status_code == 200
    assert client.get("/api/v1/ticket", headers=bearer(key[:-2] + "xx")).status_code == 401
    assert client.get("/api/v1/ticket", headers=bearer("nonsense")).status_code == 401
    revoke_key(helpdesk_store, "leaver-script")
    refused = client.get("/api/v1/ticket", headers=bearer(key))
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert "unknown or revoked" in refused.json()["error"]
    other = add_key(helpdesk_store, "leaver-script", "leaver")        # the name is free again
    disable_account(helpdesk_store, "leaver")
    assert client.get("/api/v1/ticket", headers=bearer(other)).status_code == 401


def test_a_keys_use_is_noted_once_not_on_every_request(client, helpdesk_store):
    key = add_key(helpdesk_store, "noted", "cmartin")
    for _ in range(3):
        client.get("/api/v1/ticket?limit=0", headers=bearer(key))
    info = next(k for k in list_keys(helpdesk_store) if k.name == "noted")
    assert info.last_used_at is not None
    first = info.last_used_at
    client.get("/api/v1/ticket?limit=0", headers=bearer(key))
    assert next(k for k in list_keys(helpdesk_store) if k.name == "noted").last_used_at == first
    secret = key.split("_", 2)[2]
    stored = helpdesk_store.read(lambda s: [vars(k).copy() for k in s.connection.root()["deskbase.api_keys"].values()])
    assert secret not in repr(stored)                                   # only its SHA-256 is kept
    assert hashlib.sha256(secret.encode()).hexdigest() in {k["digest"] for k in stored}


def test_the_web_sessions_cookie_opens_nothing_on_the_api(client):
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    signed = client.post("/login", data={"login": "cmartin", "password": "demo-password", "csrf": token, "next": "/"})
    assert signed.status_code == 303 and client.cookies.get("deskbase_session")
    assert client.get("/").status_code == 200
    assert client.get("/api/v1/ticket").status_code == 401
    assert client.post("/api/v1/ticket", json={"title": "forged"}).status_code == 401


def test_the_openapi_document_lists_the_types_and_the_enum_values(client, keys):
    response = client.get("/api/v1/openapi.json", headers=bearer(keys["cmartin"]))
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    ticket = document["components"]["schemas"]["ticket"]
    assert ticket["properties"]["status"]["enum"] == STATUSES and ticket["properties"]["status"]["readOnly"]
    assert "title" in ticket["required"] and "organization" in document["components"]["schemas"]
    assert {"/ticket", "/ticket/{number}", "/ticket/{number}/transitions/take",
            "/ticket/{number}/attachments/attachments"} <= set(document["paths"])
    assert "post" in document["paths"]["/ticket"] and "patch" in document["paths"]["/ticket/{number}"]
    customer = client.get("/api/v1/openapi.json", headers=bearer(keys["psvoboda"])).json()
    assert "internal_notes" not in customer["components"]["schemas"]["ticket"]["properties"]
    assert customer["components"]["schemas"]["ticket"]["properties"]["priority"]["readOnly"]
    assert "patch" not in customer["paths"]["/ticket/{number}"]
    assert client.get("/api/v1/openapi.json").status_code == 401


def test_unknown_addresses_and_types_answer_in_json(client, keys):
    unknown_type = client.get("/api/v1/tickets", headers=bearer(keys["cmartin"]))
    assert unknown_type.status_code == 404 and "did you mean `ticket`?" in unknown_type.json()["error"]
    nowhere = client.get("/api/v1/ticket/T-000001/nothing/here", headers=bearer(keys["cmartin"]))
    assert nowhere.status_code == 404 and "error" in nowhere.json()
    method = client.delete("/api/v1/ticket/T-000001", headers=bearer(keys["cmartin"]))
    assert method.status_code == 405 and "error" in method.json()
    not_json = client.post("/api/v1/ticket", headers={**bearer(keys["cmartin"]), "Content-Type": "application/json"},
                           content=b"{title: no quotes}")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]


def test_the_command_line_adds_lists_and_revokes_keys(tmp_path, capsys):
    from deskbase.cli import main
    from deskbase.rules.application import load_application
    from deskbase.views.api_keys import KeyRefused, identity_of_key
    folder = Path(__file__).parents[1] / "rules" / "notes_app"
    uri = f"file://{tmp_path}/var/Data.fs?blobstorage_dir={tmp_path}/var/blobs"
    with open_store(uri, load_application(folder)) as store:
        create_account(store, "alice", name="Alice", password=PASSWORD, roles=["member"])

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--definitions", str(folder), "--db", uri, "apikeys", *args])
        out, err = capsys.readouterr()
        return code, out, err
    code, out, _ = run("add", "backup", "--as", "alice")
    key = out.strip().splitlines()[-1]
    assert code == 0 and "shown only now" in out and key.startswith("dbk_")
    code, out, _ = run("list")
    assert code == 0 and re.search(r"backup\s+alice\s+.*live", out) and key not in out
    assert run("revoke", "backup")[0] == 0
    assert re.search(r"backup\s+alice\s+.*revoked", run("list")[1])
    with open_store(uri, load_application(folder)) as store:
        with pytest.raises(KeyRefused):
            identity_of_key(store, key)
    code, _, err = run("add", "other", "--as", "nobody")
    assert code == 1 and "there is no account `nobody`" in err


def test_nobody_but_a_supervisor_writes_in_someone_elses_name(client, helpdesk_store, keys):
    """A comment's author and a work entry's performer are who sends them: a customer or a
    technician naming someone else is refused with the reason; a supervisor may."""
    theirs = first_ticket(helpdesk_store, {"organization": organization_of(helpdesk_store, "psvoboda")})
    forged = client.post("/api/v1/comment", headers=bearer(keys["psvoboda"]),
                         json={"ticket": theirs, "body": "Approved, go ahead.", "author": "cmartin"})
    assert forged.status_code in (403, 422) and "author" in forged.text, forged.text
    own = client.post("/api/v1/comment", headers=bearer(keys["psvoboda"]), json={"ticket": theirs, "body": "Thanks."})
    assert own.status_code == 201 and own.json()["author"] == "psvoboda"
    mine = first_ticket(helpdesk_store, {"assignee": "sbernard"})
    for body in ({"ticket": mine, "body": "Checked.", "author": "tdvorak"},):
        refused = client.post("/api/v1/comment", headers=bearer(keys["sbernard"]), json=body)
        assert refused.status_code in (403, 422), refused.text
    refused = client.post("/api/v1/work_entry", headers=bearer(keys["sbernard"]),
                          json={"ticket": mine, "duration": "30m", "performer": "tdvorak"})   # khaddad: whom he stands in for
    assert refused.status_code in (403, 422), refused.text
    allowed = client.post("/api/v1/comment", headers=bearer(keys["cmartin"]),
                          json={"ticket": mine, "body": "Called the customer for Sophie.", "author": "sbernard"})
    assert allowed.status_code == 201 and allowed.json()["author"] == "sbernard"
