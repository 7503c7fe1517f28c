"""Sanity checks: does the tool's answer agree with the plain-SQL twin on its key numbers?

Not a test suite: a disagreement is a note in the report (a product bug, or a twin that reads the
semantics differently) for a human to look at. Each check gets the tool's structured answer and
the plain result (one list of rows per statement) and returns what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rows = list[list[list[Any]]]
Check = Callable[[dict[str, Any], Rows], list[str]]


def _close(a: float | None, b: float | None, rel: float = 1e-3, abs_: float = 1e-3) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


def _funnel(answer: dict[str, Any], rows: Rows) -> list[str]:
    row = rows[0][0]
    steps = answer.get("steps") or []
    out = []
    for k, step in enumerate(steps):
        users = row[0] if k == 0 else row[1 + 3 * (k - 1)]
        if step.get("users") != users:
            out.append(f"step {k} users: tool {step.get('users')}, plain {users}")
        if k:
            avg, med = row[2 + 3 * (k - 1)], row[3 + 3 * (k - 1)]
            if not _close(step.get("avg_seconds_to_convert"), avg, abs_=0.01):
                out.append(
                    f"step {k} avg seconds: tool {step.get('avg_seconds_to_convert')}, plain {avg:.4f}"
                )
            if not _close(step.get("median_seconds_to_convert"), med, abs_=0.01):
                out.append(
                    f"step {k} median seconds: tool {step.get('median_seconds_to_convert')}, plain {med:.4f}"
                )
    return out


def _retention(answer: dict[str, Any], rows: Rows) -> list[str]:
    plain = {(str(c)[:10], int(n)): int(k) for c, n, k in rows[0]}
    out = []
    for cohort in answer.get("cohorts") or []:
        start = cohort["cohort_start"][:10]
        for n, value in enumerate(cohort.get("retained") or []):
            want = plain.get((start, n), 0)
            if value != want:
                out.append(f"cohort {start} retained[{n}]: tool {value}, plain {want}")
    return out[:5]


def _journeys(answer: dict[str, Any], rows: Rows) -> list[str]:
    paths = [(r[1], r[5]) for r in rows[0] if r[0] == "path"]
    got = [(p.get("nodes"), p.get("count")) for p in answer.get("paths") or []]
    n = min(len(paths), len(got), 5)
    if got[:n] != [(list(a), b) for a, b in paths[:n]]:
        return [f"top paths differ: tool {got[:2]}, plain {paths[:2]}"]
    return []


def _engagement(answer: dict[str, Any], rows: Rows) -> list[str]:
    hist_plain = {int(r[2]): int(r[3]) for r in rows[0] if r[0] == "hist"}
    hist = {b["active_days"]: b["users"] for b in answer.get("stickiness_histogram") or [] if b["users"]}
    out = []
    if hist != hist_plain:
        out.append("stickiness histogram differs")
    plain_users = {str(r[0])[:10]: r[1] for r in rows[1]}
    for row in answer.get("engagement") or []:
        start = row["period_start"][:10]
        if row.get("active_users") != plain_users.get(start, 0):
            out.append(
                f"period {start} active users: tool {row.get('active_users')}, plain {plain_users.get(start)}"
            )
    return out[:5]


def _metrics(answer: dict[str, Any], rows: Rows) -> list[str]:
    total = next(r for r in rows[0] if r[0] == 3)
    t = answer.get("totals") or {}
    out = []
    for key, value in (
        ("count", total[3]),
        ("unique_users", total[4]),
        ("unique_sessions", total[5]),
        ("error_count", total[6]),
    ):
        if t.get(key) != value:
            out.append(f"totals.{key}: tool {t.get(key)}, plain {value}")
    if not _close(t.get("p95"), total[12][1] if total[12] else None):
        out.append(f"totals.p95: tool {t.get('p95')}, plain {total[12][1] if total[12] else None}")
    return out


def _performance(answer: dict[str, Any], rows: Rows) -> list[str]:
    overall = next(r for r in rows[0] if r[0] == 1)
    o = answer.get("overall") or {}
    out = []
    if o.get("count") != overall[2]:
        out.append(f"overall count: tool {o.get('count')}, plain {overall[2]}")
    if not _close(o.get("p95"), overall[6][1] if overall[6] else None):
        out.append(f"overall p95: tool {o.get('p95')}, plain {overall[6][1]}")
    groups = [r for r in rows[0] if r[0] == 0 and r[2]]
    if answer.get("groups") and groups and answer["groups"][0].get("key") != groups[0][1]:
        out.append(f"worst group: tool {answer['groups'][0].get('key')}, plain {groups[0][1]}")
    if len(rows) > 1:
        plain = {r[0]: r[4][1] for r in rows[1]}
        for reg in answer.get("regressions") or []:
            if not _close(reg.get("candidate_p95"), plain.get(reg.get("key"))):
                want = plain.get(reg.get("key"))
                out.append(f"{reg.get('key')} candidate p95: tool {reg.get('candidate_p95')}, plain {want}")
    return out[:5]


def _adoption(answer: dict[str, Any], rows: Rows) -> list[str]:
    total = next(r for r in rows[0] if r[0] == 1 and r[1] == 1)
    out = []
    if answer.get("active_users") != total[5]:
        out.append(f"active_users: tool {answer.get('active_users')}, plain {total[5]}")
    per_feature = {r[2]: r[5] for r in rows[0] if r[0] == 0 and r[1] == 1}
    for f in answer.get("features") or []:
        if f.get("users") != per_feature.get(f.get("feature"), 0):
            out.append(
                f"{f.get('feature')} users: tool {f.get('users')}, plain {per_feature.get(f.get('feature'))}"
            )
    return out[:5]


def _realtime(answer: dict[str, Any], rows: Rows) -> list[str]:
    total = rows[3][0][0]
    got = (answer.get("storage") or {}).get("total_events")
    return [] if got == total else [f"storage.total_events: tool {got}, plain {total}"]


def _describe(answer: dict[str, Any], rows: Rows) -> list[str]:
    total = next(r for r in rows[0] if r[0] == 127)
    out = []
    if answer.get("total_events") != total[8]:
        out.append(f"total_events: tool {answer.get('total_events')}, plain {total[8]}")
    types = {r[1]: r[8] for r in rows[0] if r[0] == 63}
    for v in (answer.get("event_types") or {}).get("values", []):
        if types.get(v["value"]) != v["count"]:
            out.append(f"event type {v['value']}: tool {v['count']}, plain {types.get(v['value'])}")
    keys = {r[0]: r[1] for r in rows[1]}
    for v in (answer.get("property_keys") or {}).get("values", []):
        if keys.get(v["value"]) != v["count"]:
            out.append(f"property key {v['value']}: tool {v['count']}, plain {keys.get(v['value'])}")
    return out[:5]


CHECKS: dict[str, Check] = {
    "funnel_ordered_4": _funnel,
    "funnel_strict_3": _funnel,
    "retention_weekly": _retention,
    "journeys": _journeys,
    "engagement_weekly": _engagement,
    "collect_metrics_daily_by_type": _metrics,
    "collect_metrics_daily_by_type_vs_stored_sessions": _metrics,
    "performance_load_time": _performance,
    "performance_compare_versions": _performance,
    "feature_adoption_weekly": _adoption,
    "realtime_stats": _realtime,
    "describe_events": _describe,
}


def compare(case: str, answer: dict[str, Any] | None, plain_rows: Rows) -> list[str]:
    """Differences between the tool's answer and the plain twin's rows (empty: they agree)."""
    check = CHECKS.get(case)
    if check is None or not answer:
        return []
    try:
        return [f"differs from plain SQL: {d}" for d in check(answer, plain_rows)]
    except (KeyError, IndexError, TypeError, StopIteration, ValueError) as exc:
        return [f"could not compare with plain SQL ({type(exc).__name__}: {exc})"]
