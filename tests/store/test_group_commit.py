"""Group commit (the collector's writer): batches prepared in different places stored together.

A collector worker's batch arrives with its catalog values computed; a batch prepared in the serve
(ingest_events, Amplitude, our own endpoint) without them. One group may hold both.
"""

from __future__ import annotations

from datetime import UTC, datetime

from telemetry_mcp.server.app import App
from telemetry_mcp.store.ingest import Prepared, catalog_of


def _event(i: int, component: str) -> dict[str, object]:
    return {"event_id": f"e-{i}", "event_type": "component_load", "component": component, "user_id": f"u{i % 3}",
            "timestamp": datetime(2026, 11, 1, 12, i % 60, tzinfo=UTC).isoformat()}  # fmt: skip


def _with_catalog(p: Prepared) -> Prepared:
    """What a collector worker sends: the table and the catalog values of its rows."""
    assert p.table is not None
    return Prepared(p.report, p.table, p.received_at, p.received, catalog_of(p.table))


def test_a_group_of_batches_with_and_without_their_catalog_stores_every_row_once(app: App) -> None:
    ing = app.ingestor
    worker = _with_catalog(ing.prepare([_event(i, "Grid") for i in range(50)]))
    plain = ing.prepare([_event(i, "Modal") for i in range(40, 90)])  # e-40..e-49 repeat the first batch
    reports = ing.commit_group([worker, plain])
    assert [r.accepted for r in reports] == [50, 40]
    assert reports[1].duplicates == 10
    rows = app.store.fetch(
        "SELECT count(*), count(DISTINCT event_id), bool_and(id_hash = hash(event_id)) FROM events"
    )
    assert rows == [(90, 90, True)]
    components = app.store.fetch("SELECT value FROM catalog WHERE kind = 'component' ORDER BY value")
    assert components == [("Grid",), ("Modal",)]


def test_batches_with_their_catalog_and_a_repeat_store_each_row_once_and_only_stored_values(app: App) -> None:
    ing = app.ingestor
    first = _with_catalog(ing.prepare([_event(i, "Tabs") for i in range(30)]))
    again = _with_catalog(ing.prepare([_event(i, "Toast") for i in range(20, 40)]))
    assert [r.accepted for r in ing.commit_group([first])] == [30]
    reports = ing.commit_group(
        [again, _with_catalog(ing.prepare([_event(i, "Chart") for i in range(100, 110)]))]
    )
    assert [(r.accepted, r.duplicates) for r in reports] == [(10, 10), (10, 0)]
    assert app.store.fetch("SELECT count(*), bool_and(id_hash = hash(event_id)) FROM events") == [(50, True)]
    # the catalog holds values of stored rows only: "Toast" came with the 10 new rows of `again`
    components = app.store.fetch("SELECT value FROM catalog WHERE kind = 'component' ORDER BY value")
    assert components == [("Chart",), ("Tabs",), ("Toast",)]
