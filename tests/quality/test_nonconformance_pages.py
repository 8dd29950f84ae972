"""The NCR pages: the list with its filters and overdue actions, opening one from a hold, the
detail page's forms for each role, the lifecycle worked through the forms, pinned query counts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Event
from batches.models import Hold
from batches.services import hold_batch
from lines.models import Line
from quality import nonconformance as ncrs
from quality.models import NonConformance
from tests.quality.ncr_helpers import PASSWORD, open_ncr, walk_to

YEAR = timezone.localdate().year


@pytest.fixture
def batch_hold(proto_batch, line_engineer) -> Hold:
    return hold_batch(proto_batch, by=line_engineer, reason="Cathode overhang on stacker 1")


def test_the_pages_need_a_role(signed_in, line_engineer, outsider):
    ncr = open_ncr(line_engineer)
    for url in (reverse("ncrs"), reverse("ncr", args=[ncr.code]), reverse("ncr-new")):
        anonymous = signed_in(None).get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
        assert signed_in(outsider).get(url).status_code == 403


def test_an_operator_reads_but_gets_no_forms(signed_in, operator, line_engineer):
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    browser = signed_in(operator)
    page = browser.get(reverse("ncr", args=[ncr.code])).content.decode()
    assert ncr.code in page and '<form method="post" action="/ncrs/' not in page
    assert "Closing is signed by a quality engineer." in page
    assert browser.get(reverse("ncr-new")).status_code == 403
    response = browser.post(reverse("ncr-reopen", args=[ncr.code]), {"reason": "no"})
    assert response.status_code == 403


def test_only_quality_sees_the_signature_form(signed_in, line_engineer, quality_engineer):
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    url = reverse("ncr", args=[ncr.code])
    assert 'id="ncr-sign"' not in signed_in(line_engineer).get(url).content.decode()
    assert 'id="ncr-sign"' in signed_in(quality_engineer).get(url).content.decode()


def test_the_list_filters_and_marks_overdue_actions(
    signed_in, line_engineer, quality_engineer, operator
):
    pilot = Line.objects.exclude(code="proto").first()
    on_proto = open_ncr(line_engineer, title="Proto overhang")
    late = walk_to(
        open_ncr(line_engineer, line=pilot, title="Pilot late one"), "actions", by=line_engineer
    )
    late.actions.update(due_date=timezone.localdate() - timedelta(days=2))
    cancelled = walk_to(
        open_ncr(line_engineer, title="Duplicate"),
        "cancelled",
        by=line_engineer,
        signer=quality_engineer,
    )
    browser = signed_in(operator)

    def codes(query: str) -> list[str]:
        page = browser.get(reverse("ncrs") + query).content.decode()
        return [c for c in (on_proto.code, late.code, cancelled.code) if f">{c}</a>" in page]

    assert codes("") == [on_proto.code, late.code]  # active ones by default
    assert codes("?status=all") == [on_proto.code, late.code, cancelled.code]
    assert codes("?status=cancelled") == [cancelled.code]
    assert codes(f"?status=all&line={pilot.code}") == [late.code]
    page = browser.get(reverse("ncrs")).content.decode()
    row = page.split(f">{late.code}</a>")[0].rsplit("<tr", 1)[1]
    assert 'class="oos"' in row
    assert "1 overdue" in page


@pytest.mark.parametrize("count", [3, 30])
def test_the_list_and_detail_run_a_fixed_number_of_queries(
    signed_in, line_engineer, quality_engineer, batch_hold, django_assert_max_num_queries, count
):
    for _ in range(count):
        ncr = walk_to(open_ncr(line_engineer, holds=[batch_hold]), "actions", by=line_engineer)
    for _ in range(count):
        ncrs.add_action(
            ncr,
            kind="preventive",
            description="FMEA",
            owner=quality_engineer,
            due_date=date(2027, 1, 1),
            by=line_engineer,
        )
    browser = signed_in(quality_engineer)
    with django_assert_max_num_queries(10):
        assert browser.get(reverse("ncrs")).status_code == 200
    # Session, user, permissions, header (lines, roles, backlog); the NCR with its people, its
    # holds, its actions, its trail; the open holds, owners and lines its forms offer.
    with django_assert_max_num_queries(14):
        assert browser.get(reverse("ncr", args=[ncr.code])).status_code == 200


def test_an_unknown_ncr_is_404(signed_in, operator, plant):
    assert signed_in(operator).get(reverse("ncr", args=["NCR-1999-0001"])).status_code == 404


def test_the_holds_queue_links_to_opening_an_ncr_from_the_hold(
    signed_in, line_engineer, operator, batch_hold
):
    link = f"{reverse('ncr-new')}?hold={batch_hold.pk}"
    assert link in signed_in(line_engineer).get(reverse("holds")).content.decode()
    assert link not in signed_in(operator).get(reverse("holds")).content.decode()


def test_opening_from_a_hold_fills_the_form_and_covers_the_hold(
    signed_in, line_engineer, proto_batch, batch_hold
):
    browser = signed_in(line_engineer)
    form = browser.get(reverse("ncr-new"), {"hold": batch_hold.pk}).content.decode()
    assert f'value="Batch {proto_batch.code}: Cathode overhang on stacker 1"' in form
    assert '<option value="proto" selected>' in form
    response = browser.post(
        reverse("ncr-new"),
        {
            "title": "Overhang on batch",
            "description": "Cathode overhang on stacker 1",
            "line": "proto",
            "step": "stacking",
            "hold": batch_hold.pk,
        },
    )
    ncr = NonConformance.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("ncr", args=[ncr.code])
    assert ncr.code == f"NCR-{YEAR}-0001" and ncr.opened_from == batch_hold
    assert list(ncr.holds.all()) == [batch_hold]


def test_opening_without_a_title_writes_nothing(signed_in, line_engineer, plant):
    response = signed_in(line_engineer).post(
        reverse("ncr-new"), {"title": "", "description": "x", "line": "proto"}
    )
    assert response.status_code == 200 and "title: This field is required." in (
        response.content.decode()
    )
    assert not NonConformance.objects.exists()


def test_the_lifecycle_through_the_forms(signed_in, line_engineer, quality_engineer, batch_hold):
    lena, quinn = signed_in(line_engineer), signed_in(quality_engineer)
    ncr = open_ncr(line_engineer, holds=[batch_hold])
    code = ncr.code

    def post(browser, name, data, *args):
        response = browser.post(reverse(name, args=[code, *args]), data, follow=True)
        assert response.status_code == 200
        return response.content.decode()

    post(lena, "ncr-containment", {"containment": "Batch held"})
    post(lena, "ncr-root-cause", {"category": "machine", "five_whys": "Worn pad"})
    post(
        lena,
        "ncr-action-add",
        {"kind": "corrective", "description": "New pad", "owner": "lena-line-engineer",
         "due_date": "2026-12-10"},
    )  # fmt: skip
    action = NonConformance.objects.get(code=code).actions.get()
    post(lena, "ncr-action-done", {"note": "fitted"}, action.pk)
    post(lena, "ncr-verify", {"verification": "No overhang on 200 cells"})
    page = post(quinn, "ncr-close", {"password": "wrong", "meaning": "Approved"})
    assert "The password does not match" in page
    assert NonConformance.objects.get(code=code).status == "verification"
    page = post(quinn, "ncr-close", {"password": PASSWORD, "meaning": "Approved: effective"})
    ncr = NonConformance.objects.get(code=code)
    assert ncr.status == "closed" and ncr.signed_by == quality_engineer
    assert "Signed <b>“Approved: effective”</b>" in page
    assert list(
        Event.objects.filter(subject=code).order_by("id").values_list("verb", flat=True)
    ) == [
        "ncr_opened",
        "ncr_contained",
        "ncr_analysed",
        "ncr_action_added",
        "ncr_action_done",
        "ncr_verification",
        "ncr_closed",
    ]


def test_a_refused_step_is_flashed_and_writes_nothing(signed_in, line_engineer):
    ncr = open_ncr(line_engineer)
    events = Event.objects.count()
    page = (
        signed_in(line_engineer)
        .post(reverse("ncr-verify", args=[ncr.code]), {"verification": "fine"}, follow=True)
        .content.decode()
    )
    assert "cannot go from open to verification" in page
    assert Event.objects.count() == events


def test_holds_join_and_leave_through_the_page(signed_in, line_engineer, batch_hold):
    ncr = open_ncr(line_engineer)
    browser = signed_in(line_engineer)
    browser.post(reverse("ncr-hold-add", args=[ncr.code]), {"hold": batch_hold.pk})
    assert list(ncr.holds.all()) == [batch_hold]
    page = browser.get(reverse("ncr", args=[ncr.code])).content.decode()
    assert reverse("ncr-hold-remove", args=[ncr.code, batch_hold.pk]) in page
    browser.post(reverse("ncr-hold-remove", args=[ncr.code, batch_hold.pk]), {"note": "wrong"})
    assert not ncr.holds.exists()


def test_a_correction_through_the_page(signed_in, line_engineer, operator):
    ncr = open_ncr(line_engineer)
    url = reverse("ncr", args=[ncr.code])
    assert 'id="ncr-edit"' not in signed_in(operator).get(url).content.decode()
    browser = signed_in(line_engineer)
    assert 'id="ncr-edit"' in browser.get(url).content.decode()
    browser.post(
        reverse("ncr-edit", args=[ncr.code]),
        {"title": "Overhang", "description": "0.5 mm", "line": "proto", "step": "pressing"},
    )
    ncr.refresh_from_db()
    assert (ncr.title, ncr.description, ncr.step) == ("Overhang", "0.5 mm", "pressing")
