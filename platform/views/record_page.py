"""A record's page: its fields (each editable in place), the transitions with the inputs
they ask, the stopwatch, clocks and files, the records that point at it, and a timeline
that merges its history with the entries written on it (exchanges, work, messages), with a
form to add each kind of entry without leaving the page."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import DeskbaseError, NotFound, StaleEdit, ValidationError
from deskbase.objects.fields import (
    AttachmentsKind,
    BooleanKind,
    ComputedKind,
    DurationKind,
    EnumKind,
    TextKind,
    UserKind,
    label_text,
)
from deskbase.objects.frozen import thaw
from deskbase.objects.model import TypeDef
from deskbase.objects.words import N_
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import AccessDenied, decide, hidden_fields, readonly_fields
from deskbase.rules.messages import links
from deskbase.rules.process.timers import clocks_of
from deskbase.rules.process.workflows import (
    TransitionRefused,
    available_transitions,
    fire,
    merged_into,
    offered_after,
    transition_of,
    workflow_of,
)

from . import approval_pages, explain_pages, joining, markdown, said, snippet_pages, stopwatch
from .display import field_text
from .document_pages import document_links
from .editing import entry_limits, kept_by_rules, preview_of, readable_record, role_form, version_sent
from .forms import form_value, submitted, widgets
from .history import history_items, relative_time
from .i18n import translator
from .layout import page_layout
from .people import logins_of, people, person_fields
from .reading import Reading
from .state_diagrams import state_diagram

if TYPE_CHECKING:
    from .app import Web

TIMELINE_LIMIT = 200        # entries of each kind on one page, newest first
RELATED_LIMIT = 20


def entry_sources(definitions, typedef: TypeDef) -> list[tuple[TypeDef, str]]:
    """The kinds of entries written on records of `typedef`, with the field through which
    they point at one: types without a title of their own that must point at one through an
    indexed reference (an exchange on a task, a work entry). Their records make the
    timeline; titled records are listed as related."""
    found = []
    for other in definitions.types.values():
        if other.title_field:
            continue
        for name, definition in other.fields.items():
            kind = definition.kind
            if (kind.name == "ref" and kind.to == typedef.name and definition.required
                    and other.index_for(name) is not None):
                found.append((other, name))
                break
    # Kinds whose entries must say something (an exchange) come before the others (work done):
    # the first is the one whose form the page opens.
    return sorted(found, key=lambda source: not any(isinstance(f.kind, TextKind) and f.required
                                                    for f in source[0].fields.values()))


def _asked(session, typedef: TypeDef, field, record) -> bool:
    """Whether a form would ask the field for this record (its `shown_when` holds, if any)."""
    return field.shown_when is None or session.store.compiled_filter(field.shown_when, typedef.name).matches(
        record.values, typedef, session.context(record.values))


def inline_editable(web: "Web", identity: Identity, typedef: TypeDef) -> frozenset[str]:
    """The fields a person who may update a record may change in place on its page."""
    closed = (hidden_fields(identity, typedef, web.definitions) | readonly_fields(identity, typedef, web.definitions)
              | kept_by_rules(web.definitions, typedef))
    return frozenset(name for name, f in typedef.fields.items()
                     if not f.system and name not in closed and f.kind.writable
                     and not isinstance(f.kind, (AttachmentsKind, ComputedKind)))


def record_page(web: "Web", request: Request, web_session, identity: Identity, *, problem: str | None = None,
                problems: Mapping[str, str] | None = None, status: int = 200) -> Response:
    """The page of one record, as the person may see it."""
    number = request.path_params["number"]
    language = web.language_of(identity)
    only_entries = request.query_params.get("timeline") == "entries"

    def work(session):
        record, typedef = readable_record(session, identity, number)
        hidden = hidden_fields(identity, typedef, web.definitions)
        may_edit = decide(identity, "update", typedef, record, definitions=web.definitions,
                          context=session.context(record.values)).allowed
        editable = inline_editable(web, identity, typedef) if may_edit else frozenset()
        reading = Reading(session, identity, language)
        fields = [{"name": n, "title": f.title(language),
                   "editable": n in editable and _asked(session, typedef, f, record),
                   "pieces": (pieces := reading.pieces(typedef, n, record.get(n))),
                   "text": ", ".join(piece.text for piece in pieces),
                   "long": isinstance(f.kind, TextKind),
                   "html": markdown.to_html(record.get(n)) if f.format == "markdown" and record.get(n) else None,
                   "join": joining.button(identity, f, record, language)}
                  for n, f in typedef.fields.items() if not f.system and n not in hidden]
        transitions = [{"name": name, "label": label,
                        "confirm": label_text(getattr(transition_of(web.definitions, typedef.name, name), "confirm", None),
                                              language, ""),
                        "inputs": [{"name": i, "title": spec.title(language), "required": spec.required,
                                    "kind": spec.kind.name,
                                    "people": people(session, spec.offer, language) if spec.kind.name == "user"
                                    else None} for i, spec in inputs.items()]}
                       for name, label, inputs in available_transitions(session, record)]
        diagram = _diagram(web, identity, typedef, record, {transition["name"] for transition in transitions},
                           language)
        watch = stopwatch.view(stopwatch.read(session, identity.id, record.number), session.now)
        for transition in transitions:      # the stopwatch's time fills the durations asked
            for field in transition["inputs"]:
                if field["kind"] == "duration" and watch["minutes"]:
                    field["value"] = f"{watch['minutes']}m"
        files = [{"name": item.filename, "size": item.size, "url": f"/r/{record.number}/files/{item.blob_id}",
                  "preview": preview_of(item)}
                 for n, f in typedef.fields.items() if isinstance(f.kind, AttachmentsKind) and n not in hidden
                 for item in record.get(n) or ()]
        sources = [(other, via) for other, via in entry_sources(web.definitions, typedef)
                   if decide(identity, "read", other, definitions=web.definitions)
                   or decide(identity, "create", other, definitions=web.definitions)]
        return {"number": record.number, "version": record.version, "type_title": typedef.title(language),
                "title": record.get(typedef.title_field) if typedef.title_field else None,
                "fields": fields, "transitions": transitions, "diagram": diagram,
                "clocks": [{"label": clock.label, "state": clock.state,
                            "due": reading.moment(clock.deadline) if clock.deadline is not None else ""}
                           for clock in clocks_of(session, record, language)],
                **page_layout(web.definitions, typedef, fields, record, language, reading.t),
                "files": files, "may_edit": may_edit, "watch": watch,
                "timed": any(f["kind"] == "duration" for each in transitions for f in each["inputs"]),
                "timeline": _timeline(web, session, identity, typedef, record, sources, language, only_entries,
                                      handles=may_edit),
                "only_entries": only_entries,
                "documents": document_links(session, record, language),
                "composers": _composers(web, session, identity, record, sources, language),
                "approvals": approval_pages.on_record(session, identity, record, may_edit),
                "related": _related(web, session, identity, typedef, record, reading,
                                    skip={(other.name, via) for other, via in sources}),
                "summaries": _summaries(web, session, identity, typedef, record, language),
                "explain": explain_pages.panel(web, session, identity)}
    try:
        context = web.store.read(work, identity=identity)
    except NotFound as error:
        return web.render(request, "error.html", {"message": str(error)}, status=404,
                          web_session=web_session, identity=identity)
    context.update(problem=problem, problems=problems or {})
    return web.render(request, "record.html", context, status=status, web_session=web_session, identity=identity)


def _diagram(web: "Web", identity: Identity, typedef: TypeDef, record, may_fire: set[str], language: str):
    """The state diagram of the record's workflow for the roles its type's `page: {diagram}`
    names: the record's state highlighted, the transitions the person may fire now (those
    whose buttons the page shows) emphasised; None for the others."""
    spec = (typedef.page or {}).get("diagram")
    workflow = workflow_of(web.definitions, typedef.name)
    if spec is None or workflow is None or not set(identity.roles) & set(spec["roles"]):
        return None
    return state_diagram(web.definitions, typedef.name, language, title=translator(language)("Workflow"),
                         current=record.get(workflow.field), emphasised=may_fire, prefix="workflow-diagram")


# -- the timeline ------------------------------------------------------------------------------

def _timeline(web: "Web", session, identity: Identity, typedef: TypeDef, record, sources, language: str,
              only_entries: bool, handles: bool) -> list[dict[str, Any]]:
    """The record's history and the entries written on it, oldest first, as one list, every
    value as the person reads it (see history.py)."""
    reading = Reading(session, identity, language)
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    if not only_entries:
        items += history_items(reading, identity, typedef, record, handles=handles, now=session.now)
    for other, via in sources:
        if not decide(identity, "read", other, definitions=web.definitions):
            continue
        page = session.query(other.name, {via: record.id}, "-id", limit=TIMELINE_LIMIT)
        for entry in page.records:
            items.append((entry.get("created_at"), 0, _entry(web, session, identity, other, via, entry, reading)))
    items.sort(key=lambda item: (item[0], item[1]))         # oldest first: the newest is by the reply box
    return [item for _, _, item in items]


def _entry(web: "Web", session, identity: Identity, typedef: TypeDef, via: str, record,
           reading: Reading) -> dict[str, Any]:
    """One entry of a timeline: who wrote it and when, its kind and tags, its text and files."""
    language = reading.language
    hidden = hidden_fields(identity, typedef, web.definitions) | {via}
    own = {n: f for n, f in typedef.fields.items() if not f.system and n not in hidden}
    by = next((record.get(n) for n, f in own.items() if isinstance(f.kind, UserKind) and record.get(n)), None)
    text_field = next((n for n, f in own.items() if isinstance(f.kind, TextKind)), None)
    tags, classes = [], []
    for name, definition in own.items():
        value = record.get(name)
        if isinstance(definition.kind, EnumKind) and value is not None:
            tags.append(definition.kind.text(value, language))
            classes.append(f"entry-{name}-{value}")
        elif isinstance(definition.kind, DurationKind) and value:
            tags.append(field_text(session, typedef, record.values, name, language, record.number))
        elif isinstance(definition.kind, BooleanKind) and value is True:
            tags.append(definition.title(language))
    files = [{"name": item.filename, "size": item.size, "url": f"/r/{record.number}/files/{item.blob_id}",
              "preview": preview_of(item)}
             for n, f in own.items() if isinstance(f.kind, AttachmentsKind) for item in record.get(n) or ()]
    return {"kind": "entry", "type": typedef.name, "label": typedef.title(language), "number": record.number,
            "at": relative_time(reading, record.get("created_at"), session.now),
            "exact": reading.moment(record.get("created_at")), "iso": record.get("created_at").isoformat(),
            "by": reading.person(by or record.get("created_by")), "tags": tags, "classes": " ".join(classes),
            "text": record.get(text_field) if text_field else "", "files": files,
            "html": markdown.to_html(record.get(text_field))
            if text_field and own[text_field].format == "markdown" and record.get(text_field) else None}


def _composers(web: "Web", session, identity: Identity, record, sources, language: str) -> list[dict[str, Any]]:
    """A short form per kind of entry the person may add: its text, choices, switches, files,
    durations and what it requires without a default; the rest takes its defaults."""
    found = []
    for other, via in sources:
        if not decide(identity, "create", other, definitions=web.definitions):
            continue
        closed, readonly, pinned = entry_limits(web.definitions, identity, other, via)
        asked = tuple(n for n, f in other.fields.items()
                      if not f.system and n not in closed and f.kind.writable
                      and (isinstance(f.kind, (TextKind, EnumKind, BooleanKind, AttachmentsKind, DurationKind))
                           or (f.required and f.default is None)))
        fields = widgets(session, other, {via: record.id, **pinned}, language=language, hidden=frozenset(closed),
                         readonly=readonly, only=asked)
        for widget in fields:       # texts kept as records, offered to insert (reply templates)
            snippet_pages.offer(session, other, widget, record, prefix=f"{other.name}-", language=language)
        found.append({"type": other.name, "label": label_text(other.label, language, other.name), "via": via,
                      "via_value": record.id, "fields": fields,
                      "action": f"/new/{other.name}?return=/r/{record.number}"})
    return found


def _related(web: "Web", session, identity: Identity, typedef: TypeDef, record, reading: Reading,
             skip: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The records of other types that point at this one and are not timeline entries, newest
    first, as the person may read them, with a link to add one."""
    language = reading.language
    found = []
    for other in web.definitions.types.values():
        for name, definition in other.fields.items():
            kind = definition.kind
            if (kind.name != "ref" or kind.to != typedef.name or other.index_for(name) is None
                    or (other.name, name) in skip):
                continue
            if not decide(identity, "read", other, definitions=web.definitions):
                continue
            page = session.query(other.name, {name: record.id}, "-id", limit=RELATED_LIMIT)
            hidden = hidden_fields(identity, other, web.definitions) | {name}
            columns = [n for n, f in other.fields.items()
                       if not f.system and n not in hidden and f.kind.name not in ("attachments", "computed")][:5]
            rows = [{"number": r.number, "cells": [reading.text(other, c, r.get(c)) for c in columns]}
                    for r in page.records]
            asked = role_form(identity, other)          # a form that does not ask the ref cannot add one here
            may_add = decide(identity, "create", other, definitions=web.definitions).allowed \
                and (asked is None or name in asked)
            if not rows and not may_add:
                continue
            found.append({"title": f"{label_text(other.plural, language, other.title(language))}"
                                   + (f" ({definition.title(language)})" if other.name == typedef.name else ""),
                          "headers": [other.fields[c].title(language) for c in columns], "rows": rows,
                          "total": page.total,
                          "add": f"/new/{other.name}?{name}={record.id}&return=/r/{record.number}"
                                 if may_add else None})
    return found


def _summaries(web: "Web", session, identity: Identity, typedef: TypeDef, record,
               language: str) -> list[dict[str, Any]]:
    """The type's `summaries`: the related records the person may read, counted by a field's
    values through the indexes, most frequent first, as rows with a bar's width; each row
    links to those records in a list of that type without a filter of its own, if the person
    is offered one."""
    found = []
    offered = [web.definitions.views[entry["name"]] for entry in web.navigation(identity, language)]
    for spec in typedef.summaries:
        other = web.definitions.type(spec["of"])
        if not decide(identity, "read", other, definitions=web.definitions):
            continue
        condition = {spec["via"]: record.id}
        if spec.get("filter"):
            condition = {"all": [condition, thaw(spec["filter"])]}
        listing = next((view for view in offered if view.type == other.name and not view.filter), None)
        counted = [(value, count) for value, count in session.count_by(other.name, spec["by"], condition)
                   if value is not None]
        counted.sort(key=lambda item: -item[1])
        counted = counted[:spec.get("limit") or 5]
        most = max((count for _, count in counted), default=0) or 1
        field = other.fields[spec["by"]]
        rows = [{"label": field_text(session, other, {spec["by"]: value}, spec["by"], language)
                 if field.kind.name == "ref" else field.kind.text(value, language),
                 "count": count, "width": round(100 * count / most),
                 "url": f"/v/{listing.name}?" + urlencode({"f": json.dumps({"all": [condition, {spec["by"]: value}]})})
                 if listing else None} for value, count in counted]
        found.append({"title": label_text(spec.get("label"), language, "")
                      or f"{label_text(other.plural, language, other.title(language))}: {field.title(language)}",
                      "rows": rows})
    return found


# -- acting on the record ----------------------------------------------------------------------

def fire_transition(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """Fire a transition with the inputs of its form; a refusal comes back on the page."""
    number, name = request.path_params["number"], request.path_params["transition"]
    form = request.state.form
    inputs = {k: v for k, v in form.items() if k not in ("csrf", "version", "fire") and v != ""}

    def work(session) -> tuple[str, str]:
        record = session.find(number)
        asked = transition_of(session.definitions, record.type_name, name)
        specs = asked.inputs if asked is not None else {}
        record = fire(session, record, name, logins_of(session, inputs, person_fields(specs)),
                      version=version_sent(form))
        if any(spec.kind.name == "duration" for spec in specs.values()):
            stopwatch.used(session, identity.id, number)      # its time went into this transition
        return _landing(session, identity, record, name, inputs), asked.title(language) if asked else name
    language = web.language_of(identity)
    try:
        landing, label = web.store.run(work, identity=identity)
    except TransitionRefused as refused:
        return record_page(web, request, web_session, identity, problem=refused.reason, problems=refused.fields,
                           status=422)
    except (AccessDenied, StaleEdit, ValidationError, DeskbaseError) as error:
        return record_page(web, request, web_session, identity, problem=str(error), status=422)
    return said.say(RedirectResponse(landing, status_code=303),
                    translator(language)(N_("{action}: done on {number}."), action=label, number=number))


def _landing(session, identity: Identity, record, name: str, inputs) -> str:
    """Where the person goes once a transition is fired: what its `then` offers them (a
    record to answer, through a signed link of their own); else the record's page while they
    may still read it; else the record it was merged into, or their home page."""
    offered = offered_after(session, record, name)
    if offered is not None:
        answered, values = offered
        return f"/a/{links.create_link(session, answered, values, identity.id)}"
    typedef = session.definitions.type(record.type_name)
    if decide(identity, "read", typedef, record, definitions=session.definitions,
              context=session.context(record.values)).allowed:
        return f"/r/{record.number}"
    target = merged_into(session, record, name, inputs)
    return f"/r/{target.number}" if target is not None else "/"


_NAME = re.compile(r"[a-z][a-z0-9_]*")


def inline_field(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """Change one field in place. GET draws its editor; POST saves it when nobody changed
    that field since the editor was drawn (changes to other fields do not get in the way),
    then the record's part of the page is drawn again."""
    number, name = request.path_params["number"], request.path_params["field"]
    language = web.language_of(identity)
    if not _NAME.fullmatch(name):
        return Response(status_code=404)

    def load(session):
        record, typedef = readable_record(session, identity, number)
        if name not in typedef.fields or not decide(identity, "update", typedef, record, definitions=web.definitions,
                                                    context=session.context(record.values)) \
                or name not in inline_editable(web, identity, typedef):
            raise NotFound(f"`{name}` cannot be changed here")
        shown = form_value(session, typedef.fields[name].kind, record.get(name))
        return record, typedef, shown

    def editor(session, typed=None, error: str = "", seen: Any = None) -> dict[str, Any]:
        record, typedef, shown = load(session)
        field = widgets(session, typedef, record.values, language=language, hidden=frozenset(),
                        readonly=frozenset(), typed=typed, errors={name: error} if error else None,
                        only=(name,), creating=False)[0]
        return {"field": field, "type": typedef.name, "number": number, "prefix": "inline-",
                "seen": _seen_text(shown if seen is None else seen)}
    try:
        if request.method == "GET":
            return web.render(request, "_inline_field.html", web.store.read(editor, identity=identity),
                              web_session=web_session, identity=identity)
        form = request.state.form
        seen = str(form.get("seen", ""))

        def save(session):
            record, typedef, shown = load(session)
            if _seen_text(shown) != seen:
                raise _ChangedMeanwhile(f"{typedef.fields[name].title(language)} was changed by someone else "
                                        f"meanwhile; it now reads “{field_text(session, typedef, record.values, name, language, number)}”.")
            changes = logins_of(session, submitted(typedef, form, {name: form.getlist(name)}, allowed={name}),
                                {name} if isinstance(typedef.fields[name].kind, UserKind) else set())
            if changes.get(name) != record.get(name):
                session.update(number, {name: changes.get(name)})
        web.store.run(save, identity=identity)
    except NotFound as error:
        return web.render(request, "_alert.html", {"message": str(error)}, status=404)
    except (_ChangedMeanwhile, ValidationError, AccessDenied, DeskbaseError) as error:
        message = (getattr(error, "errors", None) or {}).get(name) or str(error)
        context = web.store.read(lambda session: editor(session, typed={name: form.get(name, "")}, error=message),
                                 identity=identity)
        response = web.render(request, "_inline_field.html", context, web_session=web_session, identity=identity)
        response.headers.update({"HX-Retarget": f"#inline-{name}", "HX-Reswap": "outerHTML",
                                 "HX-Reselect": f"#inline-{name}"})
        return response
    return RedirectResponse(f"/r/{number}", status_code=303)


class _ChangedMeanwhile(DeskbaseError):
    """The field is not what the person saw when they began to change it."""


def _seen_text(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)
