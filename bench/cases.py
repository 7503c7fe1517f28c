"""The query cases: one line each. A case names the MCP tool, its arguments, and its plain-SQL twin.

`since`/`until` are added to every ranged case: the data set's whole span (60 days by default), so
no case runs on a trivially small default range. A case whose tool the server does not list is
skipped with a note; arguments the tool's input schema does not declare are dropped with a note.
To add a case: one `Case(...)` line here, and (for the overhead ratio) one function in plain_sql.py
registered under the case's `plain` name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# fixtures/README.md's planted checkout flow (4 steps, ordered).
CHECKOUT: list[dict[str, Any]] = [
    {"event_type": "page_view", "filters": [{"field": "page", "op": "eq", "value": "/checkout"}]},
    {"event_type": "user_interaction", "name": "add_payment"},
    {"event_type": "event_trigger", "name": "submit_order"},
    {"event_type": "feature_used", "name": "order_confirmed"},
]
# Strict: the payment form's three consecutive events (card details follow add_payment directly).
PAYMENT_STRICT: list[dict[str, Any]] = [
    {"event_type": "user_interaction", "name": "add_payment"},
    {"event_type": "input_change", "name": "card_details"},
    {"event_type": "event_trigger", "name": "submit_order"},
]
RELEASES = {"baseline_version": "2.2.0", "candidate_version": "2.3.0"}

# Targets (ms) for the median through MCP, by data-set size; journeys gets more at 10 M.
TARGET_MS = {1_000_000: 250.0, 10_000_000: 1500.0}


@dataclass(frozen=True)
class Case:
    name: str
    tool: str
    args: dict[str, Any]
    plain: str | None = None  # plain_sql.PLAIN key; None = the case name
    ranged: bool = True  # add since/until covering the data set
    target_ms: dict[int, float] = field(default_factory=dict)  # overrides TARGET_MS per size (events)

    def arguments(self, since: str, until: str) -> dict[str, Any]:
        return {**self.args, **({"since": since, "until": until} if self.ranged else {})}

    @property
    def plain_name(self) -> str:
        return self.plain or self.name

    def target(self, events: int) -> float | None:
        return self.target_ms.get(events, TARGET_MS.get(events))


B = "analyze_user_behavior"
FUNNEL = {"analysis": "funnel", "conversion_window": "14d"}
LOAD_TIME = {"metric": "load_time", "group_by": "component"}
JOURNEYS = {"analysis": "journeys", "node": "event_type", "max_steps": 5}
ADOPTION = "analyze_feature_adoption"
CASES: list[Case] = [
    Case("funnel_ordered_4", B, {**FUNNEL, "steps": CHECKOUT, "order": "ordered"}),
    Case("funnel_strict_3", B, {**FUNNEL, "steps": PAYMENT_STRICT, "order": "strict"}),
    Case("retention_weekly", B, {"analysis": "retention", "period": "week", "retention_type": "first_time"}),
    Case("journeys", B, JOURNEYS, target_ms={10**7: 3000}),
    Case("engagement_weekly", B, {"analysis": "engagement", "period": "week"}),
    Case("collect_metrics_daily_by_type", "collect_metrics", {"interval": "day", "group_by": "event_type"}),
    # The same question against a floor that reads the product's stored session keys (what a DuckDB
    # user would write on our table) instead of deriving sessions at query time.
    Case("collect_metrics_daily_by_type_vs_stored_sessions", "collect_metrics",
         {"interval": "day", "group_by": "event_type"}, plain="collect_metrics_stored_sessions"),
    Case("performance_load_time", "analyze_performance", LOAD_TIME),
    Case("performance_compare_versions", "analyze_performance", {**LOAD_TIME, "compare": RELEASES}),
    Case("feature_adoption_weekly", ADOPTION, {"feature_by": "component", "period": "week"}),
    Case("realtime_stats", "get_realtime_stats", {"window": "5m"}, ranged=False),
    Case("describe_events", "describe_events", {}),
]  # fmt: skip


def select(names: str | None) -> list[Case]:
    """Cases named in a comma list (all when None); unknown names are an error."""
    if not names:
        return list(CASES)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {c.name: c for c in CASES}
    missing = [n for n in wanted if n not in known]
    if missing:
        raise SystemExit(f"unknown case(s) {', '.join(missing)}; known: {', '.join(known)}")
    return [known[n] for n in wanted]
