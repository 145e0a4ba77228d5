"""Logging: JSON lines when stderr is not a terminal, readable lines when it is.

Every line written while a request is handled carries its request id (``request_id_var``, set by
``servicekit.middleware.RequestIdMiddleware``).
"""

import json
import logging
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is a field.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI-coloured copy
)
# The access line's message reads "GET /record 201": a terminal need not see these twice.
_SAID_IN_THE_ACCESS_MESSAGE = frozenset({"method", "route", "status"})


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of ``record``: ``extra=`` values plus the request id, if any."""
    fields = {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}
    request_id = request_id_var.get()
    if request_id != "-":
        fields.setdefault("request_id", request_id)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger: message key=value …`` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={value}"
            for key, value in fields_of(record).items()
            if key not in _SAID_IN_THE_ACCESS_MESSAGE
        )
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(level: int = logging.INFO, *, quiet: Iterable[str] = ()) -> None:
    """Send every logger, uvicorn's included, through one stderr handler; idempotent.

    uvicorn's own access log is switched off: it prints the raw query string, where a token may be.
    The ``quiet`` loggers are turned down to warnings.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(TextFormatter() if sys.stderr.isatty() else JsonFormatter())
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
