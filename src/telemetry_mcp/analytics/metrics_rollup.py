"""collect_metrics past the raw cutoff: buckets before it from the rollups, the rest from raw events.

The answer is split at the first rollup bucket start at or after the raw cutoff (`split`): rollup
rows for earlier buckets, and for later ones the raw events folded on the fly into the same shape,
so that one merge gives every series bucket and the totals. Counts, errors and sum/avg/min/max are
exact; distinct users and sessions are unions of hash sets (exact from rollup_day, 32-bit hashes
from rollup_hour: an undercount of about n / 2^33); p50/p95/p99 come from the merged DDSketch
(relative error ≤ ALPHA). Configured property keys (rollup_property_keys) are dimensions too. Day/week/month/total buckets in UTC over a range
from midnight to midnight read rollup_day; everything else reads rollup_hour. A range edge inside
an hour counts that whole hour of the rollups.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from telemetry_mcp.analytics.common import FIELD_COLUMNS, Params, TimeRange, bucket_sql, field_sql, iso_utc
from telemetry_mcp.errors import InvalidArgument
from telemetry_mcp.store import Store
from telemetry_mcp.store.rollups import (
    ALPHA,
    GRAINS,
    KEYS,
    PROPERTY_SLOTS,
    Slot,
    ceil_to,
    events_with_slots,
    high,
    low,
    partial_sql,
    quantiles,
    read_slots,
)  # fmt: skip

ROLLUP_FIELDS = sorted(f for f, c in FIELD_COLUMNS.items() if c in KEYS)


def property_slots(store: Store) -> list[Slot]:
    """The property keys the rollups keep (the setting rollup_property_keys, as last folded)."""
    cur = store.cursor()
    try:
        return read_slots(cur)
    finally:
        cur.close()


def grain_of(interval: str, tr: TimeRange) -> str:
    if interval == "minute":
        raise InvalidArgument(
            "interval minute needs raw events, which are pruned before the raw cutoff; use hour or coarser, "
            "or move since after the cutoff"
        )
    midnights = all(t == t.replace(hour=0, minute=0, second=0, microsecond=0) for t in (tr.since, tr.until))
    return "day" if tr.is_utc and midnights and interval in ("day", "week", "month", "total") else "hour"


def check_fields(
    group_by: str | None, filter_fields: list[str], cutoff: datetime, slots: Sequence[Slot], since: datetime
) -> None:
    """Rollups keep only their key columns and the configured property keys: refuse anything else
    (with what would work)."""
    kept = {f"properties.{s.key}": s for s in slots if s.key is not None}
    for what, field in [("group_by", group_by), *(("filter", f) for f in filter_fields)]:
        if field is None or field in ROLLUP_FIELDS:
            continue
        slot = kept.get(field)
        if slot is not None and (slot.since is None or since >= datetime.fromisoformat(slot.since)):
            continue
        if slot is not None:
            raise InvalidArgument(
                f"{what} on {field}: rollups know this property key only from {slot.since}Z (it was added to "
                f"rollup_property_keys after events before it were pruned); move since to {slot.since}Z or later"
            )
        dims = [*ROLLUP_FIELDS, *kept]
        hint = (
            f"; to keep {field} past the raw cutoff, add {field.removeprefix('properties.')} to "
            "rollup_property_keys (TELEMETRY_MCP_ROLLUP_PROPERTY_KEYS, at most 3 keys)"
            if field.startswith("properties.")
            else ""
        )
        raise InvalidArgument(
            f"{what} on {field} needs raw events, kept only from {iso_utc(cutoff)} (raw_retention_days); "
            f"before that, rollups answer for {', '.join(dims)}; or move since after the cutoff{hint}"
        )


def properties_sql(slots: Sequence[Slot], p: Params) -> str:
    """SQL: a JSON `properties` of a rollup-shaped row, from its slots (so that filters and group_by
    on properties.<key> read rollup rows as they read events)."""
    pairs = [
        f"{p.add(s.key)}, {col}" for s, col in zip(slots, PROPERTY_SLOTS, strict=False) if s.key is not None
    ]
    return f"json_object({', '.join(pairs)})" if pairs else "NULL::JSON"


def parts_sql(tr: TimeRange, grain: str, split: datetime, p: Params, slots: Sequence[Slot]) -> str:
    """Rollup-shaped rows of the range: rollup rows before `split`, raw events folded from it on;
    each with a `properties` of its property slots."""
    table = GRAINS[grain]  # from the fixed mapping
    since, until = p.add(tr.since), p.add(tr.until)
    cut = p.add(split)
    raw = events_with_slots(
        slots, f"ts >= greatest({since}::TIMESTAMP, {cut}::TIMESTAMP) AND ts < {until}::TIMESTAMP"
    )
    props = properties_sql(slots, p)
    return f"""
        SELECT *, {props} AS properties FROM (
            SELECT * FROM {table}
            WHERE b >= date_trunc('{grain}', {since}::TIMESTAMP) AND b < {until}::TIMESTAMP AND b < {cut}::TIMESTAMP
            UNION ALL
            SELECT * FROM ({partial_sql(raw, grain)})
        )
    """


def aggregate_sql(parts: str, bucket: str, group: str, where: str, prefix: str, grouped: bool) -> str:
    """Per (bucket, group) — or, not grouped, the whole range — the merged stats and sketch."""
    keys = "ob, og, " if grouped else ""
    by = "GROUP BY ob, og" if grouped else ""
    on = "agg.ob = skl.ob AND agg.og IS NOT DISTINCT FROM skl.og" if grouped else "TRUE"
    m = prefix
    return f"""
    WITH parts AS ({parts}),
    sel AS (
        SELECT ob, og, n, errors, users, sessions, {m}_n AS nv, {m}_sum AS s, {low(m)} AS lo, {high(m)} AS hi,
               {m}_zeros AS z, {m}_keys AS ks, {m}_counts AS cs
        FROM (SELECT {bucket} AS ob, {group} AS og, * FROM parts) WHERE TRUE {where}
    ),
    agg AS (
        SELECT {keys} coalesce(sum(n), 0) AS n, coalesce(sum(errors), 0) AS errors,
               coalesce(len(list_distinct(flatten(list(users)))), 0) AS users,
               coalesce(len(list_distinct(flatten(list(sessions)))), 0) AS sessions,
               coalesce(sum(nv), 0) AS nv, sum(s) AS s, min(lo) AS lo, max(hi) AS hi, coalesce(sum(z), 0) AS z
        FROM sel {by}
    ),
    sk AS (SELECT {keys} k, sum(c)::BIGINT AS c FROM (SELECT ob, og, unnest(ks) AS k, unnest(cs) AS c FROM sel)
           GROUP BY {keys} k),
    skl AS (SELECT {keys} list(k ORDER BY k) AS ks, list(c ORDER BY k) AS cs FROM sk {by})
    SELECT agg.*, skl.ks, skl.cs FROM agg LEFT JOIN skl ON {on}
    """


def components_sql(parts: str, where: str) -> str:
    return f"""
    WITH parts AS ({parts})
    SELECT component,
           sum(n) AS events,
           coalesce(sum(n) FILTER (WHERE event_type = 'component_load'), 0) AS loads,
           coalesce(sum(n) FILTER (WHERE event_type = 'animation_play'), 0) AS plays,
           sum(errors) AS errors,
           sum(d_sum) FILTER (WHERE event_type = 'component_load')
               / nullif(sum(d_n) FILTER (WHERE event_type = 'component_load'), 0) AS avg_load_ms,
           sum(v_sum) FILTER (WHERE event_type = 'performance' AND name = 'fps')
               / nullif(sum(v_n) FILTER (WHERE event_type = 'performance' AND name = 'fps'), 0) AS avg_fps,
           len(list_distinct(flatten(list(users)))) AS unique_users,
           max(b) AS last_seen
    FROM parts
    WHERE component IS NOT NULL {where}
    GROUP BY component
    ORDER BY loads DESC, events DESC, component
    """


def row_stats(r: dict[str, Any]) -> dict[str, Any]:
    """A merged row in the shape metrics._stats reads (b, g, n, users, sessions, errors, nv, s, a, lo, hi, q)."""
    nv = int(r["nv"] or 0)
    q = quantiles(r["ks"] or [], r["cs"] or [], int(r["z"] or 0), (0.5, 0.95, 0.99)) if nv else None
    return {
        "b": r.get("ob"),
        "g": r.get("og"),
        "n": int(r["n"] or 0),
        "users": int(r["users"] or 0),
        "sessions": int(r["sessions"] or 0),
        "errors": int(r["errors"] or 0),
        "nv": nv,
        "s": r["s"],
        "a": (r["s"] / nv) if nv and r["s"] is not None else None,
        "lo": r["lo"],
        "hi": r["hi"],
        "q": q,
    }


def fetch(
    store: Store, tr: TimeRange, interval: str, group_by: str | None, metric_column: str,
    selection: Any, cutoff: datetime,
) -> tuple[datetime, dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """(split, the totals row, every (bucket, group) row) of the approximate answer.

    `selection(p)` returns the ' AND …' conditions with its values bound in p.
    """
    grain = grain_of(interval, tr)
    split = ceil_to(cutoff, grain)
    prefix = "d" if metric_column == "duration_ms" else "v"
    slots = property_slots(store)
    out: list[list[dict[str, Any]]] = []
    for grouped in (False, True):
        p = Params()
        parts = parts_sql(tr, grain, split, p, slots)
        bucket = bucket_sql(interval, tr, p, column="b")
        group = f"CAST({field_sql(group_by, p)} AS VARCHAR)" if group_by else "NULL::VARCHAR"
        where = selection(p)
        sql = aggregate_sql(parts, bucket, group, where, prefix, grouped)
        out.append([row_stats(r) for r in store.fetch_dicts(sql, p.values)])
    head, rows = out[0][0], out[1]
    rows.sort(key=lambda r: (r["b"], r["g"] is None, r["g"] or ""))
    return split, head, rows


def components(
    store: Store, tr: TimeRange, interval: str, cutoff: datetime, where: Any
) -> list[dict[str, Any]]:
    grain = grain_of(interval, tr)
    p = Params()
    parts = parts_sql(tr, grain, ceil_to(cutoff, grain), p, property_slots(store))
    return store.fetch_dicts(components_sql(parts, where(p)), p.values)


RELATIVE_ERROR = ALPHA
