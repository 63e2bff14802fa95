"""Email out: the outbox's sender for the `email` channel, over SMTP with smtplib.

Every failure is classified for the outbox: worth retrying (TemporaryFailure) or not
(PermanentFailure), with the server's own words in the message.
"""
from __future__ import annotations

import smtplib
import socket
import ssl as ssl_module
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from deskbase.rules.messages.outbox import OutgoingMessage, PermanentFailure, TemporaryFailure

# Headers the sender writes itself; a message's own headers may not replace them.
_OWN_HEADERS = {"from", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to", "references",
                "mime-version", "content-type", "content-transfer-encoding"}


class SmtpSender:
    """Sends outbox messages through one SMTP server (plain, STARTTLS or implicit TLS)."""

    def __init__(self, host: str, port: int = 25, *, starttls: bool = False, ssl: bool = False,
                 username: str | None = None, password: str | None = None, sender_address: str,
                 timeout: float = 30.0, reply_to: str | None = None,
                 ssl_context: ssl_module.SSLContext | None = None, local_hostname: str | None = None):
        if starttls and ssl:
            raise ValueError("choose either starttls (upgrade on port 587) or ssl (implicit TLS on port 465), not both")
        if "@" not in parseaddr(sender_address)[1]:
            raise ValueError(f"`{sender_address}` is not an email address to send from")
        self.host, self.port = host, port
        self.starttls, self.ssl = starttls, ssl
        self.username, self.password = username, password
        self.sender_address = sender_address
        self.timeout = timeout
        self.reply_to = reply_to
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The email for an outbox message: UTF-8 text, an HTML alternative if given, its files
        as attachments, and the headers that let replies be threaded and keep auto-responders quiet."""
        email = EmailMessage(policy=SMTP_POLICY)
        email["From"] = self.sender_address
        email["To"] = ", ".join(message.recipients)
        email["Subject"] = message.subject
        email["Date"] = format_datetime(datetime.now(timezone.utc))
        if message.message_id:
            email["Message-ID"] = message.message_id
        if message.in_reply_to:
            email["In-Reply-To"] = message.in_reply_to
        if message.references:
            email["References"] = " ".join(message.references)
        if self.reply_to and "reply-to" not in {name.lower() for name in message.headers}:
            email["Reply-To"] = self.reply_to
        # RFC 3834: a machine wrote this; well-behaved auto-responders do not answer it.
        email["Auto-Submitted"] = "auto-generated"
        email["X-Auto-Response-Suppress"] = "OOF, AutoReply"
        for name, value in message.headers.items():
            if name.lower() in _OWN_HEADERS:
                continue
            del email[name]
            email[name] = value
        email.set_content(message.body, charset="utf-8")
        if message.html:
            email.add_alternative(message.html, subtype="html", charset="utf-8")
        for item in message.files:
            maintype, _, subtype = (item.content_type or "").partition("/")
            if not maintype or not subtype:
                maintype, subtype = "application", "octet-stream"
            email.add_attachment(item.content, maintype=maintype, subtype=subtype, filename=item.filename)
        return email

    def send(self, message: OutgoingMessage) -> str | None:
        """Deliver one message; returns a note naming recipients the server refused, if some were."""
        try:
            email = self.build(message)
        except (ValueError, TypeError) as error:     # a header the email package cannot write
            raise PermanentFailure(f"the message cannot be written as an email: {error}") from None
        envelope_from = parseaddr(self.sender_address)[1]
        try:
            with self._connect() as smtp:
                refused = smtp.send_message(email, from_addr=envelope_from, to_addrs=list(message.recipients))
        except smtplib.SMTPRecipientsRefused as error:
            raise _recipients_failure(error.recipients) from None
        except smtplib.SMTPAuthenticationError as error:
            # The server's settings are wrong, not the message: retry, so that once an admin
            # fixes the password the queue drains by itself.
            raise TemporaryFailure(f"{self._where()} refused the login of {self.username}: "
                                   f"{_reply(error.smtp_code, error.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as error:
            raise TemporaryFailure(f"{self._where()} does not support what the settings ask for: {error}") from None
        except smtplib.SMTPResponseException as error:
            text = f"{self._where()} answered {_reply(error.smtp_code, error.smtp_error)}"
            if 400 <= error.smtp_code < 500:
                raise TemporaryFailure(text) from None
            raise PermanentFailure(text) from None
        except smtplib.SMTPServerDisconnected as error:
            if isinstance(error.__context__, TimeoutError):     # smtplib wraps a read timeout this way
                raise TemporaryFailure(f"{self._where()} did not answer within {self.timeout:g} seconds") from None
            raise TemporaryFailure(f"{self._where()} closed the connection: {error or 'no reason given'}") from None
        except ssl_module.SSLError as error:
            raise TemporaryFailure(f"TLS with {self._where()} failed: {error}") from None
        except (socket.timeout, TimeoutError):
            raise TemporaryFailure(f"{self._where()} did not answer within {self.timeout:g} seconds") from None
        except OSError as error:      # connection refused, unknown host, network down
            raise TemporaryFailure(f"cannot reach {self._where()}: {error.strerror or error}") from None
        if refused:
            return "refused by the server: " + "; ".join(
                f"{address} ({_reply(code, text)})" for address, (code, text) in refused.items())
        return None

    def _connect(self) -> smtplib.SMTP:
        if self.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, local_hostname=self.local_hostname,
                                                  timeout=self.timeout, context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=self._context())
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _context(self) -> ssl_module.SSLContext:
        return self.ssl_context or ssl_module.create_default_context()

    def _where(self) -> str:
        return f"the SMTP server {self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<SmtpSender {self.host}:{self.port} as {self.sender_address}>"


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())}"


def _recipients_failure(recipients: dict[str, tuple[int, bytes]]) -> Exception:
    text = "every recipient was refused: " + "; ".join(
        f"{address} ({_reply(code, words)})" for address, (code, words) in recipients.items())
    if all(400 <= code < 500 for code, _ in recipients.values()):
        return TemporaryFailure(text)
    return PermanentFailure(text)
