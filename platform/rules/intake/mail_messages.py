"""Reading an email (P14): decoding a raw message whatever its charsets and transfer
encodings, its text without the quoted history, HTML made text or made safe to show, and
whether a machine wrote it (loop protection). Pure functions: no database, no server."""
from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_bytes
from email.header import Header, decode_header
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from types import MappingProxyType
from typing import Any

import nh3
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

from deskbase.objects.errors import DeskbaseError
from deskbase.objects.fields import Upload

UTC = timezone.utc


class MailParseError(DeskbaseError):
    """A message that cannot be read: no sender, a broken structure."""


@dataclass(frozen=True)
class ParsedMail:
    """What the intake uses of a message, decoded: text in str, files as uploads."""

    subject: str
    sender: str                        # the From address, lower case
    sender_name: str
    to: tuple[str, ...]
    date: datetime | None
    message_id: str | None             # `<id@domain>`
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    body: str                          # the text without the quoted history
    full_body: str                     # the whole text
    html: str | None                   # the HTML part, sanitized, if there was one
    attachments: tuple[Upload, ...]
    headers: Mapping[str, str]         # lower-case name → value, for the loop checks


_MESSAGE_IDS = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")     # <local@domain>: anything else is no Message-ID


_HEADERS = ("from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references", "auto-submitted",
            "precedence", "x-auto-response-suppress", "x-autoreply", "x-autorespond", "x-auto-reply", "list-id",
            "return-path", "content-type")


def parse_message(raw: bytes) -> ParsedMail:
    """Decode a raw message (any charset, quoted-printable or base64, RFC 2047 words);
    MailParseError when it has no usable sender or cannot be read at all.

    The email package's classic (compat32) model is used, decoding only what the intake
    reads: the modern one parses every header through its registry each time a part's type
    is asked, which costs more than storing the record."""
    try:
        message = message_from_bytes(raw)
        headers = {name: _decoded(message.get(name)) for name in _HEADERS if message.get(name) is not None}
        raw_from = _plain(message.get("from"))
    except Exception as error:      # the email package raises many kinds on broken input
        raise MailParseError(f"the message cannot be read: {type(error).__name__}: {error}") from None
    sender_name, sender = parseaddr(raw_from)
    if "@" not in sender:
        raise MailParseError("the message has no sender address (From)")
    try:
        date = parsedate_to_datetime(headers["date"]) if headers.get("date") else None
        date = (date if date.tzinfo else date.replace(tzinfo=UTC)).astimezone(UTC) if date else None
    except (TypeError, ValueError, IndexError):
        date = None
    try:
        text, html, attachments = _content(message)
    except Exception as error:
        raise MailParseError(f"the message's parts cannot be read: {type(error).__name__}: {error}") from None
    found_id = _MESSAGE_IDS.search(headers.get("message-id", ""))
    return ParsedMail(
        subject=" ".join(headers.get("subject", "").split()), sender=sender.strip().lower(),
        sender_name=_decoded(sender_name).strip(), to=tuple(a.lower() for _, a in getaddresses(
            [_plain(message.get("to")), _plain(message.get("cc"))]) if "@" in a),
        date=date, message_id=found_id.group(0) if found_id else None,
        in_reply_to=tuple(_MESSAGE_IDS.findall(headers.get("in-reply-to", ""))),
        references=tuple(_MESSAGE_IDS.findall(headers.get("references", ""))),
        body=trim_quoted(text), full_body=text.strip(), html=sanitize_html(html) if html else None,
        attachments=tuple(attachments), headers=MappingProxyType(headers))


def _plain(value: Any) -> str:
    """A header as text, its encoded words left as they are (addresses are read before their
    names are decoded); raw 8-bit bytes, which the email package hands over as a Header of
    unknown-8bit, are read as UTF-8 or Windows-1252."""
    if value is None:
        return ""
    if isinstance(value, Header):
        return "".join(chunk if isinstance(chunk, str) else _bytes_text(chunk, None if charset == "unknown-8bit"
                                                                         else charset)
                       for chunk, charset in decode_header(value))
    return str(value)


def _decoded(value: Any) -> str:
    """A header's text with its RFC 2047 words decoded, raw 8-bit bytes read as UTF-8 or
    Windows-1252."""
    if value is None:
        return ""
    try:
        chunks = decode_header(value)
    except Exception:              # a malformed encoded word: the header as it is
        return _plain(value)
    return "".join(chunk if isinstance(chunk, str) else _bytes_text(chunk, charset) for chunk, charset in chunks)


def _bytes_text(data: bytes, charset: str | None) -> str:
    charset = (charset or "").lower()
    if charset in ("", "ascii", "us-ascii", "unknown-8bit"):
        candidates: tuple[str, ...] = ("utf-8",)      # undeclared 8-bit text is UTF-8 nowadays
    elif charset in ("iso-8859-1", "latin-1", "latin1"):
        candidates = ("windows-1252",)     # what mail programs mean by it (curly quotes, €), as browsers read it
    else:
        candidates = (charset, "utf-8")
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("windows-1252", "replace")


def _content(message) -> tuple[str, str | None, list[Upload]]:
    parts: list = []
    _leaves(message, parts)
    plain = next((p for p in parts if _inline_text(p, "text/plain")), None)
    html_part = next((p for p in parts if _inline_text(p, "text/html")), None)
    text, html = "", None
    if html_part is not None:
        html = _part_text(html_part)
    if plain is not None:
        text = _part_text(plain)
    elif html is not None:
        text = html_to_text(html)
    attachments: list[Upload] = []
    for part in parts:
        if part is plain or part is html_part:
            continue
        kind = part.get_content_type()
        filename = part.get_filename()
        if kind == "message/rfc822":          # a forwarded message: kept whole, as a .eml
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            content = inner.as_bytes() if hasattr(inner, "as_bytes") else str(inner).encode("utf-8", "replace")
            attachments.append(Upload(_decoded(filename) if filename else f"forwarded-{len(attachments) + 1}.eml",
                                      content, "message/rfc822"))
            continue
        if not filename and kind.startswith("text/") and part.get_content_disposition() != "attachment":
            continue                          # another alternative of the body, a list's footer
        content = part.get_payload(decode=True) or b""
        name = _decoded(filename) if filename else f"part-{len(attachments) + 1}" \
            f"{mimetypes.guess_extension(kind) or '.bin'}"
        attachments.append(Upload(name, content, kind))       # its name made safe by Upload
    return text.replace("\r\n", "\n"), html, attachments


def _leaves(part, found: list) -> None:
    """The parts that are not containers, in order; a forwarded message is one leaf."""
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        for child in part.get_payload():
            _leaves(child, found)
    else:
        found.append(part)


def _inline_text(part, kind: str) -> bool:
    return part.get_content_type() == kind and part.get_content_disposition() != "attachment" \
        and not part.get_filename()


def _part_text(part) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        return str(part.get_payload())
    return _bytes_text(payload, part.get_content_charset())


# -- quoted history ---------------------------------------------------------------------------

_ATTRIBUTION = re.compile(
    r"^(on\s.+\bwrote|le\s.+\ba\s+écrit|am\s.+\bschrieb|dne\s.+\bnapsal(\(a\))?|em\s.+\bescreveu|"
    r".+\bnapisao\b.*|.+\bje\s+napisao|el\s.+\bescribió|il\s.+\bha\s+scritto)\s*:\s*$", re.I)
_SEPARATORS = re.compile(r"^-{2,}\s*(original message|message d'origine|ursprüngliche nachricht|původní zpráva|"
                         r"mensagem original|izvorna poruka|forwarded message|message transféré)\s*-{2,}$", re.I)
_HEADER_BLOCK = re.compile(r"^(from|de|od|von|šalje|sent|envoyé|odesláno|gesendet|enviada|to|à|komu|an|para|"
                           r"subject|objet|předmět|betreff|assunto|predmet|date|datum|data)\s?:", re.I)


def trim_quoted(text: str) -> str:
    """The new part of a message: without `>` lines, the "On … wrote:" line and what follows
    it, nor an Outlook "-----Original Message-----" or "From:/De :" header block and below."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for position, line in enumerate(lines):
        stripped = line.strip()
        joined = stripped + " " + lines[position + 1].strip() if position + 1 < len(lines) else stripped
        if _ATTRIBUTION.match(stripped) or (re.match(r"^(on|le|am|dne|em)\s", stripped, re.I)
                                            and _ATTRIBUTION.match(joined)):
            break
        if _SEPARATORS.match(stripped) or re.fullmatch(r"_{8,}", stripped):
            break
        if re.match(r"^(from|de|od|von)\s?:", stripped, re.I) and \
                sum(1 for later in lines[position + 1:position + 5] if _HEADER_BLOCK.match(later.strip())) >= 2:
            break
        if stripped.startswith(">"):
            continue
        kept.append(line.rstrip())
    result = "\n".join(kept).strip()
    return result or text.strip()


# -- HTML ---------------------------------------------------------------------------------------

_HIDDEN = {"script", "style", "head", "title", "template", "noscript", "iframe", "object", "embed", "svg"}
# inscriptis (a maintained HTML-to-text converter) lays blocks, lists and table cells out
# as a browser would in text; links keep their target.
_TEXT = ParserConfig(css=CSS_PROFILES["strict"], display_links=True)
_LINK = re.compile(r"\[([^\]\n]*)\]\(((?:[^()\s]|\([^()\s]*\))+)\)")   # [text](target), one level of ( ) inside


def _link_text(match: re.Match) -> str:
    shown, target = match.group(1).strip(), match.group(2)
    if not target.lower().startswith(("http://", "https://", "mailto:")):
        return shown                    # a script or a page anchor: nothing a reader can follow
    bare = target.removeprefix("mailto:")
    return bare if not shown or shown in (target, bare) else f"{shown} ({bare})"


def html_to_text(source: str) -> str:
    """Readable text of an HTML body: blocks on their own lines, list items and table cells
    apart, links as `text (address)`, scripts and styles dropped."""
    if not source.strip():
        return ""
    text = _LINK.sub(_link_text, get_text(source, _TEXT))
    lines = [line.rstrip() for line in text.replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_ALLOWED_TAGS = {"a", "b", "strong", "i", "em", "u", "p", "br", "div", "span", "ul", "ol", "li", "table", "thead",
                 "tbody", "tr", "td", "th", "blockquote", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
                 "img", "font", "small", "sub", "sup"}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "td": {"colspan", "rowspan"},
                       "th": {"colspan", "rowspan"}}
# Pictures only from the message itself (cid:) or inline in a format that carries no
# script (an SVG may): an external picture tells the sender when the message was read.
_INLINE_PICTURE = re.compile(r"data:image/(png|jpe?g|gif|webp);", re.I)


def _kept_attribute(tag: str, name: str, value: str) -> str | None:
    if name == "src":
        return value if value.lower().startswith("cid:") or _INLINE_PICTURE.match(value) else None
    if name == "href":
        return value if value.strip().lower().startswith(("http://", "https://", "mailto:")) else None
    return value


def sanitize_html(source: str) -> str:
    """HTML safe to show, well formed (nh3, a maintained sanitizer built on a browser's
    parser): known tags only, no script or style (their content dropped too), no event or
    style attributes, links to http(s) and mailto only (opened without referrer), pictures
    only from the message itself (cid:) or inline PNG, JPEG, GIF or WebP."""
    return nh3.clean(source, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto", "cid", "data"}, attribute_filter=_kept_attribute,
                     clean_content_tags=_HIDDEN - {"head"}, link_rel="noopener noreferrer nofollow",
                     strip_comments=True)


# -- loop protection ------------------------------------------------------------------------------

_BULK = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|noreply-dmarc-support|bounces?)([+-].*)?@", re.I)


def loop_reason(mail: ParsedMail, own_addresses: Iterable[str] = ()) -> str | None:
    """Why a message must create nothing and be answered nothing — written by a machine, a
    bounce, a mailing list, or ourselves — or None for a message a person wrote.
    Mailing lists (List-Id) are refused too: a list's traffic is not a request, and
    answering a list reaches everyone on it."""
    headers = mail.headers
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"automatic message (Auto-Submitted: {auto})"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _BULK:
        return f"bulk or list message (Precedence: {precedence})"
    suppress = headers.get("x-auto-response-suppress", "").strip()
    if suppress and re.search(r"\b(all|oof|autoreply)\b", suppress, re.I):
        return f"automatic message (X-Auto-Response-Suppress: {suppress})"
    for name in ("x-autoreply", "x-autorespond", "x-auto-reply"):
        if headers.get(name):
            return f"automatic message ({name})"
    if headers.get("list-id"):
        return f"mailing list message (List-Id: {headers['list-id'].strip()})"
    if _DAEMONS.match(mail.sender):
        return f"delivery report from {mail.sender}"
    if headers.get("return-path", "").strip() == "<>":
        return "delivery report (empty Return-Path)"
    if "report-type=delivery-status" in headers.get("content-type", "").lower().replace(" ", ""):
        return "delivery report (multipart/report)"
    own = {address.lower() for address in own_addresses if address}
    if mail.sender in own:
        return f"sent from our own address {mail.sender}"
    return None
