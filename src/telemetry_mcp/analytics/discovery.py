"""describe_events: what is in the store, so an agent knows what to ask for.

Per list (event types, names, components, service releases, platforms, frameworks, property keys):
the values with their event counts and first/last seen, most frequent first, bounded by `limit`.
Property keys are the top-level keys of `properties` (one count per event that has the key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from telemetry_mcp.analytics.common import (
    DEFAULT_LIMIT,
    Params,
    clip,
    iso_utc,
    parse_instant,
    parse_range,
    utcnow,
)
from telemetry_mcp.store import Store

# list name → the column it groups by (allow-listed identifiers)
COLUMN_LISTS: dict[str, str] = {
    "event_types": "event_type",
    "names": "name",
    "components": "component",
    "services": "service",
    "platforms": "platform",
    "frameworks": "framework",
}


class ValueCount(BaseModel):
    value: str
    count: int = Field(description="events with this value")
    first_seen: str
    last_seen: str


class ServiceCount(ValueCount):
    """`value` is the service; each (service, service_version) pair is its own row."""

    service_version: str | None


class ValueList(BaseModel):
    values: list[ValueCount]
    distinct: int = Field(description="distinct values in the range (the list shows at most `limit`)")
    truncated: bool


class ServiceList(BaseModel):
    values: list[ServiceCount]
    distinct: int = Field(description="distinct (service, service_version) pairs in the range")
    truncated: bool


class CatalogResult(BaseModel):
    since: str | None = Field(description="range start (UTC); null = all time")
    until: str | None = Field(description="range end, exclusive (UTC); null = no bound")
    total_events: int
    first_event: str | None
    last_event: str | None
    event_types: ValueList
    names: ValueList
    components: ValueList
    services: ServiceList = Field(description="service releases: (service, service_version) pairs")
    platforms: ValueList
    frameworks: ValueList
    property_keys: ValueList = Field(description="top-level keys of properties")
    truncated: bool = Field(description="true when any list was cut at limit")
    summary: str


def bounds(
    since: str | None, until: str | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """since/until as naive UTC; since omitted = all time (no lower bound)."""
    now = now or utcnow()
    if since is not None or (until is not None and not until.strip()):  # blanks are refused there
        tr = parse_range(since, until, "UTC", now=now)
        return tr.since, tr.until
    if until:
        return None, parse_instant(until, ZoneInfo("UTC"), now, "until")
    return None, None


def where_sql(start: datetime | None, end: datetime | None, p: Params) -> str:
    parts = ["TRUE"]
    if start is not None:
        parts.append(f"ts >= {p.add(start)}::TIMESTAMP")
    if end is not None:
        parts.append(f"ts < {p.add(end)}::TIMESTAMP")
    return " AND ".join(parts)


def columns_sql(where: str, limit: int, p: Params) -> str:
    """Every column list (a GROUP BY each: faster than GROUPING SETS here), the top `limit` of each, and
    the overall totals."""
    parts = [
        f"SELECT 'total' AS list, NULL AS value, NULL AS service_version, count(*) AS n, min(ts) AS first_seen, "
        f"max(ts) AS last_seen FROM events WHERE {where}"
    ]
    for name, col in COLUMN_LISTS.items():
        version = "service_version" if col == "service" else "NULL"
        parts.append(
            f"SELECT '{name}', {col}, {version}, count(*), min(ts), max(ts) FROM events "
            f"WHERE {col} IS NOT NULL AND {where} GROUP BY ALL"
        )
    union = "\n            UNION ALL ".join(parts)
    return f"""
        WITH g AS (
            {union}
        ), kept AS (
            SELECT *, row_number() OVER (PARTITION BY list ORDER BY n DESC, value, service_version) AS rk,
                   count(*) OVER (PARTITION BY list) AS distinct_values
            FROM g
        )
        SELECT list, value, service_version, n, first_seen, last_seen, distinct_values
        FROM kept WHERE rk <= {p.add(limit)} ORDER BY list, rk"""


def property_keys_sql(where: str, limit: int, p: Params) -> str:
    return f"""
        WITH k AS (
            SELECT key, count(*) AS n, min(ts) AS first_seen, max(ts) AS last_seen
            FROM (SELECT unnest(json_keys(properties)) AS key, ts FROM events
                  WHERE properties IS NOT NULL AND {where})
            GROUP BY key
        )
        SELECT 'property_keys' AS list, key, NULL AS service_version, n, first_seen, last_seen,
               count(*) OVER () AS distinct_values
        FROM k ORDER BY n DESC, key LIMIT {p.add(limit)}"""


def run(
    store: Store,
    since: str | None = None,
    until: str | None = None,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
) -> CatalogResult:
    """Describe the events in [since, until) (default: everything stored)."""
    start, end = bounds(since, until, now)
    p = Params()
    rows = store.fetch(columns_sql(where_sql(start, end, p), limit, p), p.values)
    p = Params()
    rows += store.fetch(property_keys_sql(where_sql(start, end, p), limit, p), p.values)

    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    total = grouped.get("total", [("total", None, None, 0, None, None, 1)])[0]

    def value_list(name: str) -> ValueList:
        items = grouped.get(name, [])
        distinct = int(items[0][6]) if items else 0
        return ValueList(
            values=[
                ValueCount(value=str(v), count=int(n), first_seen=_iso(f), last_seen=_iso(la))
                for _, v, _, n, f, la, _ in items
            ],
            distinct=distinct,
            truncated=distinct > len(items),
        )

    services = grouped.get("services", [])
    service_distinct = int(services[0][6]) if services else 0
    lists = {name: value_list(name) for name in (*COLUMN_LISTS, "property_keys") if name != "services"}
    result = CatalogResult(
        since=iso_utc(start),
        until=iso_utc(end),
        total_events=int(total[3]),
        first_event=iso_utc(total[4]),
        last_event=iso_utc(total[5]),
        services=ServiceList(
            values=[
                ServiceCount(
                    value=str(v), service_version=sv, count=int(n), first_seen=_iso(f), last_seen=_iso(la)
                )
                for _, v, sv, n, f, la, _ in services
            ],
            distinct=service_distinct,
            truncated=service_distinct > len(services),
        ),
        truncated=False,
        summary="",
        **lists,
    )
    result.truncated = result.services.truncated or any(v.truncated for v in lists.values())
    result.summary = summarize(result)
    return result


def _iso(dt: datetime) -> str:
    return iso_utc(dt) or ""


def summarize(r: CatalogResult) -> str:
    if not r.total_events:
        where = "in this range" if r.since or r.until else "yet"
        return f"No events stored {where}; submit some with ingest_events or `telemetry-mcp import`."

    def top(lst: ValueList, n: int = 5) -> str:
        shown = ", ".join(f"{v.value} ({v.count:,})" for v in lst.values[:n])
        more = f" and {lst.distinct - n} more" if lst.distinct > n else ""
        return f"{shown}{more}" if shown else "none"

    releases = ", ".join(
        f"{s.value} {s.service_version}" if s.service_version else s.value for s in r.services.values[:4]
    )
    text = (
        f"{r.total_events:,} events from {r.first_event} to {r.last_event}. "
        f"{r.event_types.distinct} event types: {top(r.event_types)}. "
        f"{r.components.distinct} components: {top(r.components)}. "
        f"{r.names.distinct} names; {r.property_keys.distinct} property keys: {top(r.property_keys, 4)}. "
        f"Releases: {releases or 'none'}."
    )
    return clip(text)
