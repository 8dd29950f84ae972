"""List pages, their live fragments and list endpoints run a fixed number of queries, the same
for a batch of 10 cells and one of 200 (no N+1: counts aggregate, relations join or prefetch)."""

from __future__ import annotations

import pytest
from django.urls import reverse

# One bound per page: sign-in session and user, permissions, the header's lines, roles and
# whether the workers keep up (ingestion backlog), then the page's own selectors. A page that grew an N+1 would need far more for 200 cells.
PAGES = {
    # Home includes each line's cost over its recent batches: five queries for all lines together.
    "home": (lambda batch, cell: reverse("home"), 17),
    "home live": (lambda batch, cell: reverse("home-lines"), 14),
    # The line view includes the cost trend: five more queries, whatever the batches hold; and
    # its dry rooms' current dew points: two. Its stations, batches and holds are the live
    # fragments below, which the page fetches as it loads.
    "line": (lambda batch, cell: reverse("line", args=["proto"]), 11),
    "line zones live": (lambda batch, cell: reverse("line-zones", args=["proto"]), 9),
    # The zone, its excursions, their holds of cells and of lots, the readings downsampled.
    "zone": (lambda batch, cell: reverse("zone", args=["proto-dry-room"]), 13),
    # The station cards' OEE of today: calendars, days off, states in force and in the day,
    # results, ideal cycle times (analytics.oee.read_window), whatever the number of stations.
    # The cells held at each step are counted by a query of their own (a join of the held
    # cells, not a question per cell).
    "line stations live": (lambda batch, cell: reverse("line-stations", args=["proto"]), 17),
    "line batches live": (lambda batch, cell: reverse("line-batches", args=["proto"]), 12),
    "line holds live": (lambda batch, cell: reverse("line-holds", args=["proto"]), 9),
    "batches": (lambda batch, cell: reverse("batches"), 11),
    # With the energy spread (two queries) and the curves overlay (one; two with curves drawn).
    # The first view computes the batch's figures and stores them under its lock (nine more);
    # the next (filtered) reads them back. Its open holds, in full: one query.
    "batch": (lambda batch, cell: reverse("batch", args=[batch.code]), 30),
    "batch filtered": (
        lambda batch, cell: reverse("batch", args=[batch.code]) + "?status=on_hold&step=pressing",
        21,
    ),
    # Its holds' times (the timeline shows all their events), the newest in full, the events.
    "batch history": (lambda batch, cell: reverse("batch-history", args=[batch.code]), 9),
    "labels": (lambda batch, cell: reverse("batch-labels", args=[batch.code]), 11),
    "cell": (lambda batch, cell: reverse("cell", args=[cell.serial]), 18),
    "lots": (lambda batch, cell: reverse("lots"), 11),
    # The counts of the cells below it, then those held (a join of the held, not one per cell).
    "lot": (lambda batch, cell: reverse("lot", args=["CAT-2611-A-01"]), 17),
    "holds": (lambda batch, cell: reverse("holds"), 11),
    "recipes": (lambda batch, cell: reverse("recipes"), 14),
    # Cells, batches, lots and press cycles, each one query.
    "search": (
        lambda batch, cell: reverse("search") + "?q=PROTO-T",
        15,
    ),  # cells, batches, lots, press cycles, event ids
    "station results not applied": (lambda batch, cell: reverse("unapplied-results"), 11),
    "hold rules": (lambda batch, cell: reverse("hold-rules"), 9),
}

ENDPOINTS = {
    # Each line's dry-room zones with their stations' codes: one query.
    "lines": (lambda batch: "/api/v1/lines", 10),
    "batches": (lambda batch: "/api/v1/batches", 6),
    "batch": (lambda batch: f"/api/v1/batches/{batch.code}", 7),
    "lots": (lambda batch: "/api/v1/lots", 6),
    # The lot, the lots cut from it and every cell below it (one query through the lot tree).
    "lot": (lambda batch: "/api/v1/lots/CAT-2611-A-01", 7),
    "holds": (lambda batch: "/api/v1/holds", 6),
    # With every lot above the consumed ones (one query through the lot tree).
    "cell": (lambda batch: f"/api/v1/cells/{batch.code}-0003", 9),
    "station results not applied": (lambda batch: "/api/v1/station-results", 5),
}


# One batch per size for all pages and endpoints: building 200 worked cells takes seconds.
@pytest.mark.parametrize("cells", [10, 200])
def test_pages_and_endpoints_run_the_same_queries_for_10_or_200_cells(
    worked_batch, signed_in, api_as, quality_engineer, django_assert_max_num_queries, cells
):
    batch = worked_batch(cells)
    pressed = batch.cells.filter(runs__curves__isnull=False).first()
    browser = signed_in(quality_engineer)
    for page, (url, bound) in PAGES.items():
        with django_assert_max_num_queries(bound, info=f"page {page}"):
            response = browser.get(url(batch, pressed))
        assert response.status_code == 200, page
    api = api_as(quality_engineer)
    for endpoint, (url, bound) in ENDPOINTS.items():
        with django_assert_max_num_queries(bound, info=f"endpoint {endpoint}"):
            response = api.get(url(batch))
        assert response.status_code == 200, endpoint


def test_the_cell_table_shows_a_page_of_cells_not_all_of_them(
    worked_batch, signed_in, quality_engineer
):
    batch = worked_batch(200)
    page = signed_in(quality_engineer).get(reverse("batch", args=[batch.code])).content.decode()
    assert f"{batch.code}-0050" in page and f"{batch.code}-0051" not in page
    assert "Page 1 of 4" in page
