"""Every dashboard page renders for a signed-in person, sends an anonymous visitor to sign in,
and refuses a signed-in outsider (no role) with 403."""

from __future__ import annotations

import pytest
from django.urls import reverse

from batches.models import Hold


@pytest.fixture
def pages(worked_batch) -> list[str]:
    batch = worked_batch(10)
    pressed = batch.cells.filter(runs__curves__isnull=False).first()
    hold = Hold.objects.filter(batch=batch).first()
    return [
        reverse("home"),
        reverse("home-lines"),
        reverse("line", args=["proto"]),
        reverse("line", args=["yokohama"]),
        reverse("line-stations", args=["proto"]),
        reverse("line-batches", args=["proto"]),
        reverse("line-holds", args=["proto"]),
        reverse("recipes"),
        reverse("recipes") + "?line=proto",
        reverse("batches"),
        reverse("batches") + "?line=proto&status=in_progress",
        reverse("batch", args=[batch.code]),
        reverse("batch", args=[batch.code]) + "?status=on_hold&step=pressing&page=2",
        reverse("batch-history", args=[batch.code]),
        reverse("batch-labels", args=[batch.code]),
        reverse("cell", args=[pressed.serial]),
        reverse("lots"),
        reverse("lots") + "?role=cathode&status=released",
        reverse("lot", args=["CAT-2611-A-01"]),
        reverse("holds"),
        reverse("holds") + f"?status=closed&x={hold.pk}",
        reverse("search") + "?q=PROTO-T",
        reverse("unapplied-results"),
        reverse("hold-rules"),
        reverse("unapplied-results") + "?state=pending&line=proto&station=PR-STK-1&reason=waiting",
    ]


@pytest.mark.parametrize("persona", ["operator", "line_engineer", "quality_engineer"])
def test_every_page_renders_for_each_role(pages, signed_in, persona, request):
    client = signed_in(request.getfixturevalue(persona))
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url


def test_every_page_sends_an_anonymous_visitor_to_sign_in(pages, signed_in):
    client = signed_in(None)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url


def test_every_page_refuses_an_outsider_without_a_role(pages, signed_in, outsider):
    client = signed_in(outsider)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"Not allowed" in response.content


def test_sign_in_page_renders_and_signs_in(plant, signed_in, line_engineer):
    client = signed_in(None)
    assert client.get(reverse("login")).status_code == 200
    response = client.post(
        reverse("login"),
        {"username": line_engineer.username, "password": "a-long-test-password"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("home")).status_code == 200


def test_unknown_line_batch_cell_and_lot_are_404(plant, signed_in, operator):
    client = signed_in(operator)
    for url in (
        reverse("line", args=["nowhere"]),
        reverse("batch", args=["NO-SUCH-BATCH"]),
        reverse("cell", args=["NO-SUCH-CELL"]),
        reverse("lot", args=["NO-SUCH-LOT"]),
        reverse("batch-labels", args=["NO-SUCH-BATCH"]),
        reverse("batch-history", args=["NO-SUCH-BATCH"]),
    ):
        assert client.get(url).status_code == 404, url
