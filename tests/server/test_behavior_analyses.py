"""analyze_user_behavior over MCP for retention, journeys and engagement: fields, errors, recovery."""

from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from helpers import load
from telemetry_mcp.server.app import App, build_server


class Session:
    """One server; each call on a fresh in-process client session (see tests/analytics/test_metrics.py)."""

    def __init__(self, app: App) -> None:
        self.server = build_server(app)

    async def call(self, **args: Any) -> CallToolResult:
        async with Client(self.server) as c:
            return await c.call_tool("analyze_user_behavior", args)


@pytest.fixture
def session(app: App) -> Session:
    load(
        app,
        [
            {
                "event_type": "page_view",
                "user_id": "a",
                "timestamp": "2026-09-07T10:00:00Z",
                "session_id": "s1",
            },
            {
                "event_type": "feature_used",
                "user_id": "a",
                "timestamp": "2026-09-07T10:01:00Z",
                "session_id": "s1",
            },
            {
                "event_type": "page_view",
                "user_id": "a",
                "timestamp": "2026-09-15T10:00:00Z",
                "session_id": "s2",
            },
            {
                "event_type": "page_view",
                "user_id": "b",
                "timestamp": "2026-09-08T10:00:00Z",
                "session_id": "s3",
            },
        ],
    )
    return Session(app)


WINDOW = {"since": "2026-09-07", "until": "2026-09-21"}


async def test_retention_answers_with_its_own_fields_only(session: Session) -> None:
    result = await session.call(analysis="retention", **WINDOW)

    assert not result.is_error
    out = result.structured_content
    assert out is not None
    assert out["cohorts"] == [
        {"cohort_start": "2026-09-07T00:00:00+00:00", "size": 2, "retained": [2, 1], "rates": [1.0, 0.5]},
        {"cohort_start": "2026-09-14T00:00:00+00:00", "size": 0, "retained": [0], "rates": [0.0]},
    ]
    assert out["average_rates"] == [1.0, 0.5]
    assert out["analysis"] == "retention"
    assert out["truncated"] is False
    assert "paths" not in out and "engagement" not in out and "steps" not in out
    assert out["summary"].startswith("Week-1 retention averages 50.0 %")


async def test_journeys_and_engagement_answer_through_the_tool(session: Session) -> None:
    journeys = await session.call(analysis="journeys", limit=1, **WINDOW)
    engagement = await session.call(analysis="engagement", period="week", **WINDOW)

    assert not journeys.is_error and not engagement.is_error
    j, e = journeys.structured_content, engagement.structured_content
    assert j is not None and e is not None
    assert j["paths"] == [{"nodes": ["page_view"], "count": 2}]
    assert j["exits"] == [{"node": "page_view", "count": 2}]
    assert j["transitions"] == [{"step": 1, "source": "page_view", "target": "feature_used", "count": 1}]
    assert j["truncated"] is True
    assert [(r["period_start"], r["active_users"], r["sessions"]) for r in e["engagement"]] == [
        ("2026-09-07T00:00:00+00:00", 2, 2),
        ("2026-09-14T00:00:00+00:00", 1, 1),
    ]
    assert e["stickiness_histogram"] == [
        {"active_days": 1, "users": 1, "share": 0.5},
        {"active_days": 2, "users": 1, "share": 0.5},
    ]
    assert e["summary"].startswith("DAU ")


@pytest.mark.parametrize(
    ("args", "warning"),
    [
        ({"analysis": "retention", "start_event": "page_veiw"}, 'did you mean "page_view"'),
        ({"analysis": "retention", "return_event": "feature_usd"}, 'did you mean "feature_used"'),
        ({"analysis": "journeys", "start_at": "feature_usd"}, 'did you mean "feature_used"'),
        ({"analysis": "journeys", "end_at": "page_veiw"}, 'did you mean "page_view"'),
    ],
)
async def test_names_that_match_nothing_are_answered_with_a_warning_not_refused(
    session: Session, args: dict[str, Any], warning: str
) -> None:
    answer = await session.call(**args, **WINDOW)

    assert not answer.is_error
    assert answer.structured_content is not None
    assert warning in answer.structured_content["warnings"][0]
    assert answer.structured_content["summary"].startswith("Warning: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"analysis": "retention", "period": "fortnight"}, "period"),
        ({"analysis": "retention", "period": "day", "since": "2025-01-01"}, "at most 120"),
        ({"analysis": "journeys", "limit": 1001}, "1000"),
        ({"analysis": "engagement", "timezone": "Europe/Berlinn"}, 'did you mean "Europe/Berlin"'),
        (
            {"analysis": "engagement", "filters": [{"field": "x; DROP TABLE events", "value": 1}]},
            "unknown field",
        ),
    ],
)
async def test_bad_arguments_are_errors_that_say_what_is_accepted(
    session: Session, args: dict[str, Any], message: str
) -> None:
    bad = await session.call(**args)

    assert bad.is_error
    assert message in bad.content[0].text  # type: ignore[union-attr]
    after = await session.call(analysis="retention", **WINDOW)
    assert not after.is_error
    assert after.structured_content is not None
    assert after.structured_content["cohorts"][0]["size"] == 2
