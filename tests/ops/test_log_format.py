"""The log formats themselves: JSON off a terminal, readable on one, fields from ``extra=``."""

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from servicekit.logs import (
    JsonFormatter,
    StderrHandler,
    TextFormatter,
    configure_logging,
    request_id_var,
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def access_record() -> logging.LogRecord:
    record = logging.LogRecord(
        "riffle.access", logging.INFO, __file__, 1, "%s %s %s", ("GET", "/record", 200), None
    )
    for key, value in {
        "method": "GET",
        "route": "/record",
        "status": 200,
        "duration_ms": 1.5,
    }.items():
        setattr(record, key, value)
    return record


@pytest.fixture
def request_id() -> Iterator[str]:
    token = request_id_var.set("req-42")
    yield "req-42"
    request_id_var.reset(token)


def test_json_lines_carry_the_message_the_extra_fields_and_the_request_id(request_id: str) -> None:
    line = json.loads(JsonFormatter().format(access_record()))
    assert line["message"] == "GET /record 200"
    assert line["logger"] == "riffle.access"
    assert line["level"] == "INFO"
    assert (line["route"], line["status"], line["duration_ms"]) == ("/record", 200, 1.5)
    assert line["request_id"] == request_id


def test_json_lines_hold_the_stack_of_an_exception_in_one_field() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    formatted = JsonFormatter().format(record)
    assert "\n" not in formatted  # one line, whatever the stack
    assert "RuntimeError: boom" in json.loads(formatted)["exception"]


def test_text_lines_read_as_one_sentence_with_the_remaining_fields(request_id: str) -> None:
    line = TextFormatter().format(access_record())
    assert "INFO    riffle.access: GET /record 200  duration_ms=1.5 request_id=req-42" in line


@pytest.mark.parametrize(
    ("stream", "formatter"), [(io.StringIO, JsonFormatter), (Terminal, TextFormatter)]
)
def test_configure_logging_picks_the_format_by_terminal_and_silences_uvicorn_access(
    monkeypatch: pytest.MonkeyPatch, stream: type[io.StringIO], formatter: type[logging.Formatter]
) -> None:
    monkeypatch.setattr("sys.stderr", stream())
    configure_logging()
    configure_logging()  # idempotent: still one handler
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, StderrHandler)]
    assert len(handlers) == 1
    assert isinstance(handlers[0].formatter, formatter)
    assert logging.getLogger("uvicorn.access").disabled
