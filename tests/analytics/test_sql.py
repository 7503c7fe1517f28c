"""run_sql through the MCP server: read-only SELECTs, JSON-safe rows, row/character/time limits, refusals."""

from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client

from helpers import Session, load
from telemetry_mcp.analytics.sql import json_safe
from telemetry_mcp.config import load_settings
from telemetry_mcp.server.app import App, open_app

TEST_SALT = "00112233445566778899aabbccddeeff"


@pytest.fixture
def tight_app() -> Iterator[App]:
    """A store with a small character cap and a short query timeout."""
    settings = load_settings(
        {"db": ":memory:", "threads": 2, "salt": TEST_SALT, "sql_max_bytes": 1024,
         "query_timeout_seconds": 0.5, "sql_max_rows": 50},
        env={},
    )  # fmt: skip
    application = open_app(settings)
    yield application
    application.store.close()


async def call(client: Client, sql: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("run_sql", {"sql": sql, **args})
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def error_of(client: Client, sql: str, **args: Any) -> str:
    result = await client.call_tool("run_sql", {"sql": sql, **args})
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


EVENTS = [
    {"event_id": "q1", "timestamp": "2026-10-01T10:00:00Z", "event_type": "component_load",
     "component": "Button", "duration_ms": 12.345678, "user_id": "u1", "properties": {"path": "/"}},
    {"event_id": "q2", "timestamp": "2026-10-01T10:00:05Z", "event_type": "component_load",
     "component": "Modal", "duration_ms": 30, "user_id": "u2"},
    {"event_id": "q3", "timestamp": "2026-10-02T08:30:00Z", "event_type": "error", "component": "Modal"},
]  # fmt: skip


async def test_a_select_returns_columns_and_json_safe_rows(app: App, client: Client) -> None:
    load(app, EVENTS)
    out = await call(
        client,
        "SELECT event_id, ts, duration_ms, properties, date_trunc('day', ts)::DATE AS day, "
        "INTERVAL 90 SECOND AS wait, [1, 2] AS xs, {'a': 1.23456} AS s FROM events ORDER BY ts, seq",
    )
    assert out["columns"] == [
        {"name": "event_id", "type": "VARCHAR"}, {"name": "ts", "type": "TIMESTAMP"},
        {"name": "duration_ms", "type": "DOUBLE"}, {"name": "properties", "type": "JSON"},
        {"name": "day", "type": "DATE"}, {"name": "wait", "type": "INTERVAL"},
        {"name": "xs", "type": "INTEGER[]"}, {"name": "s", "type": "STRUCT(a DECIMAL(6,5))"},
    ]  # fmt: skip
    assert out["rows"] == [
        ["q1", "2026-10-01T10:00:00Z", 12.3457, '{"path":"/"}', "2026-10-01", 90.0, [1, 2], {"a": 1.2346}],
        ["q2", "2026-10-01T10:00:05Z", 30.0, None, "2026-10-01", 90.0, [1, 2], {"a": 1.2346}],
        ["q3", "2026-10-02T08:30:00Z", None, None, "2026-10-02", 90.0, [1, 2], {"a": 1.2346}],
    ]
    assert (out["row_count"], out["truncated"]) == (3, False)
    assert out["summary"].startswith('3 rows × 8 columns. event_id="q1", ts="2026-10-01T10:00:00Z"')


async def test_with_queries_and_describe_are_allowed(app: App, client: Client) -> None:
    load(app, EVENTS)
    out = await call(
        client,
        "WITH per AS (SELECT component, count(*) AS n FROM events GROUP BY component) "
        "SELECT component, n FROM per ORDER BY n DESC, component;",
    )
    assert out["rows"] == [["Modal", 2], ["Button", 1]]
    assert out["summary"] == '2 rows × 2 columns. component="Modal", n=2; component="Button", n=1'
    out = await call(client, "DESCRIBE events", limit=3)
    assert [r[:2] for r in out["rows"]] == [["seq", "BIGINT"], ["event_id", "VARCHAR"], ["ts", "TIMESTAMP"]]
    assert out["truncated"] is True
    out = await call(client, "SELECT count(*) AS n FROM range(5) t(i) WHERE i > 1")
    assert out["rows"] == [[3]]


async def test_user_ids_are_the_stored_hashes_not_the_raw_ids(app: App, client: Client) -> None:
    load(app, EVENTS)
    out = await call(client, "SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL ORDER BY 1")
    assert all(len(r[0]) == 16 and r[0] not in ("u1", "u2") for r in out["rows"])


async def test_limit_fetches_one_more_row_to_know_about_truncation(app: App, client: Client) -> None:
    load(app, EVENTS)
    out = await call(client, "SELECT event_id FROM events ORDER BY event_id", limit=3)
    assert (out["rows"], out["truncated"]) == ([["q1"], ["q2"], ["q3"]], False)
    out = await call(client, "SELECT event_id FROM events ORDER BY event_id", limit=2)
    assert (out["rows"], out["row_count"], out["truncated"]) == ([["q1"], ["q2"]], 2, True)
    assert out["summary"] == '2 rows × 1 column (more rows exist; limit 2). event_id="q1"; event_id="q2"'
    out = await call(client, "SELECT i FROM range(1000000000) t(i)", limit=5)
    assert (out["rows"], out["truncated"]) == ([[0], [1], [2], [3], [4]], True)
    assert out["summary"] == "5 rows × 1 column (more rows exist; limit 5). First row: i=0"


async def test_rows_stop_at_the_character_cap(tight_app: App) -> None:
    client = Session(tight_app)
    out = await call(client, "SELECT repeat('x', 300) AS pad FROM range(10)", limit=10)
    # Each row is 306 characters of JSON (+1): three fit under 1,024 with the column names.
    assert (out["row_count"], out["truncated"]) == (3, True)
    assert out["summary"].startswith("3 rows × 1 column (cut at the 1,024-character cap;")


async def test_the_limit_cannot_exceed_sql_max_rows(tight_app: App) -> None:
    client = Session(tight_app)
    assert "50" in await error_of(client, "SELECT 1", limit=51)
    assert (await call(client, "SELECT 1 AS one", limit=50))["rows"] == [[1]]


async def test_a_slow_query_is_cancelled_and_the_server_keeps_answering(tight_app: App) -> None:
    client = Session(tight_app)
    msg = await error_of(client, "SELECT sum(a.i * b.i) FROM range(1000000) a(i), range(1000000) b(i)")
    assert "cancelled after 0.5 s" in msg
    assert (await call(client, "SELECT 42 AS answer"))["rows"] == [[42]]


REFUSED = [
    ("SELECT * FROM read_csv('/etc/passwd')", "table function read_csv() is not allowed"),
    ("SELECT * FROM read_text('/etc/passwd')", "table function read_text() is not allowed"),
    ("SELECT * FROM read_parquet('x.parquet')", "table function read_parquet() is not allowed"),
    ("SELECT * FROM read_json_auto('x.json')", "table function read_json_auto() is not allowed"),
    ("SELECT * FROM glob('/*')", "table function glob() is not allowed"),
    ("SELECT * FROM duckdb_settings()", "table function duckdb_settings() is not allowed"),
    ("FROM '/etc/passwd'", 'table "/etc/passwd" is not available'),
    ("SELECT * FROM meta", 'table "meta" is not available'),
    ("SELECT (SELECT max(value) FROM main.meta) AS salt", 'table "main.meta" is not available'),
    ("SUMMARIZE meta", 'table "meta" is not available'),
    ("SELECT * FROM schema_migrations", 'table "schema_migrations" is not available'),
    ("SELECT * FROM information_schema.tables", 'table "information_schema.tables" is not available'),
    ("SELECT * FROM duckdb_tables", 'table "duckdb_tables" is not available'),
    ("SHOW TABLES", "SHOW is not available"),
    ("WITH meta AS (SELECT 1) SELECT * FROM meta", 'CTE name "meta" is the name of a system table'),
    ("COPY events TO '/tmp/telemetry-leak.csv'", "allowed, not COPY: run_sql is read-only"),
    ("ATTACH '/tmp/other.duckdb' AS other", "allowed, not ATTACH: run_sql is read-only"),
    ("INSERT INTO events SELECT * FROM events", "allowed, not INSERT: run_sql is read-only"),
    ("UPDATE events SET component = 'x'", "allowed, not UPDATE: run_sql is read-only"),
    ("DELETE FROM events", "allowed, not DELETE: run_sql is read-only"),
    ("DROP TABLE events", "allowed, not DROP: run_sql is read-only"),
    ("CREATE TABLE copy AS SELECT * FROM events", "allowed, not CREATE: run_sql is read-only"),
    ("PRAGMA database_list", "allowed, not PRAGMA: run_sql is read-only"),
    ("SET threads = 1", "allowed, not SET: run_sql is read-only"),
    ("LOAD httpfs", "allowed, not LOAD: run_sql is read-only"),
    ("EXPLAIN ANALYZE SELECT 1", "allowed, not EXPLAIN: run_sql is read-only"),
    ("CALL pragma_version()", "allowed, not CALL: run_sql is read-only"),
    ("SELECT 1; DROP TABLE events", "holds 2 statements"),
    ("", "sql is empty"),
    ("SELEC 1", "sql does not parse"),
]


async def test_writes_files_system_tables_and_several_statements_are_refused(
    app: App, client: Client
) -> None:
    load(app, EVENTS)
    missed = {}
    for sql, message in REFUSED:
        text = await error_of(client, sql)
        if message not in text:
            missed[sql] = text
    assert missed == {}
    out = await call(client, "SELECT count(*) FROM events")
    assert out["rows"] == [[3]]


async def test_a_cte_name_used_outside_its_scope_reaches_no_python_object_nor_table(
    app: App, client: Client
) -> None:
    load(app, EVENTS)
    # `app` exists as a Python variable here; DuckDB's replacement scans are off, so this is only a
    # missing table.
    msg = await error_of(client, "SELECT * FROM (WITH app AS (SELECT 1 AS a) SELECT * FROM app), app")
    assert msg.startswith("Error executing tool run_sql: query failed: Catalog Error")


async def test_errors_from_duckdb_are_reported_with_their_reason(app: App, client: Client) -> None:
    load(app, EVENTS)
    msg = await error_of(client, "SELECT no_such_column FROM events")
    assert "query failed: Binder Error" in msg and "no_such_column" in msg
    assert "at most 20,000" in await error_of(client, "SELECT 1 " + " " * 20_000)
    assert "1000" in await error_of(client, "SELECT 1", limit=1001)


def test_json_safe_turns_special_values_into_plain_json() -> None:
    from datetime import UTC, date, datetime, time, timedelta
    from decimal import Decimal
    from uuid import UUID

    assert json_safe(float("nan")) is None
    assert json_safe(float("inf")) is None
    assert json_safe(Decimal("1.234567")) == 1.2346
    assert json_safe(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert json_safe(date(2026, 1, 2)) == "2026-01-02"
    assert json_safe(time(3, 4)) == "03:04:00"
    assert json_safe(timedelta(minutes=2)) == 120.0
    assert json_safe(b"\x01\xff") == "01ff"
    assert json_safe(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert json_safe({"k": (1, 2.000049)}) == {"k": [1, 2.0]}
