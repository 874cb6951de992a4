"""How ``django-db`` encodes its columns: upstream's text encoding, with JSON fast paths.

Every column holds text: binary payloads are base64. With kombu's own JSON serializer the
standard library's C encoder and decoder do the work where they give the same text, so a
task write and a poll skip kombu's registry lookups.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from celery.utils.serialization import b64decode, b64encode
from kombu.exceptions import DecodeError
from kombu.serialization import registry
from kombu.utils.json import dumps as json_dumps
from kombu.utils.json import loads as json_loads

#: The meta of a task that has no children and injected nothing: most tasks.
EMPTY_META: dict[str, Any] = {"children": []}


class ContentEncoding:
    """The encoding methods of :class:`~.database.DatabaseBackend` (a Celery backend).

    Needs the backend's ``serializer``, ``content_type``, ``content_encoding``, ``accept``,
    ``_encode`` and ``decode``, and a ``_encoded_constants`` dict.
    """

    serializer: str
    content_type: str
    content_encoding: str
    accept: Any
    _encoded_constants: dict[tuple[str, str], str]
    # Celery's Backend provides these (it ships no type information).
    _encode: Any
    decode: Any

    def encode_content(self, data: Any) -> tuple[str, str, str]:
        """Serialize ``data``; binary payloads are base64 so every column holds text."""
        if self._plain_json:
            # What kombu's JSON encoder writes for every value the standard library's C
            # encoder takes (its own hook only serves the types that one refuses).
            try:
                return self.content_type, self.content_encoding, json.dumps(data)
            except (TypeError, ValueError):
                pass  # datetimes, UUIDs, bytes…: kombu's encoder knows them
        content_type, content_encoding, content = self._encode(data)
        if content_encoding == "binary":
            content = b64encode(content)
        return content_type, content_encoding, content

    def _encode_value(self, value: Any) -> str:
        """Encode a task's args or kwargs column (usually a ``str``: Celery's repr of them).

        JSON of a ``str`` is the same text whichever encoder writes it, so with kombu's
        JSON serializer the standard library's C encoder does it without the registry.
        """
        if isinstance(value, str) and self._json_loads is not None:
            return json.dumps(value)
        return self.encode_content(value)[2]

    def _encode_meta(self, meta: dict[str, Any]) -> str:
        """Encode a task's meta; the usual one (no children, nothing injected) once only."""
        if meta != EMPTY_META:
            return self.encode_content(meta)[2]
        key = (self.serializer, "meta")
        encoded = self._encoded_constants.get(key)
        if encoded is None:
            encoded = self._encoded_constants[key] = self.encode_content(EMPTY_META)[2]
        return encoded

    def decode_content(self, obj: Any, content: str | None) -> Any:
        """Deserialize a column of ``obj`` written by :meth:`encode_content`."""
        return self.decode_column(obj.content_encoding, content)

    def decode_column(self, content_encoding: str | None, content: str | None) -> Any:
        """Deserialize a column written by :meth:`encode_content` with ``content_encoding``."""
        if content:
            if content_encoding == "binary":
                content = b64decode(content)
            elif self._json_loads is not None:
                # What kombu's registry would call for JSON, without its lookups: a poll
                # decodes four columns. Kombu's object hook only revives {"__type__": …}
                # dicts; text that cannot hold one (no marker, no escapes that could spell
                # it) decodes the same with the standard library's shared decoder.
                try:
                    plain = isinstance(content, str) and "__type__" not in content
                    if plain and "\\u" not in content:
                        return json.loads(content)
                    return self._json_loads(content)
                except ValueError as exc:
                    raise DecodeError(exc) from exc
            return self.decode(content)
        return None

    @cached_property
    def _plain_json(self) -> bool:
        """Return True when the backend serializes with kombu's own JSON encoder."""
        encoder = getattr(registry, "_encoders", {}).get(self.serializer)
        return (
            encoder is not None
            and encoder[0] == "application/json"
            and encoder[2] is json_dumps
            and self.content_type == "application/json"
        )

    @cached_property
    def _json_loads(self) -> Any:
        """Return kombu's JSON decoder when the backend decodes JSON with it, else None."""
        codec = getattr(registry, "_decoders", {}).get(self.content_type)
        if self.content_type == "application/json" and self.content_type in self.accept:
            return codec if codec is json_loads else None
        return None
