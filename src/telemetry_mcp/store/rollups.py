"""Hourly and daily rollups of the events: what the store still knows once raw events are pruned.

One row per (UTC bucket start, event_type, component, name, service_version, platform, framework,
page, p1, p2, p3) in `rollup_hour` and `rollup_day` (migrations 010, 011); p1-p3 hold the values
of the property keys configured in `rollup_property_keys` (see Slot, sync_slots):

- counts: events, errors (severity error or critical), and per metric (duration_ms, value) the
  count/sum/min/max of its non-NULL values and how many were zero;
- a mergeable quantile sketch per metric (DDSketch style): a value x ≠ 0 falls in bucket
  i = ceil(log_γ |x|), γ = (1 + α) / (1 − α), α = 0.01; the sketch is two parallel lists (bucket
  keys ascending, counts), negative values keyed `NEGATIVE_OFFSET + i`, zeros counted apart.
  Every bucket's representative 2γ^i / (γ + 1) is within α (1 %) of each value in it; merging two
  sketches adds their counts per key;
- the distinct users and sessions of the bucket as sets of 64-bit keys (`hash(user_id)`, the
  `session_key` itself since migration 006; merging is a distinct union): as they are per day (LIST
  of UBIGINT), per hour the high 32 bits of their hash (UINTEGER: half the hourly table's largest
  columns; a union of n distinct values undercounts by about n / 2^33; hashed first because a derived
  session key's high bits are the actor's, xor a slowly moving clock). Sets, not HyperLogLog:
  distinct counts over any union of buckets stay (near) exact, and forget can take one user out;
- a metric with one value in the row stores no min/max: its sum is both (`low`, `high` read it).

`refresh` folds every event with seq above the last folded one (`meta.rollups_seq`) into both
tables: the new events are aggregated per key in DuckDB, merged with the existing rows of the keys
they touch, and those keys are replaced (delete + insert) inside one transaction.
Identifiers come from the fixed tuples below; every value is a bound parameter.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from telemetry_mcp.store.db import Store
from telemetry_mcp.store.transaction import transaction

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
NEGATIVE_OFFSET = 1_000_000  # |log_γ| of any finite double is below 40,000
# p1-p3: the values of the property keys the store is configured to keep (rollup_property_keys; which
# key each slot holds, and since when, is in meta `rollup_property_slots`)
PROPERTY_SLOTS = ("p1", "p2", "p3")
PROPERTY_VALUE_CHARS = 100
KEYS = (
    "event_type",
    "component",
    "name",
    "service_version",
    "platform",
    "framework",
    "page",
    *PROPERTY_SLOTS,
)
META_SLOTS = "rollup_property_slots"
GRAINS = {"hour": "rollup_hour", "day": "rollup_day"}
# The user and session sets: 64-bit hashes per day, their high 32 bits per hour (half the bytes of the
# hourly table's largest columns; a union of n distinct values undercounts by about n / 2^33).
SET_TYPES = {"rollup_hour": "UINTEGER", "rollup_day": "UBIGINT"}
META_SEQ = "rollups_seq"
META_CUTOFF = "raw_cutoff"  # events before this (UTC, ISO) were pruned: only rollups know them
ERRORS_SQL = "severity IN ('error', 'critical')"

# Every column of a rollup row after b and the keys, in table order.
STAT_COLUMNS = ("n", "errors", "d_n", "d_sum", "d_min", "d_max", "d_zeros", "v_n", "v_sum", "v_min", "v_max",
                "v_zeros", "users", "sessions", "d_keys", "d_counts", "v_keys", "v_counts")  # fmt: skip

ROLLUP_DDL = """
CREATE TABLE {table} (
    b TIMESTAMP NOT NULL, event_type VARCHAR, component VARCHAR, name VARCHAR, service_version VARCHAR,
    platform VARCHAR, framework VARCHAR, page VARCHAR, p1 VARCHAR, p2 VARCHAR, p3 VARCHAR,
    n BIGINT NOT NULL, errors BIGINT NOT NULL,
    d_n BIGINT NOT NULL, d_sum DOUBLE, d_min DOUBLE, d_max DOUBLE, d_zeros BIGINT NOT NULL,
    v_n BIGINT NOT NULL, v_sum DOUBLE, v_min DOUBLE, v_max DOUBLE, v_zeros BIGINT NOT NULL,
    users {set_type}[] NOT NULL, sessions {set_type}[] NOT NULL,
    d_keys INTEGER[] NOT NULL, d_counts BIGINT[] NOT NULL, v_keys INTEGER[] NOT NULL, v_counts BIGINT[] NOT NULL,
    kh UBIGINT NOT NULL  -- hash of (b, keys): the row's identity for merging
)
"""


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in GRAINS.values():
        con.execute(ROLLUP_DDL.format(table=table, set_type=SET_TYPES[table]))
        con.execute(f"CREATE INDEX {table}_b ON {table} (b)")
    con.execute(f"INSERT INTO meta VALUES ('{META_SEQ}', '0') ON CONFLICT DO NOTHING")


@dataclass(frozen=True)
class Slot:
    """One property slot: the key it holds (None: free) and the first bucket start (UTC, ISO) whose rows
    know it (None: every row; a key configured after pruning is unknown to the pruned buckets)."""

    key: str | None
    since: str | None = None


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-.$@ :/]{1,128}$")


def _json_path(key: str) -> str:
    if not _SAFE_KEY.match(key):  # checked by the settings already: never a quote in SQL text
        raise ValueError(f"property key {key!r} is not allowed")
    return "'$." + ".".join(f'"{part}"' for part in key.split(".")) + "'"


def events_with_slots(slots: Sequence[Slot], where: str = "TRUE") -> str:
    """SQL (a subquery): the events matching `where`, with p1-p3 holding their slots' property values."""
    exprs = [
        f"left(json_extract_string(properties, {_json_path(s.key)}), {PROPERTY_VALUE_CHARS})"
        if s.key is not None
        else "NULL::VARCHAR"
        for s in slots
    ]
    exprs += ["NULL::VARCHAR"] * (len(PROPERTY_SLOTS) - len(exprs))
    cols = ", ".join(f"{e} AS {c}" for e, c in zip(exprs, PROPERTY_SLOTS, strict=True))
    return f"(SELECT *, {cols} FROM events WHERE {where})"


def read_slots(cur: duckdb.DuckDBPyConnection) -> list[Slot]:
    value = _meta_get(cur, META_SLOTS)
    stored = json.loads(value) if value else []
    slots = [Slot(d.get("key"), d.get("since")) for d in stored]
    return slots + [Slot(None)] * (len(PROPERTY_SLOTS) - len(slots))


def sync_slots(cur: duckdb.DuckDBPyConnection, configured: Sequence[str]) -> list[Slot]:
    """Make the stored slots match the configured keys (inside the caller's transaction).

    A slot whose key changed is redone: rows of buckets wholly after the raw cutoff (all raw events
    still there) are refolded from the events; rows before it lose the slot's old value (merged), and
    the new key is known only from the cutoff on (`since`).
    """
    current = read_slots(cur)
    if sorted(s.key for s in current if s.key is not None) == sorted(configured):
        return current
    wanted = [s.key for s in current if s.key in configured]
    keys: list[str | None] = [s.key if s.key in configured else None for s in current]
    for key in configured:
        if key not in wanted:
            keys[keys.index(None)] = key
    changed = [i for i, (s, k) in enumerate(zip(current, keys, strict=True)) if s.key != k]
    cutoff_text = _meta_get(cur, META_CUTOFF)
    cutoff = None if cutoff_text is None else datetime.fromisoformat(cutoff_text)
    folded = folded_seq(cur)
    since = None if cutoff is None else ceil_to(cutoff, "day").isoformat()
    slots = [
        Slot(k, (since if i in changed else current[i].since) if k is not None else None)
        for i, k in enumerate(keys)
    ]
    for grain, table in GRAINS.items():
        split = None if cutoff is None else ceil_to(cutoff, grain)
        after = "TRUE" if split is None else "b >= ?::TIMESTAMP"
        after_params = [] if split is None else [split]
        if split is not None:  # the rows before: the changed slots forgotten, rows merged again
            nulled = ", ".join(f"NULL::VARCHAR AS {PROPERTY_SLOTS[i]}" for i in changed)
            rekeyed = f"SELECT * REPLACE ({_kh()} AS kh) FROM (SELECT * REPLACE ({nulled}) FROM {table} WHERE b < ?)"
            cur.execute(f"CREATE OR REPLACE TEMP TABLE _slots_before AS {merge_sql(rekeyed)}", [split])
            cur.execute(f"DELETE FROM {table} WHERE b < ?", [split])
            cur.execute(f"INSERT INTO {table} SELECT * FROM _slots_before")
            cur.execute("DROP TABLE _slots_before")
        cur.execute(f"DELETE FROM {table} WHERE {after}", after_params)
        where = "seq <= ?" + ("" if split is None else " AND ts >= ?")
        source = events_with_slots(slots, where)
        cur.execute(f"INSERT INTO {table} {partial_sql(source, grain)}", [folded, *after_params])
    cur.execute(
        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
        [META_SLOTS, json.dumps([{"key": sl.key, "since": sl.since} for sl in slots])],
    )
    return slots


def sketch_key_sql(x: str) -> str:
    """SQL: the sketch key of a non-zero value `x` (a column name from this module)."""
    i = f"CAST(ceil(ln(abs({x})) / {LN_GAMMA!r}) AS INTEGER)"
    return f"CASE WHEN {x} > 0 THEN {i} ELSE {NEGATIVE_OFFSET} + {i} END"


def _kh(prefix: str = "") -> str:
    return "hash(" + ", ".join(f"{prefix}{c}" for c in ("b", *KEYS)) + ")"


def partial_sql(source: str, grain: str) -> str:
    """SQL of rollup-shaped rows (b, keys, stats, kh) aggregating the events of `source` (a subquery)."""
    keys = ", ".join(KEYS)
    base = f"""SELECT date_trunc('{grain}', ts) AS b, {keys}, severity, duration_ms AS d, value AS v,
               {set_value("CASE WHEN user_id IS NOT NULL THEN hash(user_id) END", grain)} AS u,
               {session_value(grain)} AS sk
        FROM {source} src"""
    return f"""
    WITH base AS (SELECT *, {_kh()} AS kh FROM ({base})),
    scal AS (
        SELECT kh, any_value(b) AS b, {", ".join(f"any_value({c}) AS {c}" for c in KEYS)},
               count(*) AS n, count(*) FILTER (WHERE {ERRORS_SQL}) AS errors,
               count(d) AS d_n, sum(d) AS d_sum, {_extreme("min", "d")} AS d_min, {_extreme("max", "d")} AS d_max,
               count(*) FILTER (WHERE d = 0) AS d_zeros,
               count(v) AS v_n, sum(v) AS v_sum, {_extreme("min", "v")} AS v_min, {_extreme("max", "v")} AS v_max,
               count(*) FILTER (WHERE v = 0) AS v_zeros,
               coalesce(list_distinct(list(u)), []) AS users, coalesce(list_distinct(list(sk)), []) AS sessions
        FROM base GROUP BY kh
    ),
    dh AS (SELECT kh, {sketch_key_sql("d")} AS k, count(*) AS c FROM base WHERE d <> 0 GROUP BY kh, k),
    vh AS (SELECT kh, {sketch_key_sql("v")} AS k, count(*) AS c FROM base WHERE v <> 0 GROUP BY kh, k),
    dl AS (SELECT kh, list(k ORDER BY k) AS ks, list(c ORDER BY k) AS cs FROM dh GROUP BY kh),
    vl AS (SELECT kh, list(k ORDER BY k) AS ks, list(c ORDER BY k) AS cs FROM vh GROUP BY kh)
    SELECT scal.b, {", ".join(f"scal.{c}" for c in KEYS)}, n, errors, d_n, d_sum, d_min, d_max, d_zeros,
           v_n, v_sum, v_min, v_max, v_zeros, users, sessions,
           coalesce(dl.ks, []) AS d_keys, coalesce(dl.cs, [])::BIGINT[] AS d_counts,
           coalesce(vl.ks, []) AS v_keys, coalesce(vl.cs, [])::BIGINT[] AS v_counts, scal.kh
    FROM scal LEFT JOIN dl ON scal.kh = dl.kh LEFT JOIN vl ON scal.kh = vl.kh
    """


def set_value(hash_sql: str, grain: str) -> str:
    """SQL: a 64-bit hash as the grain's user/session sets keep it (hourly: its high 32 bits)."""
    return f"({hash_sql} >> 32)::UINTEGER" if grain == "hour" else hash_sql


def session_value(grain: str) -> str:
    """SQL: a session's key as the grain's sets keep it (per day the 64-bit key itself)."""
    if grain == "hour":
        return set_value("CASE WHEN session_key IS NOT NULL THEN hash(session_key) END", grain)
    return "session_key"


def _extreme(fn: str, x: str) -> str:
    # A single value is its own min and max, and the sum says it: NULL saves the hourly table's
    # many one-event rows two doubles each (read back by low/high).
    return f"CASE WHEN count({x}) <> 1 THEN {fn}({x}) END"


def low(m: str) -> str:
    """SQL: a rollup row's min of metric m (d or v): stored, or its sum when it has one value."""
    return f"CASE WHEN {m}_n = 1 THEN {m}_sum ELSE {m}_min END"


def high(m: str) -> str:
    """SQL: a rollup row's max of metric m (d or v): stored, or its sum when it has one value."""
    return f"CASE WHEN {m}_n = 1 THEN {m}_sum ELSE {m}_max END"


def merge_sql(parts: str) -> str:
    """SQL merging rollup-shaped rows of `parts` (a subquery) per kh: sums, min/max, unions, sketches."""
    return f"""
    WITH p AS (SELECT * FROM ({parts})),
    scal AS (
        SELECT kh, any_value(b) AS b, {", ".join(f"any_value({c}) AS {c}" for c in KEYS)},
               sum(n)::BIGINT AS n, sum(errors)::BIGINT AS errors,
               sum(d_n)::BIGINT AS d_n, sum(d_sum) AS d_sum, min({low("d")}) AS d_min, max({high("d")}) AS d_max,
               sum(d_zeros)::BIGINT AS d_zeros,
               sum(v_n)::BIGINT AS v_n, sum(v_sum) AS v_sum, min({low("v")}) AS v_min, max({high("v")}) AS v_max,
               sum(v_zeros)::BIGINT AS v_zeros,
               list_distinct(flatten(list(users))) AS users, list_distinct(flatten(list(sessions))) AS sessions
        FROM p GROUP BY kh
    ),
    dh AS (SELECT kh, k, sum(c)::BIGINT AS c FROM (SELECT kh, unnest(d_keys) AS k, unnest(d_counts) AS c FROM p)
           GROUP BY kh, k HAVING sum(c) > 0),
    vh AS (SELECT kh, k, sum(c)::BIGINT AS c FROM (SELECT kh, unnest(v_keys) AS k, unnest(v_counts) AS c FROM p)
           GROUP BY kh, k HAVING sum(c) > 0),
    dl AS (SELECT kh, list(k ORDER BY k) AS ks, list(c ORDER BY k) AS cs FROM dh GROUP BY kh),
    vl AS (SELECT kh, list(k ORDER BY k) AS ks, list(c ORDER BY k) AS cs FROM vh GROUP BY kh)
    SELECT scal.b, {", ".join(f"scal.{c}" for c in KEYS)}, n, errors, d_n, d_sum,
           CASE WHEN d_n <> 1 THEN d_min END AS d_min, CASE WHEN d_n <> 1 THEN d_max END AS d_max, d_zeros,
           v_n, v_sum, CASE WHEN v_n <> 1 THEN v_min END AS v_min, CASE WHEN v_n <> 1 THEN v_max END AS v_max,
           v_zeros, users, sessions,
           coalesce(dl.ks, []) AS d_keys, coalesce(dl.cs, []) AS d_counts,
           coalesce(vl.ks, []) AS v_keys, coalesce(vl.cs, []) AS v_counts, scal.kh
    FROM scal LEFT JOIN dl ON scal.kh = dl.kh LEFT JOIN vl ON scal.kh = vl.kh
    WHERE n > 0
    """


# ---------------------------------------------------------------- reading a sketch


def key_value(key: int) -> float:
    """The representative value of a sketch key (within ALPHA of every value it counts)."""
    if key >= NEGATIVE_OFFSET // 2:
        return -2 * GAMMA ** (key - NEGATIVE_OFFSET) / (GAMMA + 1)
    return 2 * GAMMA**key / (GAMMA + 1)


def quantiles(
    keys: Sequence[int], counts: Sequence[int], zeros: int, qs: Sequence[float]
) -> list[float | None]:
    """Quantiles like DuckDB's quantile_cont (interpolated between the two nearest ranks), from a sketch.

    Each rank's value is estimated within ALPHA; a convex combination of two estimates of the same
    sign stays within ALPHA of the interpolated true value.
    """
    items = [(key_value(k), c) for k, c in zip(keys, counts, strict=True) if c > 0]
    if zeros:
        items.append((0.0, zeros))
    items.sort()
    total = sum(c for _, c in items)
    if total == 0:
        return [None for _ in qs]

    def at(rank: int) -> float:  # the value of the rank-th smallest (0-based)
        seen = 0
        for v, c in items:
            seen += c
            if rank < seen:
                return v
        return items[-1][0]

    out: list[float | None] = []
    for q in qs:
        pos = q * (total - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        a, b = at(lo), at(hi)
        out.append(a + (b - a) * (pos - lo))
    return out


# ---------------------------------------------------------------- refresh


@dataclass
class RefreshReport:
    events: int  # folded now
    upto_seq: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _meta_get(cur: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = cur.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def folded_seq(cur: duckdb.DuckDBPyConnection) -> int:
    return int(_meta_get(cur, META_SEQ) or 0)


def raw_cutoff(store: Store) -> datetime | None:
    """The instant before which raw events were pruned (None: pruning never deleted anything)."""
    cur = store.cursor()
    try:
        value = _meta_get(cur, META_CUTOFF)
    finally:
        cur.close()
    return None if value is None else datetime.fromisoformat(value)


def set_raw_cutoff(cur: duckdb.DuckDBPyConnection, cutoff: datetime) -> None:
    """Record a prune's cutoff (never moving it back); inside the caller's transaction."""
    old = _meta_get(cur, META_CUTOFF)
    if old is None or datetime.fromisoformat(old) < cutoff:
        cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [META_CUTOFF, cutoff.isoformat()])


def _replace_keys(cur: duckdb.DuckDBPyConnection, table: str, new_parts: str, params: list[Any]) -> None:
    """Merge rollup-shaped `new_parts` into `table`: the touched keys are recomputed and replaced."""
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _rollup_new AS {new_parts}", params)
    both = (
        f"SELECT * FROM {table} WHERE kh IN (SELECT kh FROM _rollup_new) UNION ALL SELECT * FROM _rollup_new"
    )
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _rollup_merged AS {merge_sql(both)}")
    cur.execute(f"DELETE FROM {table} WHERE kh IN (SELECT kh FROM _rollup_new)")
    cur.execute(f"INSERT INTO {table} SELECT * FROM _rollup_merged")
    cur.execute("DROP TABLE _rollup_new; DROP TABLE _rollup_merged")


class Rollups:
    """Keeping the rollup tables current."""

    @staticmethod
    def refresh(store: Store) -> RefreshReport:
        """Fold every event that arrived since the last refresh into rollup_hour and rollup_day."""
        started = time.perf_counter()
        store.refresh_sessions()  # rollups count sessions by their keys: derive them first
        with store.write_lock:
            cur = store.cursor()
            try:
                last = folded_seq(cur)
                row = cur.execute("SELECT coalesce(max(seq), 0), count(*) FROM events WHERE seq > ?", [last])
                upto, pending = (int(x) for x in row.fetchall()[0])
                configured = sorted(store.settings.rollup_property_keys)
                same_keys = sorted(sl.key for sl in read_slots(cur) if sl.key is not None) == configured
                if pending == 0 and same_keys:
                    return RefreshReport(0, last, time.perf_counter() - started)
                upto = max(upto, last)
                with transaction(cur):
                    slots = sync_slots(cur, store.settings.rollup_property_keys)
                    fold_in_transaction(cur, "seq > ? AND seq <= ?", [last, upto], slots)
                    cur.execute("UPDATE meta SET value = ? WHERE key = ?", [str(upto), META_SEQ])
            finally:
                cur.close()
        return RefreshReport(pending, upto, time.perf_counter() - started)

    @staticmethod
    def forget(cur: duckdb.DuckDBPyConnection, user_hashes: Sequence[str], floor: datetime | None) -> None:
        """Take these users out of the rollups; inside the caller's transaction, their events still stored.

        Keys (in the rows the users' folded events touched) are recomputed: for buckets wholly raw
        (start ≥ the pruning floor) from the raw events minus theirs; for a bucket pruning cut into,
        their events' counts, sums and sketch counts are subtracted (its min/max stay). Their user
        hashes then leave every user set, also in buckets pruned long ago.
        """
        hashes = list(user_hashes)
        last = folded_seq(cur)
        events = events_with_slots(read_slots(cur))  # the events with their slot values, as folded
        theirs = "list_contains(?::VARCHAR[], user_id) AND seq <= ?"
        for grain, table in GRAINS.items():
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE _forget_keys AS SELECT DISTINCT {_kh_of_event(grain)} AS kh, "
                f"date_trunc('{grain}', ts) AS b FROM {events} ev WHERE {theirs}",
                [hashes, last],
            )
            whole = "b >= ?::TIMESTAMP" if floor is not None else "TRUE"
            whole_params: list[Any] = [floor] if floor is not None else []
            # wholly raw buckets: refold from the raw events, theirs excluded
            cur.execute(
                f"DELETE FROM {table} WHERE kh IN (SELECT kh FROM _forget_keys WHERE {whole})", whole_params
            )
            others = (
                f"(SELECT * FROM {events} ev WHERE seq <= ? AND NOT coalesce(list_contains(?::VARCHAR[], user_id), false)"
                f" AND {_kh_of_event(grain)} IN (SELECT kh FROM _forget_keys WHERE {whole}))"
            )
            cur.execute(f"INSERT INTO {table} {partial_sql(others, grain)}", [last, hashes, *whole_params])
            if floor is not None:  # a bucket cut by pruning: subtract their events
                negated = partial_sql(f"(SELECT * FROM {events} ev WHERE {theirs} AND ts < ?)", grain)
                neg = (
                    f"SELECT b, {', '.join(KEYS)}, -n, -errors, -d_n, -d_sum, d_min, d_max, -d_zeros, -v_n, -v_sum,"
                    f" v_min, v_max, -v_zeros, [], [], d_keys, list_transform(d_counts, lambda c: -c), v_keys,"
                    f" list_transform(v_counts, lambda c: -c), kh FROM ({negated})"
                )
                cut = ceil_to(floor, grain)
                _replace_keys(cur, table, neg, [hashes, last, cut])
            cur.execute("DROP TABLE _forget_keys")
            theirs_in_sets = _hash_values(cur, hashes, grain)
            set_type = SET_TYPES[table]
            cur.execute(
                f"UPDATE {table} SET users = list_filter(users, lambda x: NOT list_contains(?::{set_type}[], x)) "
                f"WHERE len(list_intersect(users, ?::{set_type}[])) > 0",
                [theirs_in_sets] * 2,
            )


def ceil_to(t: datetime, grain: str) -> datetime:
    """The first bucket start (hour or day, UTC) at or after t."""
    start = t.replace(minute=0, second=0, microsecond=0)
    if grain == "day":
        start = start.replace(hour=0)
    if start == t:
        return t
    return start + (timedelta(hours=1) if grain == "hour" else timedelta(days=1))


def _kh_of_event(grain: str) -> str:
    return "hash(" + ", ".join([f"date_trunc('{grain}', ts)", *KEYS]) + ")"


def _hash_values(cur: duckdb.DuckDBPyConnection, values: Sequence[str], grain: str) -> list[int]:
    """The values as the grain's sets hold them (see SET_TYPES)."""
    h = set_value("hash(x)", grain)
    rows = cur.execute(f"SELECT list_transform(?::VARCHAR[], lambda x: {h})", [list(values)]).fetchall()
    return [int(x) for x in rows[0][0]]


def fold_in_transaction(
    cur: duckdb.DuckDBPyConnection, where: str, params: list[Any], slots: Sequence[Slot]
) -> None:
    """Fold the events matching `where` into both tables (the caller holds a transaction)."""
    for grain, table in GRAINS.items():
        _replace_keys(cur, table, partial_sql(events_with_slots(slots, where), grain), params)
