"""JSON text from the database (core.renderers.JSONText) goes into an API body as it is; the fast
encoder writes what DRF's and Django's would."""

from __future__ import annotations

import json
from decimal import Decimal

from django.utils.html import json_script
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from core.renderers import FastJSONEncoder, FastJSONRenderer, JSONText, JSONTextRenderer


def test_json_text_is_written_as_it_is_and_the_rest_encoded_as_usual():
    body = JSONTextRenderer().render(
        {"code": 'A "lot"', "cells": JSONText('["C-1","C-2"]'), "children": ["S-1"]}
    )
    assert body == b'{"code":"A \\"lot\\"","cells":["C-1","C-2"],"children":["S-1"]}'


def test_a_body_without_json_text_renders_as_drfs_own():
    data = {"cells": ["C-1"], "json-text": "json-text-0"}
    assert json.loads(JSONTextRenderer().render(data)) == data
    assert JSONTextRenderer().render([1, 2]) == b"[1,2]"


def test_the_fast_renderer_writes_what_drfs_does():
    data = {
        "points": [{"value": 1.5, "cell": "YOK-1", "signals": [1, 5]}] * 3,
        "unit": "µm",
        "note": gettext_lazy("none"),
        "price": Decimal("1.25"),
        "empty": None,
    }
    fast = FastJSONRenderer().render(data)
    assert json.loads(fast) == json.loads(JSONRenderer().render(data))
    assert "µm".encode() in fast  # UTF-8, as DRF's (UNICODE_JSON), not \u escapes


def test_a_page_script_from_the_fast_encoder_is_escaped_as_djangos():
    data = {"cell": "</script><script>alert(1)</script>", "at": "2026-12-01T00:00:00+00:00"}
    script = json_script(data, "spc-data", encoder=FastJSONEncoder)
    opening = '<script id="spc-data" type="application/json">'
    assert script.startswith(opening) and script.endswith("</script>")
    inside = script[len(opening) : -len("</script>")]
    assert "<" not in inside and json.loads(inside) == data
