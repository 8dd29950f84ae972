"""What each page answers: the figures, states and links people read off it."""

from __future__ import annotations

import re
from datetime import timedelta

from django.db.models import Max, Min
from django.urls import reverse
from django.utils import timezone

from analytics import selectors as figures
from batches import selectors
from batches.models import Hold, ProcessRun
from batches.services import create_batch, hold_batch, hold_lot, scrap_cell
from lines.models import CellDesign, Line, Route
from lines.selectors import recipe_histories
from lines.services import set_station_state


def test_home_counts_started_failed_and_first_pass_yield_per_line(worked_batch):
    worked_batch(10)
    proto, yokohama = sorted(figures.line_summaries(), key=lambda s: s.line.code)
    assert proto.line.code == "proto"
    assert (proto.today.started, proto.today.failed, proto.today.worked) == (10, 1, 10)
    assert proto.today.first_pass_yield == 0.9
    assert proto.week.started == 10
    assert proto.open_holds == 2  # the batch hold and the out-of-spec cell hold
    assert (yokohama.today.started, yokohama.open_holds) == (0, 0)
    assert yokohama.today.first_pass_yield is None


def test_home_and_station_figures_as_of_a_moment_count_nothing_after_it(worked_batch):
    batch = worked_batch(10)
    times = ProcessRun.objects.filter(cell__batch=batch).aggregate(
        first=Min("finished_at"), last=Max("finished_at")
    )
    before = times["first"] - timedelta(seconds=1)
    proto = next(s for s in figures.line_summaries(now=before) if s.line.code == "proto")
    assert (proto.today.started, proto.today.failed, proto.week.worked) == (0, 0, 0)
    proto = next(s for s in figures.line_summaries(now=times["last"]) if s.line.code == "proto")
    assert (proto.today.started, proto.today.failed, proto.week.worked) == (10, 1, 10)
    stacker = figures.wip_by_station(batch.line, now=before)[0].stations[0]
    assert (stacker.passed_today, stacker.failed_today) == (0, 0)
    stacker = figures.wip_by_station(batch.line, now=times["last"])[0].stations[0]
    assert (stacker.passed_today, stacker.failed_today) == (9, 1)


def test_home_shows_stations_down(plant, stations, signed_in, operator):
    set_station_state(stations["YK-PRS-1"], state="down", by="test", reason="hydraulics")
    summary = next(s for s in figures.line_summaries() if s.line.code == "yokohama")
    assert summary.stations_down == 1
    page = signed_in(operator).get(reverse("home")).content.decode()
    assert "Yokohama pilot line" in page and "Prototype line" in page


def test_the_line_view_shows_each_station_state_queue_and_last_result(
    proto_batch, stations, record, signed_in, operator
):
    cell = proto_batch.cells.get(position=1)
    record(cell, stations["PR-STK-1"])
    set_station_state(stations["PR-PRS-1"], state="maintenance", by="test", reason="seal")
    flow = figures.wip_by_station(proto_batch.line)
    assert [step.kind for step in flow] == ["stacking", "pressing", "formation", "aging"]
    stacking, pressing = flow[0], flow[1]
    assert (stacking.waiting, pressing.waiting) == (9, 1)
    assert stacking.stations[0].last_run.cell == cell
    assert stacking.stations[0].passed_today == 1
    fragment = signed_in(operator).get(reverse("line-stations", args=["proto"])).content.decode()
    assert cell.serial in fragment and "Maintenance" in fragment


def test_each_line_view_counts_only_its_own_line_s_waiting_cells(
    proto_batch, stations, record, line_engineer
):
    record(proto_batch.cells.get(position=1), stations["PR-STK-1"])
    yokohama = Line.objects.get(code="yokohama")
    create_batch(
        line=yokohama,
        design=CellDesign.objects.get(code="SSB-20AH-Y1"),
        route=Route.objects.get(line=yokohama, code="pilot"),
        quantity=7,
        by=line_engineer,
    )
    proto_flow = {step.kind: step.waiting for step in figures.wip_by_station(proto_batch.line)}
    yokohama_flow = {step.kind: step.waiting for step in figures.wip_by_station(yokohama)}
    assert (proto_flow["stacking"], proto_flow["pressing"]) == (9, 1)
    assert (yokohama_flow["stacking"], yokohama_flow["pressing"]) == (7, 0)


def test_the_line_view_loads_its_live_parts_with_htmx_and_refreshes_them(
    plant, signed_in, operator
):
    client = signed_in(operator)
    page = client.get(reverse("line", args=["proto"])).content.decode()
    for part in ("line-stations", "line-batches", "line-holds"):
        url = reverse(part, args=["proto"])
        trigger = r'hx-trigger="load, every \d+s"'
        assert re.search(rf'hx-get="{re.escape(url)}"\s+{trigger}', page), part
        assert client.get(url).status_code == 200, part
    assert "/static/vendor/htmx/htmx.min.js" in page


def test_batch_progress_counts_pass_fail_and_waiting_per_step(worked_batch):
    batch = worked_batch(10)
    progress = selectors.progress_of([selectors.batch_detail(batch.code)])[0]
    stacking, pressing, formation = progress.steps
    # the misaligned cell stays at stacking; cells 3-7 were pressed, 1 and 8-10 wait for it
    assert (stacking.passed, stacking.failed, stacking.waiting) == (9, 1, 1)
    assert (pressing.passed, pressing.waiting) == (5, 4)
    assert formation.waiting == 5
    assert progress.held == 10


def test_batch_progress_counts_cells_completed_scrapped_and_waiting(
    plant, stations, record, line_engineer, quality_engineer
):
    """Cell 1 does the whole route, cell 2 is scrapped after stacking, cells 3 and 4 wait to be
    stacked: finished cells are told apart by their status, the others by their next step."""
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=4,
        by=line_engineer,
    )
    first, second = batch.cells.order_by("position")[:2]
    for code in ("PR-STK-1", "PR-PRS-1", "PR-FRM-1"):
        first.refresh_from_db()
        record(first, stations[code])
    record(second, stations["PR-STK-1"])
    scrap_cell(second, by=quality_engineer, reason="dropped on the floor")
    progress = selectors.progress_of([selectors.batch_detail(batch.code)])[0]
    assert (progress.cells, progress.completed, progress.scrapped) == (4, 1, 1)
    stacking, pressing, formation = progress.steps
    assert (stacking.passed, stacking.waiting, stacking.total) == (2, 2, 4)
    assert (pressing.passed, pressing.waiting, formation.passed, formation.waiting) == (1, 0, 1, 0)


def test_the_line_view_draws_each_batchs_progress_per_step(worked_batch, signed_in, operator):
    worked_batch(10)
    client = signed_in(operator)
    url = reverse("line-batches", args=["proto"])
    page = client.get(url).content.decode()
    # 9 of the 10 cells passed stacking and 1 failed it (then waits to be stacked again).
    assert 'title="Stacking: 9 passed, 1 failed, 1 waiting of 10"' in page
    assert "<span>1. Stacking</span>" in page
    assert '<span class="pass" style="width:90.0%"></span>' in page
    assert '<span class="fail" style="width:10.0%"></span>' in page
    assert '<span class="p">9 pass</span> · <span class="f">1 fail</span> · 1 waiting' in page
    japanese = client.get(url, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "<span>1. 積層</span>" in japanese
    assert '<span class="p">合格 9</span> · <span class="f">不合格 1</span> · 待ち 1' in japanese


def test_the_batch_table_filters_by_status_step_and_grade(worked_batch):
    batch = worked_batch(10)
    assert selectors.batch_cells(batch, status="on_hold").count() == 10
    assert selectors.batch_cells(batch, step="formation").count() == 5
    assert selectors.batch_cells(batch, grade="A").count() == 0
    assert selectors.batch_cells(batch, status="planned").count() == 0


def test_the_batch_timeline_shows_its_events_and_holds(worked_batch, signed_in, operator):
    batch = worked_batch(10)
    client = signed_in(operator)
    page = client.get(reverse("batch", args=[batch.code])).content.decode()
    # The holds and the timeline are a part the page fetches as it loads.
    history = reverse("batch-history", args=[batch.code])
    assert f'hx-get="{history}" hx-trigger="load"' in page and "hold opened" not in page
    part = client.get(history).content.decode()
    assert "batch created" in part and "hold opened" in part
    assert "dew point excursion in dry room 2" in part


def test_the_batch_timeline_writes_reasons_as_text_not_markup(worked_batch, signed_in, operator):
    batch = worked_batch(10)
    hold_batch(batch, by=operator, reason='<script>alert("x")</script> & more')
    page = signed_in(operator).get(reverse("batch-history", args=[batch.code])).content.decode()
    timeline = page[page.index('class="timeline"') :]
    assert "<script>alert" not in timeline
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in timeline
    assert f"by {operator.username}" in timeline and "hold opened" in timeline


def test_the_batch_page_lists_its_newest_holds_and_every_holds_events(
    worked_batch, signed_in, operator, monkeypatch
):
    batch = worked_batch(10)
    holds = list(selectors.holds_of_batch(batch))
    assert len(holds) >= 2
    monkeypatch.setattr(selectors, "HOLDS_SHOWN", 1)
    page = signed_in(operator).get(reverse("batch-history", args=[batch.code])).content.decode()
    assert "The newest 1." in page
    timeline = page[page.index('class="timeline"') :]
    assert timeline.count('class="v-hold_opened"') == len(holds)  # the holds not listed too


def test_the_batch_page_shows_every_open_hold_older_than_the_newest_listed(
    worked_batch, signed_in, quality_engineer
):
    batch = worked_batch(10)
    newest_first = list(selectors.holds_of_batch(batch))
    oldest = newest_first[-1]
    assert len(newest_first) >= 2 and oldest.status == Hold.Status.OPEN
    holds = selectors.batch_holds(batch, shown=1)
    assert [h.pk for h in holds.shown] == [newest_first[0].pk]
    open_holds = selectors.open_holds_of_batch(batch)
    assert [h.pk for h in open_holds] == [h.pk for h in newest_first if h.status == "open"]
    assert oldest.pk in {h.pk for h in open_holds}  # open, though older than the one listed
    page = signed_in(quality_engineer).get(reverse("batch", args=[batch.code])).content.decode()
    for hold in open_holds:  # each with its disposition form on the page itself
        assert reverse("hold-disposition", args=[hold.pk]) in page
    assert sorted(holds.times) == sorted(h.pk for h in newest_first)
    assert holds.times[oldest.pk] == (oldest.opened_at, None)


def test_the_cell_view_marks_out_of_spec_values_and_plots_curves(
    proto_batch, stations, record, signed_in, operator
):
    cell = proto_batch.cells.get(position=1)
    record(cell, stations["PR-STK-1"], material_lots={"cathode": "CAT-2611-A-01"})
    curve = {"pressure": {"t_s": [0, 1, 2], "values": [0, 400, 800], "unit": "MPa"}}
    record(cell, stations["PR-PRS-1"], measurements={"peak_pressure_mpa": 800.0}, curves=curve)
    page = signed_in(operator).get(reverse("cell", args=[cell.serial])).content.decode()
    assert page.count("OUT OF SPEC") == 1
    assert 'href="/lots/CAT-2611-A-01/"' in page
    assert 'data-curve="run-' in page and "/static/vendor/chartjs/chart.umd.min.js" in page
    assert page.index("1. Stacking</span>") < page.index("2. Pressing</span>")


def test_the_lot_view_lists_where_each_cell_is_now(worked_batch, signed_in, line_engineer):
    worked_batch(10)
    lot = selectors.lot_detail("CAT-2611-A-01")
    counts = selectors.lot_consumer_counts(selectors.lot_tree(lot))
    assert counts["total"] == 10 and counts["on_hold"] == 10
    hold_lot(lot, by=line_engineer, reason="moisture")
    assert Hold.objects.get(scope="lot").cells.count() == 10


def test_the_recipe_page_shows_what_changed_between_versions(plant, signed_in, operator):
    history = dict(
        (recipe.station_kind, versions) for recipe, versions in recipe_histories(line="proto")
    )
    latest, first = history["pressing"]
    assert latest.version.version == 2 and first.version.version == 1
    [change] = latest.changes
    assert (change.name, change.fields, change.before["min"], change.after["min"]) == (
        "dwell_s",
        ["min"],
        60.0,
        120.0,
    )
    page = signed_in(operator).get(reverse("recipes")).content.decode()
    assert "<del>60</del> → <ins>120</ins>" in page


def test_search_opens_an_exact_match_and_lists_prefix_matches(proto_batch, signed_in, operator):
    client = signed_in(operator)
    serial = f"{proto_batch.code}-0003"
    assert client.get(reverse("search"), {"q": serial.lower()})["Location"] == reverse(
        "cell", args=[serial]
    )
    assert client.get(reverse("search"), {"q": proto_batch.code})["Location"] == reverse(
        "batch", args=[proto_batch.code]
    )
    assert client.get(reverse("search"), {"q": "SE-2611-01"})["Location"] == reverse(
        "lot", args=["SE-2611-01"]
    )
    page = client.get(reverse("search"), {"q": f"{proto_batch.code}-000"}).content.decode()
    assert page.count('href="/cells/') == 9
    assert "Nothing matches" in client.get(reverse("search"), {"q": "ZZZ"}).content.decode()


def test_search_reads_full_width_input_and_matches_anywhere(
    proto_batch, stations, record, signed_in, operator
):
    client = signed_in(operator)
    serial = f"{proto_batch.code}-0003"
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in serial)
    assert full_width != serial
    assert client.get(reverse("search"), {"q": full_width})["Location"] == reverse(
        "cell", args=[serial]
    )
    # The katakana prolonged sound mark, typed for a dash by a Japanese keyboard.
    assert client.get(reverse("search"), {"q": serial.replace("-", "ー")})["Location"] == (
        reverse("cell", args=[serial])
    )
    page = client.get(reverse("search"), {"q": "0003"}).content.decode()
    assert f'href="{reverse("cell", args=[serial])}"' in page

    cell = proto_batch.cells.get(serial=serial)
    record(cell, stations["PR-STK-1"], event_id="STK-EVT-778899")
    record(cell, stations["PR-PRS-1"], equipment_ref="CIP-LOAD-4711")
    page = client.get(reverse("search"), {"q": "evt-778899"}).content.decode()
    assert "Nothing matches" in page  # event ids are matched whole and as sent
    page = client.get(reverse("search"), {"q": "STK-EVT-778899"}).content.decode()
    assert f'href="{reverse("cell", args=[serial])}"' in page and "PR-STK-1" in page
    page = client.get(reverse("search"), {"q": "load-4711"}).content.decode()
    assert reverse("press-cycle", args=["PR-PRS-1", "CIP-LOAD-4711"]) in page
    assert client.get(reverse("search"), {"q": "cip-load-4711"})["Location"] == reverse(
        "press-cycle", args=["PR-PRS-1", "CIP-LOAD-4711"]
    )


def test_search_finds_a_lot_by_its_supplier_lot(plant, signed_in, operator):
    from batches.models import MaterialLot

    lot = MaterialLot.objects.exclude(supplier_lot="").first()
    if lot is None:
        lot = MaterialLot.objects.first()
        MaterialLot.objects.filter(pk=lot.pk).update(supplier_lot="SUP-ACME-20261")
        lot.refresh_from_db()
    fragment = lot.supplier_lot[2:-1].lower()
    page = signed_in(operator).get(reverse("search"), {"q": fragment}).content.decode()
    assert f'href="{reverse("lot", args=[lot.code])}"' in page


def test_labels_carry_each_serial_in_an_inline_qr_code(proto_batch, signed_in, operator):
    page = (
        signed_in(operator).get(reverse("batch-labels", args=[proto_batch.code])).content.decode()
    )
    assert page.count("<svg") == 10
    assert f"<title>{proto_batch.code}-0007</title>" in page


def test_the_qr_code_decodes_to_the_serial(proto_batch):
    import segno

    from dashboard.templatetags.mes_tags import qr_svg

    serial = f"{proto_batch.code}-0001"
    expected = segno.make(serial, error="m", micro=False).svg_inline(
        scale=3, border=2, title=serial
    )
    assert str(qr_svg(serial)) == expected


def test_the_holds_queue_lists_open_holds_oldest_first_with_rule_or_person(
    worked_batch, signed_in, quality_engineer
):
    worked_batch(10)
    holds = list(selectors.holds_list(status="open"))
    assert [h.scope for h in holds] == ["cell", "batch"]
    assert holds[0].rule is not None and holds[1].opened_by is not None
    page = signed_in(quality_engineer).get(reverse("holds")).content.decode()
    assert "rule <code>out_of_spec</code>" in page and "lena-line-engineer" in page
    assert page.count('hx-post="/holds/') == 2
    # The rule's label as the title of its code, as the hold rules page names it.
    assert '<span title="Out-of-spec result holds the cell">rule <code>out_of_spec</code>' in page


def test_a_hold_names_what_it_stops_linked_to_its_page(db):
    from dashboard.templatetags.mes_tags import hold_scope

    links = {
        ("batch", "B-1"): '<a href="/batches/B-1/" class="mono">B-1</a>',
        ("cell", "B-1-0001"): '<a href="/cells/B-1-0001/" class="mono">B-1-0001</a>',
        ("lot", "AN-1"): '<a href="/lots/AN-1/" class="mono">AN-1</a>',
        ("excursion", "dry-1-X3"): ('<a href="/zones/dry-1/#excursions" class="mono">dry-1-X3</a>'),
        ("press_cycle", "PRS-1/C<7>"): '<span class="mono">PRS-1/C&lt;7&gt;</span>',
    }
    for (scope, target), link in links.items():
        html = hold_scope(Hold(scope=scope, target=target))
        label = Hold.Scope(scope).label
        assert html == f'<span class="badge b-idle">{label}</span>\n{link}'


def test_age_reads_compactly():
    from datetime import timedelta

    from dashboard.templatetags.mes_tags import age

    now = timezone.now()
    assert age(now - timedelta(seconds=30)) in ("30 s", "31 s")
    assert age(now - timedelta(hours=3, minutes=20, seconds=5)) == "3 h 20 min"
    assert age(now - timedelta(days=2, hours=4, seconds=5)) == "2 d 4 h"


def test_a_scrapped_cell_under_an_open_hold_does_not_await_a_disposition(
    proto_batch, signed_in, quality_engineer, line_engineer
):
    cell = proto_batch.cells.order_by("position").first()
    hold_batch(proto_batch, by=line_engineer, reason="SE lot recall")
    scrap_cell(cell, by=quality_engineer, reason="dropped on the floor")
    page = signed_in(quality_engineer).get(reverse("cell", args=[cell.serial])).content.decode()
    assert "Scrapped." in page
    assert "until quality dispositions the hold" not in page
    other = proto_batch.cells.order_by("position").last()
    page = signed_in(quality_engineer).get(reverse("cell", args=[other.serial])).content.decode()
    assert "until quality dispositions the hold" in page
