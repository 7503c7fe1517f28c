"""Group commit (the collector's writer): batches prepared in different places stored together.

A collector worker's batch arrives with its id hashes and catalog values computed; a batch prepared
in the serve (ingest_events, Amplitude, our own endpoint) without them. One group may hold both.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from telemetry_mcp.server.app import App
from telemetry_mcp.store.ingest import ID_HASH, Prepared, catalog_of


def _event(i: int, component: str) -> dict[str, object]:
    return {"event_id": f"e-{i}", "event_type": "component_load", "component": component, "user_id": f"u{i % 3}",
            "timestamp": datetime(2026, 11, 1, 12, i % 60, tzinfo=UTC).isoformat()}  # fmt: skip


def _hashed(p: Prepared) -> Prepared:
    """What a collector worker sends: the table with DuckDB's hash(event_id), and its catalog."""
    assert p.table is not None
    con = duckdb.connect()
    con.register("t", p.table)
    h = con.execute("SELECT hash(event_id) AS h FROM t").fetchnumpy()["h"]
    table = p.table.append_column(ID_HASH, pa.array(h, pa.uint64()))
    return Prepared(p.report, table, p.received_at, p.received, catalog_of(table))


def test_a_group_of_hashed_and_unhashed_batches_stores_every_row_once_with_duckdbs_hash(app: App) -> None:
    ing = app.ingestor
    hashed = _hashed(ing.prepare([_event(i, "Grid") for i in range(50)]))
    plain = ing.prepare([_event(i, "Modal") for i in range(40, 90)])  # e-40..e-49 repeat the first batch
    reports = ing.commit_group([hashed, plain])
    assert [r.accepted for r in reports] == [50, 40]
    assert reports[1].duplicates == 10
    rows = app.store.fetch(
        "SELECT count(*), count(DISTINCT event_id), bool_and(id_hash = hash(event_id)) FROM events"
    )
    assert rows == [(90, 90, True)]
    components = app.store.fetch("SELECT value FROM catalog WHERE kind = 'component' ORDER BY value")
    assert components == [("Grid",), ("Modal",)]


def test_hashed_batches_alone_keep_their_catalog_and_a_repeat_is_stored_once(app: App) -> None:
    ing = app.ingestor
    first = _hashed(ing.prepare([_event(i, "Tabs") for i in range(30)]))
    again = _hashed(ing.prepare([_event(i, "Toast") for i in range(20, 40)]))
    assert [r.accepted for r in ing.commit_group([first])] == [30]
    reports = ing.commit_group([again, _hashed(ing.prepare([_event(i, "Chart") for i in range(100, 110)]))])
    assert [(r.accepted, r.duplicates) for r in reports] == [(10, 10), (10, 0)]
    assert app.store.fetch("SELECT count(*), bool_and(id_hash = hash(event_id)) FROM events") == [(50, True)]
    # the catalog holds values of stored rows only: "Toast" came with the 10 new rows of `again`
    components = app.store.fetch("SELECT value FROM catalog WHERE kind = 'component' ORDER BY value")
    assert components == [("Chart",), ("Tabs",), ("Toast",)]
