"""Several processes writing through one ZEO server (`deskbase zeo` for one machine), as
tested for RelStorage: processes creating records of one type at full speed for a bounded
time lose no write and never share a number, and a bulk import beside a live writer
finishes. The server runs in a thread of the test process; the writers are processes."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from test_relstorage import BULK_BESIDE_A_WRITER, CREATE_AT_FULL_SPEED, app_folder, deskbase, finish, run_group, start

from deskbase.rules.application import load_application, open_store

__all__ = ["app_folder"]          # the fixture, shared with the RelStorage tests


class ZeoDatabase:
    """A FileStorage with blobs served by ZEO on a free port of loopback."""

    def __init__(self, folder: Path):
        import ZEO
        (folder / "blobs").mkdir(parents=True)
        self.blobs = folder / "blobs"
        self.address, self._stop = ZEO.server(path=str(folder / "Data.fs"), blob_dir=str(self.blobs))

    def uri(self, process: str = "") -> str:
        """The URI every process opens: the blob folder is the server's (one machine)."""
        host, port = self.address
        return f"zeo://{host}:{port}?blob_dir={self.blobs}&shared_blob_dir=1"

    def stop(self) -> None:
        self._stop()


@pytest.fixture
def zeo_database(tmp_path):
    database = ZeoDatabase(tmp_path / "zeo")
    yield database
    database.stop()


@pytest.mark.parametrize("names, threads", [("ab", 4), ("abcd", 2)])
def test_processes_creating_at_full_speed_through_zeo_lose_no_write(app_folder, zeo_database, tmp_path, names,
                                                                    threads):
    deskbase(app_folder, zeo_database.uri(), "migrate")
    outputs = run_group(CREATE_AT_FULL_SPEED, app_folder, zeo_database, tmp_path, names, seconds=6, threads=threads)
    written = {me: json.loads(out) for me, out in outputs.items()}
    outcomes = sum((Counter(done["outcomes"]) for done in written.values()), Counter())
    conflicts = sum((Counter(done["conflicts"]) for done in written.values()), Counter())
    numbers = [number for done in written.values() for number in done["numbers"]]
    alone = sum(done["alone"] for done in written.values())
    print(f"ZEO, {len(names)} processes x {threads} threads, 6 s: {dict(outcomes)}; conflicts retried on "
          f"{dict(conflicts)}; turns alone {alone}")
    assert set(outcomes) == {"created"}, outcomes
    assert all(done["numbers"] for done in written.values())
    assert len(set(numbers)) == len(numbers)
    with open_store(zeo_database.uri(), load_application(app_folder), migrate=False) as store:
        assert store.read(lambda s: s.count("task")) == len(numbers)


def test_a_bulk_import_beside_a_live_writer_through_zeo_succeeds(app_folder, zeo_database, tmp_path):
    deskbase(app_folder, zeo_database.uri(), "migrate")
    meeting = tmp_path / "meeting"
    processes = {me: start(BULK_BESIDE_A_WRITER, app_folder, zeo_database.uri(), meeting, me, other, rows=3000)
                 for me, other in (("bulk", "live"), ("live", "bulk"))}
    outputs = {me: json.loads(finish(process)) for me, process in processes.items()}
    print(f"ZEO bulk import: {outputs['bulk']}; live writer: {len(outputs['live']['numbers'])} created meanwhile")
    assert outputs["bulk"]["created"] == 3000 and outputs["live"]["numbers"]
    with open_store(zeo_database.uri(), load_application(app_folder), migrate=False) as store:
        numbers = store.read(lambda s: [r.number for r in s.container("task").records.values()])
    assert len(numbers) == 3000 + len(outputs["live"]["numbers"]) == len(set(numbers))
