"""``ContentEncoding``: upstream's column text, with the standard library's JSON where equal."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from celery import Celery
from kombu.exceptions import DecodeError

VALUES = [
    None,
    1,
    "text",
    {"a": [1, 2.5, None, True]},
    ["é", "\u2603"],
    {"__type__": "not-kombu's"},
    datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
]


def backend(serializer: str = "json") -> Any:
    app = Celery("encoding", set_as_current=False)
    app.conf.update(
        result_backend="django-db",
        result_serializer=serializer,
        result_accept_content=["json", "pickle"],
    )
    return app.backend


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_json_round_trips_as_kombu_writes_it(value: Any) -> None:
    ours = backend()
    content_type, encoding, text = ours.encode_content(value)
    assert (content_type, encoding) == ("application/json", "utf-8")
    # The fast path writes what kombu's own serializer writes.
    assert text == ours._encode(value)[2]
    assert ours.decode_column(encoding, text) == value


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_pickle_is_stored_as_base64_text(value: Any) -> None:
    ours = backend("pickle")
    _, encoding, text = ours.encode_content(value)
    assert encoding == "binary"
    assert isinstance(text, str)
    assert ours.decode_column(encoding, text) == value


def test_the_usual_meta_is_encoded_once() -> None:
    ours = backend()
    first = ours._encode_meta({"children": []})
    assert ours._encode_meta({"children": []}) is first
    assert ours._encode_meta({"children": [], "progress": 1}) == '{"children": [], "progress": 1}'


def test_broken_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        backend().decode_column("utf-8", '{"unterminated": ')


def test_an_empty_column_decodes_to_none() -> None:
    assert backend().decode_column("utf-8", None) is None
    assert backend().decode_column("utf-8", "") is None
