"""`deskbase serve --reload`, as a consultant uses it: the server runs with an overlay; an
edit with a mistake shows its file:line and sentence on every page while the last good
definitions keep serving; the corrected edit adds a field that the next page load shows,
without a restart; removing a field with values is refused unless the server was started
with --accept-hiding. In this process (the watcher and the pages); a real server process in
Chromium is tests/views/test_browser_reload.py."""
from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest
from demo_web import csrf_of, sign_in
from starlette.testclient import TestClient

from deskbase.cli.reloading import DefinitionsWatcher
from deskbase.rules.application import load_application, load_application_demo, open_store
from deskbase.views.app import create_app
from deskbase.views.reloading import Reloading

HELPDESK = Path(__file__).parents[2] / "definitions"

GOOD = """
types:
  asset:
    fields:
      cost_center: {kind: string, label: {en: Cost center, fr: Centre de coûts}, max_length: 20}
"""
BROKEN = """
types:
  asset:
    fields:
      cost_center: {kind: strng, label: {en: Cost center, fr: Centre de coûts}}
"""


def text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def write(path: Path, content: str) -> None:
    """Write a file so that its change is seen even within the file system's time resolution."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(content)
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    folder = tmp_path / "customer"
    folder.mkdir()
    write(folder / "10_assets.yaml", "types: {}\n")
    return folder


def an_asset(store) -> tuple[str, int]:
    """The number and id of the first asset."""
    return store.read(lambda s: (lambda found: (found.number, found.id))(s.query("asset", limit=1, sort="id").records[0]))


def cost_center(store, asset_id: int):
    return store.read(lambda s: s.get("asset", asset_id).values.get("cost_center"))


def test_a_broken_edit_is_shown_on_every_page_and_a_good_one_is_applied_without_a_restart(overlay):
    with open_store("memory://", load_application(HELPDESK, [overlay])) as store:
        load_application_demo(store, HELPDESK / "demo")
        reloading = Reloading()
        watcher = DefinitionsWatcher(store, reloading, HELPDESK, [overlay], report=lambda said: None)
        with TestClient(create_app(store, reloading=reloading), follow_redirects=False) as web:
            sign_in(web, "cmartin")
            asset, asset_id = an_asset(store)
            assert "Cost center" not in text(web.get(f"/r/{asset}").text)
            assert web.get("/_reload").json() == {"generation": 1, "problems": []}

            write(overlay / "10_assets.yaml", BROKEN)
            assert watcher.check()
            page = web.get(f"/r/{asset}")
            assert page.status_code == 200                      # still serving the last good definitions
            shown = text(page.text)
            assert "The definitions on disk have errors" in shown
            assert re.search(r"10_assets\.yaml:5:\d+: .*`strng`.*did you mean `string`", shown), shown
            assert "Cost center" not in shown
            assert "The definitions on disk have errors" in text(web.get("/").text)     # every page
            status = web.get("/_reload").json()
            assert status["generation"] == 1 and "strng" in status["problems"][0]
            assert not watcher.check()                          # nothing changed since: nothing done

            write(overlay / "10_assets.yaml", GOOD)
            assert watcher.check()
            shown = text(web.get(f"/r/{asset}").text)
            assert "Cost center" in shown and "The definitions on disk have errors" not in shown
            assert web.get("/_reload").json() == {"generation": 2, "problems": []}
            form = web.get(f"/r/{asset}/edit").text
            saved = web.post(f"/r/{asset}/edit", data={**fields_of(form), "cost_center": "LOG-114"})
            assert saved.status_code == 303, text(saved.text)[:500]
            assert cost_center(store, asset_id) == "LOG-114"


def fields_of(form: str) -> dict[str, str]:
    """The values a form was drawn with (inputs with a value, and the token), to send it back."""
    found = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
    found["csrf"] = csrf_of(form)
    return {name: html.unescape(value) for name, value in found.items()}


def test_removing_a_field_with_values_waits_for_accept_hiding(overlay):
    write(overlay / "10_assets.yaml", GOOD)
    with open_store("memory://", load_application(HELPDESK, [overlay])) as store:
        load_application_demo(store, HELPDESK / "demo")
        _, asset_id = an_asset(store)
        store.run(lambda s: s.update(s.get("asset", asset_id), {"cost_center": "LOG-114"}))
        reloading = Reloading()
        careful = DefinitionsWatcher(store, reloading, HELPDESK, [overlay], report=lambda said: None)
        write(overlay / "10_assets.yaml", "types: {}\n")
        assert careful.check()
        assert reloading.generation == 1
        assert "would hide stored values" in reloading.problems[0] and "--accept-hiding" in reloading.problems[0]
        assert "cost_center" in store.definitions.types["asset"].fields       # nothing changed

        bold = DefinitionsWatcher(store, reloading, HELPDESK, [overlay], accept_hiding=True, report=lambda said: None)
        write(overlay / "10_assets.yaml", "types: {}\n")
        assert bold.check()
        assert reloading.generation == 2 and reloading.problems == ()
        assert "cost_center" not in store.definitions.types["asset"].fields
        assert cost_center(store, asset_id) == "LOG-114"                              # kept, hidden
