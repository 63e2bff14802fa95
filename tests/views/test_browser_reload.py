"""A real `deskbase run --reload` process with a consultant's overlay, and a page open in
Chromium that nobody touches: a broken edit of the overlay makes the open page show the
error (file:line) by itself while the server keeps serving; the corrected edit makes it show
the new field, without a restart."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers.web import answers

HELPDESK = Path(__file__).parents[2] / "definitions"
DESKBASE = Path(sys.executable).parent / "deskbase"
GOOD = """
types:
  asset:
    fields:
      cost_center: {kind: string, label: {en: Cost center, fr: Centre de coûts}, max_length: 20}
"""
BROKEN = GOOD.replace("kind: string", "kind: strng")


def write(path: Path, content: str) -> None:
    """Write a file so that its change is seen even within the file system's time resolution."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(content)
    os.utime(path, ns=(before + 10**9, before + 10**9))



@pytest.mark.slow
def test_an_open_page_shows_the_error_then_the_new_field_by_itself(chromium, tmp_path):
    overlay = tmp_path / "customer"
    overlay.mkdir()
    write(overlay / "10_assets.yaml", "types: {}\n")
    port = 19000 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}"
    service = subprocess.Popen(
        [str(DESKBASE), "--definitions", str(HELPDESK), "--overlay", str(overlay), "--db",
         f"file://{tmp_path}/Data.fs?blobstorage_dir={tmp_path}/blobs", "run", "--reload", "--no-worker",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = chromium.new_context(locale="en-GB", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        deadline = time.monotonic() + 180
        while not answers(f"{url}/login"):
            assert service.poll() is None, service.stdout.read()
            assert time.monotonic() < deadline, "the server did not answer within 180 s"
            time.sleep(0.5)
        page.goto(f"{url}/login")
        page.fill("input[name=login]", "cmartin")
        page.fill("input[name=password]", "demo-password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        page.goto(f"{url}/v/all_assets")
        page.locator("table a[href^='/r/']").first.click()
        page.wait_for_selector("h1")
        assert "Cost center" not in page.inner_text("main")

        write(overlay / "10_assets.yaml", BROKEN)
        banner = page.wait_for_selector(".reload-problems")           # the open page, redrawn by itself
        said = banner.inner_text()
        assert "10_assets.yaml:5" in said and "`strng`" in said and "did you mean `string`" in said
        page.screenshot(path=str(tmp_path / "reload-error.png"))
        assert "Cost center" not in page.inner_text("main")

        write(overlay / "10_assets.yaml", GOOD)
        page.wait_for_selector("text=Cost center")
        assert page.locator(".reload-problems").count() == 0
        assert service.poll() is None                                # the same process all along
    finally:
        context.close()
        service.send_signal(signal.SIGINT)
        out, _ = service.communicate(timeout=60)
    assert "definitions reloaded" in out and "problem(s); still serving the last good ones" in out
    assert "GET /_reload" not in out                               # the pages' polls stay out of the log
