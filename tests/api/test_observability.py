"""Observability: /metrics in the Prometheus format (route templates, database gauges), /ready, JSON access logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Connection, Engine, text

from api.observability import JsonFormatter, ObservabilitySettings, request_id_from
from gis import clock
from gis.cluster import free_port
from gis.settings import DatabaseSettings
from tests.api.live_server import live_url  # noqa: F401
from tests.support.accounts import PASSWORD, api_key_headers, bearer, make_api_key, make_users
from tests.support.server import SECRET_KEY, make_app

pytestmark = pytest.mark.db

USERS = {"centre": ("command_centre", None), "admin": ("admin", None), "tobacco": ("department_officer", "tobacco")}


@pytest.fixture(scope="module", autouse=True)
def accounts(engine: Engine) -> dict[str, str]:
    with engine.begin() as conn:
        make_users(conn, USERS)
        key = make_api_key(conn, SECRET_KEY, "metrics-probe")
    return {"key": key}


def samples(body: str) -> dict[str, list[Any]]:
    """Metric family name → its samples, parsed by the Prometheus client's own parser."""
    return {family.name: family.samples for family in text_string_to_metric_families(body)}


def scrape(client: TestClient) -> dict[str, list[Any]]:
    response = client.get("/metrics", headers=bearer(client, "centre"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


@pytest.fixture()
def access_lines() -> Iterator[io.StringIO]:
    """What the access logger writes, through the JSON formatter `gridgov serve` installs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gridgov.access")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_request_latency_is_labelled_by_route_template_never_by_raw_path(client: TestClient) -> None:
    headers = bearer(client, "centre")
    assert client.get("/v1/tasks/987654321", headers=headers).status_code == 404
    assert client.get("/v1/tasks/987654322", headers=headers).status_code == 404
    assert client.get("/no/such/path/123").status_code == 404
    families = scrape(client)
    routes = {s.labels["route"] for s in families["gridgov_http_request_duration_seconds"]}
    assert "/v1/tasks/{task_id}" in routes
    assert "other" in routes
    assert not any("987654321" in r or r.startswith("/no/") for r in routes)
    counted = [
        s.value
        for s in families["gridgov_http_requests"]
        if s.name == "gridgov_http_requests_total"
        and s.labels == {"method": "GET", "route": "/v1/tasks/{task_id}", "status": "404"}
    ]
    assert counted and counted[0] >= 2


def test_the_geocoder_confidence_histogram_counts_each_answer(client: TestClient, engine: Engine) -> None:
    with engine.connect() as conn:
        door = conn.execute(text("SELECT full_text FROM address WHERE level = 'door' ORDER BY id LIMIT 1")).scalar_one()
    headers = bearer(client, "centre")

    def matched_count() -> float:
        found = [
            s.value
            for s in scrape(client).get("gridgov_geocode_confidence", [])
            if s.name == "gridgov_geocode_confidence_count" and s.labels["status"] == "matched"
        ]
        return found[0] if found else 0.0

    before = matched_count()
    answer = client.get("/v1/geocode", params={"q": door}, headers=headers)
    assert answer.status_code == 200 and answer.json()["status"] == "matched"
    assert client.get("/search", params={"q": door}, headers=headers).status_code == 200
    assert matched_count() == before + 2
    buckets = {
        s.labels["le"]
        for s in scrape(client)["gridgov_geocode_confidence"]
        if s.name == "gridgov_geocode_confidence_bucket"
    }
    assert {"0.9", "1.0"} <= buckets


def insert_event(conn: Connection, event_id: str, received: datetime, processed: datetime | None) -> None:
    """One registration event row as intake stores it (with its sender where the schema records one)."""
    columns = set(
        conn.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = 'registration_event'")
        ).scalars()
    )
    row: dict[str, Any] = {
        "event_id": event_id,
        "kind": "new",
        "uscc": "91441900MB0000001X"[:18],
        "name": "东莞市某某商店",
        "address": "长安镇振隆路27号",
        "occurred_at": received,
        "received_at": received,
        "processed_at": processed,
    }
    if "sender" in columns:
        row |= {"sender": "system", "sender_name": "system", "source_event_id": event_id}
    names = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    conn.execute(text(f"INSERT INTO registration_event ({names}) VALUES ({values})"), row)  # noqa: S608 - fixed names


def test_the_database_gauges_match_the_database(client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO outbox (topic, payload) VALUES ('registration', '{\"event_id\": \"metrics-probe\"}')")
        )
        conn.execute(
            text("INSERT INTO review_queue (kind, reason, payload) VALUES ('geocode', 'metrics probe', '{}'::jsonb)")
        )
        # Two events received at `received`: one turned into tasks 12 s later, one still waiting.
        received = conn.execute(text("SELECT now()")).scalar_one()
        for event_id, processed in (("metrics-done", received + timedelta(seconds=12)), ("metrics-waiting", None)):
            insert_event(conn, event_id, received, processed)
        oldest_received = conn.execute(
            text("SELECT min(received_at) FROM registration_event WHERE processed_at IS NULL")
        ).scalar_one()
    at = oldest_received + timedelta(minutes=7)
    with clock.using(clock.FixedClock(at)):
        families = scrape(client)
    with engine.connect() as conn:
        backlog = conn.execute(text("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")).scalar_one()
        review = conn.execute(text("SELECT count(*) FROM review_queue WHERE resolved_at IS NULL")).scalar_one()
        worst = conn.execute(
            text(
                "SELECT max(EXTRACT(EPOCH FROM processed_at - received_at)::float8) FROM (SELECT * FROM "
                "registration_event WHERE processed_at IS NOT NULL ORDER BY processed_at DESC LIMIT 1000) AS r"
            )
        ).scalar_one()

    def value(name: str, **labels: str) -> float:
        return next(s.value for s in families[name] if all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("gridgov_database_up") == 1
    assert value("gridgov_outbox_backlog") == backlog >= 1
    assert value("gridgov_review_queue_open") == review >= 1
    assert value("gridgov_intake_oldest_waiting_seconds") == pytest.approx(420.0)
    if worst is not None:
        assert value("gridgov_intake_lag_seconds", quantile="1") == pytest.approx(worst)


def test_metrics_are_refused_to_everyone_but_the_command_centre_and_administrators(
    client: TestClient, accounts: dict[str, str]
) -> None:
    # The TestClient's address is not loopback: only a credential of the command centre or an admin passes.
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers=bearer(client, "tobacco")).status_code == 403
    assert client.get("/metrics", headers=api_key_headers(accounts["key"])).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer not-a-token"}).status_code == 403
    assert client.get("/metrics", headers=bearer(client, "admin")).status_code == 200
    assert client.get("/metrics", headers=bearer(client, "centre")).status_code == 200


def test_a_loopback_scraper_needs_no_credential_unless_it_is_a_proxy(live_url: str) -> None:  # noqa: F811
    assert httpx.get(f"{live_url}/metrics").status_code == 200
    # A reverse proxy on this host forwards outside clients: they are not loopback.
    assert httpx.get(f"{live_url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403


def test_the_metrics_token_lets_prometheus_scrape_from_another_host(
    db: DatabaseSettings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    app = make_app(db, tmp_path_factory.mktemp("state"))
    app.state.observability = ObservabilitySettings(metrics_token="scrape-" + "t" * 40)
    with TestClient(app) as other_host:
        assert other_host.get("/metrics", headers={"Authorization": "Bearer scrape-" + "t" * 40}).status_code == 200
        assert other_host.get("/metrics", headers={"Authorization": "Bearer scrape-" + "x" * 40}).status_code == 403


def test_ready_when_the_database_answers_at_the_migrations_head(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "migrations": "head"}
    assert client.get("/health").json() == {"status": "ok"}


def test_not_ready_when_the_database_is_unreachable(tmp_path_factory: pytest.TempPathFactory) -> None:
    closed = DatabaseSettings(database_url=f"postgresql://gridgov:x@127.0.0.1:{free_port()}/gridgov")
    token = "scrape-" + "t" * 40
    app = make_app(closed, tmp_path_factory.mktemp("state"))
    app.state.observability = ObservabilitySettings(metrics_token=token)
    with TestClient(app) as down:
        response = down.get("/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "not_ready", "database": "unreachable", "migrations": "unknown"}
        assert down.get("/health").status_code == 200
        # The scrape still answers, and says the database is down.
        scraped = down.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert scraped.status_code == 200
        up = samples(scraped.text)["gridgov_database_up"]
        assert [s.value for s in up] == [0.0]


def test_not_ready_when_the_schema_is_behind(client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = client.get("/ready")
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "database": "ok", "migrations": "behind"}


def test_access_log_lines_are_json_with_the_answers_request_id_and_no_secret(
    client: TestClient, accounts: dict[str, str], access_lines: io.StringIO
) -> None:
    key = accounts["key"]
    mine = client.get("/v1/geocode", params={"q": "长安镇", "key": key}, headers={"X-Request-ID": "trace-42.a_b"})
    assert mine.headers["X-Request-ID"] == "trace-42.a_b"
    made = client.post("/v1/auth/token", data={"username": "centre", "password": PASSWORD})
    assert made.status_code == 200
    token = made.json()["access_token"]
    hostile = client.get("/health", headers={"X-Request-ID": "x" * 65})
    generated = hostile.headers["X-Request-ID"]
    assert len(generated) == 32 and generated != "x" * 65
    lines = [orjson.loads(line) for line in access_lines.getvalue().splitlines()]
    by_id = {line["request_id"]: line for line in lines}
    first = by_id["trace-42.a_b"]
    assert first["route"] == "/v1/geocode" and first["status"] == mine.status_code and first["method"] == "GET"
    assert first["logger"] == "gridgov.access" and first["level"] == "INFO"
    assert first["owner"].startswith("key#") and "duration_ms" in first and "timestamp" in first
    assert by_id[generated]["route"] == "/health"
    text_of_all = access_lines.getvalue()
    for secret in (key, PASSWORD, token):
        assert secret not in text_of_all


def test_a_formatted_record_redacts_query_secrets_and_carries_the_request_id() -> None:
    from api.observability import request_id_var

    token = request_id_var.set("req-1")
    try:
        record = logging.LogRecord(
            "gridgov.x", logging.WARNING, __file__, 1, "GET /search?q=a&key=%s", ("s3cr3t",), None
        )
        line = orjson.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-1" and line["level"] == "WARNING"
    assert "s3cr3t" not in line["message"] and "key=***" in line["message"]


@given(st.text(max_size=80))
def test_a_request_id_is_the_clients_only_when_short_and_safe(value: str) -> None:
    result = request_id_from(value)
    safe = 1 <= len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "._-") for c in value)
    assert result == value if safe else (len(result) == 32 and result != value)
