"""The handbook of an application, for the people who will use it: what was configured, read
from the compiled definitions alone (no database) and said in one of their languages —
roles and what each may see and do, the types and their fields, each workflow as a state
diagram with who fires each transition, service-level targets with their calendars, who is
told of what, approval chains, the lists of each role, and the ways records come in. As
HTML (an autoescaped template) or as a PDF made from it."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_skeleton, get_day_names

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.fields import ComputedKind, EnumKind, RefKind, RefsKind, format_duration, label_text
from deskbase.objects.frozen import thaw
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.words import N_
from deskbase.rules.access.scopes import RoleAccess, access_rules
from deskbase.rules.documents.making import html_to_pdf
from deskbase.rules.intake.mail_intake import mailboxes
from deskbase.rules.intake.public_forms import public_forms
from deskbase.rules.messages.notifications import Recipient, notifications
from deskbase.rules.process.approvals import Approvers, approval_chains
from deskbase.rules.process.calendars import calendars_of
from deskbase.rules.process.timers import timers
from deskbase.rules.process.workflows import Transition, Workflow, workflow_of

from .filter_builder import dump_filter
from .filter_words import filter_words
from .i18n import translator
from .state_diagrams import TEMPLATES, state_diagram, workflow_transitions

FORMATS = ("html", "pdf")
ACTIONS = ("read", "create", "update", "delete")
LETTERS = {"read": "R", "create": "C", "update": "U", "delete": "D"}
# The words the handbook says for the definitions' names of kinds, events and choices (the
# interface's catalogue translates them).
KIND_WORDS = {"string": N_("text (one line)"), "text": N_("text"), "integer": N_("whole number"), "decimal": N_("number"),
              "money": N_("amount"), "boolean": N_("yes or no"), "date": N_("date"), "datetime": N_("date and time"),
              "duration": N_("duration"), "enum": N_("choice"), "ref": N_("link to"), "refs": N_("links to"), "tags": N_("tags"),
              "user": N_("person"), "users": N_("people"), "attachments": N_("files"), "computed": N_("computed"),
              "sequence": N_("number given in sequence")}
EVENT_WORDS = {"create": N_("created"), "update": N_("changed"), "transition": N_("moved by a transition"),
               "delete": N_("deleted"), "timer": N_("a timer's threshold passed")}
MAIL_WORDS = {"create": N_("registered"), "refuse": N_("refused with an answer"), "quarantine": N_("held in the quarantine"),
              "subject": N_("subject"), "body": N_("body"), "from": N_("sender"), "to": N_("recipients"), "date": N_("date")}
HERE = Path(__file__).parent


class HandbookError(DeskbaseError):
    """A handbook that cannot be made as asked: an unknown language or format."""


def handbook(definitions: Definitions, language: str | None = None, output_format: str = "html") -> bytes:
    """The handbook of `definitions` in `language` (the first of theirs by default), as HTML
    or PDF bytes."""
    language = language or definitions.languages[0]
    if language not in definitions.languages:
        raise HandbookError(f"`{language}` is not a language of the definitions; choose one of "
                            f"{', '.join(definitions.languages)}")
    if output_format not in FORMATS:
        raise HandbookError(f"`{output_format}` is not a format of the handbook; choose one of {', '.join(FORMATS)}")
    html = handbook_html(definitions, language)
    return html_to_pdf(html, HERE / "templates") if output_format == "pdf" else html.encode()


def handbook_html(definitions: Definitions, language: str) -> str:
    """The handbook as one HTML page, its words in `language`."""
    book = _Book(definitions, language)
    return TEMPLATES.get_template("handbook.html").render(
        t=book.t, language=language, made=dt.date.today().isoformat(), sources=definitions.sources,
        zone=definitions.zone, languages=definitions.languages,
        roles=book.roles(), matrix=book.matrix(), types=book.types(), workflows=book.workflows(),
        service=book.service_levels(), calendars=book.calendars(), notifications=book.notifications(),
        approvals=book.approvals(), lists=book.lists(), mailboxes=book.mailboxes(), forms=book.public_forms())


class _Book:
    """The parts of a handbook, each a list of plain values for the template."""

    def __init__(self, definitions: Definitions, language: str):
        self.definitions, self.language = definitions, language
        self.t: Callable[..., str] = translator(language)
        self.access = access_rules(definitions)

    # -- words ---------------------------------------------------------------------------------

    def label(self, label: Any, fallback: str) -> str:
        return label_text(label, self.language, fallback)

    def role(self, name: str) -> str:
        return self.label((self.definitions.roles.get(name) or {}).get("label"), name)

    def field(self, typedef: TypeDef, name: str) -> str:
        return typedef.fields[name].title(self.language) if name in typedef.fields else name

    def condition(self, spec: Any, typedef: TypeDef) -> dict[str, str]:
        """A filter in words, or as written (`code`) when words would not say it plainly."""
        words = filter_words(spec, typedef, self.definitions, self.language)
        return {"words": words} if words is not None else {"code": self.code(spec)}

    def code(self, spec: Any) -> str:
        """A filter as written in the definitions (one line)."""
        return dump_filter(thaw(spec)) if spec else ""

    def duration(self, seconds: int | None) -> str:
        return format_duration(seconds) if seconds is not None else ""

    # -- roles ---------------------------------------------------------------------------------

    def roles(self) -> list[dict[str, Any]]:
        found = []
        for name, spec in self.definitions.roles.items():
            spec = spec or {}
            notes = ([self.t("may do everything")] if spec.get("superuser") else []) \
                + ([self.t("uses the customer portal")] if spec.get("portal") else [])
            found.append({"name": name, "label": self.role(name), "notes": notes})
        return found

    def grants(self, typedef: TypeDef) -> Mapping[str, RoleAccess]:
        return self.access.types.get(typedef.name, {})

    def matrix(self) -> dict[str, Any]:
        """Types × roles: the letters of the actions each role may do, `*` for some records."""
        roles = list(self.definitions.roles)
        rows = []
        for typedef in self.definitions.types.values():
            grants = self.grants(typedef)
            cells = []
            for role in roles:
                if role in self.access.superusers:
                    cells.append(self.t("all"))
                    continue
                granted = grants.get(role)
                letters = [LETTERS[action] + ("" if granted.actions.get(action) is True else "*")
                           for action in ACTIONS if granted is not None and granted.actions.get(action)]
                cells.append(" ".join(letters) or "—")
            rows.append({"type": typedef.title(self.language), "cells": cells})
        return {"roles": [self.role(role) for role in roles], "rows": rows}

    def access_rows(self, typedef: TypeDef) -> list[dict[str, Any]]:
        """Per role granted something on the type: each action in words, the fields hidden
        and read-only, the transitions it may fire."""
        workflow = workflow_of(self.definitions, typedef.name)
        rows = []
        for role, granted in self.grants(typedef).items():
            actions = {f"{action}s": self.action(granted.actions.get(action, False), typedef) for action in ACTIONS}
            fires = [t.title(self.language) for t in (workflow.transitions.values() if workflow else ())
                     if _may_fire(role, granted, t)]
            rows.append({"role": self.role(role), **actions,
                         "hidden": sorted(self.field(typedef, name) for name in granted.hide),
                         "readonly": sorted(self.field(typedef, name) for name in granted.readonly),
                         "fires": fires})
        everything = {f"{action}s": {"words": self.t("every record")} for action in ACTIONS}
        for role in sorted(self.access.superusers):
            rows.append({"role": self.role(role), **everything, "hidden": [], "readonly": [],
                         "fires": [t.title(self.language) for t in (workflow.transitions.values() if workflow else ())]})
        return rows

    def action(self, grant: Any, typedef: TypeDef) -> dict[str, str]:
        if grant is True:
            return {"words": self.t("every record")}
        if grant is False:
            return {"words": "—"}
        return self.condition(grant, typedef)

    # -- types ---------------------------------------------------------------------------------

    def types(self) -> list[dict[str, Any]]:
        return [{"name": typedef.name, "label": typedef.title(self.language),
                 "plural": self.label(typedef.plural, ""), "number": typedef.number(1),
                 "fields": [self.field_row(typedef, name) for name in typedef.own_fields],
                 "access": self.access_rows(typedef)}
                for typedef in self.definitions.types.values()]

    def field_row(self, typedef: TypeDef, name: str) -> dict[str, Any]:
        field = typedef.fields[name]
        kind = field.kind
        what = self.t(KIND_WORDS.get(kind.name, kind.name))
        if isinstance(kind, (RefKind, RefsKind)) and kind.to in self.definitions.types:
            what += " " + self.definitions.type(kind.to).title(self.language)
        elif isinstance(kind, ComputedKind):
            what += f" ({self.t(KIND_WORDS.get(kind.result.name, kind.result.name))})"
        required = self.t("yes") if field.required else ""
        if field.required_when is not None:
            said = self.condition(field.required_when, typedef)
            required = self.t("when {condition}", condition=said.get("words") or said["code"])
        return {"name": name, "label": field.title(self.language), "kind": what, "required": required,
                "choices": [kind.text(value, self.language) for value in kind.values] if isinstance(kind, EnumKind)
                else [], "help": self.label(field.help, "")}

    # -- workflows -----------------------------------------------------------------------------

    def workflows(self) -> list[dict[str, Any]]:
        found = []
        for typedef in self.definitions.types.values():
            workflow = workflow_of(self.definitions, typedef.name)
            if workflow is None:
                continue
            kind = typedef.fields[workflow.field].kind
            found.append({"type": typedef.title(self.language), "field": typedef.fields[workflow.field].title(self.language),
                          "initial": kind.text(workflow.initial, self.language),
                          "locked": [kind.text(state, self.language) for state in workflow.locked],
                          "diagram": state_diagram(self.definitions, typedef.name, self.language,
                                                   title=typedef.title(self.language), prefix=f"diagram-{typedef.name}"),
                          "transitions": [self.transition(typedef, workflow, t) for t in workflow_transitions(workflow)]})
        return found

    def transition(self, typedef: TypeDef, workflow: Workflow, transition: Transition) -> dict[str, Any]:
        kind = typedef.fields[workflow.field].kind
        if transition.trigger is not None:
            trigger = transition.trigger
            source = self.definitions.type(trigger.type)
            who = self.t("automatically, when a {type} is created", type=source.title(self.language))
            if trigger.where:
                said = self.condition(trigger.where, source)
                who += f" ({said.get('words') or said['code']})"
        elif transition.roles is None:
            who = self.t("whoever may update the record")
        else:
            who = ", ".join(self.role(role) for role in transition.roles)
        return {"label": transition.title(self.language),
                "sources": [kind.text(state, self.language) for state in transition.sources],
                "target": kind.text(transition.target, self.language), "who": who,
                "asks": [spec.title(self.language) + (" *" if spec.required else "")
                         for spec in transition.inputs.values()],
                "condition": self.label(transition.guard_message, transition.guard or ""),
                "confirm": self.label(transition.confirm, "")}

    # -- service levels ------------------------------------------------------------------------

    def service_levels(self) -> list[dict[str, Any]]:
        found = []
        for type_name, spec in timers(self.definitions).by_type.items():
            typedef = self.definitions.type(type_name)
            clocks = list(spec.clocks.values())
            if spec.calendar_path is not None:
                ref, field = spec.calendar_path
                target = self.definitions.types.get(getattr(typedef.fields[ref].kind, "to", ""))
                calendar = self.t("the {field} of the record's {ref}, else {calendar}",
                                  field=self.field(target, field) if target else field,
                                  ref=self.field(typedef, ref), calendar=spec.calendar or "—")
            else:
                calendar = spec.calendar or self.t("around the clock")
            found.append({
                "type": typedef.title(self.language), "calendar": calendar,
                "clocks": [{"label": clock.title(self.language),
                            "start": self.condition(clock.start, typedef) if clock.start else {"words": self.t("when the record is created")},
                            "pause": self.condition(clock.pause, typedef) if clock.pause else {"words": "—"},
                            "stop": self.condition(clock.stop, typedef) if clock.stop else {"words": "—"},
                            "thresholds": self.thresholds(typedef, clock.thresholds)} for clock in clocks],
                "headers": [clock.title(self.language) for clock in clocks],
                "policies": [{"name": policy.name, "when": self.policy_condition(typedef, policy),
                              "targets": [self.duration(policy.targets.get(clock.name)) for clock in clocks]}
                             for policy in spec.policies]})
        return found

    def policy_condition(self, typedef: TypeDef, policy) -> dict[str, str]:
        spec = dict(policy.when or {})
        spec.update({ref: condition for ref, condition in policy.through})
        return self.condition(spec, typedef) if spec else {"words": self.t("every other record")}

    def thresholds(self, typedef: TypeDef, thresholds) -> list[str]:
        found = []
        for threshold in thresholds:
            text = f"{threshold.percent} %: {threshold.event}"
            if threshold.set:
                text += " — " + ", ".join(f"{self.field(typedef, name)} = {self.value(typedef, name, value)}"
                                          for name, value in threshold.set.items())
            found.append(text)
        return found

    def value(self, typedef: TypeDef, name: str, value: Any) -> str:
        if isinstance(value, bool):
            return self.t("yes") if value else self.t("no")
        field = typedef.fields.get(name)
        return field.kind.text(value, self.language) if field is not None and isinstance(field.kind, EnumKind) \
            else str(value)

    def calendars(self) -> list[dict[str, Any]]:
        days = get_day_names("wide", locale=self.language)
        found = []
        for name, calendar in calendars_of(self.definitions).items():
            found.append({
                "name": name, "zone": calendar.zone,
                "hours": [{"day": days[position], "hours": _hours(intervals) or self.t("closed")}
                          for position, intervals in enumerate(calendar.hours)],
                "holidays": [self.holiday(day) for day in sorted(calendar.holidays, key=_holiday_order)],
                "public": self.public_holidays(calendar),
                "exceptions": [{"day": self.day(day), "hours": _hours(intervals) or self.t("closed")}
                               for day, intervals in calendar.exceptions]})
        return found

    def day(self, day: dt.date) -> str:
        return format_skeleton("yMMMMd", day, locale=self.language)

    def public_holidays(self, calendar) -> dict[str, Any] | None:
        """A country's public holidays of this year that close the calendar, named in the
        reader's language, and those worked all the same."""
        if calendar.country is None:
            return None
        year = dt.date.today().year
        country = Locale.parse(self.language).territories.get(calendar.country, calendar.country)
        if calendar.subdivision:
            country = f"{country} ({calendar.subdivision})"
        return {"title": self.t("Public holidays ({country}, {year})", country=country, year=year),
                "days": [f"{format_skeleton('MMMMd', day, locale=self.language)} ({name})"
                         for day, name in calendar.public_holidays(year, self.language)],
                "worked": [self.holiday(day) if not isinstance(day, str) else day[:1].upper() + day[1:]
                           for day in sorted(calendar.removed, key=lambda day: (isinstance(day, str), str(day)))]}

    def holiday(self, day) -> str:
        if isinstance(day, tuple):
            return self.t("every {day}", day=format_skeleton("MMMMd", dt.date(2000, *day), locale=self.language))
        return self.day(day)

    # -- who is told, who approves ---------------------------------------------------------------

    def notifications(self) -> list[dict[str, Any]]:
        found = []
        for type_name, rules in notifications(self.definitions).by_type.items():
            typedef = self.definitions.type(type_name)
            for rule in rules:
                events = [self.t(EVENT_WORDS.get(event, event)) for event in rule.events]
                if rule.timer_events:
                    events.append(", ".join(rule.timer_events))
                found.append({"name": rule.name, "type": typedef.title(self.language), "events": events,
                              "when": self.condition(rule.when, typedef) if rule.when else {"words": ""},
                              "to": [self.recipient(typedef, recipient) for recipient in rule.recipients],
                              "fallback": [self.recipient(typedef, recipient) for recipient in rule.fallback],
                              "channel": rule.channel})
        return found

    def recipient(self, typedef: TypeDef, recipient: Recipient) -> str:
        if recipient.address:
            return recipient.address
        if recipient.roles:
            return self.t("every {roles}", roles=", ".join(self.role(role) for role in recipient.roles))
        if recipient.members:
            return self.t("the members of {group}", group=self.path(typedef, recipient.members))
        return self.path(typedef, recipient.path)

    def path(self, typedef: TypeDef, path: tuple[str, ...]) -> str:
        """`requester.email` as people read it: Requester › E-mail."""
        words, current = [], typedef
        for name in path:
            field = current.fields.get(name) if current is not None else None
            words.append(field.title(self.language) if field is not None else name)
            current = self.definitions.types.get(getattr(field.kind, "to", "")) if field is not None else None
        return " › ".join(words)

    def approvals(self) -> list[dict[str, Any]]:
        found = []
        for chain in approval_chains(self.definitions).by_name.values():
            typedef = self.definitions.type(chain.type)
            workflow = workflow_of(self.definitions, chain.type)
            named = {t.name: t.title(self.language) for t in workflow_transitions(workflow)} if workflow else {}
            found.append({
                "label": chain.title(self.language), "type": typedef.title(self.language),
                "when": self.condition(chain.when, typedef),
                "steps": [{"label": step.title(self.language), "mode": self.t("all must approve") if step.mode == "all"
                           else self.t("one approves"),
                           "approvers": [self.approvers(typedef, approvers) for approvers in step.approvers]}
                          for step in chain.steps],
                "remind": self.duration(chain.remind_after), "expire": self.duration(chain.expire_after),
                "outcomes": [{"outcome": self.t(outcome),
                              "transition": named.get(effect.transition, effect.transition or "")}
                             for outcome, effect in chain.outcomes.items()],
                "blocks": [named.get(name, name) for name in chain.blocks]})
        return found

    def approvers(self, typedef: TypeDef, approvers: Approvers) -> str:
        if approvers.field:
            return self.field(typedef, approvers.field)
        if approvers.path:
            return self.path(typedef, approvers.path)
        if approvers.roles:
            return self.t("every {roles}", roles=", ".join(self.role(role) for role in approvers.roles))
        return ", ".join(approvers.users)

    # -- lists, mail, forms ----------------------------------------------------------------------

    def lists(self) -> list[dict[str, Any]]:
        found = []
        for role in self.definitions.roles:
            views = [view for view in self.definitions.views.values() if not view.roles or role in view.roles]
            rows = []
            for view in views:
                typedef = self.definitions.type(view.type)
                rows.append({"label": self.label(view.label, view.name), "type": typedef.title(self.language),
                             "filter": self.condition(view.filter, typedef) if view.filter else {"words": ""},
                             "columns": [self.field(typedef, name) for name in view.columns]})
            if rows:
                found.append({"role": self.role(role), "lists": rows})
        return found

    def mailboxes(self) -> list[dict[str, Any]]:
        found = []
        for mailbox in mailboxes(self.definitions).values():
            created = self.definitions.type(mailbox.create.type)
            reply = self.definitions.type(mailbox.reply.type) if mailbox.reply else None
            found.append({
                "name": mailbox.name, "address": mailbox.address or "", "folder": mailbox.folder,
                "creates": created.title(self.language),
                "fields": [f"{self.t(MAIL_WORDS.get(part, part))} → {self.field(created, name)}"
                           for name, part in mailbox.create.fields.items()],
                "replies": reply.title(self.language) if reply else "",
                "sender": self.definitions.type(mailbox.sender.type).title(self.language) if mailbox.sender else "",
                "unknown": self.t(MAIL_WORDS[mailbox.unknown_senders]),
                "unauthorized": self.t(MAIL_WORDS[mailbox.unauthorized]),
                "excluded": [*mailbox.exclude_from, *mailbox.exclude_subject],
                "rate": mailbox.rate_limit, "max_size": mailbox.max_size // (1024 * 1024)})
        return found

    def public_forms(self) -> list[dict[str, Any]]:
        found = []
        for form in public_forms(self.definitions).values():
            typedef = self.definitions.type(form.type)
            found.append({"name": form.name, "label": self.label(form.label, form.name),
                          "type": typedef.title(self.language),
                          "fields": [self.field(typedef, name) for name in form.fields]})
        return found


def _may_fire(role: str, granted: RoleAccess, transition: Transition) -> bool:
    """Whether people of a role may fire a transition, as its definition says: a role it
    names, or without `roles` a role that may update the record."""
    if transition.roles is not None:
        return role in transition.roles
    return granted.actions.get("update", False) is not False


def _hours(intervals) -> str:
    return ", ".join(f"{start:%H:%M}–{'24:00' if end == dt.time(0) else f'{end:%H:%M}'}" for start, end in intervals)


def _holiday_order(day) -> tuple:
    return (0, *day) if isinstance(day, tuple) else (1, day.year, day.month, day.day)
