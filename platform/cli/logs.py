"""Logging, configured once when a `deskbase` command starts: to standard error (where
systemd's journal and container runtimes collect it), with time stamps, at
`DESKBASE_LOG_LEVEL` (INFO by default), as text or, with `DESKBASE_LOG_FORMAT=json`, one
JSON object per line for log shippers. The web server's access log goes through it too."""
from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

LEVEL_VARIABLE, FORMAT_VARIABLE = "DESKBASE_LOG_LEVEL", "DESKBASE_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    exception's traceback when there is one, and the extra fields given to the call."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update({key: value for key, value in record.__dict__.items()
                      if key not in _STANDARD and not key.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StandardError(logging.StreamHandler):
    """Writes to the standard error of the moment (a test or a pipe may have replaced it)."""

    _deskbase: bool = False      # set on the one configure_logging installs, so a second call replaces it

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(default: str = "INFO", environ=None) -> str:
    """Set up the root logger from the environment (`default` when it says nothing: INFO for
    the service, WARNING for one-off commands); the level set. An unknown level or format is
    said on standard error and the default kept."""
    environ = os.environ if environ is None else environ
    level = (environ.get(LEVEL_VARIABLE) or default).upper()
    if level not in LEVELS:
        print(f"warning: {LEVEL_VARIABLE}={level} is not one of {', '.join(LEVELS)}; using {default}",
              file=sys.stderr)
        level = default
    shape = (environ.get(FORMAT_VARIABLE) or "text").lower()
    if shape not in ("text", "json"):
        print(f"warning: {FORMAT_VARIABLE}={shape} is not text or json; using text", file=sys.stderr)
        shape = "text"
    handler = _StandardError(sys.stderr)
    handler.setFormatter(JsonFormatter() if shape == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_deskbase", False)]:
        root.removeHandler(old)
    handler._deskbase = True
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.error", "uvicorn.access"):      # served through the root handler, once
        logger = logging.getLogger(noisy)
        logger.handlers.clear()
        logger.propagate = True
    for chatty in ("ZODB", "txn", "relstorage", "fontTools", "weasyprint", "ldap3"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return level
