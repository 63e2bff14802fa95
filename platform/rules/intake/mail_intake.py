"""Email in (P14): the `mailboxes:` section — which mailbox makes records of which type, how a
reply finds the record it answers, who may write — and the intake of one raw message in
one transaction, with its loop protection and the engine's quarantine. Reading the message
itself is `mail_messages`; the IMAP connector (`deskbase.connectors.imap`) only fetches,
calls `ingest` and marks what was committed."""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field as _field
from datetime import datetime, timezone
from email.utils import parseaddr
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, overload

from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree
from persistent import Persistent
from ZODB.blob import Blob
from ZODB.POSException import POSError

from deskbase.objects.compiling import Section, definition_error, filter_errors
from deskbase.objects.errors import DefinitionError, DeskbaseError, FieldError, NotFound, ValidationError, hint_for
from deskbase.objects.fields import AttachmentsKind, RefKind, StringKind, Upload, _accepted
from deskbase.objects.kept_objects import kept_object
from deskbase.objects.model import Definitions, TypeDef
from deskbase.objects.records import Record
from deskbase.rules.messages.channels import channels
from deskbase.rules.messages.outbox import find_by_message_id, queue_message

from .mail_messages import MailParseError, ParsedMail, loop_reason, parse_message
from .public_forms import SENDER_PROPERTIES, Sender, compile_sender, create_sender, find_sender, sender_values

if TYPE_CHECKING:
    from deskbase.objects.session import Session
    from deskbase.objects.store import Store

UTC = timezone.utc
MAIL_KEY = "deskbase.mail"           # beside the StoreRoot in the ZODB root mapping
ACTOR = "email"                      # who the history names for what a message creates
SECURITY = ("none", "starttls", "ssl")
SOURCES = ("subject", "body", "full_body", "html", "from", "from_name", "to", "date", "message_id")
QUARANTINED, IGNORED, REFUSED = "quarantined", "ignored", "refused"
NO_SUBJECT = "(no subject)"

log = logging.getLogger("deskbase.mail")

_DEFAULT_REFUSAL = {
    "subject": "Re: {subject}",
    "body": ("Hello,\n\nThank you for your message. We could not register it: {reason}.\n"
             "If you work with us, please ask your administrator to add your address, "
             "or use our web form.\n\nThis answer is sent once; further messages from this address "
             "are kept without an answer.\n"),
}


# -- compiled definitions -------------------------------------------------------------------

@dataclass(frozen=True)
class RecordSpec:
    """What a message becomes: a record of `type` whose `fields` take parts of the message
    (`subject`, `body`…), with fixed values `set`; `attachments` is the field receiving the
    files, `raw` the one receiving the original message (.eml). For a reply, `link` is the
    ref to the matched record and `copy` maps the reply's fields to the matched record's."""

    type: str
    fields: Mapping[str, str]
    set: Mapping[str, Any]
    attachments: str | None = None
    raw: str | None = None
    link: str | None = None
    copy: Mapping[str, str] = _field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Authorization:
    """Who may write: a sender listed in `listed_in` (`ref.refs` from the sender's record,
    such as organization.authorized_requesters), or whose record matches `or_where`."""

    listed_in: tuple[str, str] | None = None
    or_where: Any = None


@dataclass(frozen=True)
class Answerers:
    """Who may answer a record by e-mail (`answered_by`): a sender the record names in one of
    its refs (`named_in`, such as its requester), one with the same value as the record in
    each field of `same` (its organization), or whose record matches `or_where`. A sender the
    record names may answer even if `authorized` would not let them write a new message."""

    named_in: tuple[str, ...] = ()
    same: tuple[str, ...] = ()
    or_where: Any = None


@dataclass(frozen=True)
class Mailbox:
    """One mailbox of the `mailboxes:` section, defaults filled in."""

    name: str
    host: str
    port: int
    security: str
    username_env: str | None
    password_env: str | None
    address: str | None
    folder: str
    after: str                        # seen | move | delete
    move_to: str | None
    idle: bool
    create: RecordSpec
    sender: Sender | None
    reply: RecordSpec | None
    unknown_senders: str              # create | refuse | quarantine
    authorized: Authorization | None
    unauthorized: str                 # refuse | quarantine
    answered_by: Answerers | None
    exclude_from: tuple[str, ...]
    exclude_subject: tuple[str, ...]
    max_size: int
    oversized: str                    # truncate | quarantine
    rate_limit: int                   # messages per sender per hour; 0: no limit
    refusal: Mapping[str, str]


_STRINGS = {"type": "array", "items": {"type": "string"}, "x-noun": "a list of patterns such as *@example.org"}
_ENV = {"type": "string", "x-noun": "the name of an environment variable"}
_RECORD = {
    "type": "object", "required": ["type", "fields"],
    "x-noun": "a map such as {type: request, fields: {title: subject, description: body}, set: {…}}",
    "x-member": "a setting of a record made from a message (type, fields, set, attachments, raw, link, copy)",
    "properties": {"type": {"type": "string", "description": "the type of the record made"},
                   "fields": {"type": "object", "additionalProperties": {"type": "string"},
                              "description": "its fields filled from parts of the message: subject, body, "
                                             "full_body, html, from, from_name, to, date, message_id"},
                   "set": {"type": "object", "description": "its fixed values, such as {channel: email}"},
                   "attachments": {"type": "string", "description": "its attachments field taking the message's "
                                                                   "files"},
                   "raw": {"type": "string", "description": "its attachments field keeping the original .eml"},
                   "link": {"type": "string", "description": "for a reply, its ref to the record answered"},
                   "copy": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "its fields taken from the sender's record, such as "
                                           "{organization: organization}"}},
    "additionalProperties": False,
}
_SCHEMA = {
    "type": ["object", "null"],
    "x-noun": "a map of mailboxes",
    "description": "email in, by name: IMAP folders whose messages become records, and replies to them",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$", "x-noun": "a mailbox name"},
    "additionalProperties": {
        "type": "object", "x-noun": "a mailbox: a map with host, username_env, create…",
        "x-member": "a setting of a mailbox",
        "required": ["create"],
        "properties": {
            "host": {"type": "string", "x-noun": "a host name", "description": "the IMAP server (default localhost)"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "x-noun": "a port number",
                     "description": "the IMAP server's port (143, or 993 with ssl)"},
            "security": {"enum": list(SECURITY), "x-noun": "none, starttls or ssl",
                         "description": "how the connection is encrypted: none, starttls or ssl"},
            "username_env": _ENV | {"description": "the environment variable holding the user name"},
            "password_env": _ENV | {"description": "the environment variable holding the password"},
            "address": {"type": "string", "x-noun": "the mailbox's address, such as support@example.org",
                        "description": "the mailbox's own address: mail from it is never a request"},
            "folder": {"type": "string", "x-noun": "a folder name such as INBOX",
                       "description": "the folder read (default INBOX)"},
            "after": {"x-noun": "seen, delete or {move: FOLDER}",
                      "description": "what is done with a message once stored: seen, delete or {move: FOLDER}",
                      "anyOf": [{"enum": ["seen", "delete"]},
                                {"type": "object", "required": ["move"],
                                 "properties": {"move": {"type": "string",
                                                         "description": "the folder it is moved to"}},
                                 "additionalProperties": False}]},
            "idle": {"type": "boolean", "x-noun": "true or false",
                     "description": "true: the service fetches mail as it arrives (IMAP IDLE)"},
            "create": _RECORD | {"description": "the record a new message becomes"},
            "sender": {"type": "object", "required": ["type", "email", "link"],
                       "x-noun": "a map such as {type: contact, email: email, name: name, link: requester}",
                       "description": "the record of who wrote: found by its e-mail address",
                       "properties": SENDER_PROPERTIES,
                       "additionalProperties": False},
            "reply": _RECORD | {"description": "the record a reply to a record becomes, linked to it"},
            "unknown_senders": {"enum": ["create", "refuse", "quarantine"], "x-noun": "create, refuse or quarantine",
                                "description": "what a message from an unknown address does: create its sender, "
                                               "refuse it (one polite answer) or quarantine it"},
            "authorized": {"type": "object", "x-noun": "a map with listed_in and/or or_where",
                           "description": "the senders who may open a record",
                           "properties": {"listed_in": {"type": "string",
                                                        "description": "a path to a list of senders, such as "
                                                                       "organization.authorized_requesters"},
                                          "or_where": {"description": "a filter on the sender's record"}},
                           "additionalProperties": False},
            "unauthorized": {"enum": ["refuse", "quarantine"], "x-noun": "refuse or quarantine",
                             "description": "what a message from a sender not authorized does: refuse or "
                                            "quarantine"},
            "answered_by": {"type": "object", "x-noun": "a map with named_in, same and/or or_where",
                            "x-member": "a setting of answered_by (named_in, same, or_where)",
                            "description": "who may answer a record",
                            "properties": {"named_in": {"type": "array", "items": {"type": "string"},
                                                        "x-noun": "a list of ref fields of the record answered",
                                                        "description": "ref fields of the record naming people "
                                                                       "who may answer it"},
                                           "same": {"type": "array", "items": {"type": "string"},
                                                    "x-noun": "a list of fields of both the sender and the record",
                                                    "description": "fields the sender and the record must share, "
                                                                   "such as [organization]"},
                                           "or_where": {"description": "a filter on the sender's record"}},
                            "additionalProperties": False},
            "exclude": {"type": "object", "x-noun": "a map with from and subject lists",
                        "description": "messages left alone, by sender or subject (`*` and `?` patterns)",
                        "properties": {"from": _STRINGS | {"description": "sender patterns, such as noreply@*"},
                                       "subject": _STRINGS | {"description": "subject patterns, such as *[SPAM]*"}},
                        "additionalProperties": False},
            "max_size": {"type": "integer", "minimum": 1, "x-noun": "a size in bytes",
                         "description": "the largest message taken, in bytes (default 25 MiB)"},
            "oversized": {"enum": ["truncate", "quarantine"], "x-noun": "truncate or quarantine",
                          "description": "what a larger message does: quarantine, or truncate (headers and a note)"},
            "rate_limit": {"type": "integer", "minimum": 0, "x-noun": "messages per sender per hour",
                           "description": "messages per sender per hour (default 30; 0: no limit)"},
            "refusal": {"type": "object",
                        "properties": {"subject": {"type": "string",
                                                   "description": "the subject of the refusal, with {subject}"},
                                       "body": {"type": "string",
                                                "description": "its text, with {reason}"}},
                        "additionalProperties": False, "x-noun": "a map with subject and body",
                        "description": "the polite answer to a refused message"},
        },
        "additionalProperties": False,
    },
}


def _compile(document: Mapping[str, Any], positions, definitions: Definitions
             ) -> tuple[Mapping[str, Mailbox], list[DefinitionError]]:
    errors: list[DefinitionError] = []
    mailboxes: dict[str, Mailbox] = {}
    for name, spec in (document.get("mailboxes") or {}).items():
        path = ("mailboxes", name)
        create = _record_spec(spec["create"], path + ("create",), positions, definitions, errors)
        if create is None:
            continue
        typedef = definitions.types[create.type]
        sender = compile_sender(spec["sender"], typedef, path + ("sender",), positions, definitions, errors) \
            if spec.get("sender") else None
        reply = None
        if spec.get("reply"):
            reply = _record_spec(spec["reply"], path + ("reply",), positions, definitions, errors, linked_to=typedef)
        authorized = None
        if spec.get("authorized"):
            authorized = _authorization(spec["authorized"], sender, path + ("authorized",), positions, definitions,
                                        errors)
        if spec.get("unknown_senders", "create") != "create" and sender is None or \
                (spec.get("authorized") or spec.get("answered_by")) and sender is None:
            errors.append(definition_error(positions, path, "`unknown_senders`, `authorized` and `answered_by` need "
                                           "a `sender:` saying which records are the senders"))
        answered_by = None
        if spec.get("answered_by") and sender is not None:
            answered_by = _answerers(spec["answered_by"], sender, typedef, path + ("answered_by",), positions,
                                     definitions, errors)
        security = spec.get("security", "none")
        after = spec.get("after", "seen")
        mailboxes[name] = Mailbox(
            name=name, host=spec.get("host", "localhost"),
            port=spec.get("port", 993 if security == "ssl" else 143), security=security,
            username_env=spec.get("username_env"), password_env=spec.get("password_env"),
            address=spec.get("address"), folder=spec.get("folder", "INBOX"),
            after="move" if isinstance(after, Mapping) else after,
            move_to=after.get("move") if isinstance(after, Mapping) else None, idle=bool(spec.get("idle", False)),
            create=create, sender=sender, reply=reply, unknown_senders=spec.get("unknown_senders", "create"),
            authorized=authorized, unauthorized=spec.get("unauthorized", "quarantine"), answered_by=answered_by,
            exclude_from=tuple((spec.get("exclude") or {}).get("from") or ()),
            exclude_subject=tuple((spec.get("exclude") or {}).get("subject") or ()),
            max_size=spec.get("max_size", 25 * 1024 * 1024), oversized=spec.get("oversized", "quarantine"),
            rate_limit=spec.get("rate_limit", 30),
            refusal=MappingProxyType({**_DEFAULT_REFUSAL, **(spec.get("refusal") or {})}))
    return MappingProxyType(mailboxes), errors


def _record_spec(spec: Mapping[str, Any], path: tuple, positions, definitions: Definitions,
                 errors: list[DefinitionError], linked_to: TypeDef | None = None) -> RecordSpec | None:
    typedef = definitions.types.get(spec["type"])
    if typedef is None:
        errors.append(definition_error(positions, path + ("type",), f"`{spec['type']}` is not a type",
                                       hint_for(spec["type"], definitions.types)))
        return None
    fields = typedef.own_fields
    for field_name, source in (spec.get("fields") or {}).items():
        if field_name not in fields or not fields[field_name].kind.writable:
            errors.append(definition_error(positions, path + ("fields", field_name), f"`{field_name}` is not a "
                                           f"field of `{typedef.name}`", hint_for(field_name, fields), on_key=True))
        if source not in SOURCES:
            errors.append(definition_error(positions, path + ("fields", field_name), f"`{source}` is not a part "
                                           f"of a message: {', '.join(SOURCES)}", hint_for(source, SOURCES)))
    for field_name in spec.get("set") or {}:
        if field_name not in fields:
            errors.append(definition_error(positions, path + ("set", field_name), f"`{field_name}` is not a field "
                                           f"of `{typedef.name}`", hint_for(field_name, fields), on_key=True))
    for key in ("attachments", "raw"):
        name = spec.get(key)
        if name is not None and (name not in fields or not isinstance(fields[name].kind, AttachmentsKind)):
            usable = [n for n, f in fields.items() if isinstance(f.kind, AttachmentsKind)]
            errors.append(definition_error(positions, path + (key,), f"`{name}` is not an attachments field of "
                                           f"`{typedef.name}`", hint_for(name, usable)))
    link = spec.get("link")
    if linked_to is not None:
        field = fields.get(link or "")
        if field is None or not isinstance(field.kind, RefKind) or field.kind.multiple or field.kind.to != linked_to.name:
            refs = [n for n, f in fields.items() if isinstance(f.kind, RefKind) and f.kind.to == linked_to.name]
            errors.append(definition_error(positions, path + (("link",) if link else ()), f"a reply needs `link`: a "
                                           f"ref field of `{typedef.name}` pointing at `{linked_to.name}`",
                                           hint_for(link or "", refs)))
        for target, origin in (spec.get("copy") or {}).items():
            if target not in fields or origin not in linked_to.own_fields:
                errors.append(definition_error(positions, path + ("copy", target), f"`{target}: {origin}` does not "
                                               f"map a field of `{typedef.name}` to a field of `{linked_to.name}`",
                                               on_key=True))
    return RecordSpec(typedef.name, MappingProxyType(dict(spec.get("fields") or {})),
                      MappingProxyType(dict(spec.get("set") or {})), spec.get("attachments"), spec.get("raw"),
                      link, MappingProxyType(dict(spec.get("copy") or {})))


def _authorization(spec: Mapping[str, Any], sender: Sender | None, path: tuple, positions,
                   definitions: Definitions, errors: list[DefinitionError]) -> Authorization | None:
    if sender is None:
        return None
    source = definitions.types[sender.type]
    listed = None
    if spec.get("listed_in"):
        ref_name, _, list_name = str(spec["listed_in"]).partition(".")
        ref = source.fields.get(ref_name)
        target = definitions.types.get(ref.kind.to) if ref is not None and isinstance(ref.kind, RefKind) else None
        listing = target.fields.get(list_name) if target is not None else None
        if target is None or ref.kind.multiple or listing is None or not isinstance(listing.kind, RefKind) \
                or not listing.kind.multiple or listing.kind.to != source.name:
            errors.append(definition_error(positions, path + ("listed_in",), f"`{spec['listed_in']}` is not a ref "
                                           f"of `{source.name}` then a refs field of its target listing "
                                           f"`{source.name}` records", "write it as ref.refs, such as "
                                           "organization.authorized_requesters"))
        else:
            listed = (ref_name, list_name)
    if "or_where" in spec:
        errors.extend(filter_errors(spec["or_where"], source, path + ("or_where",), positions))
    return Authorization(listed, spec.get("or_where"))


def _answerers(spec: Mapping[str, Any], sender: Sender, answered: TypeDef, path: tuple, positions,
               definitions: Definitions, errors: list[DefinitionError]) -> Answerers:
    source = definitions.types[sender.type]
    named_in = tuple(spec.get("named_in") or ())
    for position, name in enumerate(named_in):
        field = answered.fields.get(name)
        if field is None or not isinstance(field.kind, RefKind) or field.kind.to != source.name:
            refs = [n for n, f in answered.fields.items() if isinstance(f.kind, RefKind) and f.kind.to == source.name]
            errors.append(definition_error(positions, path + ("named_in", position), f"`{name}` is not a ref field of "
                                           f"`{answered.name}` pointing at `{source.name}`", hint_for(name, refs)))
    same = tuple(spec.get("same") or ())
    for position, name in enumerate(same):
        if name not in source.fields or name not in answered.fields:
            both = [n for n in source.own_fields if n in answered.own_fields]
            errors.append(definition_error(positions, path + ("same", position), f"`{name}` is not a field of both "
                                           f"`{source.name}` and `{answered.name}`", hint_for(name, both)))
    if "or_where" in spec:
        errors.extend(filter_errors(spec["or_where"], source, path + ("or_where",), positions))
    return Answerers(named_in, same, spec.get("or_where"))


MAILBOXES_SECTION = Section("mailboxes", "top", _SCHEMA, _compile)


def mailboxes(definitions: Definitions) -> Mapping[str, Mailbox]:
    """The compiled mailboxes, by name (none when loaded without the section)."""
    return definitions.extensions.get("mailboxes") or MappingProxyType({})


def mailbox_named(definitions: Definitions, name: str) -> Mailbox:
    """One mailbox by name; MailIntakeError naming the others when there is none."""
    found = mailboxes(definitions)
    if name not in found:
        hint = hint_for(name, found)
        raise MailIntakeError(f"there is no mailbox `{name}`" + (f"; {hint}" if hint else
                                                                  f" (mailboxes: {', '.join(found) or 'none'})"))
    return found[name]


class MailIntakeError(DeskbaseError):
    """A mailbox or a held message that cannot be used as asked."""


# -- what the intake refuses ------------------------------------------------------------------

def excluded_reason(mail: ParsedMail, mailbox: Mailbox) -> str | None:
    """Which `exclude:` pattern the sender or subject matches, or None. In a pattern `*` is any
    text and `?` one character; everything else, brackets included, stands for itself, and
    case does not matter: `*[SPAM]*` is a subject containing [SPAM]."""
    for pattern in mailbox.exclude_from:
        if _wildcards(pattern).fullmatch(mail.sender):
            return f"excluded sender ({pattern})"
    for pattern in mailbox.exclude_subject:
        if _wildcards(pattern).fullmatch(mail.subject):
            return f"excluded subject ({pattern})"
    return None


def _wildcards(pattern: str) -> re.Pattern:
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), re.I | re.S)


def own_addresses(definitions: Definitions, mailbox: Mailbox) -> set[str]:
    """Addresses that are ours: the mailbox's, settings `mail.from`/`reply_to`, the channels'."""
    mail = definitions.settings.get("mail") or {}
    found = {mailbox.address, mail.get("from"), mail.get("reply_to")}
    for channel in channels(definitions).values():
        found.update((channel.sender, channel.reply_to))
    return {parseaddr(a)[1].lower() for a in found if a}


# -- the engine's mail state: received Message-IDs, handled UIDs, the quarantine -------------------

class HeldMessage(Persistent):
    """A message that made no record, kept with why: quarantined (a person should look at
    it and release or delete it), ignored (loop protection, exclusions, floods) or refused
    (the sender was answered). The raw source is kept as a blob: nothing is lost."""

    def __init__(self, held_id: int, disposition: str, reason: str, mailbox: str, raw: bytes, *,
                 uid: int | None, uidvalidity: int | None, received_at: datetime, subject: str = "",
                 sender: str = "", message_id: str | None = None):
        self.id = held_id
        self.disposition = disposition
        self.reason = reason
        self.mailbox = mailbox
        self.uid, self.uidvalidity = uid, uidvalidity
        self.received_at = received_at
        self.subject, self.sender, self.message_id = subject, sender, message_id
        self.size = len(raw)
        self.blob = Blob()
        with self.blob.open("w") as stream:
            stream.write(raw)

    def raw(self) -> bytes:
        with self.blob.open("r") as stream:
            return stream.read()

    def __repr__(self) -> str:
        return f"<HeldMessage {self.id} {self.disposition}: {self.reason}>"


class MailState(Persistent):
    """What the intake remembers. Each map is a BTree whose keys differ per message, so
    concurrent intakes insert different keys and rarely conflict (Store.run retries them)."""

    def __init__(self) -> None:
        self.received = OOBTree()       # Message-ID → number of the record it made or joined
        self.handled = OOBTree()        # "mailbox:uidvalidity:uid" → what became of it
        self.held = LOBTree()           # id → HeldMessage
        self.rates = OOBTree()          # sender address → epoch seconds of their recent messages
        self.answered = OOBTree()       # (mailbox, address) → when a refusal was sent
        self.contents = OOBTree()       # Message-ID → digest of what the message said

    def seen(self, mail: ParsedMail) -> Any:
        """The number of the record a message made or joined when this very message came
        before: the same Message-ID saying the same (a message reusing another's ID with other
        content is new). Messages stored before digests were kept match by their ID."""
        number = self.received.get(mail.message_id) if mail.message_id else None
        if number is None:
            return None
        contents = getattr(self, "contents", None)
        kept = contents.get(mail.message_id) if contents is not None else None
        return number if kept is None or kept == content_digest(mail) else None

    def note(self, mail: ParsedMail, number: Any) -> None:
        """Remember a message by its Message-ID (the first one keeps it) and what it said."""
        if not mail.message_id or mail.message_id in self.received:
            return
        self.received[mail.message_id] = number
        if getattr(self, "contents", None) is None:
            self.contents = OOBTree()
        self.contents[mail.message_id] = content_digest(mail)


def content_digest(mail: ParsedMail) -> str:
    """What a message says — sender, subject, text, files — as a short digest."""
    digest = hashlib.sha256()
    for part in (mail.sender, mail.subject, mail.full_body):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    for upload in mail.attachments:
        digest.update(upload.filename.encode("utf-8", "replace") + b"\0" + hashlib.sha256(upload.content).digest())
    return digest.hexdigest()[:32]


@overload
def mail_state(session: "Session", *, create: Literal[True]) -> MailState: ...


@overload
def mail_state(session: "Session", *, create: bool = False) -> MailState | None: ...


def mail_state(session: "Session", *, create: bool = False) -> MailState | None:
    """The mail state of the session's database (created with `create`)."""
    return kept_object(session.connection, MAIL_KEY, MailState if create else None)


def quarantine_size(session: "Session") -> int:
    """How many messages the intake holds for someone to release or delete."""
    state = mail_state(session)
    return len(state.held) if state is not None else 0


def ensure_mail_state(store: "Store") -> None:
    """Create the mail state in a transaction of its own, so intakes never write the root."""
    if store.read(lambda session: MAIL_KEY not in session.connection.root()):
        store.run(lambda session: mail_state(session, create=True))


def _new_id(tree: LOBTree) -> int:
    while True:      # time-ordered with random low bits, as the outbox's: no shared counter
        candidate = (time.time_ns() // 1_000_000 << 21) | secrets.randbits(21)
        if candidate not in tree:
            return candidate


def handled_key(mailbox: str, uidvalidity: int | None, uid: int | None) -> str | None:
    """The key under which a fetched message is remembered (None without a UID)."""
    return None if uid is None else f"{mailbox}:{uidvalidity or 0}:{uid}"


# -- intake -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What became of one message: created, replied, quarantined, ignored, refused or duplicate;
    `number` of the record made or joined, or `held` the id of the held message."""

    action: str
    number: str | None = None
    held: int | None = None
    reason: str | None = None
    record: str | None = None          # for a reply: the number of the reply's own record

    def __str__(self) -> str:
        what = self.number or (f"held {self.held}" if self.held else "")
        if self.record and self.record != self.number:
            what += f" ({self.record})"
        return f"{self.action} {what}".strip() + (f" ({self.reason})" if self.reason else "")


class _Hold(Exception):
    """Raised inside the intake's transaction to abort it and hold the message instead."""

    def __init__(self, disposition: str, reason: str, answer: str | None = None):
        super().__init__(reason)
        self.disposition, self.reason, self.answer = disposition, reason, answer


def ingest(store: "Store", mailbox: Mailbox, raw: bytes, *, uid: int | None = None,
           uidvalidity: int | None = None, received_at: datetime | None = None,
           now: datetime | None = None) -> Outcome:
    """Turn one raw message into a record (new, or a reply on the record it answers) in one
    transaction, or hold it with its reason. Never raises for the message's content: what
    cannot be read or mapped is quarantined. A message seen before (same mailbox, UIDVALIDITY
    and UID, or same Message-ID) makes nothing again: `duplicate`. `now` fixes the moment of
    the intake (scenario tests); by default the current time."""
    received_at = received_at or now or datetime.now(UTC)
    key = handled_key(mailbox.name, uidvalidity, uid)
    try:
        return store.run(lambda session: _intake(session, mailbox, raw, key, release=False), user=ACTOR, now=now)
    except _Hold as error:
        hold = error
    except (POSError, OSError):
        raise                  # the database is away: the message stays unmarked, read again later
    except Exception as error:     # a fault of ours must not stop the mailbox nor lose the message
        log.exception("message %s of mailbox %s could not be stored", uid, mailbox.name)
        hold = _Hold(QUARANTINED, f"could not be stored: {type(error).__name__}: {error}")
    return store.run(lambda session: _hold(session, mailbox, raw, key, hold, uid, uidvalidity, received_at),
                     user=ACTOR, now=now)


def _intake(session: "Session", mailbox: Mailbox, raw: bytes, key: str | None, *, release: bool) -> Outcome:
    state = mail_state(session, create=True)
    if key is not None and key in state.handled:
        return Outcome("duplicate", state.handled[key])
    try:
        mail = parse_message(raw)
    except MailParseError as error:
        raise _Hold(QUARANTINED, str(error)) from None
    before = state.seen(mail)
    if before is not None:
        if key is not None:
            state.handled[key] = before
        return Outcome("duplicate", before)
    if not release:
        reason = loop_reason(mail, own_addresses(session.definitions, mailbox)) or excluded_reason(mail, mailbox)
        if reason:
            raise _Hold(IGNORED, reason)
        if mailbox.rate_limit and _recent(state, mail.sender, session.now) >= mailbox.rate_limit:
            raise _Hold(IGNORED, f"more than {mailbox.rate_limit} messages from {mail.sender} in an hour")
    oversized = len(raw) > mailbox.max_size and not release     # released: kept whole, as a person chose
    if oversized and mailbox.oversized == "quarantine":
        raise _Hold(QUARANTINED, f"{len(raw) // 1024} KiB, above the mailbox's max_size "
                                 f"({mailbox.max_size // 1024} KiB)")
    target = match_record(session, mailbox, mail) if mailbox.reply is not None else None
    who = _sender_of(session, mailbox, mail, release, answering=target)
    try:
        if target is not None and mailbox.reply is not None:
            record = _reply(session, mailbox, mail, raw, target, who, oversized)
            number, action = target.number, "replied"
        else:
            record = _create(session, mailbox, mail, raw, who, oversized)
            number, action = record.number, "created"
    except (ValidationError, FieldError, NotFound) as error:
        raise _Hold(QUARANTINED, f"cannot be stored as a {mailbox.create.type if target is None else 'reply'}: "
                                 f"{error}") from None
    state.note(mail, number)
    if key is not None:
        state.handled[key] = number
    _count(state, mail.sender, session.now)
    return Outcome(action, number, record=record.number)


def _hold(session: "Session", mailbox: Mailbox, raw: bytes, key: str | None, hold: _Hold,
          uid: int | None, uidvalidity: int | None, received_at: datetime) -> Outcome:
    state = mail_state(session, create=True)
    if key is not None and key in state.handled:
        return Outcome("duplicate", state.handled[key])
    try:
        mail: ParsedMail | None = parse_message(raw)
    except MailParseError:
        mail = None
    disposition = hold.disposition
    if hold.answer and mail is not None:
        answered_key = (mailbox.name, mail.sender)
        if answered_key not in state.answered:
            subject = mailbox.refusal["subject"].replace("{subject}", mail.subject or NO_SUBJECT)
            body = mailbox.refusal["body"].replace("{reason}", hold.reason).replace("{subject}", mail.subject)
            queue_message(session, "email", [mail.sender], subject, body,
                          thread=[mail.message_id] if mail.message_id else ())
            state.answered[answered_key] = session.now
        else:
            disposition = IGNORED     # answered once already: kept, not answered again
    held_id = _new_id(state.held)
    state.held[held_id] = HeldMessage(
        held_id, disposition, hold.reason, mailbox.name, raw, uid=uid, uidvalidity=uidvalidity,
        received_at=received_at, subject=mail.subject if mail else "", sender=mail.sender if mail else "",
        message_id=mail.message_id if mail else None)
    if key is not None:
        state.handled[key] = f"held {held_id}"
    log.warning("mailbox %s: message %s from %s %s (held %s): %s", mailbox.name, uid if uid is not None else "-",
                mail.sender if mail else "an unreadable sender", disposition, held_id, hold.reason)
    return Outcome(disposition, held=held_id, reason=hold.reason)


def _recent(state: MailState, sender: str, now: datetime) -> int:
    since = now.timestamp() - 3600
    return sum(1 for moment in state.rates.get(sender, ()) if moment > since)


def _count(state: MailState, sender: str, now: datetime) -> None:
    since = now.timestamp() - 3600
    state.rates[sender] = tuple(m for m in state.rates.get(sender, ()) if m > since)[-200:] + (now.timestamp(),)


def _sender_of(session: "Session", mailbox: Mailbox, mail: ParsedMail, release: bool,
               answering: Record | None = None) -> Record | None:
    """The sender's record: found, created, or the message is held (unknown, not authorized,
    or answering a record they may not answer)."""
    sender = mailbox.sender
    if sender is None:
        return None
    who = find_sender(session, sender, mail.sender)
    if who is None:
        if mailbox.unknown_senders == "create" or release:
            return create_sender(session, sender, mail.sender, mail.sender_name)
        unknown = f"unknown sender {mail.sender}"
        raise _Hold(QUARANTINED if mailbox.unknown_senders == "quarantine" else REFUSED, unknown,
                    answer=unknown if mailbox.unknown_senders == "refuse" else None)
    named = answering is not None and mailbox.answered_by is not None and _named(mailbox.answered_by, answering, who)
    reason = None
    if mailbox.authorized is not None and not release and not named and not authorized(session, mailbox, who):
        reason = f"{mail.sender} is not authorized to write to this mailbox"
    elif answering is not None and mailbox.answered_by is not None and not release and not named \
            and not may_answer(session, mailbox.answered_by, answering, who):
        reason = f"{mail.sender} is not among the people who may answer {answering.number}"
    if reason:
        raise _Hold(QUARANTINED if mailbox.unauthorized == "quarantine" else REFUSED, reason,
                    answer=reason if mailbox.unauthorized == "refuse" else None)
    return who


def _named(rule: Answerers, answered: Record, who: Record) -> bool:
    for name in rule.named_in:
        value = answered.get(name)
        if who.id == value or (isinstance(value, tuple) and who.id in value):
            return True
    return False


def may_answer(session: "Session", rule: Answerers, answered: Record, who: Record) -> bool:
    """Whether the sender's record may answer the record: named in it, alike in every `same`
    field (an empty value is never alike), or matching `or_where`."""
    if _named(rule, answered, who):
        return True
    if rule.same and all(who.get(name) is not None and who.get(name) == answered.get(name) for name in rule.same):
        return True
    if rule.or_where is not None:
        typedef = session.definitions.type(who.type_name)
        where = session.store.compiled_filter(rule.or_where, typedef.name)
        if where.matches(who.values, typedef, session.context(who.values)):
            return True
    return False


def authorized(session: "Session", mailbox: Mailbox, who: Record) -> bool:
    """Whether the sender's record may write: listed in `listed_in`, or matching `or_where`."""
    rule = mailbox.authorized
    if rule is None:
        return True
    typedef = session.definitions.type(who.type_name)
    if rule.or_where is not None:
        where = session.store.compiled_filter(rule.or_where, typedef.name)
        if where.matches(who.values, typedef, session.context(who.values)):
            return True
    if rule.listed_in is not None:
        ref_name, list_name = rule.listed_in
        holder_id = who.get(ref_name)
        if holder_id is not None:
            holder = session.container(typedef.fields[ref_name].kind.to).records.get(holder_id)
            if holder is not None and who.id in (holder.get(list_name) or ()):
                return True
    return False


_BRACKETED = re.compile(r"\[([^\[\]\s]{1,40})\]")


def match_record(session: "Session", mailbox: Mailbox, mail: ParsedMail) -> Record | None:
    """The record a message answers: by In-Reply-To and References against the emails we sent
    (the outbox) and received, nearest first; else a `[NUMBER]` of the subject that is a
    record's number. Only records of the mailbox's `create` type count (a reply's record
    stands for the record it is linked to)."""
    state = mail_state(session)
    for message_id in (*mail.in_reply_to, *reversed(mail.references)):
        number = None
        sent = find_by_message_id(session, message_id)
        if sent is not None and sent.record:
            number = sent.record
        elif state is not None:
            number = state.received.get(message_id)
        found = _of_type(session, mailbox, number) if number else None
        if found is not None:
            return found
    for token in _BRACKETED.findall(mail.subject):
        found = _of_type(session, mailbox, token)
        if found is not None:
            return found
    return None


def _of_type(session: "Session", mailbox: Mailbox, number: str) -> Record | None:
    try:
        record = session.find(number)
    except NotFound:
        return None
    if record.type_name == mailbox.create.type:
        return record
    reply = mailbox.reply
    if reply is not None and record.type_name == reply.type and record.get(reply.link) is not None:
        return session.container(mailbox.create.type).records.get(record.get(reply.link))
    return None


def _values(session: "Session", spec: RecordSpec, mail: ParsedMail, raw: bytes, oversized: bool) -> dict[str, Any]:
    typedef = session.definitions.type(spec.type)
    parts = {"subject": mail.subject or NO_SUBJECT, "body": mail.body or mail.full_body, "full_body": mail.full_body,
             "html": mail.html, "from": mail.sender, "from_name": mail.sender_name or mail.sender,
             "to": ", ".join(mail.to), "date": mail.date or session.now, "message_id": mail.message_id}
    notes: list[str] = []
    files: dict[str, list[Upload]] = {}
    if oversized:
        parts["body"] = parts["full_body"] = (
            f"[This message was {len(raw) // 1024} KiB, above the mailbox's limit: only its headers were kept. "
            f"From {mail.sender}, subject “{mail.subject}”, {len(mail.attachments)} attachment(s).]")
    elif spec.attachments:
        kind = typedef.fields[spec.attachments].kind
        for upload in mail.attachments:
            problem = _refused(kind, upload)
            if problem:
                notes.append(f"[{upload.filename} was not kept as an attachment: {problem}; it is in the original "
                             f"message]")
            else:
                files.setdefault(spec.attachments, []).append(upload)
    if spec.raw:
        original = raw if not oversized else raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        files.setdefault(spec.raw, []).append(Upload("original-message.eml", original, "message/rfc822"))
    values: dict[str, Any] = {}
    for field_name, source in spec.fields.items():
        value = parts[source]
        if isinstance(value, str) and source in ("body", "full_body") and notes:
            value = value + "\n\n" + "\n".join(notes)
        kind = typedef.fields[field_name].kind
        if isinstance(value, str) and isinstance(kind, StringKind) and len(value) > kind.max_length:
            value = value[: kind.max_length - 1] + "…"
        values[field_name] = value
    values.update(files)
    values.update(spec.set)
    return values


def _refused(kind: AttachmentsKind, upload: Upload) -> str | None:
    if len(upload.content) > kind.max_size:
        return f"{len(upload.content) // 1024} KiB, above {kind.max_size // 1024} KiB"
    if kind.accept and not _accepted(upload, kind.accept):
        return "not an accepted kind of file"
    return None


def _create(session: "Session", mailbox: Mailbox, mail: ParsedMail, raw: bytes, who: Record | None,
            oversized: bool) -> Record:
    values = _values(session, mailbox.create, mail, raw, oversized)
    if who is not None and mailbox.sender is not None:
        values.update(sender_values(mailbox.sender, who, values))
    return session.create(mailbox.create.type, values)


def _reply(session: "Session", mailbox: Mailbox, mail: ParsedMail, raw: bytes, target: Record,
           who: Record | None, oversized: bool) -> Record:
    spec = mailbox.reply
    assert spec is not None and spec.link is not None   # _intake replies only with a reply spec, which has its link
    values = _values(session, spec, mail, raw, oversized)
    values[spec.link] = target.id
    for field_name, origin in spec.copy.items():
        if target.get(origin) is not None:
            values.setdefault(field_name, target.get(origin))
    return session.create(spec.type, values)


# -- the quarantine ------------------------------------------------------------------------------

def held_messages(session: "Session", disposition: str | None = None, *, limit: int = 100) -> list[HeldMessage]:
    """The newest held messages, optionally of one disposition."""
    state = mail_state(session)
    if state is None or not state.held:
        return []
    found = []
    for key in reversed(list(state.held.keys())):
        held = state.held[key]
        if disposition is None or held.disposition == disposition:
            found.append(held)
            if len(found) >= limit:
                break
    return found


def held_message(session: "Session", held_id: int) -> HeldMessage:
    """One held message; MailIntakeError when there is none with this id."""
    state = mail_state(session)
    held = state.held.get(int(held_id)) if state is not None else None
    if held is None:
        raise MailIntakeError(f"there is no held message {held_id}; `deskbase mail quarantine list` shows them")
    return held


def release(store: "Store", held_id: int) -> Outcome:
    """Make the record a held message would have made, skipping the checks that held it
    (a person decided): loop protection, exclusions, authorization, unknown sender. The held
    message is removed once the record is committed; MailIntakeError if it still cannot be stored."""
    def work(session: "Session") -> Outcome:
        held = held_message(session, held_id)
        mailbox = mailbox_named(session.definitions, held.mailbox)
        try:
            outcome = _intake(session, mailbox, held.raw(), None, release=True)
        except _Hold as hold:
            raise MailIntakeError(f"message {held_id} still cannot be stored: {hold.reason}") from None
        state = mail_state(session)
        assert state is not None                # held_message found the message there
        del state.held[held.id]
        key = handled_key(held.mailbox, held.uidvalidity, held.uid)
        if key is not None:
            state.handled[key] = outcome.number
        return outcome
    return store.run(work, user=ACTOR)


def delete_held(store: "Store", held_id: int) -> None:
    """Forget a held message for good (its UID stays known, so it is not fetched again)."""
    def work(session: "Session") -> None:
        held = held_message(session, held_id)
        state = mail_state(session)
        assert state is not None                # held_message found the message there
        del state.held[held.id]
    store.run(work)

