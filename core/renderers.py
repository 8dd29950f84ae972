"""Faster JSON for the big replies: JSON already encoded, written into a response as it is, and
plain data encoded by msgspec."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import msgspec
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class FastJSONEncoder(JSONEncoder):
    """DRF's encoder with msgspec doing the work: a chart's 20,000 points are encoded in a few
    milliseconds where the standard library takes some thirty. What msgspec does not know (lazy
    translations) goes through DRF's `default`; decimals are numbers, as DRF writes them. For
    `json.dumps(cls=...)`, which DRF's renderer and Django's json_script call."""

    def encode(self, o: Any) -> str:
        encoder = msgspec.json.Encoder(enc_hook=self.default, decimal_format="number")
        return encoder.encode(o).decode()


class FastJSONRenderer(JSONRenderer):
    encoder_class = FastJSONEncoder


class JSONText(str):
    """A value that is JSON text already (encoded by the database), not a string to encode."""


class JSONTextRenderer(JSONRenderer):
    """DRF's JSON renderer, which writes each JSONText value at the top level of a body as the
    JSON it is: a lot's 100,000 serials come from PostgreSQL as one JSON array, where encoding
    them one string at a time would take longer than reading them."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        if not isinstance(data, dict) or not any(isinstance(v, JSONText) for v in data.values()):
            return super().render(data, accepted_media_type, renderer_context)
        # Each one stands in as a string no data can hold, then the string is replaced.
        texts: dict[bytes, bytes] = {}
        standing_in = dict(data)
        for key, value in data.items():
            if isinstance(value, JSONText):
                mark = f"json-text-{uuid4().hex}"
                texts[json.dumps(mark).encode()] = value.encode()
                standing_in[key] = mark
        body = super().render(standing_in, accepted_media_type, renderer_context)
        for mark, text in texts.items():
            body = body.replace(mark, text, 1)
        return body
