"""Japanese and English pages: the language from the browser or the switch, every translated page
in Japanese, measurement names and units for people, times with the plant's zone, money per
currency, and a complete Japanese catalog."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from batches.models import Batch, Hold, MaterialLot, ProcessRun
from lines.models import Line, Zone
from quality.nonconformance import open_nonconformance
from tests.quality.test_experiment_pages import running  # noqa: F401
from tests.quality.test_experiments import batch40, stacked40  # noqa: F401

JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}

# Labels of the pages in English, as the markup has them: none may show on a Japanese page.
ENGLISH_ONLY = [
    ">Batches</a>",
    ">Holds</a>",
    ">Recipes</a>",
    ">Results not applied</a>",
    ">Sign out</button>",
    "<th>Status</th>",
    "<th>Reason</th>",
    "<th>Batch</th>",
    "<th>Cell</th>",
    "<th>Line</th>",
    "<th>Parameter</th>",
    ">Filter</button>",
    ">Show</button>",
    ">All</option>",
    'for="status">Status</label>',
    'for="line">Line</label>',
    "Newest first.",
    " in all</",
    "<h2>Actions</h2>",
    "Reason (required)",
    "Never held.",
    "No holds.",
]


@pytest.fixture
def translated_pages(worked_batch, quality_engineer) -> list[tuple[str, str]]:
    """(url, a Japanese string the page must show) for every page whose templates are
    translated."""
    batch = worked_batch(10)
    hold = Hold.objects.filter(batch=batch).first()
    ncr = open_nonconformance(
        title="Misaligned stack",
        description="Two cells offset",
        line=Line.objects.get(code="proto"),
        by=quality_engineer,
        holds=[hold],
    )
    pressing = (
        ProcessRun.objects.filter(station__kind="pressing", cell__batch=batch)
        .exclude(equipment_ref="")
        .first()
    )
    zone = Zone.objects.filter(line__code="proto").first()
    pages = [
        (reverse("home"), "直行率"),
        (reverse("home-lines"), "未処置の保留"),
        (reverse("line-batches", args=["proto"]), "工程別の進捗"),
        (reverse("line-holds", args=["proto"]), "理由"),
        (reverse("recipes"), "ピーク圧力"),
        (reverse("batches"), "作成日時"),
        (reverse("lots"), "材料ロット"),
        (reverse("lot", args=["CAT-2611-A-01"]), "順方向トレース"),
        (reverse("holds"), "保留ルール"),
        (reverse("holds") + "?status=all", "処置"),
        (reverse("hold-rules"), "規格外の結果でセルを保留"),
        (reverse("search") + "?q=PROTO-T", "検索"),
        (reverse("unapplied-results"), "反映されていない設備実績"),
        (reverse("unapplied-results") + "?state=pending", "受け付けた実績はすべて反映済みです。"),
        (reverse("ncrs"), "不適合報告"),
        (reverse("ncr-new"), "不適合報告の起票"),
        (reverse("ncr", args=[ncr.code]), "是正処置・予防処置"),
        (reverse("yield") + "?by=step", "総合直行率（RTY）"),
        (reverse("pareto") + "?by=defect", "不良パレート図"),
        (reverse("spc-capability", args=["proto"]), "工程能力"),
        (
            reverse("spc-chart") + "?line=proto&step=pressing&parameter=peak_pressure_mpa",
            "ピーク圧力",
        ),
        (reverse("personal-tokens"), "API トークン"),
        (reverse("zone", args=[zone.code]), "露点"),
    ]
    if pressing is not None:
        pages.append(
            (reverse("press-cycle", args=[pressing.station.code, pressing.equipment_ref]), "プレス")
        )
    return pages


def test_a_japanese_browser_sees_japanese_on_every_translated_page(
    translated_pages, signed_in, quality_engineer
):
    client = signed_in(quality_engineer)
    for url, japanese in translated_pages:
        response = client.get(url, **JA)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert japanese in page, url
        assert '<html lang="ja">' in page or "<html" not in page, url
        shown = [label for label in ENGLISH_ONLY if label in page]
        assert shown == [], (url, shown)


def test_the_header_is_japanese_with_the_roles_and_the_switch(plant, signed_in, quality_engineer):
    page = signed_in(quality_engineer).get(reverse("batches"), **JA).content.decode()
    for japanese in (
        "バッチ",
        "ロット",
        "保留",
        "不適合報告",
        "レシピ",
        "ログアウト",
        "品質エンジニア",
    ):
        assert japanese in page
    assert 'action="/i18n/setlang/"' in page
    # Each language offered in its own name; the one in use is not a button to press.
    assert 'value="en" lang="en">English</button>' in page
    assert 'value="ja" lang="ja" aria-current="true" disabled>日本語</button>' in page


def test_english_stays_the_default_and_is_still_english(plant, signed_in, operator):
    client = signed_in(operator)
    for headers in ({}, {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}, {"HTTP_ACCEPT_LANGUAGE": "fr"}):
        page = client.get(reverse("holds"), **headers).content.decode()
        assert '<html lang="en">' in page
        assert ">Batches</a>" in page and "<th>Reason</th>" in page
        assert "保留" not in page


def test_the_switch_persists_in_the_language_cookie(plant, signed_in, operator):
    client = signed_in(operator)
    response = client.post(reverse("set_language"), {"language": "ja", "next": reverse("lots")})
    assert response.status_code == 302 and response["Location"] == reverse("lots")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ja"
    # No Accept-Language: the cookie alone decides, on this page and the next.
    assert "材料ロット" in client.get(reverse("lots")).content.decode()
    assert "ライン" in client.get(reverse("home")).content.decode()
    # The cookie outranks the browser's language.
    assert "材料ロット" in client.get(reverse("lots"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": reverse("lots")})
    page = client.get(reverse("lots"), **JA).content.decode()
    assert "Material lots" in page and "材料ロット" not in page


def test_a_rule_s_hold_names_the_rule_in_japanese(worked_batch, signed_in, quality_engineer):
    worked_batch(10)  # a cell held by out_of_spec
    page = signed_in(quality_engineer).get(reverse("holds"), **JA).content.decode()
    assert '<span title="規格外の結果でセルを保留">' in page


def test_a_form_error_names_the_field_in_japanese(worked_batch, signed_in, line_engineer):
    worked_batch(4)
    holds = Hold.objects.count()
    client = signed_in(line_engineer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    response = client.post(
        reverse("lot-hold", args=["CAT-2611-A-01"]), {"reason": " "}, follow=True
    )
    assert "理由: この項目は必須です。" in response.content.decode()
    assert Hold.objects.count() == holds  # refused: nothing written


def test_measurement_names_and_units_on_the_recipes_page(plant, signed_in, operator):
    client = signed_in(operator)
    english = client.get(reverse("recipes")).content.decode()
    japanese = client.get(reverse("recipes"), **JA).content.decode()
    assert "Peak pressure" in english and "Insulation resistance" in english
    assert (
        "ピーク圧力" in japanese
        and "絶縁抵抗" in japanese
        and "初回クーロン効率（ICE）" in japanese
    )
    for page in (english, japanese):
        # The seeded recipes state degC, um, MOhm and mOhm; the page prints them for people.
        assert "<td>°C</td>" in page and "<td>µm</td>" in page
        assert "<td>MΩ</td>" in page and "<td>mΩ</td>" in page
        assert "<td>degC</td>" not in page and "<td>um</td>" not in page
        assert "<td>MOhm</td>" not in page
        # ICE's limits, 0.80 to 0.95 with 0.86 the target, read as percentages.
        assert '<td class="num">86 %</td><td class="num">80 %</td><td class="num">95 %</td>' in page


def render(source: str, language: str = "en", **context) -> str:
    with translation.override(language):
        return Template("{% load mes_tags %}" + source).render(Context(context))


def test_fractions_engineers_read_as_percentages():
    # 0.8584 x 100 = 85.84, one decimal: 85.8 %
    assert render("{{ v|measured:'initial_coulombic_efficiency' }}", v=0.8584) == "85.8 %"
    assert render("{{ v|percent }}", v=0.91375) == "91.4 %"  # 91.375 rounds up
    # A fraction shown as a percentage carries no unit of its own.
    assert render("{{ u|measured_unit:'initial_coulombic_efficiency' }}", u="") == ""
    # Not a fraction: four significant figures and its unit.
    assert render("{{ v|measured:'peak_pressure_mpa' }}", v=512.34) == "512.3"
    assert render("{{ u|measured_unit:'temperature_c' }}", u="degC") == "°C"


def test_unknown_names_read_as_words_never_snake_case():
    assert render("{{ n|measurement_label }}", n="binder_content_pct") == "Binder content"
    assert render("{{ n|measurement_label }}", n="separator_gap_um") == "Separator gap"
    assert render("{{ n|measurement_label }}", "ja", n="peak_pressure_mpa") == "ピーク圧力"
    assert render("{{ u|unit_label }}", u="mV/d") == "mV/d"
    assert render("{{ u|unit_label }}", "ja", u="mV/d") == "mV/日"
    assert render("{{ u|unit_label }}", u="Wh") == "Wh"


def test_times_carry_the_plant_zone(worked_batch, signed_in, operator):
    batch = worked_batch(4)
    # 06:15 UTC is 15:15 in Tokyo (UTC+9, no daylight saving).
    Batch.objects.filter(pk=batch.pk).update(created_at=datetime(2026, 11, 30, 6, 15, tzinfo=UTC))
    for headers in ({}, JA):
        page = signed_in(operator).get(reverse("batches"), **headers).content.decode()
        assert "2026-11-30 15:15 JST" in page
    moment = datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC)  # 08:59:58 the next day in Tokyo
    assert render("{{ t|when:'s' }}", t=moment) == "2026-12-01 08:59:58 JST"
    assert render("{{ t|when:'time' }}", t=moment) == "08:59:58 JST"
    assert render("{{ t|when }}", t=None) == "–"
    twelve_minutes_ago = timezone.now() - timedelta(minutes=12, seconds=5)
    assert render("{{ t|ago }}", t=twelve_minutes_ago) == "12 min ago"
    assert render("{{ t|ago }}", "ja", t=twelve_minutes_ago) == "12 分前"
    # The admin and any {{ datetime }} print the same way, in both languages.
    for language in ("en", "ja"):
        assert render("{{ t }}", language, t=moment) == "2026-12-01 08:59 JST"


def test_money_per_currency_and_locale():
    amount = Decimal("12345.678")
    assert render("{{ a|money:'JPY' }}", a=amount) == "¥12,346"
    assert render("{{ a|money:'USD' }}", a=amount) == "$12,345.68"
    assert render("{{ a|money:'JPY' }}", "ja", a=amount) == "¥12,346"
    assert render("{{ a|money:'USD' }}", "ja", a=Decimal("-0.5")) == "-$0.50"
    assert render("{{ a|quantity }}", "ja", a=1234567) == "1,234,567"


def test_a_lots_unit_cost_is_in_the_plant_currency(plant, signed_in, operator, settings):
    MaterialLot.objects.filter(code="CAT-2611-A-01").update(unit_cost=Decimal("1234.6"))
    client = signed_in(operator)
    assert "$1,234.60 /" in client.get(reverse("lot", args=["CAT-2611-A-01"])).content.decode()
    settings.PLANT_CURRENCY = "JPY"
    assert "¥1,235 /" in client.get(reverse("lot", args=["CAT-2611-A-01"])).content.decode()


def test_a_hold_rules_actor_reads_as_words_in_the_timeline():
    assert render("{{ a|actor_label }}", a="rule:out_of_spec@v1") == "rule out_of_spec v1"
    assert render("{{ a|actor_label }}", "ja", a="rule:out_of_spec@v1") == "ルール out_of_spec v1"
    assert render("{{ a|actor_label }}", a="quinn-quality") == "quinn-quality"
    assert render("{{ v|event_label }}", "ja", v="hold_opened") == "保留開始"
    assert render("{{ v|event_label }}", v="something_new") == "something new"


def test_choice_labels_follow_the_language_of_each_page(proto_batch):
    # The labels are translated once per language and kept: each page still gets its own.
    cell = proto_batch.cells.first()
    assert render('{{ c|label_of:"status" }}', c=cell) == "Planned"
    assert render('{{ c|label_of:"status" }}', "ja", c=cell) == "計画済み"
    assert render('{{ c|label_of:"status" }}', c=cell) == "Planned"
    assert render("{{ s|hold_scope_label }}", "ja", s="lot") == "材料ロット"
    assert render("{{ s|hold_scope_label }}", s="lot") == "Material lot"
    cell.status = "not_a_status"  # a code the choices do not know reads as words
    assert render('{{ c|label_of:"status" }}', c=cell) == "Not a status"


def _entries(po: Path) -> list[dict]:
    """The catalog's entries: msgid, the msgstr texts and the flags, joined across lines."""
    entries, current, field = [], None, None
    for line in po.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if current is not None:
                entries.append(current)
            current, field = None, None
            continue
        current = current or {"flags": set(), "msgid": "", "msgstr": {}, "context": ""}
        if line.startswith("#,"):
            current["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        else:
            match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) "(.*)"$', line)
            if match:
                field, text = match.groups()
            else:
                text = re.match(r'^"(.*)"$', line).group(1)
            if field.startswith("msgstr"):
                current["msgstr"][field] = current["msgstr"].get(field, "") + text
            elif field == "msgid":
                current["msgid"] += text
            elif field == "msgctxt":
                current["context"] += text
    return entries


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_japanese_catalogs_have_no_untranslated_or_fuzzy_entry(domain):
    po = Path(settings.BASE_DIR) / "locale" / "ja" / "LC_MESSAGES" / f"{domain}.po"
    entries = [e for e in _entries(po) if e["msgid"]]
    assert len(entries) > {"django": 500, "djangojs": 10}[domain]  # not a handful
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"].values())]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert untranslated == [] and fuzzy == []
    assert po.with_suffix(".mo").exists()


def test_the_chart_scripts_get_their_words_from_the_javascript_catalog(plant, signed_in, operator):
    client = signed_in(operator)
    page = client.get(reverse("yield"), **JA).content.decode()
    assert '<script src="/i18n/js/" defer></script>' in page
    catalog = client.get("/i18n/js/", **JA).content.decode("utf-8")
    assert "直行率（%）" in catalog or "\\u76f4\\u884c\\u7387" in catalog
    assert "直行率" not in client.get("/i18n/js/").content.decode("utf-8")


def test_the_compiled_catalog_matches_the_po_file():
    po = Path(settings.BASE_DIR) / "locale" / "ja" / "LC_MESSAGES" / "django.po"
    entries = [e for e in _entries(po) if e["msgid"]]
    # The compiled catalog is the one in the repository and matches the .po, entry for entry.
    singular = [e for e in entries if set(e["msgstr"]) == {"msgstr"} and not e["context"]]
    with translation.override("ja"):
        stale = [
            e["msgid"]
            for e in singular
            if gettext(_unescape(e["msgid"])) != _unescape(e["msgstr"]["msgstr"])
        ]
    assert stale == []


def _unescape(text: str) -> str:
    """A .po string's escapes (only these occur in ours) as the characters they stand for."""
    return text.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


# Labels of the line, batch, cell, equipment, passport and experiment pages in English: none may
# show on their Japanese pages.
ENGLISH_ONLY_MORE = [
    "<th>Station</th>",
    "<th>Serial</th>",
    "<th>Grade</th>",
    "<th>Measurement</th>",
    "<th>Factor</th>",
    "<th>Shift</th>",
    "<th>Calibration due</th>",
    "<h2>Timeline</h2>",
    "<h2>Genealogy",
    "<h2>Stations",
    "<h2>Per station",
    "<h2>Lockouts</h2>",
    "<h2>Definition</h2>",
    "Print labels</a>",
    "Print this sheet</button>",
    "Plan the batch</button>",
    "Start the batch</button>",
    "Hold cell</button>",
    "Record calibration</button>",
    "No stop in this time.",
    "Cost per kWh by batch",
    " waiting</span>",
    "Battery passport</",
    "Planned: what happens next",
    "Energy and cost",
]


@pytest.fixture
def more_translated_pages(worked_batch, proto_batch):
    """(url, a Japanese string the page must show, expected status) for the line, batch, cell,
    label, planning, equipment, OEE, stop, passport and zone pages."""
    batch = worked_batch(6)
    cell = batch.cells.order_by("position").first()
    zone = Zone.objects.filter(line__code="proto").first()
    return [
        (reverse("line", args=["proto"]), "仕掛中のバッチ", 200),
        (reverse("line-stations", args=["proto"]), "直近", 200),
        (reverse("cell", args=[cell.serial]), "工程実績", 200),
        (reverse("batch", args=[batch.code]), "工程別の進捗", 200),
        (reverse("batch-history", args=[batch.code]), "履歴", 200),
        (reverse("batch", args=[proto_batch.code]), "計画済み: この後の流れ", 200),
        (reverse("batch-labels", args=[proto_batch.code]), "このシートを印刷", 200),
        (reverse("batch-new"), "材料ごとの計画ロット", 200),
        (reverse("line-oee", args=["proto"]), "理想サイクルタイム", 200),
        (reverse("station-stops", args=["PR-PRS-1"]), "計画時間内", 200),
        (reverse("equipment-list"), "校正期限", 200),
        (reverse("equipment", args=["PR-CIP-1"]), "校正履歴", 200),
        (reverse("experiments"), "実験はありません。", 200),
        (reverse("zone", args=[zone.code]), "露点", 200),
    ]


def test_a_japanese_browser_sees_japanese_on_the_line_batch_and_equipment_pages(
    more_translated_pages, signed_in, line_engineer
):
    client = signed_in(line_engineer)
    for url, japanese, status in more_translated_pages:
        response = client.get(url, **JA)
        assert response.status_code == status, url
        page = response.content.decode()
        assert japanese in page, url
        shown = [label for label in ENGLISH_ONLY + ENGLISH_ONLY_MORE if label in page]
        assert shown == [], (url, shown)


def test_a_disposition_is_confirmed_in_japanese(worked_batch, signed_in, quality_engineer):
    batch = worked_batch(4)
    hold = Hold.objects.filter(batch=batch, status=Hold.Status.OPEN).first()
    response = signed_in(quality_engineer).post(
        reverse("hold-disposition", args=[hold.pk]),
        {"disposition": "scrap", "reason": "dented"},
        **JA,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "確定:" in page and "廃棄" in page
    assert "Confirm:" not in page
    hold.refresh_from_db()
    assert hold.status == Hold.Status.OPEN  # only asked: nothing closed yet


def test_the_passport_page_is_japanese_even_when_it_refuses(worked_batch, signed_in, operator):
    cell = worked_batch(2).cells.first()
    response = signed_in(operator).get(reverse("cell-passport", args=[cell.serial]), **JA)
    page = response.content.decode()
    assert "電池パスポート" in page
    assert "Battery passport <span" not in page and "No passport:" not in page


def test_the_equipment_messages_are_japanese(plant, signed_in, line_engineer):
    client = signed_in(line_engineer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    response = client.post(
        reverse("equipment-status", args=["PR-CIP-1"]),
        {"action": "lock_out", "reason": "seal leak"},
        follow=True,
    )
    page = response.content.decode()
    assert "PR-CIP-1 は「ロックアウト中」になりました。" in page
    assert "ロックアウト履歴" in page and "seal leak" in page


def test_a_running_experiment_reads_in_japanese(running, signed_in, line_engineer):  # noqa: F811
    client = signed_in(line_engineer)
    page = client.get(
        reverse("experiment", args=["EXP-PRESS-1"]) + "?feature=relative_density_pct", **JA
    ).content.decode()
    for japanese in ("定義", "因子", "水準ごとの結果", "中央値"):
        assert japanese in page
    shown = [label for label in ENGLISH_ONLY + ENGLISH_ONLY_MORE if label in page]
    assert shown == []
    listing = client.get(reverse("experiments"), **JA).content.decode()
    assert "EXP-PRESS-1" in listing and "実施中" in listing and "<th>Title</th>" not in listing
