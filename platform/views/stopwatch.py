"""A stopwatch per person and record (T11), kept in the database so it survives reloads and
follows the person from one device to another; started and stopped as often as wanted, its
total fills the duration a transition asks for, and it starts again from zero once used."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from BTrees.OOBTree import OOBTree
from starlette.requests import Request
from starlette.responses import Response

from deskbase.objects.errors import NotFound
from deskbase.objects.fields import format_duration
from deskbase.objects.kept_objects import kept_object
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import decide

if TYPE_CHECKING:
    from .app import Web

STOPWATCHES_KEY = "deskbase.stopwatches"
UTC = timezone.utc


@dataclass(frozen=True)
class Stopwatch:
    """Seconds counted before `running_since`, and since when it runs (None: stopped)."""

    counted: int = 0
    running_since: datetime | None = None

    def total(self, now: datetime) -> int:
        extra = int((now - self.running_since).total_seconds()) if self.running_since else 0
        return self.counted + max(0, extra)


def _watches(connection, create: bool = False):
    return kept_object(connection, STOPWATCHES_KEY, OOBTree if create else None)


def read(session, login: str, number: str) -> Stopwatch:
    """The stopwatch of a person on a record (a stopped one at zero if none)."""
    watches = _watches(session.connection)
    stored = watches.get((login, number)) if watches is not None else None
    return Stopwatch(*stored) if stored else Stopwatch()


def _write(session, login: str, number: str, watch: Stopwatch | None) -> None:
    watches = _watches(session.connection, create=True)
    if watch is None or (watch.counted == 0 and watch.running_since is None):
        watches.pop((login, number), None)
    else:
        watches[(login, number)] = (watch.counted, watch.running_since)


def act(session, login: str, number: str, action: str) -> Stopwatch:
    """Start, stop or reset a person's stopwatch on a record; the stopwatch afterwards."""
    watch = read(session, login, number)
    now = session.now
    if action == "start" and watch.running_since is None:
        watch = Stopwatch(watch.counted, now)
    elif action == "stop" and watch.running_since is not None:
        watch = Stopwatch(watch.total(now), None)
    elif action == "reset":
        watch = Stopwatch()
    _write(session, login, number, watch)
    return watch


def used(session, login: str, number: str) -> None:
    """The time went into a transition: the stopwatch starts again from zero."""
    if read(session, login, number) != Stopwatch():
        _write(session, login, number, None)


def view(watch: Stopwatch, now: datetime) -> dict:
    """What the stopwatch partial shows."""
    total = watch.total(now)
    return {"running": watch.running_since is not None, "text": format_duration(total - total % 60) if total >= 60
            else f"{total}s", "minutes": total // 60, "seconds": total,
            "since": watch.running_since.isoformat() if watch.running_since else ""}


def handle(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """GET shows a person's stopwatch on a record; POST start, stop or reset changes it."""
    number = request.path_params["number"]
    action = request.path_params.get("action")
    if action is not None and action not in ("start", "stop", "reset"):
        return Response(status_code=404)

    def work(session):
        record = session.find(number)
        typedef = web.definitions.type(record.type_name)
        if not decide(identity, "read", typedef, record, definitions=web.definitions,
                      context=session.context(record.values)):
            raise NotFound(number)
        watch = act(session, identity.id, number, action) if action else read(session, identity.id, number)
        return view(watch, session.now)
    try:
        shown = web.store.run(work, identity=identity) if action else web.store.read(work, identity=identity)
    except NotFound:
        return Response(status_code=404)
    return web.render(request, "_stopwatch.html", {"watch": shown, "number": number},
                      web_session=web_session, identity=identity)
