"""A record's history as a person reads it on the record's page: who (by name), when (in
the definitions' zone, in their language, "2 h ago" with the exact time beside it), what was
done (a transition by its label, never its name), and each change with its values read
through `Reading`. A person sees no change of a field hidden from them; whoever may not
change the record (a customer) sees neither the values the engine keeps — the clocks'
deadlines and states, the system fields — nor the engine's own notes. A type's `history:`
narrows what a role reads to the changes of some fields."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from deskbase.objects.model import TypeDef
from deskbase.rules.access.identity import Identity
from deskbase.rules.access.scopes import hidden_fields
from deskbase.rules.process.timers import clock_fields
from deskbase.rules.process.workflows import workflow_of

from .reading import Reading


def kept_by_engine(definitions, typedef: TypeDef) -> frozenset[str]:
    """Fields whose values the engine keeps and a person never types: clocks' deadlines and
    states, system fields."""
    return frozenset({name for name, field in typedef.fields.items() if field.system}
                     | set(clock_fields(definitions, typedef.name)))


def action_text(reading: Reading, typedef: TypeDef, entry: dict[str, Any]) -> str:
    """What an entry of the history did, in a few words: created, changed, or a transition's label."""
    t, reason = reading.t, entry.get("reason") or ""
    if reason.startswith("transition "):
        name = reason.split(" ")[1]
        workflow = workflow_of(reading.definitions, typedef.name)
        transition = None if workflow is None else workflow.transitions.get(name) or workflow.automatic.get(name)
        label = transition.title(reading.language) if transition is not None else name.replace("_", " ")
        return t("{action} (automatically)", action=label) if reason.endswith("(automatic)") else label
    return t("created") if entry["action"] == "created" else t("changed")


def history_items(reading: Reading, identity: Identity, typedef: TypeDef, record, *, handles: bool,
                  now: datetime) -> list[tuple[datetime, int, dict[str, Any]]]:
    """(moment, position, item) for each entry of the record's history the person may see
    something of; `handles`: whether they may change the record (then they see everything
    their access shows, the engine's notes included)."""
    definitions = reading.definitions
    hidden = hidden_fields(identity, typedef, definitions)
    if not handles:
        hidden = hidden | kept_by_engine(definitions, typedef)
    told = told_of(identity, typedef)
    notes = handles and told is None
    found = []
    for position, entry in enumerate(record.history.entries):
        changes = []
        for name, (old, new) in entry["changes"].items():
            if name in hidden or (told is not None and name not in told):
                continue
            before = reading.pieces(typedef, name, reading.from_history(typedef, name, old))
            after = reading.pieces(typedef, name, reading.from_history(typedef, name, new))
            if before or after:
                title = typedef.fields[name].title(reading.language) if name in typedef.fields else name
                changes.append({"field": title, "old": before, "new": after})
        reason = entry.get("reason") or ""
        if not changes and (not notes or not reason):
            continue
        by = reading.person(entry["by"])
        if entry.get("acting_for"):
            by = reading.t("{person} for {absent}", person=by,
                           absent=", ".join(reading.person(login) for login in entry["acting_for"].split(", ")))
        found.append((entry["at"], position, {
            "kind": "change", "at": relative_time(reading, entry["at"], now), "exact": reading.moment(entry["at"]),
            "iso": entry["at"].isoformat(),
            "by": by, "action": action_text(reading, typedef, entry),
            "note": reason if notes and reason and not reason.startswith("transition ") else "",
            "changes": changes, "opening": entry["action"] == "created"}))
    return found


def told_of(identity: Identity, typedef: TypeDef) -> frozenset[str] | None:
    """The fields whose changes the person reads in the history, when the type's `history:`
    names each of their roles (several roles: what any of them reads); None: all they may read."""
    if identity.superuser or not identity.roles or any(role not in typedef.history for role in identity.roles):
        return None
    return frozenset(name for role in identity.roles for name in typedef.history[role])


def relative_time(reading: Reading, moment: datetime, now: datetime) -> str:
    """"5 min ago", "3 h ago", "yesterday"…; past a week, the date and time."""
    t, tn, seconds = reading.t, reading.tn, (now - moment).total_seconds()
    if seconds < 60:
        return t("just now")
    if seconds < 3600:
        return t("{count} min ago", count=int(seconds // 60))
    if seconds < 86400:
        return t("{count} h ago", count=int(seconds // 3600))
    if seconds < 7 * 86400:
        days = int(seconds // 86400)
        return t("yesterday") if days == 1 else tn("{count} day ago", "{count} days ago", days)
    return reading.moment(moment)
