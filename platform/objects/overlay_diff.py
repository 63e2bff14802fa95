"""What overlays change in the definitions they are laid over, in sentences: the merged
document of the base compared with the merged document of base and overlays, named by
the meta-schema (its `x-noun`s say what an entry of each map is: a type, a field, a view)."""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from babel import Locale, UnknownLocaleError

_MISSING = object()
_SHORT = 60          # longer texts are said to change, not quoted
_SUMMARY_PARTS = 6   # what is said of an entry added, at most
_NOUN = re.compile(r"^an? ([a-z][a-z ]*?)(?::| such| —|,|$)")
# Keys whose value is shown first when an entry is added, or left out of its summary.
_LABEL_KEYS = ("label", "plural", "help")


@dataclass(frozen=True)
class Change:
    """One sentence about what an overlay changes, under the top-level section it concerns."""

    section: str
    sentence: str


@dataclass(frozen=True)
class _Subject:
    lead: str         # how a sentence about it starts: "type `task`", "field `priority` of `task`"
    of: str           # how it is named after "of": "`task`", "field `priority` of `task`"
    top: str          # the name of the entry of the top-level section it is in

    def about(self, text: str) -> str:
        return f"{self.lead}: {text}" if self.lead else text


def overlay_changes(base: Mapping[str, Any], merged: Mapping[str, Any], schema: Mapping[str, Any],
                    value_nouns: Mapping[tuple[str, ...], str] | None = None) -> list[Change]:
    """Every difference between the merged `base` document and the `merged` one (the base
    with overlays), one sentence each, grouped by top-level section in the schema's order.
    `value_nouns` names the items of some lists: {("types", "task", "fields", "status",
    "values"): "state"} says "state `on_hold` added" rather than "values `on_hold` added"."""
    walker = _Walker(schema, value_nouns or {})
    order = list(schema.get("properties", {}))
    sections = sorted(set(base) | set(merged), key=lambda name: (order.index(name) if name in order else len(order),
                                                                  name))
    for section in sections:
        walker.section(section, base.get(section, _MISSING), merged.get(section, _MISSING))
    return walker.changes


class _Walker:
    def __init__(self, schema: Mapping[str, Any], value_nouns: Mapping[tuple[str, ...], str]):
        self.schema = schema
        self.value_nouns = value_nouns
        self.changes: list[Change] = []
        self.current = ""

    def say(self, sentence: str) -> None:
        self.changes.append(Change(self.current, sentence))

    def section(self, name: str, base: Any, merged: Any) -> None:
        if base == merged or (_empty(base) and _empty(merged)):
            return
        self.current = name
        schema = _properties(self.schema).get(name, {})
        noun = _entry_noun(schema)
        if noun is not None:
            self.entries((name,), _as_map(base), _as_map(merged), schema["additionalProperties"], noun, None, name)
            return
        if base is _MISSING or merged is _MISSING:
            self.say(f"`{name}` {'added' if base is _MISSING else 'removed'}")
            return
        # A section of settings: its keys are named from it ("`settings.timezone`").
        self.compare(_Subject("", f"`{name}`", name), _as_map(base), _as_map(merged), schema, (name,), (name,))

    # -- maps of named entries: types, fields, views, transitions… --------------------------

    def entries(self, path: tuple[str, ...], base: dict, merged: dict, schema: Mapping[str, Any], noun: str,
                parent: _Subject | None, key: str) -> None:
        # `renamed_from: old` on a new entry whose old name is gone: one rename, not an
        # entry removed and another added.
        renamed = {str(entry["renamed_from"]): name for name, entry in merged.items()
                   if name not in base and isinstance(entry, dict) and entry.get("renamed_from") in base
                   and entry["renamed_from"] not in merged}
        for name in sorted(set(base) | set(merged)):
            before, after = base.get(name, _MISSING), merged.get(name, _MISSING)
            if before == after or name in renamed:
                continue
            subject = _subject_of(noun, name, parent, key)
            lead = f"{parent.lead}: " if parent is not None else ""
            if name in renamed.values():
                old = after["renamed_from"]
                self.say(f"{lead}{noun} `{old}` renamed to `{name}` (its stored values move to it)")
                self.compare(subject, _as_map(base[old]), _without(after, "renamed_from"), schema, path + (name,), ())
            elif before is _MISSING:
                self.say(f"{lead}{noun} `{name}` added{_summary(after)}")
            elif after is _MISSING:
                self.say(f"{lead}{noun} `{name}` removed")
            elif isinstance(before, dict) and isinstance(after, dict):
                self.compare(subject, before, after, schema, path + (name,), ())
            else:
                self.say(subject.about(f"{_shown(before)} → {_shown(after)}"))

    # -- maps of settings: a type's keys, a field's options… ----------------------------------

    def compare(self, subject: _Subject, base: dict, merged: dict, schema: Mapping[str, Any],
                path: tuple[str, ...], keys: tuple[str, ...]) -> None:
        known = _properties(schema)
        order = list(known)
        for key in sorted(set(base) | set(merged), key=lambda k: (order.index(k) if k in order else len(order), k)):
            before, after = base.get(key, _MISSING), merged.get(key, _MISSING)
            if before == after:
                continue
            sub_schema = known.get(key, {})
            where = ".".join(keys + (key,))
            noun = _entry_noun(sub_schema)
            if noun is not None and _map_or_nothing(before) and _map_or_nothing(after):
                self.entries(path + (key,), _as_map(before), _as_map(after), sub_schema["additionalProperties"],
                             noun, subject, key)
            elif _is_label(sub_schema, before, after):
                self.label(subject, where, before, after)
            elif isinstance(before, dict) and isinstance(after, dict):
                self.compare(subject, before, after, sub_schema, path + (key,), keys + (key,))
            elif isinstance(before, list) and isinstance(after, list):
                self.items(subject, where, before, after, self.value_nouns.get(path + (key,)))
            elif before is _MISSING:
                self.say(subject.about(f"`{where}` set to {_shown(after)}"))
            elif after is _MISSING:
                self.say(subject.about(f"`{where}` removed"))
            elif _long(before) or _long(after):
                self.say(subject.about(f"`{where}` changed"))
            else:
                self.say(subject.about(f"`{where}` {_shown(before)} → {_shown(after)}"))

    def label(self, subject: _Subject, where: str, base: Any, merged: Any) -> None:
        """A label per language: "label of `task` in French: Task → Tâche"."""
        before, after = _languages(base), _languages(merged)
        for language in sorted(set(before) | set(after)):
            old, new = before.get(language), after.get(language)
            if old == new:
                continue
            named = f"{where} of {subject.of} in {_language_name(language)}"
            if old is None:
                self.say(f"{named} set to {_shown(new)}")
            elif new is None:
                self.say(f"{named} removed (it was {_shown(old)})")
            else:
                self.say(f"{named}: {_shown(old)} → {_shown(new)}")

    def items(self, subject: _Subject, where: str, base: list, merged: list, noun: str | None) -> None:
        """A list: the items added and removed (by name for named items), or its new order."""
        before = {_item_name(item): item for item in base}
        after = {_item_name(item): item for item in merged}
        added = [name for name in after if name not in before]
        removed = [name for name in before if name not in after]
        changed = [name for name in after if name in before and before[name] != after[name]]
        word = noun or where.replace(".", " ")
        if added:
            self.say(subject.about(f"{_counted(word, added, noun)} added"))
        if removed:
            self.say(subject.about(f"{_counted(word, removed, noun)} removed"))
        for name in changed:
            self.say(subject.about(f"{word} {_quoted(name)} {_shown(before[name])} → {_shown(after[name])}"))
        if not (added or removed or changed):
            self.say(subject.about(f"{word} reordered: {', '.join(_quoted(name) for name in after)}"))


# -- naming ---------------------------------------------------------------------------------

def _properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The keys a schema knows, with those of its conditional branches (a field's options by kind)."""
    found = dict(schema.get("properties", {})) if isinstance(schema, Mapping) else {}
    for branch in schema.get("allOf", []) if isinstance(schema, Mapping) else []:
        for key, value in branch.get("then", {}).get("properties", {}).items():
            found.setdefault(key, value)
    return found


def _entry_noun(schema: Mapping[str, Any]) -> str | None:
    """What an entry of a map of named entries is ("field"), or None for a map of settings."""
    entry = schema.get("additionalProperties") if isinstance(schema, Mapping) else None
    if not isinstance(entry, Mapping) or "properties" in schema:
        return None
    kinds = entry.get("type", [])
    if "object" not in ([kinds] if isinstance(kinds, str) else kinds):
        return None
    for noun in (entry.get("x-noun", ""), schema.get("propertyNames", {}).get("x-noun", "")):
        found = _NOUN.match(noun)
        if found:
            return found.group(1).removesuffix(" name")
    return "entry"


def _subject_of(noun: str, name: str, parent: _Subject | None, key: str) -> _Subject:
    if parent is None:
        # A top-level entry: types are named bare after "of" ("label of `task`"), the rest
        # with what they are ("label of view `open_tasks`").
        return _Subject(f"{noun} `{name}`", f"`{name}`" if noun == "type" else f"{noun} `{name}`", name)
    held = "" if key.startswith(noun.split()[0]) or noun.startswith(key) else f" in `{key}`"
    named = f"{noun} `{name}`{held} of `{parent.top}`" if parent.lead.startswith("type ") \
        else f"{noun} `{name}`{held} of {parent.of}"
    return _Subject(named, named, parent.top)


def _is_label(schema: Mapping[str, Any], base: Any, merged: Any) -> bool:
    noun = schema.get("x-noun", "") if isinstance(schema, Mapping) else ""
    if noun.startswith("a label") or "map of languages" in noun:
        return all(value is _MISSING or isinstance(value, (str, dict)) for value in (base, merged))
    return False


def _languages(label: Any) -> dict[str, str]:
    if isinstance(label, dict):
        return {str(language): str(text) for language, text in label.items()}
    if label is _MISSING or label is None:
        return {}
    return {"": str(label)}     # a text without languages is every language's


def _language_name(code: str) -> str:
    if not code:
        return "every language"
    try:
        return Locale.parse(code.replace("-", "_")).get_display_name("en") or f"`{code}`"
    except (ValueError, UnknownLocaleError):
        return f"`{code}`"


def _item_name(item: Any) -> str:
    """An item of a list by its name: a word, the key of a one-key map ({high: {en: High}}),
    else the item as written."""
    if isinstance(item, dict) and len(item) == 1:
        key, value = next(iter(item.items()))
        if not isinstance(value, (list, dict)) or _languages(value):
            return str(key) if isinstance(value, dict) else _shown(item)
    return str(item) if isinstance(item, (str, int, float)) else _shown(item)


def _quoted(name: str) -> str:
    """A name in backticks; an item written as a map ({at: 70, event: warning}) as it is."""
    return f"`{name}`" if re.fullmatch(r"[\w.$-]+", name) else name


def _counted(word: str, names: list[str], noun: str | None) -> str:
    shown = ", ".join(_quoted(name) for name in names)
    if noun is not None and len(names) > 1:
        word += "s"
    return f"{word} {shown}"


# -- values -----------------------------------------------------------------------------------

def _summary(value: Any) -> str:
    """What is said of an entry added: its kind, label and simple settings."""
    if not isinstance(value, dict):
        return f" ({_shown(value)})" if value not in (None, _MISSING) else ""
    parts = [str(value["kind"])] if "kind" in value else []
    texts = _languages(value.get("label", _MISSING))
    if texts:
        parts.append(f"label {next(iter(texts.values()))}")
    for key, item in value.items():
        if key in ("kind", *_LABEL_KEYS):
            continue
        if item is True:
            parts.append(key)
        elif isinstance(item, (str, int, float)) and not isinstance(item, bool) and not _long(item):
            parts.append(f"{key} {item}")
        elif isinstance(item, list) and all(isinstance(one, str) for one in item):
            parts.append(f"{key} {', '.join(item)}")
        elif isinstance(item, dict) and item:
            parts.append(f"{key} {', '.join(map(str, item))}")
    if len(parts) > _SUMMARY_PARTS:
        parts = parts[:_SUMMARY_PARTS] + ["…"]
    return f" ({', '.join(parts)})" if parts else ""


def _shown(value: Any) -> str:
    if value is None or value is _MISSING:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{key}: {_shown(item)}" for key, item in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_shown(item) for item in value) + "]"
    else:
        text = " ".join(str(value).split()) or '""'
    return text if len(text) <= 80 else text[:79] + "…"


def _long(value: Any) -> bool:
    return isinstance(value, str) and (len(value) > _SHORT or "\n" in value.strip())


def _empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == {}


def _map_or_nothing(value: Any) -> bool:
    return value is _MISSING or value is None or isinstance(value, dict)


def _as_map(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _without(value: dict, key: str) -> dict:
    return {name: item for name, item in value.items() if name != key}


def sentences(changes: list[Change]) -> Iterator[str]:
    """The changes as lines: each section's name, then its sentences indented."""
    section = None
    for change in changes:
        if change.section != section:
            section = change.section
            yield f"{section}:"
        yield f"  {change.sentence}"
