"""Plain DuckDB SQL for every query case: the same question on the same store file, no server between.

Each function takes the case's final tool arguments (the very dict sent over MCP) and returns the
SQL statements answering it with the tool's semantics (SPEC section 5): the whole answer's data,
not the Python formatting around it. Partitions and joins are keyed by hash() of the string ids
(PERF_NOTES: 1.25-2x faster); the ordered funnel is the chained ASOF-join formulation.

Run as a worker (a fresh process, read-only, DuckDB defaults except `threads`):
    python bench/plain_sql.py --db STORE --args ARGS.json [--runs 5 --warmup 1 --threads N]
where ARGS.json maps plain-case names to argument dicts; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

Args = dict[str, Any]
PlainCase = Callable[[Args], list[str]]

ERRORS = "severity IN ('error', 'critical')"
SESSION_GAP = "INTERVAL 30 MINUTE"  # the product's default session timeout
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Engagement's "interactions" (the product's INTERACTION_TYPES).
INTERACTIONS = ("user_interaction", "input_change", "event_trigger", "command_executed")
EVENT_COLUMNS = {"event_type", "name", "component", "page", "platform", "os", "framework", "service_version"}


# ---------------------------------------------------------------- literals


def lit(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def instant(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def ts_lit(dt: datetime) -> str:
    return f"TIMESTAMP '{dt.isoformat(sep=' ')}'"


def seconds(duration: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", duration)
    if not m:
        raise ValueError(f"duration {duration!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def interval(duration: str) -> str:
    return f"INTERVAL {seconds(duration)} SECOND"


def bounds(args: Args) -> tuple[str, str]:
    return ts_lit(instant(args["since"])), ts_lit(instant(args["until"]))


def in_range(args: Args) -> str:
    since, until = bounds(args)
    return f"ts >= {since} AND ts < {until}"


def step_match(step: Args) -> str:
    """A funnel step (event_type, name, component, eq/in filters on event columns) as a boolean."""
    parts = [f"event_type = {lit(step['event_type'])}"]
    for key in ("name", "component"):
        if step.get(key) is not None:
            parts.append(f"{key} = {lit(step[key])}")
    for f in step.get("filters") or []:
        if f["field"] not in EVENT_COLUMNS:
            raise ValueError(f"plain SQL supports filters on {sorted(EVENT_COLUMNS)} only")
        if f.get("op", "eq") == "eq":
            parts.append(f"{f['field']} = {lit(f['value'])}")
        elif f["op"] == "in":
            parts.append(f"{f['field']} IN ({', '.join(lit(v) for v in f['value'])})")
        else:
            raise ValueError(f"plain SQL supports eq/in filters only, not {f['op']}")
    return f"coalesce({' AND '.join(parts)}, false)"


def sessions(where: str, columns: str) -> str:
    """Events matching `where` with `sk`, a session key: explicit session_id, else derived per actor
    by gaps longer than 30 minutes (derived sessions never merge with explicit ones)."""
    return f"""(
        SELECT {columns}, hash(actor, session_id) AS sk FROM events
        WHERE session_id IS NOT NULL AND {where}
        UNION ALL
        SELECT {columns},
               hash(actor, sum(brk) OVER (PARTITION BY ha ORDER BY ts, seq ROWS UNBOUNDED PRECEDING)) AS sk
        FROM (
            SELECT *, hash(actor) AS ha,
                   CASE WHEN ts - lag(ts) OVER (PARTITION BY hash(actor) ORDER BY ts, seq) <= {SESSION_GAP}
                        THEN 0 ELSE 1 END AS brk
            FROM events WHERE session_id IS NULL AND {where}
        )
    )"""


def _funnel_select(n: int) -> str:
    cols = ["count(*) AS users_0"]
    for k in range(1, n):
        d = f"epoch(t{k}) - epoch(t{k - 1})"
        cols += [
            f"count(*) FILTER (WHERE reach > {k}) AS users_{k}",
            f"avg({d}) FILTER (WHERE reach > {k}) AS avg_s_{k}",
            f"quantile_cont({d}, 0.5) FILTER (WHERE reach > {k}) AS median_s_{k}",
        ]
    return ", ".join(cols)


def _best_attempt(n: int) -> str:
    """Per actor its furthest attempt (ties: the earliest start), then the step counts and times."""
    reach = " + ".join(["1"] + [f"(t{k} IS NOT NULL)::INT" for k in range(1, n)])
    return f"""att AS (SELECT *, {reach} AS reach FROM chain),
        best AS (SELECT * FROM att QUALIFY row_number() OVER (PARTITION BY a ORDER BY reach DESC, t0) = 1)
        SELECT {_funnel_select(n)} FROM best"""


# ---------------------------------------------------------------- the cases


def funnel_ordered(args: Args) -> list[str]:
    """Ordered funnel, by user: chained ASOF joins keyed by hash(actor); each step the earliest match
    at or after the previous one (equal timestamps convert), all within the window of step 0. Step 0
    starts inside [since, until); later steps may complete up to one window after until."""
    steps, win = args["steps"], interval(args.get("conversion_window", "14d"))
    since, until = bounds(args)
    n = len(steps)
    flags = ", ".join(f"{step_match(s)} AS m{i}" for i, s in enumerate(steps))
    any_step = " OR ".join(f"m{i}" for i in range(n))
    ctes = [
        f"""ev AS MATERIALIZED (
            SELECT a, ts, {", ".join(f"m{i}" for i in range(n))} FROM (
                SELECT hash(actor) AS a, ts, {flags} FROM events WHERE ts >= {since} AND ts < {until} + {win}
            ) WHERE {any_step})""",
        f"s0 AS (SELECT a, ts AS t0 FROM ev WHERE m0 AND ts < {until})",
    ]
    ctes += [f"s{k} AS (SELECT a, ts FROM ev WHERE m{k})" for k in range(1, n)]
    prev = "s0"
    for k in range(1, n):
        within = f"s{k}.ts <= j.t0 + {win}"
        ctes.append(
            f"""j{k} AS (SELECT j.*, CASE WHEN {within} THEN s{k}.ts END AS t{k}
                FROM {prev} j ASOF LEFT JOIN s{k} ON j.a = s{k}.a AND s{k}.ts >= j.t{k - 1})"""
        )
        prev = f"j{k}"
    ctes.append(f"chain AS (SELECT * FROM {prev})")
    return [f"WITH {', '.join(ctes)}, {_best_attempt(n)}"]


def funnel_strict(args: Args) -> list[str]:
    """Strict funnel, by user: step k must be the actor's very next event (ts, seq order)."""
    steps, win = args["steps"], interval(args.get("conversion_window", "14d"))
    since, until = bounds(args)
    n = len(steps)
    flags = ", ".join(f"{step_match(s)} AS m{i}" for i, s in enumerate(steps))
    leads = ", ".join(f"lead(m{k}, {k}) OVER o AS f{k}, lead(ts, {k}) OVER o AS l{k}" for k in range(1, n))
    cols, cond = [], "true"
    for k in range(1, n):
        cond += f" AND coalesce(f{k}, false) AND l{k} <= ts + {win}"
        cols.append(f"CASE WHEN {cond} THEN l{k} END AS t{k}")
    return [
        f"""WITH ev AS MATERIALIZED (
            SELECT hash(actor) AS a, ts, seq, {flags} FROM events WHERE ts >= {since} AND ts < {until} + {win}
        ),
        starters AS (SELECT DISTINCT a FROM ev WHERE m0 AND ts < {until}),
        w AS (
            SELECT ev.a, ts, m0, {leads} FROM ev SEMI JOIN starters ON ev.a = starters.a
            WINDOW o AS (PARTITION BY ev.a ORDER BY ts, seq)
        ),
        chain AS (SELECT a, ts AS t0, {", ".join(cols)} FROM w WHERE m0 AND ts < {until}),
        {_best_attempt(n)}"""
    ]


def retention(args: Args) -> list[str]:
    """Calendar cohorts (UTC, weeks from Monday) of actors whose first-ever event falls in the range
    (first_time) or any start event (recurring); retained[n] = members active in period cohort+n."""
    period = args.get("period", "week")
    since, until = bounds(args)
    if args.get("retention_type", "first_time") == "first_time":
        members = f"""SELECT a, date_trunc('{period}', f) AS c FROM (
                SELECT hash(actor) AS a, min(ts) AS f FROM events WHERE ts < {until} GROUP BY 1
            ) WHERE f >= {since}"""
    else:
        members = f"""SELECT DISTINCT hash(actor) AS a, date_trunc('{period}', ts) AS c
            FROM events WHERE {in_range(args)}"""
    return [
        f"""WITH members AS ({members}),
        active AS (SELECT DISTINCT hash(actor) AS a, date_trunc('{period}', ts) AS p
                   FROM events WHERE {in_range(args)})
        SELECT m.c AS cohort, date_diff('{period}', m.c, p) AS n, count(*) AS k
        FROM members m JOIN active ON active.a = m.a AND active.p >= m.c
        GROUP BY ALL ORDER BY 1, 2"""
    ]


def journeys(args: Args) -> list[str]:
    """Per session (explicit, else 30-min gaps), nodes in (ts, seq) order with repeats collapsed, the
    first max_steps kept: the top paths, every transition (step = source position) and the exits."""
    node = args.get("node", "event_type")
    if node not in EVENT_COLUMNS:
        raise ValueError(node)
    steps = int(args.get("max_steps", 5))
    limit = int(args.get("limit", 20))
    src = sessions(in_range(args), f"actor, ts, seq, {node} AS node")
    return [
        f"""WITH ev AS (SELECT sk, ts, seq, node FROM {src} WHERE node IS NOT NULL),
        collapsed AS (
            SELECT sk, node, row_number() OVER (PARTITION BY sk ORDER BY ts, seq) AS pos
            FROM (SELECT *, lag(node) OVER (PARTITION BY sk ORDER BY ts, seq) AS prev FROM ev)
            WHERE prev IS NULL OR prev <> node
        ),
        paths AS MATERIALIZED (
            SELECT nodes, count(*) AS n
            FROM (SELECT list(node ORDER BY pos) AS nodes FROM collapsed WHERE pos <= {steps} GROUP BY sk)
            GROUP BY nodes
        )
        SELECT * FROM (SELECT 'path' AS kind, nodes, NULL::BIGINT AS step, NULL::VARCHAR AS source,
                              NULL::VARCHAR AS target, n FROM paths ORDER BY n DESC, nodes LIMIT {limit})
        UNION ALL
        SELECT 'transition', NULL, i, nodes[i], nodes[i + 1], sum(n)
        FROM (SELECT unnest(range(1, len(nodes))) AS i, nodes, n FROM paths) GROUP BY ALL
        UNION ALL
        SELECT 'exit', NULL, NULL, nodes[len(nodes)], NULL, sum(n) FROM paths GROUP BY ALL"""
    ]


def engagement(args: Args) -> list[str]:
    """Daily actives with rolling 7/30-day actives (from per-actor active days: each covers the days
    until the next one or the window's end), the active-days histogram, and per period the actors and
    sessions (length, events, interactions) that started in it."""
    period = args.get("period", "week")
    since, until = bounds(args)
    kinds = ", ".join(lit(k) for k in INTERACTIONS)
    daily = f"""WITH ad AS (
            SELECT hash(actor) AS a, date_trunc('day', ts) AS d, bool_or(ts >= {since}) AS in_range
            FROM events WHERE ts >= {since} - INTERVAL 30 DAY AND ts < {until} GROUP BY 1, 2
        ),
        cov AS (SELECT a, d, in_range, lead(d) OVER (PARTITION BY a ORDER BY d) AS nd FROM ad),
        deltas AS (
            SELECT d AS day, in_range::INT AS dau, 1 AS w7, 1 AS w30 FROM cov
            UNION ALL SELECT least(d + INTERVAL 7 DAY, coalesce(nd, d + INTERVAL 7 DAY)), 0, -1, 0 FROM cov
            UNION ALL SELECT least(d + INTERVAL 30 DAY, coalesce(nd, d + INTERVAL 30 DAY)), 0, 0, -1 FROM cov
        ),
        days AS (
            SELECT day, sum(dau) AS dau, sum(sum(w7)) OVER (ORDER BY day) AS wau,
                   sum(sum(w30)) OVER (ORDER BY day) AS mau
            FROM deltas GROUP BY day
        )
        SELECT 'day' AS kind, day, dau, wau, mau FROM days WHERE day >= {since} AND day < {until}
        UNION ALL
        SELECT 'hist', NULL, k, count(*), NULL
        FROM (SELECT count(*) FILTER (WHERE in_range) AS k FROM ad GROUP BY a) WHERE k > 0 GROUP BY k"""
    per_period = f"""WITH s AS (
            SELECT min(ts) AS t0, max(ts) AS t1, count(*) AS n,
                   count(*) FILTER (WHERE event_type IN ({kinds})) AS k
            FROM {sessions(in_range(args), "actor, ts, seq, event_type")} GROUP BY sk
        ),
        per_session AS (
            SELECT date_trunc('{period}', t0) AS b, count(*) AS sessions, sum(epoch(t1) - epoch(t0)) AS secs,
                   sum(n) AS events, sum(k) AS interactions
            FROM s GROUP BY 1
        ),
        per_actor AS (
            SELECT date_trunc('{period}', ts) AS b, count(DISTINCT hash(actor)) AS users
            FROM events WHERE {in_range(args)} GROUP BY 1
        )
        SELECT * FROM per_actor FULL JOIN per_session USING (b) ORDER BY b"""
    return [daily, per_period]


def collect_metrics(args: Args) -> list[str]:
    """Per UTC bucket and group: count, distinct user_ids, distinct sessions (explicit or derived over
    the whole range), errors and duration_ms statistics with exact percentiles; the per-bucket totals
    (busiest bucket) and the whole range; then the per-component table."""
    interval_ = args.get("interval", "day")
    group = args.get("group_by")
    if group is not None and group not in EVENT_COLUMNS:
        raise ValueError(group)
    if args.get("metric") not in (None, "duration_ms"):
        raise ValueError("plain collect_metrics covers the duration_ms metric")
    g = "grp::VARCHAR" if group else "NULL::VARCHAR"
    src = sessions(in_range(args), f"ts, user_id, severity, duration_ms, {group or 'NULL'} AS grp")
    series = f"""SELECT grouping(b, g) AS gid, b, g, count(*) AS n, count(DISTINCT user_id) AS users,
               count(DISTINCT sk) AS sessions, count(*) FILTER (WHERE {ERRORS}) AS errors, count(v) AS nv,
               sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi, quantile_cont(v, [0.5, 0.95, 0.99]) AS q
        FROM (SELECT date_trunc('{interval_}', ts) AS b, {g} AS g,
                     user_id, sk, severity, duration_ms AS v FROM {src})
        GROUP BY GROUPING SETS ((b, g), (b), ())
        ORDER BY gid DESC, b, g"""
    components = f"""SELECT component, count(*) AS events,
               count(*) FILTER (WHERE event_type = 'component_load') AS loads,
               count(*) FILTER (WHERE event_type = 'animation_play') AS plays,
               count(*) FILTER (WHERE {ERRORS}) AS errors,
               avg(duration_ms) FILTER (WHERE event_type = 'component_load') AS avg_load_ms,
               avg(value) FILTER (WHERE event_type = 'performance' AND name = 'fps') AS avg_fps,
               count(DISTINCT user_id) AS unique_users, max(ts) AS last_seen
        FROM events WHERE component IS NOT NULL AND {in_range(args)}
        GROUP BY component ORDER BY loads DESC, events DESC, component"""
    return [series, components]


def collect_metrics_stored_sessions(args: Args) -> list[str]:
    """collect_metrics as plain SQL over the stored session_key column (explicit or derived by the
    product at ingest): one GROUPING SETS query with both count(DISTINCT …), then the components."""
    group = args.get("group_by")
    if group is not None and group not in EVENT_COLUMNS:
        raise ValueError(group)
    g = "grp::VARCHAR" if group else "NULL::VARCHAR"
    series = f"""SELECT grouping(b, g) AS gid, b, g, count(*) AS n, count(DISTINCT user_id) AS users,
               count(DISTINCT session_key) AS sessions, count(*) FILTER (WHERE {ERRORS}) AS errors,
               count(v) AS nv, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi,
               quantile_cont(v, [0.5, 0.95, 0.99]) AS q
        FROM (SELECT date_trunc('{args.get("interval", "day")}', ts) AS b, {g} AS g, user_id, session_key,
                     severity, duration_ms AS v
              FROM (SELECT *, {group or "NULL"} AS grp FROM events WHERE {in_range(args)}))
        GROUP BY GROUPING SETS ((b, g), (b), ())
        ORDER BY gid DESC, b, g"""
    return [series, collect_metrics(args)[1]]


_METRICS = {  # metric → (event_type, name or None, column, higher is better)
    "load_time": ("component_load", None, "duration_ms", False),
    "api_latency": ("api_call", None, "duration_ms", False),
    "fps": ("performance", "fps", "value", True),
}


def _metric(args: Args) -> tuple[str, str, bool]:
    event_type, name, column, higher = _METRICS[args.get("metric", "load_time")]
    cond = f"event_type = {lit(event_type)}" + (f" AND name = {lit(name)}" if name else "")
    return cond, column, higher


def performance(args: Args) -> list[str]:
    """Per group (and overall): samples, avg/min/max, exact p50/p95/p99 and the error rate of all the
    group's events; worst p95 first. With compare (two versions): p50/p95 per group on each side."""
    cond, column, higher = _metric(args)
    key = args.get("group_by", "component")
    k = "'all'" if key == "none" else ("service_version" if key == "app_version" else key)
    order = "ASC" if higher else "DESC"
    groups = f"""SELECT grouping(k) AS gid, k, count(v) FILTER (WHERE mc) AS n,
               avg(v) FILTER (WHERE mc) AS a, min(v) FILTER (WHERE mc) AS lo, max(v) FILTER (WHERE mc) AS hi,
               quantile_cont(v, [0.5, 0.95, 0.99]) FILTER (WHERE mc) AS q,
               count(*) FILTER (WHERE {ERRORS}) AS errors, count(*) AS events
        FROM (SELECT {k} AS k, {column} AS v, ({cond}) AS mc, severity FROM events WHERE {in_range(args)})
        GROUP BY GROUPING SETS ((k), ())
        ORDER BY gid DESC, q[2] {order} NULLS LAST, n DESC, k"""
    out = [groups]
    compare = args.get("compare")
    if compare:
        if compare.get("previous_period"):
            raise ValueError("plain performance covers version comparisons")
        base, cand = lit(compare["baseline_version"]), lit(compare["candidate_version"])
        out.append(
            f"""SELECT {k} AS k,
                   count({column}) FILTER (WHERE service_version = {base}) AS nb,
                   count({column}) FILTER (WHERE service_version = {cand}) AS nc,
                   quantile_cont({column}, [0.5, 0.95]) FILTER (WHERE service_version = {base}) AS qb,
                   quantile_cont({column}, [0.5, 0.95]) FILTER (WHERE service_version = {cand}) AS qc
            FROM events
            WHERE {in_range(args)} AND {cond} AND service_version IN ({base}, {cand})
            GROUP BY k HAVING nb > 0 AND nc > 0
            ORDER BY (qc[2] - qb[2]) / nullif(qb[2], 0) {"ASC" if higher else "DESC"} NULLS FIRST"""
        )
    return out


def feature_adoption(args: Args) -> list[str]:
    """Distinct actors per (feature, period), per feature (with events, first/last seen), per period
    (active actors) and overall, in one scan."""
    feature = args.get("feature_by", "component")
    if feature not in EVENT_COLUMNS:
        raise ValueError(feature)
    period = args.get("period", "week")
    return [
        f"""SELECT grouping(f) AS gf, grouping(p) AS gp, f, p, count(*) AS events, count(DISTINCT a) AS users,
               min(ts) AS first_seen, max(ts) AS last_seen
        FROM (SELECT date_trunc('{period}', ts) AS p, {feature} AS f, hash(actor) AS a, ts
              FROM events WHERE {in_range(args)})
        GROUP BY GROUPING SETS ((f, p), (f), (p), ())
        ORDER BY gf DESC, gp DESC, users DESC"""
    ]


def realtime(args: Args) -> list[str]:
    """Counts in the last 1/5/15 minutes and the window, errors and top types in the window, actors and
    sessions active within the session timeout, and the store's totals (wall clock now, UTC)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    win = timedelta(seconds=seconds(args.get("window", "5m")))
    earliest = ts_lit(now - max(win, timedelta(minutes=30)))
    cut = {k: ts_lit(now - timedelta(minutes=m)) for k, m in (("m1", 1), ("m5", 5), ("m15", 15))}
    w = ts_lit(now - win)
    active_where = f"ts >= {ts_lit(now - timedelta(minutes=30))}"
    return [
        f"""SELECT count(*) FILTER (WHERE ts >= {cut["m1"]}), count(*) FILTER (WHERE ts >= {cut["m5"]}),
                   count(*) FILTER (WHERE ts >= {cut["m15"]}), count(*) FILTER (WHERE ts >= {w}),
                   count(*) FILTER (WHERE ts >= {w} AND {ERRORS})
            FROM events WHERE ts >= {earliest}""",
        f"SELECT event_type, count(*) AS n FROM events WHERE ts >= {w} GROUP BY 1 ORDER BY n DESC LIMIT 20",
        f"SELECT count(DISTINCT actor), count(DISTINCT sk) FROM {sessions(active_where, 'actor')}",
        "SELECT count(*), min(ts), max(ts) FROM events",
    ]


def describe_events(args: Args) -> list[str]:
    """Values of event_type, name, component, (service, service_version), platform and framework with
    counts and first/last seen, the totals, and the top-level property keys with theirs."""
    where = in_range(args) if "since" in args else "true"
    sets = ["event_type", "name", "component", "service, service_version", "platform", "framework"]
    columns = "event_type, name, component, service, service_version, platform, framework"
    return [
        f"""SELECT grouping({columns}) AS gid, {columns},
               count(*) AS n, min(ts) AS first_seen, max(ts) AS last_seen
        FROM events WHERE {where}
        GROUP BY GROUPING SETS ({", ".join(f"({c})" for c in sets)}, ())""",
        f"""SELECT key, count(*) AS n, min(ts) AS first_seen, max(ts) AS last_seen
        FROM (SELECT unnest(json_keys(properties)) AS key, ts
              FROM events WHERE properties IS NOT NULL AND {where})
        GROUP BY key ORDER BY n DESC, key""",
    ]


PLAIN: dict[str, PlainCase] = {
    "funnel_ordered_4": funnel_ordered,
    "funnel_strict_3": funnel_strict,
    "retention_weekly": retention,
    "journeys": journeys,
    "engagement_weekly": engagement,
    "collect_metrics_daily_by_type": collect_metrics,
    "collect_metrics_stored_sessions": collect_metrics_stored_sessions,
    "performance_load_time": performance,
    "performance_compare_versions": performance,
    "feature_adoption_weekly": feature_adoption,
    "realtime_stats": realtime,
    "describe_events": describe_events,
}


# ---------------------------------------------------------------- worker


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def run_cases(db: Path, cases: dict[str, Args], runs: int, warmup: int, threads: int) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True, config={"threads": threads})
    con.execute("SET TimeZone = 'UTC'")
    out: dict[str, Any] = {}
    for name, args in cases.items():
        fn = PLAIN.get(name)
        if fn is None:
            out[name] = {"error": "no plain-SQL twin in bench/plain_sql.py"}
            continue
        try:
            statements = fn(args)
            times: list[float] = []
            rows: list[list[Any]] = []
            for i in range(warmup + runs):
                started = time.perf_counter()
                rows = []
                for sql in statements:
                    rows.append(con.execute(sql).fetchall())
                if i >= warmup:
                    times.append(time.perf_counter() - started)
            out[name] = {
                "seconds": times,
                "statements": len(statements),
                "rows": [len(r) for r in rows],
                "result": _jsonable([r[:200] for r in rows]),
            }
        except Exception as exc:  # a failing twin is reported, the others still run
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    con.close()
    return {"cases": out, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--args", type=Path, required=True, help="JSON: {plain case name: tool arguments}")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--print-sql", action="store_true", help="print the statements instead of running")
    ns = parser.parse_args(argv)
    cases = json.loads(ns.args.read_text())
    if ns.print_sql:
        for name, args in cases.items():
            for sql in PLAIN[name](args):
                print(f"-- {name}\n{sql};\n")
        return 0
    print(json.dumps(run_cases(ns.db, cases, ns.runs, ns.warmup, ns.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
