"""Rollups: what collect_metrics still knows about a range once its raw events are pruned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from conftest import TEST_SALT
from lifecycle_data import events
from telemetry_mcp.analytics import metrics
from telemetry_mcp.analytics.metrics import MetricsQuery, MetricsResult
from telemetry_mcp.config import load_settings
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.events.privacy import hash_user_id
from telemetry_mcp.store import Store
from telemetry_mcp.store.ingest import Ingestor
from telemetry_mcp.store.lifecycle import Maintenance, forget_users
from telemetry_mcp.store.rollups import ALPHA, Rollups, _kh, events_with_slots, partial_sql

START = datetime(2026, 3, 1)
NOW = START + timedelta(days=180)  # the controlled clock: raw cutoff = START + 90 days
SINCE, UNTIL = START.date().isoformat(), (NOW + timedelta(days=1)).date().isoformat()


@pytest.fixture
def store() -> Iterator[Store]:
    settings = load_settings(
        {"db": ":memory:", "threads": 2, "salt": TEST_SALT, "raw_retention_days": 90}, env={}
    )
    with Store(settings) as st:
        ingestor = Ingestor(st)
        data = events(30_000, START, days=180, users=300)
        for i in range(0, len(data), 10_000):
            assert ingestor.ingest(data[i : i + 10_000]).accepted == 10_000
        yield st


def _ask(store: Store, **args: object) -> MetricsResult:
    return metrics.run(store, MetricsQuery.model_validate({"since": SINCE, "until": UNTIL, **args}))


def _close(approx: float | None, exact: float | None, rel: float = ALPHA) -> bool:
    assert approx is not None and exact is not None
    return abs(approx - exact) <= rel * abs(exact) + 1e-9


def _raw_count(store: Store, where: str = "TRUE") -> int:
    return int(store.fetch(f"SELECT count(*) FROM events WHERE {where}")[0][0])


def test_pruned_events_still_answer_collect_metrics_from_rollups_within_the_stated_error(
    store: Store,
) -> None:
    exact = {
        "day": _ask(store, interval="day", limit=1000),
        "hour": _ask(store, interval="hour", since="2026-04-01", until="2026-04-03", limit=100),
        "fps": _ask(store, interval="week", metric="fps", group_by="platform", limit=1000),
        "berlin": _ask(store, interval="day", timezone="Europe/Berlin", component="Chart", limit=1000),
        "total": _ask(store, interval="total"),
    }
    assert not exact["day"].approximate
    cutoff = NOW - timedelta(days=90)
    assert _raw_count(store, f"ts < TIMESTAMP '{cutoff}'") > 14_000

    step = Maintenance(store, clock=lambda: NOW, max_chunks=None).step()
    assert step.raw_events > 14_000 and step.remaining == 0
    assert _raw_count(store, f"ts < TIMESTAMP '{cutoff}'") == 0

    for name, before in exact.items():
        after = _ask(
            store,
            **{
                "day": {"interval": "day", "limit": 1000},
                "hour": {"interval": "hour", "since": "2026-04-01", "until": "2026-04-03", "limit": 100},
                "fps": {"interval": "week", "metric": "fps", "group_by": "platform", "limit": 1000},
                "berlin": {
                    "interval": "day",
                    "timezone": "Europe/Berlin",
                    "component": "Chart",
                    "limit": 1000,
                },
                "total": {"interval": "total"},
            }[name],
        )
        assert after.approximate, name
        assert after.relative_error == ALPHA
        assert after.approximate_until is not None and after.approximate_until.startswith("2026-05-30")
        assert after.summary.startswith("Approximate: buckets before 2026-05-30")
        for key in ("count", "unique_users", "unique_sessions", "error_count", "values"):
            assert getattr(after.totals, key) == getattr(before.totals, key), (name, key)
        assert after.totals.min == before.totals.min and after.totals.max == before.totals.max
        assert _close(after.totals.sum, before.totals.sum, 1e-9)
        for p in ("p50", "p95", "p99"):
            assert _close(getattr(after.totals, p), getattr(before.totals, p)), (name, p)
        assert len(after.series) == len(before.series), name
        for a, b in zip(after.series, before.series, strict=True):
            assert (a.bucket_start, a.group, a.count, a.unique_users, a.unique_sessions, a.error_count) == (
                b.bucket_start, b.group, b.count, b.unique_users, b.unique_sessions, b.error_count,
            )  # fmt: skip
            for p in ("p50", "p95", "p99"):
                x, y = getattr(a, p), getattr(b, p)
                assert (x is None and y is None) or _close(x, y), (name, a.bucket_start, p)
        assert [(c.component, c.events, c.loads, c.errors, c.unique_users) for c in after.components] == [
            (c.component, c.events, c.loads, c.errors, c.unique_users) for c in before.components
        ]


def test_a_range_within_raw_data_answers_exactly_as_before_rollups_and_pruning(store: Store) -> None:
    args = [
        {"since": "2026-06-15", "interval": "day", "limit": 1000},
        {"since": "2026-07-01", "interval": "hour", "until": "2026-07-03", "group_by": "component"},
        {"since": "2026-06-01T06:00", "interval": "total", "metric": "fps"},
    ]
    before = [metrics.run(store, MetricsQuery.model_validate({"until": UNTIL, **a})) for a in args]
    Maintenance(store, clock=lambda: NOW, max_chunks=None).step()
    after = [metrics.run(store, MetricsQuery.model_validate({"until": UNTIL, **a})) for a in args]
    assert [r.model_dump() for r in after] == [r.model_dump() for r in before]
    assert not any(r.approximate for r in after)


def test_rollups_refuse_what_they_cannot_answer_and_say_what_would(store: Store) -> None:
    Maintenance(store, clock=lambda: NOW, max_chunks=None).step()
    with pytest.raises(InvalidArgument, match="minute needs raw events"):
        _ask(store, interval="minute", since="2026-03-02", until="2026-03-03")
    with pytest.raises(InvalidArgument, match=r"group_by on os needs raw events.*rollups answer for"):
        _ask(store, group_by="os")
    with pytest.raises(InvalidArgument, match="filter on user_id needs raw events"):
        _ask(store, filters=[{"field": "user_id", "op": "eq", "value": "x"}])


@pytest.mark.parametrize("clock_offset_hours", [0.0, 7.5])  # 7.5: pruning cuts into a day and an hour
def test_forget_takes_the_user_out_of_every_rollup_row_also_of_pruned_periods(
    store: Store, clock_offset_hours: float
) -> None:
    Maintenance(store, clock=lambda: NOW + timedelta(hours=clock_offset_hours), max_chunks=None).step()
    user = hash_user_id("user-3", store.salt)
    # as each table keeps it: the 64-bit hash per day, its high 32 bits per hour
    mine = dict(
        zip(
            ("rollup_hour", "rollup_day"),
            store.fetch("SELECT hash(?) >> 32, hash(?)", [user] * 2)[0],
            strict=True,
        )
    )
    present = "SELECT count(*) FROM {t} WHERE list_contains(users, ?)"
    assert all(store.fetch(present.format(t=t), [mine[t]])[0][0] > 0 for t in ("rollup_hour", "rollup_day"))
    before = _ask(store, interval="total")
    raw_theirs = _raw_count(store, f"user_id = '{user}'")
    assert raw_theirs > 0

    report = forget_users(store, ["user-3"])
    assert report.events == raw_theirs
    for t in ("rollup_hour", "rollup_day"):
        assert store.fetch(present.format(t=t), [mine[t]])[0][0] == 0, t
        assert store.fetch(f"SELECT count(*) FROM {t} WHERE n <= 0")[0][0] == 0
    after = _ask(store, interval="total")
    assert after.totals.unique_users == before.totals.unique_users - 1
    # their still-raw events leave the counts; those of pruned periods were counted anonymously
    assert after.totals.count == before.totals.count - raw_theirs
    for t in ("rollup_hour", "rollup_day"):  # and from the rollups themselves, cut buckets included
        assert store.fetch(f"SELECT sum(n) FROM {t}")[0][0] == 30_000 - raw_theirs, t
    # the wholly raw days of the rollups are exactly a fresh fold of what remains
    stored = "SELECT b, component, event_type, n, d_n, round(d_sum, 6), d_min, d_max, len(users), d_counts FROM ({}) "
    stored += "WHERE b >= TIMESTAMP '2026-05-31' ORDER BY ALL"
    fresh = partial_sql(events_with_slots([]), "day")
    assert store.fetch(stored.format("SELECT * FROM rollup_day")) == store.fetch(stored.format(fresh))


def _with_plans(n: int) -> list[dict[str, object]]:
    data = events(n, START, days=180, users=300)
    for i, e in enumerate(data):
        if i % 4:
            props = dict(e.get("properties") or {})  # type: ignore[call-overload]
            props["plan"] = ("free", "pro", "team")[i % 3]
            props["tier"] = f"t{i % 2}"
            e["properties"] = props
    return data


def _file_store(db: str, keys: tuple[str, ...]) -> Store:
    settings = load_settings(
        {"db": db, "threads": 2, "salt": TEST_SALT, "raw_retention_days": 90, "rollup_property_keys": keys},
        env={},
    )
    return Store(settings)


def _groups(r: MetricsResult) -> dict[str | None, tuple[int, int, float]]:
    """Per group: events, errors and the sum of the metric over the whole series."""
    totals: dict[str | None, list[float]] = {}
    for point in r.series:
        t = totals.setdefault(point.group, [0, 0, 0.0])
        t[0] += point.count
        t[1] += point.error_count
        t[2] += point.sum or 0.0
    return {g: (int(a), int(b), round(c, 3)) for g, (a, b, c) in totals.items()}


def test_a_configured_property_key_answers_from_rollups_past_the_raw_cutoff(tmp_path: object) -> None:
    db = f"{tmp_path}/plans.duckdb"
    by_plan = {"interval": "week", "group_by": "properties.plan", "limit": 1000}
    pro = {
        "interval": "day",
        "filters": [{"field": "properties.plan", "op": "eq", "value": "pro"}],
        "limit": 1000,
    }
    with _file_store(db, ("plan",)) as store:
        ingestor = Ingestor(store)
        data = _with_plans(20_000)
        for i in range(0, len(data), 10_000):
            assert ingestor.ingest(data[i : i + 10_000]).accepted == 10_000
        exact_groups, exact_pro = _ask(store, **by_plan), _ask(store, **pro)
        Maintenance(store, clock=lambda: NOW, max_chunks=None).step()
        assert _raw_count(store) < 12_000  # about half pruned
        grouped, filtered = _ask(store, **by_plan), _ask(store, **pro)
        assert grouped.approximate and filtered.approximate
        assert _groups(grouped) == _groups(exact_groups) and len(_groups(grouped)) == 4  # 3 plans and none
        assert filtered.totals.count == exact_pro.totals.count > 0
        assert filtered.totals.unique_users == exact_pro.totals.unique_users
        assert _close(filtered.totals.p95, exact_pro.totals.p95)
        with pytest.raises(InvalidArgument, match="add tier to rollup_property_keys"):
            _ask(store, interval="day", group_by="properties.tier")
        recent_tier = _ask(store, interval="day", group_by="properties.tier", since="2026-06-15")
        assert not recent_tier.approximate  # within raw data: exact, as before
    # a key configured later: known from the raw cutoff on (its rows refolded), not before
    with _file_store(db, ("tier", "plan")) as store:
        Rollups.refresh(store)
        since = store.fetch("SELECT value FROM meta WHERE key = 'rollup_property_slots'")[0][0]
        assert '"tier"' in since and _groups(_ask(store, **by_plan)) == _groups(exact_groups)
        with pytest.raises(InvalidArgument, match="only from 2026-05-30"):
            _ask(store, interval="day", group_by="properties.tier")
        tier = _ask(store, interval="week", group_by="properties.tier", since="2026-05-30", limit=1000)
        raw = store.fetch(
            "SELECT json_extract_string(properties, '$.tier') AS t, count(*) FROM events "
            "WHERE ts >= '2026-05-30' AND ts < ? GROUP BY 1",
            [datetime.fromisoformat(UNTIL)],
        )
        assert {g: c for g, (c, _, _) in _groups(tier).items()} == {t: c for t, c in raw}
        # ten days later those days are pruned too: the refolded rollups answer for tier
        Maintenance(store, clock=lambda: NOW + timedelta(days=10), max_chunks=None).step()
        later = _ask(store, interval="week", group_by="properties.tier", since="2026-05-30", limit=1000)
        assert later.approximate and _groups(later) == _groups(tier)


def test_migration_011_converts_rollups_of_the_earlier_layout_to_the_same_rows(tmp_path: object) -> None:
    import duckdb

    db = f"{tmp_path}/v10.duckdb"
    order = "ORDER BY b, event_type, component, name, service_version, platform, page, kh"
    with _file_store(db, ()) as store:
        data = events(5_000, START, days=20, users=50)
        Ingestor(store).ingest(data)
        Rollups.refresh(store)
        want = {t: store.fetch(f"SELECT * FROM {t} {order}") for t in ("rollup_hour", "rollup_day")}
    con = duckdb.connect(db)  # the layout of migration 010: 64-bit hourly sets, min/max in every row
    old_kh = "hash(b, event_type, component, name, service_version, platform, framework, page)"
    for t in ("rollup_hour", "rollup_day"):
        widen = "lambda x: (x::UBIGINT << 32) | 12345" if t == "rollup_hour" else "lambda x: x"
        con.execute(f"DROP INDEX {t}_b")
        con.execute(
            f"CREATE TABLE {t}_old AS SELECT * EXCLUDE (p1, p2, p3) REPLACE ({old_kh} AS kh, "
            f"list_transform(users, {widen})::UBIGINT[] AS users, "
            f"list_transform(sessions, {widen})::UBIGINT[] AS sessions, "
            "CASE WHEN d_n = 1 THEN d_sum ELSE d_min END AS d_min, CASE WHEN d_n = 1 THEN d_sum ELSE d_max END AS d_max, "
            f"CASE WHEN v_n = 1 THEN v_sum ELSE v_min END AS v_min, CASE WHEN v_n = 1 THEN v_sum ELSE v_max END AS v_max) FROM {t}"
        )
        con.execute(f"DROP TABLE {t}; ALTER TABLE {t}_old RENAME TO {t}; CREATE INDEX {t}_b ON {t} (b)")
    assert (
        con.execute("SELECT count(*) FROM rollup_hour WHERE d_n = 1 AND d_min IS NOT NULL").fetchall()[0][0]
        > 0
    )
    con.execute("DELETE FROM schema_migrations WHERE name = '011_smaller_rollups'")
    con.close()
    with _file_store(db, ()) as store:  # 011 runs again: the rows come back exactly
        got = {t: store.fetch(f"SELECT * FROM {t} {order}") for t in ("rollup_hour", "rollup_day")}
        assert got == want  # kh included: the row identity refresh and forget recompute
        for t in ("rollup_hour", "rollup_day"):
            assert store.fetch(f"SELECT count(*) FROM {t} WHERE kh <> {_kh()}")[0][0] == 0
        assert store.fetch("SELECT data_type FROM duckdb_columns() WHERE table_name = 'rollup_hour' "
                           "AND column_name = 'users'")[0][0] == "UINTEGER[]"  # fmt: skip
