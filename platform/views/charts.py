"""A view's `chart`, worked out through the indexes (`Session.tally`) and laid out for the
page: bars per value of a field, or columns per period of a date — stacked by value when
the chart has both — with the table of the same figures. Every figure is the reader's: the
tally counts within their read scope, and each bar or column links to the list of the
records it counts."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from deskbase.objects.fields import ComputedKind
from deskbase.objects.words import N_
from deskbase.rules.documents.formatting import format_hours, period_text

from .history import relative_time
from .i18n import translator
from .reading import Reading

log = logging.getLogger("deskbase.views")
WIDTH, HEIGHT = 400, 150          # the drawing of columns, in the SVG's own units
# The colours of values without their own (an enum's `colors`), in turn: calm ones first,
# red last, so that no value looks like an alarm only because of its place in the list.
SERIES = ("blue", "teal", "amber", "purple", "green", "orange", "grey", "red")


def _measure(view) -> tuple[str, str | None]:
    return ("sum", view.chart_sum) if view.chart_sum else ("average", view.chart_average) \
        if view.chart_average else ("open", view.chart_open) if view.chart_open else ("count", None)


def _tally(session, view, filter: Any = None):
    measure, of = _measure(view)
    return session.tally(view.type, view.filter if filter is None else filter, by=view.chart, over=view.chart_over,
                         every=view.chart_every, periods=view.chart_periods, measure=measure, of=of)


def chart_of(session, view, language: str, url, filter: Any = None, kept: KeptFigures | None = None) -> dict[str, Any]:
    """The chart of a view for the session's reader, of the records of `filter` (the view's
    own by default); `url(filter text)` links to the records a bar or column counts. With
    `kept`, the view's own figures may be a kept copy (`KeptFigures`): the chart then says
    since when (`as_of`, seconds; `counted`, in words once a minute old), and `matched` is
    None."""
    definitions = session.definitions
    typedef = definitions.type(view.type)
    measure, of = _measure(view)
    age = 0.0
    if kept is not None and filter is None:
        found, age = kept.tally(session, view)
    else:
        found = _tally(session, view, filter)
    reading = Reading(session, session.identity, language)
    drawn = _drawn(reading, view, typedef, language, url, found, measure, of)
    t = translator(language)      # figures less than a minute old are as good as new: nothing said
    counted = t("counted {when}", when=relative_time(reading, session.now - timedelta(seconds=age),
                                                     session.now)) if age >= 60 else ""
    return {**drawn, "matched": None if age else found.matched, "as_of": age, "counted": counted}


def _drawn(reading: Reading, view, typedef, language: str, url, found, measure: str, of: str | None) -> dict[str, Any]:
    """The bars or columns of figures `found` (a `Tally`), with their labels and links."""
    t = translator(language)
    by = typedef.fields[view.chart] if view.chart else None
    colors = (by.colors or {}) if by is not None else {}
    series = [{"value": value, "label": _series_label(reading, typedef, by, value, language),
               "color": colors.get(value, "grey") if colors else SERIES[position % len(SERIES)],
               "filter": f"{view.chart}: {_literal(value)}"}
              for position, value in enumerate(found.values)] if by is not None else \
        [{"value": None, "label": "", "color": "blue", "filter": ""}]

    def shown(value: Any) -> str:
        if value is None:
            return "–"
        if measure in ("count", "open"):
            return f"{value:,}".replace(",", "\u202f") if value >= 10_000 else str(value)
        number = typedef.fields[str(of)]
        kind = number.kind.result if isinstance(number.kind, ComputedKind) else number.kind
        if kind.name == "duration":
            return format_hours(value)
        return reading.text(typedef, str(of), round(value, 2) if measure == "average" else value)

    number_title = typedef.fields[of].title(language) if of and measure != "open" else ""
    title = by.title(language) if by is not None else ""
    if measure == "average":
        title = t(N_("Average {number} by {field}"), number=number_title, field=title) if by is not None \
            else t(N_("Average {number}"), number=number_title)
    elif measure == "open":
        title = t(N_("Still open at the end of each period")) + (f" · {by.title(language)}" if by is not None else "")
    elif measure == "sum":
        title = t(N_("{number} by {field}"), number=number_title, field=title) if by is not None else number_title
    if view.chart_over:
        over = typedef.fields[view.chart_over].title(language)
        title = f"{title} · {over}" if title else over
    if not view.chart_over:
        bars = []
        for entry in series:
            cell = found.cell(None, entry["value"])
            if not cell.records:
                continue
            bars.append({"label": entry["label"], "count": shown(cell.value), "amount": float(cell.value),
                         "records": cell.records, "color": entry["color"],
                         "url": url(f"{{{entry['filter']}}}")})
        most = max((bar["amount"] for bar in bars), default=0) or 1
        for bar in bars:
            bar["width"] = round(100 * bar["amount"] / most, 1)
        return {"title": title, "bars": bars, "height": 22 * len(bars) + 4, "columns": None}
    return _columns(found, series, view, language, title, shown, url, measure)


def _columns(found, series, view, language: str, title: str, shown, url, measure: str) -> dict[str, Any]:
    """Columns per period, a stacked segment per value; the table of the same figures."""
    periods = found.periods
    count = len(periods)
    step = WIDTH / max(count, 1)
    stacked = measure != "average"               # averages are not added up: the first series' alone
    totals, heights = [], []
    for position in range(count):
        cells = [found.cell(position, entry["value"]) for entry in series if found.cell(position, entry["value"]).records]
        totals.append(sum(cell.value for cell in cells) if cells else None)
        heights.append(float(totals[-1] or 0) if stacked else max((float(cell.value) for cell in cells), default=0))
    most = max(heights, default=0) or 1
    columns = []
    for position, (start, end) in enumerate(periods):
        label = period_text(start, view.chart_every, language)
        short = period_text(start, view.chart_every, language, short=True)
        height_left: float = HEIGHT
        segments = []
        for entry in series:
            cell = found.cell(position, entry["value"])
            if not cell.records:
                continue
            height = HEIGHT * float(cell.value) / most
            y = height_left - height if stacked else HEIGHT - height
            if stacked:
                height_left -= height
            when = f"{view.chart_over}: {{gte: {start.isoformat()}, lt: {end.isoformat()}}}"
            where = ", ".join(part for part in (when, entry["filter"]) if part)
            segments.append({"y": round(y, 1), "height": round(max(height, 0.5), 1), "color": entry["color"],
                             "title": f"{label}{' · ' + entry['label'] if entry['label'] else ''}: "
                                      f"{shown(cell.value)}", "url": url(f"{{{where}}}")})
        columns.append({"label": label, "short": short, "x": round(position * step + step * 0.1, 1),
                        "width": round(step * 0.8, 1), "segments": segments,
                        "total": shown(totals[position]) if stacked and segments else "",
                        "labelled": count <= 6 or (count - 1 - position) % -(-count // 6) == 0})
    rows = [{"label": entry["label"], "color": entry["color"],
             "cells": [shown(found.cell(position, entry["value"]).value if found.cell(position, entry["value"]).records
                             else 0 if measure in ("count", "open") else None) for position in range(count)]}
            for entry in series if any(found.cell(p, entry["value"]).records for p in range(count))]
    return {"title": title, "bars": None, "columns": columns, "legend": len(series) > 1,
            "rows": rows, "periods": [column["label"] for column in columns],
            "totals": [shown(total if total is not None else (0 if measure in ("count", "open") else None))
                       for total in totals] if stacked and len(rows) > 1 else None,
            "step": round(step, 1), "height": HEIGHT}


def _literal(value: Any) -> str:
    """A value as the filter language reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _series_label(reading, typedef, by, value: Any, language: str) -> str:
    """A value as a series reads: a yes or no says of what (`Billable: yes`)."""
    if value is None:
        return "—"
    text = reading.text(typedef, str(by.name), value)
    return f"{by.title(language)}: {text.lower()}" if by.kind.name == "boolean" else text


class KeptFigures:
    """The figures of the charts on home pages, kept a short while for every reader who
    would get the same ones. A chart over a million records reads every record's keys
    (0.3–0.6 s); a home page opened again and again by a team draws it from figures at
    most `fresh` seconds old. Older ones, up to `stale` seconds, are shown while one thread
    works them out again for the next page; older still, the page waits for new ones.

    Kept under the view's type, filter and chart, the reader's read scope (as written),
    the values of `$me` when either reads them, and the day: two readers share figures
    only when the same filter within the same scope gives them the same records. A scope
    holding sets worked out for one reading (a scope through references) is never kept."""

    def __init__(self, store, fresh: float = 60.0, stale: float = 900.0, most: int = 500,
                 clock: Callable[[], float] = time.monotonic):
        self.store, self.fresh, self.stale, self.most, self.clock = store, fresh, stale, most, clock
        self._kept: OrderedDict[tuple, tuple[float, Any]] = OrderedDict()
        self._working: dict[tuple, threading.Thread] = {}
        self._lock = threading.Lock()

    def tally(self, session, view) -> tuple[Any, float]:
        """(the view's figures for the session's reader, how many seconds old they are)."""
        key = _kept_under(session, view) if self.fresh > 0 else None
        if key is None:
            return _tally(session, view), 0.0
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
        if kept is not None:
            age = self.clock() - kept[0]
            if age < self.fresh:
                return kept[1], age
            if age < self.stale:
                self._again(key, session.identity, view)
                return kept[1], age
        began = self.clock()
        found = _tally(session, view)
        self._keep(key, began, found)
        return found, 0.0

    def settle(self, timeout: float = 30.0) -> None:
        """Wait for the figures being worked out again (their threads are daemons: a server
        that stops drops them, having written nothing)."""
        for thread in list(self._working.values()):
            thread.join(timeout)

    def _keep(self, key: tuple, began: float, found: Any) -> None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] > began:     # newer figures came in meanwhile
                return
            self._kept[key] = (began, found)
            self._kept.move_to_end(key)
            while len(self._kept) > self.most:
                self._kept.popitem(last=False)

    def _again(self, key: tuple, identity: Any, view) -> None:
        with self._lock:
            if key in self._working:
                return
            thread = self._working[key] = threading.Thread(target=self._work_out, args=(key, identity, view),
                                                           name="deskbase-figures", daemon=True)
        thread.start()

    def _work_out(self, key: tuple, identity: Any, view) -> None:
        try:
            began = self.clock()
            self._keep(key, began, self.store.read(lambda session: _tally(session, view), identity=identity))
        except Exception:   # the kept figures stay; the next page that finds them old tries again
            log.exception("the figures of %s could not be worked out again", view.name)
        finally:
            with self._lock:
                self._working.pop(key, None)


def _kept_under(session, view) -> tuple | None:
    """What decides a view's figures for the session's reader, or None when it cannot be
    written down (a scope holding sets of ids worked out for this reading)."""
    def plain(value: Any) -> str:
        if isinstance(value, (date, Decimal)):
            return str(value)
        raise TypeError(f"{type(value).__name__} is not kept")
    scope = session.read_scope(session.definitions.type(view.type))
    try:
        said = json.dumps([view.type, view.filter, scope, view.chart, view.chart_over, view.chart_every,
                           view.chart_periods, _measure(view)], sort_keys=True, default=plain)
        me = json.dumps(session.me, sort_keys=True, default=plain) if "$me" in said else ""
    except TypeError:
        return None
    return said, me, session.today
