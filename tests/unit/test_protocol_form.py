"""Form adapter: what the standard library's logging.handlers.HTTPHandler really posts."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.problems import ItemError
from ingest.protocols import form
from ingest.protocols.records import Decoded, ProtocolError

CONTENT_TYPE = "application/x-www-form-urlencoded"


def posted(record: logging.LogRecord) -> bytes:
    """The body HTTPHandler.emit sends for ``record`` (its own mapLogRecord, urlencode, UTF-8)."""
    handler = logging.handlers.HTTPHandler("localhost:9", "/ingest", method="POST")
    return urllib.parse.urlencode(handler.mapLogRecord(record)).encode("utf-8")


def make_record(
    msg: Any, *args: Any, level: int = logging.WARNING, exc_info: Any = None, **kwargs: Any
) -> logging.LogRecord:
    record = logging.getLogger("shop.payments").makeRecord(
        "shop.payments", level, "/srv/shop/payments.py", 42, msg, args, exc_info, func="charge", **kwargs
    )
    record.created = 1_700_000_000.123456
    return record


def test_a_plain_record_maps_text_level_time_and_source_attributes() -> None:
    # GIVEN a record as logger.warning("card declined for ana@example.com ✓") makes it
    record = make_record("card declined for ana@example.com ✓")

    # WHEN HTTPHandler's body is decoded
    decoded = form.decode(posted(record), CONTENT_TYPE)

    # THEN it is one log with the record's fields
    (log,) = decoded.records
    assert decoded.errors == []
    assert log.kind == "log"
    assert log.timestamp == "2023-11-14T22:13:20.123456Z"
    assert log.body["text"] == "card declined for ana@example.com ✓"
    assert log.body["level"] == "WARNING"
    attributes = log.body["attributes"]
    assert attributes["name"] == "shop.payments"
    assert attributes["pathname"] == "/srv/shop/payments.py"
    assert attributes["filename"] == "payments.py"
    assert attributes["module"] == "payments"
    assert attributes["funcName"] == "charge"
    assert attributes["lineno"] == 42
    assert attributes["levelno"] == logging.WARNING
    assert attributes["process"] == record.process
    assert attributes["thread"] == record.thread
    assert attributes["threadName"] == record.threadName
    assert attributes["processName"] == record.processName
    for dropped in (
        "args",
        "exc_info",
        "exc_text",
        "stack_info",
        "msecs",
        "relativeCreated",
        "msg",
        "created",
    ):
        assert dropped not in attributes
    if sys.version_info >= (3, 12):
        assert "taskName" not in attributes  # str(None) outside asyncio


def test_args_are_formatted_into_the_message_and_the_template_is_kept() -> None:
    record = make_record("user %s paid %.2f EUR (%d items) %r", "ana", 12.5, 3, ["a", 1])

    (log,) = form.decode(posted(record), CONTENT_TYPE).records

    assert log.body["text"] == record.getMessage() == "user ana paid 12.50 EUR (3 items) ['a', 1]"
    assert log.body["attributes"]["msg"] == "user %s paid %.2f EUR (%d items) %r"


def test_mapping_args_are_formatted() -> None:
    record = make_record("%(user)s paid %(amount)d", {"user": "ana", "amount": 7})

    (log,) = form.decode(posted(record), CONTENT_TYPE).records

    assert log.body["text"] == "ana paid 7"


def test_a_message_formatted_by_another_handler_wins() -> None:
    record = make_record("user %s", "ana")
    logging.Formatter("%(asctime)s %(message)s").format(record)  # what a console handler before it does

    (log,) = form.decode(posted(record), CONTENT_TYPE).records

    assert log.body["text"] == "user ana"
    assert "asctime" not in log.body["attributes"]


class Opaque:
    pass


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        ("object %s", (Opaque(),)),  # args is a repr literal_eval cannot read
        ("wrong count %s %s", ("one",)),
        ("wrong type %d", ("text",)),
        ("huge width %2000000000s", ("x",)),
        ("star width %*d", (5, 1)),
        ("no conversions", ("extra",)),
    ],
)
def test_args_that_cannot_be_formatted_safely_leave_msg_as_the_text(msg: str, args: tuple[Any, ...]) -> None:
    (log,) = form.decode(posted(make_record(msg, *args)), CONTENT_TYPE).records

    assert log.body["text"] == msg
    assert "args" not in log.body["attributes"]


def test_exception_text_and_stack_info_are_kept_but_not_exc_info() -> None:
    try:
        raise ValueError("bad amount")
    except ValueError:
        record = make_record(
            "charge failed", exc_info=sys.exc_info(), sinfo="Stack (most recent call last):\n  x"
        )
    logging.Formatter().format(record)  # sets exc_text, as a handler before HTTPHandler would

    (log,) = form.decode(posted(record), CONTENT_TYPE).records

    assert "ValueError: bad amount" in log.body["attributes"]["exc_text"]
    assert log.body["attributes"]["stack_info"].startswith("Stack (most recent call last)")
    assert "exc_info" not in log.body["attributes"]


def test_extra_fields_are_kept_as_text_but_object_reprs_are_not() -> None:
    record = make_record("checkout", extra={"request_id": "r-123", "attempt": 2, "client": Opaque()})

    (log,) = form.decode(posted(record), CONTENT_TYPE).records

    assert log.body["attributes"]["request_id"] == "r-123"
    assert log.body["attributes"]["attempt"] == "2"
    assert "client" not in log.body["attributes"]


def test_a_form_without_msg_is_refused_as_an_item() -> None:
    assert form.decode(b"levelname=INFO&name=x", CONTENT_TYPE) == Decoded(
        errors=[ItemError(0, "missing-text", "a logging form needs a 'msg' or 'message' field")]
    )


def test_content_type_parameters_are_allowed() -> None:
    assert form.decode(b"msg=hi", "application/x-www-form-urlencoded; charset=utf-8").records[0].body == {
        "text": "hi"
    }


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"msg=hi", "application/json", 415, "unsupported-media-type"),
        (b"msg=hi", None, 415, "unsupported-media-type"),
        (b"", CONTENT_TYPE, 400, "empty-body"),
        ("msg=é".encode(), CONTENT_TYPE, 400, "invalid-form"),
        (b"&".join(b"f%d=1" % i for i in range(1200)), CONTENT_TYPE, 400, "invalid-form"),
    ],
)
def test_bodies_that_are_not_forms_are_refused(
    body: bytes, content_type: str | None, status: int, code: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        form.decode(body, content_type)

    assert (caught.value.status, caught.value.code) == (status, code)


@pytest.mark.parametrize("created", ["soon", "nan", "1e400", "-5", ""])
def test_an_unreadable_created_leaves_the_time_to_the_service(created: str) -> None:
    body = urllib.parse.urlencode({"msg": "x", "created": created}).encode()

    assert form.decode(body, CONTENT_TYPE).records[0].timestamp is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=300)
    | st.dictionaries(
        st.sampled_from(["msg", "args", "message", "created", "lineno", "levelname", "x"]),
        st.text(max_size=40),
    ).map(lambda d: urllib.parse.urlencode(d).encode())
)
def test_any_body_decodes_or_is_refused_with_a_4xx(body: bytes) -> None:
    try:
        form.decode(body, CONTENT_TYPE)
    except ProtocolError as refused:
        status = refused.status
    else:
        status = 200
    assert status == 200 or 400 <= status < 500


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(msg=st.text(alphabet="%sdr()x.*0123456789 -#", max_size=20), args=st.text(max_size=40))
def test_any_msg_and_args_give_a_text(msg: str, args: str) -> None:
    body = urllib.parse.urlencode({"msg": msg, "args": args}).encode()

    (log,) = form.decode(body, CONTENT_TYPE).records

    assert isinstance(log.body["text"], str)
