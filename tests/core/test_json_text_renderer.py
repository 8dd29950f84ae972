"""JSON text from the database (core.renderers.JSONText) goes into an API body as it is."""

from __future__ import annotations

import json

from core.renderers import JSONText, JSONTextRenderer


def test_json_text_is_written_as_it_is_and_the_rest_encoded_as_usual():
    body = JSONTextRenderer().render(
        {"code": 'A "lot"', "cells": JSONText('["C-1","C-2"]'), "children": ["S-1"]}
    )
    assert body == b'{"code":"A \\"lot\\"","cells":["C-1","C-2"],"children":["S-1"]}'


def test_a_body_without_json_text_renders_as_drfs_own():
    data = {"cells": ["C-1"], "json-text": "json-text-0"}
    assert json.loads(JSONTextRenderer().render(data)) == data
    assert JSONTextRenderer().render([1, 2]) == b"[1,2]"
