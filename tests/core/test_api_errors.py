"""Under /api/ every error answer is the contract's JSON (404, 405, 500, 503); the pages keep the
product's HTML. While PostgreSQL is down the API answers 503 `unavailable` with Retry-After, the
health check says so, and pages show the product's "database unavailable" page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import path
from knox.models import AuthToken
from rest_framework.test import APIClient

import mes.urls
from lines.models import Station, StationStateChange
from stations.models import InboxEntry
from stations.services import issue_station_token
from tests.core.conftest import closed_port

pytestmark = pytest.mark.usefixtures("own_cache")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], dict)
    return body


# ---------------------------------------------------------------- 404, 405, 500


@pytest.mark.parametrize("url", ["/api/v1/no-such-endpoint", "/api/nothing/here", "/api/"])
def test_a_path_no_pattern_matches_under_api_is_a_json_404(db, url):
    assert_error(Client().get(url), 404, "not_found")


def test_a_json_404_in_debug_too_where_django_would_draw_its_technical_page(db, settings):
    settings.DEBUG = True
    assert_error(Client().get("/api/v1/no-such-endpoint"), 404, "not_found")


def test_an_unknown_object_is_a_json_404(plant, api_as, line_engineer):
    assert_error(api_as(line_engineer).get("/api/v1/batches/NO-SUCH-BATCH"), 404, "not_found")


def test_a_page_that_does_not_exist_is_the_products_html_404(db):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"There is no such page" in response.content


def test_a_method_an_api_view_does_not_take_is_a_json_405(plant, api_as, line_engineer):
    response = api_as(line_engineer).delete("/api/v1/lines")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_a_method_the_health_check_does_not_take_is_a_json_405(db):
    response = Client().post("/api/v1/health")
    assert_error(response, 405, "method_not_allowed")
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}


def _fault(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/v1/fault", _fault), path("fault/", _fault), *mes.urls.urlpatterns]
handler404 = mes.urls.handler404
handler500 = mes.urls.handler500


@pytest.mark.urls(__name__)
def test_a_fault_under_api_is_a_json_500(db):
    response = Client(raise_request_exception=False).get("/api/v1/fault")
    assert_error(response, 500, "server_error")


@pytest.mark.urls(__name__)
def test_a_fault_on_a_page_is_the_products_html_500(db):
    response = Client(raise_request_exception=False).get("/fault/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"Something went wrong" in response.content


# ---------------------------------------------------------------- health


def test_health_is_ok_while_the_database_and_the_broker_answer(db):
    response = Client().get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_health_is_503_while_the_broker_is_unreachable(db, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = Client().get("/api/v1/health")
    body = assert_error(response, 503, "unavailable")
    assert body["errors"] == {"broker": ["unreachable"]}
    assert int(response["Retry-After"]) > 0


# ---------------------------------------------------------------- PostgreSQL down


@pytest.fixture
def station(plant) -> APIClient:
    """Stacking equipment with its token, issued while the database answered."""
    client = APIClient()
    token = issue_station_token(Station.objects.get(code="PR-STK-1"), by="test")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def engineer(plant, line_engineer) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=line_engineer)[1]}"
    )
    return client


def test_while_the_database_is_down_the_api_answers_503_unavailable(
    outage, station, engineer, result_for
):
    outage.begin()
    answers = {
        "station": station.get("/api/v1/station"),
        "results": station.post(
            "/api/v1/station/results", {"results": [result_for("X-1", "stacking")]}, format="json"
        ),
        "state": station.post("/api/v1/station/state", {"state": "down"}, format="json"),
        "engineer": engineer.get("/api/v1/lines"),
        "health": Client().get("/api/v1/health"),
        "ingestion health": Client().get("/api/v1/health/ingestion"),
    }
    for name, response in answers.items():
        assert_error(response, 503, "unavailable")
        assert int(response["Retry-After"]) > 0, name
    assert answers["health"].json()["errors"] == {"database": ["unreachable"]}
    # Refusing a request that brings no credentials needs no database: still 401.
    assert_error(APIClient().get("/api/v1/lines"), 401, "not_authenticated")

    outage.end()
    assert not InboxEntry.objects.exists()
    assert not StationStateChange.objects.exists()
    assert Client().get("/api/v1/health").status_code == 200
    assert station.get("/api/v1/station").status_code == 200


def test_while_the_database_is_down_a_page_is_the_products_503_page(outage, line_engineer):
    browser = Client()
    browser.force_login(line_engineer)
    outage.begin()
    for url in ["/", "/lines/proto/", "/accounts/tokens/", "/admin/"]:
        response = browser.get(url)
        assert response.status_code == 503, url
        assert response["Content-Type"].startswith("text/html")
        assert int(response["Retry-After"]) > 0
        assert b"Database unavailable" in response.content
        # The product's own page, drawn without the database: its stylesheet, no navigation.
        assert b"css/mes.css" in response.content
        assert b"Results not applied" not in response.content
