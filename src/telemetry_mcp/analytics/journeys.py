"""Journeys (analyze_user_behavior analysis="journeys"): the paths sessions take through nodes.

Per session (explicit session_id, else derived from 30-min gaps per actor), events in (ts, seq)
order become nodes (event_type, name, component or page; events without a value are skipped);
consecutive repeats collapse into one node. `start_at` anchors the path at the node's first
occurrence, `end_at` cuts it after the first occurrence that follows; sessions lacking either are
left out. `max_steps` caps the length: the first steps are kept, except with `end_at` alone, where
the last steps leading to it are (PostHog computes end-point paths backwards the same way).
Transitions and exits are derived from the aggregated paths, never from raw events again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from telemetry_mcp.analytics.behavior import BehaviorQuery
from telemetry_mcp.analytics.common import (
    Params,
    clip,
    compile_filters,
    iso_utc,
    parse_range,
    pct,
    range_where,
    rate,
    sessionized,
)
from telemetry_mcp.errors import did_you_mean
from telemetry_mcp.store import Store

NODE_COLUMNS = {"event_type": "event_type", "name": "name", "component": "component", "page": "page"}
SUGGESTION_POOL = 5000  # distinct node values fetched to suggest a fix for a mistyped start_at/end_at


class JourneyPath(BaseModel):
    nodes: list[str] = Field(description="node values in order, consecutive repeats collapsed")
    count: int = Field(description="sessions that took exactly this path")


class Transition(BaseModel):
    step: int = Field(description="1-based position of the source node in the path")
    source: str
    target: str
    count: int = Field(description="session transitions source → target at this step")


class JourneyExit(BaseModel):
    node: str = Field(description="last node of a session's path")
    count: int = Field(description="sessions whose path ends here")


class JourneysResult(BaseModel):
    paths: list[JourneyPath] = Field(description="most common paths first (ties by nodes, ascending)")
    transitions: list[Transition] = Field(
        description="the most frequent transitions (top `limit` by count), listed by step, then count"
    )
    exits: list[JourneyExit] = Field(description="most common last nodes first")
    journey_node: str = Field(description="the event field used as node")
    journey_sessions: int = Field(description="sessions with a path (after start_at/end_at)")
    journey_distinct_paths: int
    journey_since: str = Field(description="range start (UTC)")
    journey_until: str = Field(description="range end (UTC, exclusive)")
    summary: str
    warnings: list[str] = Field(default_factory=list, description="start_at/end_at values that match nothing")
    truncated: bool = Field(description="true when paths, transitions or exits were cut at `limit`")


@dataclass(frozen=True)
class JourneysSQL:
    sql: str
    params: list[object]


def build_sql(query: BehaviorQuery, source_where: str, p: Params, timeout_minutes: float) -> JourneysSQL:
    """One statement: rows ('path', nodes, n), ('transition', step, source, target, n), ('exit', ...).

    Each session becomes one list of node hashes ordered by (ts, seq); collapsing, anchoring and
    capping are list operations on it. Sorting 64-bit hashes instead of strings, and one ordered
    aggregate instead of lag + row_number windows, roughly halves the cost; the names come back
    through a hash → name map only for the distinct paths.
    """
    col = NODE_COLUMNS[query.node]
    steps = p.add(query.max_steps)
    fetch = p.add(query.limit + 1)
    stages = [
        f"""sessions AS (
            SELECT list(hash({col}) ORDER BY ts, seq) AS l
            FROM {sessionized(source_where, timeout_minutes, p)}
            WHERE {col} IS NOT NULL
            GROUP BY actor, session_key
        )""",
        # A node equal to the one before it is a repeat: keep the first of each run.
        "collapsed AS (SELECT list_filter(l, lambda x, i: i = 1 OR x <> l[i - 1]) AS l FROM sessions)",
    ]
    last = "collapsed"
    if query.start_at is not None:
        start = p.add(query.start_at)
        stages.append(f"""anchored AS (
            SELECT l[sp:] AS l FROM (SELECT l, list_position(l, hash({start}::VARCHAR)) AS sp FROM {last})
            WHERE sp > 0
        )""")
        last = "anchored"
    if query.end_at is not None:
        end = p.add(query.end_at)
        # With start_at == end_at the path runs to the next occurrence (a loop), not the start itself.
        after = 1 if query.start_at is not None and query.start_at == query.end_at else 0
        stages.append(f"""ended AS (
            SELECT l[:ep] AS l FROM (
                SELECT l, list_position(l[{after + 1}:], hash({end}::VARCHAR)) + {after} AS ep FROM {last}
            ) WHERE ep > {after}
        )""")
        last = "ended"
    if query.end_at is not None and query.start_at is None:
        capped = f"SELECT l[greatest(len(l) - {steps} + 1, 1):] AS l FROM {last}"
    else:
        capped = f"SELECT l[:{steps}] AS l FROM {last}"
    stages.append(f"capped AS ({capped})")
    stages.append(f"""names AS (
            SELECT map(list(h), list(v)) AS m FROM (
                SELECT hash({col}) AS h, any_value({col}) AS v FROM events
                WHERE {source_where} AND {col} IS NOT NULL GROUP BY 1
            )
        )""")
    stages.append("""paths AS MATERIALIZED (
            SELECT list_transform(l, lambda x: m[x]) AS nodes, n
            FROM (SELECT l, count(*) AS n FROM capped GROUP BY l), names
        )""")
    stages.append("""transitions AS (
            SELECT i AS step, nodes[i] AS source, nodes[i + 1] AS target, sum(n) AS n FROM (
                SELECT unnest(range(1, len(nodes))) AS i, nodes, n FROM paths
            ) GROUP BY ALL
        )""")
    stages.append("exits AS (SELECT nodes[len(nodes)] AS node, sum(n) AS n FROM paths GROUP BY ALL)")
    sql = f"""
        WITH {", ".join(stages)}
        SELECT * FROM (
            SELECT 'path' AS kind, nodes, NULL::BIGINT AS step, NULL::VARCHAR AS source,
                   NULL::VARCHAR AS target, n FROM paths ORDER BY n DESC, nodes LIMIT {fetch}
        )
        UNION ALL SELECT * FROM (
            SELECT 'transition', NULL::VARCHAR[], step, source, target, n FROM transitions
            ORDER BY n DESC, step, source, target LIMIT {fetch}
        )
        UNION ALL SELECT * FROM (
            SELECT 'exit', NULL::VARCHAR[], NULL::BIGINT, node, NULL::VARCHAR, n FROM exits
            ORDER BY n DESC, node LIMIT {fetch}
        )
        UNION ALL SELECT 'total', NULL::VARCHAR[], count(*), NULL::VARCHAR, NULL::VARCHAR, sum(n) FROM paths
    """
    return JourneysSQL(sql, p.values)


def unseen_node_value(store: Store, query: BehaviorQuery, value: str | None, what: str) -> list[str]:
    """A warning for a start_at/end_at value no event has ever had (no paths then), with a did-you-mean."""
    if value is None:
        return []
    col = NODE_COLUMNS[query.node]
    if store.fetch(f"SELECT 1 FROM events WHERE {col} = $1 LIMIT 1", [value]):
        return []
    pool = [
        r[0]
        for r in store.fetch(
            f"SELECT DISTINCT {col} FROM events WHERE {col} IS NOT NULL LIMIT {SUGGESTION_POOL}"
        )
    ]
    return [f'{what} {query.node} "{value}" matches no stored event' + did_you_mean(value, pool)]


def run(store: Store, query: BehaviorQuery) -> JourneysResult:
    """Compute paths, transitions and exits for `query` (analysis="journeys")."""
    tr = parse_range(query.since, query.until, query.timezone)
    warnings = unseen_node_value(store, query, query.start_at, "start_at")
    warnings += unseen_node_value(store, query, query.end_at, "end_at")
    p = Params()
    source_where = range_where(tr, p) + compile_filters(query.filters, p)
    built = build_sql(query, source_where, p, store.settings.session_timeout_minutes)
    rows = store.fetch(built.sql, built.params)

    paths: list[JourneyPath] = []
    transitions: list[Transition] = []
    exits: list[JourneyExit] = []
    sessions = distinct = 0
    for kind, nodes, step, source, target, n in rows:
        if kind == "path":
            paths.append(JourneyPath(nodes=list(nodes), count=int(n)))
        elif kind == "transition":
            transitions.append(Transition(step=int(step), source=source, target=target, count=int(n)))
        elif kind == "exit":
            exits.append(JourneyExit(node=source, count=int(n)))
        else:
            distinct, sessions = int(step), int(n or 0)
    lim = query.limit
    truncated = len(paths) > lim or len(transitions) > lim or len(exits) > lim
    paths = sorted(paths, key=lambda x: (-x.count, x.nodes))[:lim]
    top_transitions = sorted(transitions, key=lambda t: (-t.count, t.step, t.source, t.target))[:lim]
    transitions = sorted(top_transitions, key=lambda t: (t.step, -t.count, t.source, t.target))
    exits = sorted(exits, key=lambda e: (-e.count, e.node))[:lim]
    return JourneysResult(
        paths=paths,
        transitions=transitions,
        exits=exits,
        journey_node=query.node,
        journey_sessions=sessions,
        journey_distinct_paths=distinct,
        journey_since=iso_utc(tr.since) or "",
        journey_until=iso_utc(tr.until) or "",
        summary="".join(f"Warning: {w}. " for w in warnings)
        + summarize(query, paths, top_transitions, exits, sessions, distinct, truncated),
        warnings=warnings,
        truncated=truncated,
    )


def summarize(
    query: BehaviorQuery,
    paths: list[JourneyPath],
    transitions: list[Transition],
    exits: list[JourneyExit],
    sessions: int,
    distinct: int,
    truncated: bool,
) -> str:
    if sessions == 0:
        anchors = []
        if query.start_at is not None:
            anchors.append(f'start at "{query.start_at}"')
        if query.end_at is not None:
            anchors.append(f'reach "{query.end_at}"')
        cond = f" that {' and '.join(anchors)}" if anchors else f" with a {query.node}"
        return clip(f"No sessions{cond} in the range.")
    top = paths[0]
    text = (
        f"Top path ({top.count:,} of {sessions:,} sessions, {pct(rate(top.count, sessions))}): "
        f"{' → '.join(top.nodes)}. {distinct:,} distinct paths"
    )
    if transitions:
        t = transitions[0]
        text += f"; busiest transition: {t.source} → {t.target} at step {t.step} ({t.count:,})"
    if exits:
        e = exits[0]
        text += f"; most common exit: {e.node} ({pct(rate(e.count, sessions))} of sessions)"
    text += "."
    if truncated:
        text += f" Lists cut at limit={query.limit}."
    return clip(text)
