"""analyze_user_behavior through an in-process MCP client: schema, funnel/dropoff answers, errors, the sample."""

from __future__ import annotations

import typing
from typing import Any

from mcp import Client
from mcp.types import CallToolResult, TextContent

from helpers import load, load_sample
from telemetry_mcp.analytics.behavior import ANALYSES, BehaviorQuery
from telemetry_mcp.server.app import App
from telemetry_mcp.server.tools.behavior import CHECKOUT_STEPS, DEMO_CALLS, BehaviorResult, result_models

TOOL = "analyze_user_behavior"
DAY = {"since": "2026-03-02", "until": "2026-03-03"}
STEPS = [{"event_type": "page_view"}, {"event_type": "user_interaction", "name": "click"}]
EVENTS = [
    {"event_type": "page_view", "user_id": "u1", "timestamp": "2026-03-02T10:00:00Z"},
    {"event_type": "user_interaction", "name": "click", "user_id": "u1", "timestamp": "2026-03-02T11:00:00Z"},
    {"event_type": "page_view", "user_id": "u2", "timestamp": "2026-03-02T10:00:00Z"},
    {"event_type": "user_interaction", "name": "click", "user_id": "u2", "timestamp": "2026-03-02T12:00:00Z"},
    {"event_type": "page_view", "user_id": "u3", "timestamp": "2026-03-02T10:00:00Z"},
    {"event_type": "warning", "name": "slow", "user_id": "u3", "timestamp": "2026-03-02T10:01:00Z"},
]


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_the_tool_is_read_only_and_takes_every_behavior_query_argument(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    tool = tools[TOOL]

    assert tool.annotations is not None and tool.annotations.read_only_hint is True
    assert tool.description and "funnel" in tool.description
    properties = tool.input_schema["properties"]
    assert set(properties) == set(BehaviorQuery.model_fields)
    assert all(p.get("description") for p in properties.values())
    assert properties["analysis"]["enum"] == [
        "funnel",
        "journeys",
        "retention",
        "dropoff",
        "engagement",
        "milestones",
    ]
    # null: funnels take 14d, milestones no window unless one is given (SPEC tool 9)
    assert (
        properties["conversion_window"].get("default") is None
        and "default 14d" in properties["conversion_window"]["description"]
    )
    assert tool.input_schema["required"] == ["analysis"]


def test_the_output_model_is_the_union_of_every_analysis_result() -> None:
    models = result_models()
    fields = set(BehaviorResult.model_fields)

    assert set(models) == set(ANALYSES)
    for model in models.values():
        assert set(model.model_fields) <= fields
    assert {"steps", "overall_conversion", "breakdown", "dropoff"} <= fields
    assert [n for n, f in BehaviorResult.model_fields.items() if f.is_required()] == [
        "analysis",
        "summary",
        "truncated",
    ]


def test_each_analysis_module_returns_a_pydantic_model_with_summary_and_truncated() -> None:
    for model in result_models().values():
        hints = typing.get_type_hints(model)
        assert hints["summary"] is str and hints["truncated"] is bool, model


async def test_a_funnel_answers_with_its_step_table_and_nothing_of_other_analyses(
    client: Client, app: App
) -> None:
    load(app, EVENTS)

    out = structured(await client.call_tool(TOOL, {"analysis": "funnel", "steps": STEPS, **DAY}))

    assert out["steps"] == [
        {
            "index": 0,
            "label": "page_view",
            "users": 3,
            "conversion_from_start": 1.0,
            "conversion_from_previous": 1.0,
            "dropoff": 0,
            "avg_seconds_to_convert": None,
            "median_seconds_to_convert": None,
        },
        {
            "index": 1,
            "label": "click",
            "users": 2,
            "conversion_from_start": 0.6667,
            "conversion_from_previous": 0.6667,
            "dropoff": 1,
            "avg_seconds_to_convert": 5400.0,
            "median_seconds_to_convert": 5400.0,
        },
    ]
    assert out["overall_conversion"] == 0.6667
    assert out["breakdown"] is None
    assert out["analysis"] == "funnel" and out["truncated"] is False
    assert set(out) == {
        "analysis",
        "summary",
        "truncated",
        "steps",
        "overall_conversion",
        "breakdown",
        "warnings",
    }
    assert out["warnings"] == []
    assert out["summary"] == (
        "66.7 % of 3 users converted through 2 steps (ordered, 14d window; 2 reached 'click'). "
        "Biggest drop-off: step 0 'page_view' → step 1 'click', 33.3 % lost (1 user)."
    )


async def test_arguments_of_other_analyses_are_ignored(client: Client, app: App) -> None:
    load(app, EVENTS)
    plain = structured(await client.call_tool(TOOL, {"analysis": "funnel", "steps": STEPS, **DAY}))

    noisy = structured(
        await client.call_tool(
            TOOL,
            {
                "analysis": "funnel",
                "steps": STEPS,
                "node": "page",
                "period": "month",
                "start_event": "nope",
                "max_steps": 3,
                "cumulative": True,
                **DAY,
            },
        )
    )

    assert noisy == plain


async def test_dropoff_answers_through_the_tool(client: Client, app: App) -> None:
    load(app, EVENTS)

    out = structured(await client.call_tool(TOOL, {"analysis": "dropoff", "steps": STEPS, **DAY}))

    assert out["dropoff"] == [
        {
            "index": 0,
            "label": "page_view",
            "next_label": "click",
            "stopped": 1,
            "no_next_event": 0,
            "next_events": [{"event_type": "warning", "name": "slow", "users": 1, "share": 1.0}],
            "truncated": False,
        }
    ]
    assert [s["users"] for s in out["steps"]] == [3, 2]


BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"analysis": "funnel"}, "analysis funnel needs `steps`: 2 to 10 items"),
    ({"analysis": "dropoff", "steps": [STEPS[0]]}, "got 1"),
    ({"analysis": "funnel", "steps": STEPS, "order": "sideways"}, "order"),
    ({"analysis": "funnnel", "steps": STEPS}, "analysis"),
    ({"analysis": "funnel", "steps": STEPS, "limit": 1001}, "less than or equal to 1000"),
    ({"analysis": "funnel", "steps": STEPS, "since": "1000w", "until": "2026-03-03"}, "too long"),
    ({"analysis": "funnel", "steps": STEPS, "conversion_window": "14 days"}, "is not a duration"),
    ({"analysis": "funnel", "steps": STEPS, "breakdown_by": "platform) OR 1=1 --"}, "unknown field"),
    (
        {
            "analysis": "funnel",
            "steps": [{"event_type": "page_view", "filters": [{"field": "x;--", "value": 1}]}, STEPS[1]],
        },
        "unknown field",
    ),
    ({"analysis": "funnel", "steps": [{"event_type": "page_view", "colour": "red"}, STEPS[1]]}, "colour"),
    ({"analysis": "funnel", "steps": STEPS * 6}, "10"),
]


async def test_bad_arguments_are_error_results_and_the_server_keeps_answering(
    client: Client, app: App
) -> None:
    load(app, EVENTS)

    for args, message in BAD_ARGUMENTS:
        text = error_text(await client.call_tool(TOOL, {**DAY, **args}))
        assert message in text, (args, text)
    after = await client.call_tool(TOOL, {"analysis": "funnel", "steps": STEPS, **DAY})

    assert not after.is_error


async def test_sql_in_values_stays_a_value(client: Client, app: App) -> None:
    load(app, EVENTS)
    hostile = "'); DROP TABLE events; --"

    out = structured(
        await client.call_tool(
            TOOL,
            {
                "analysis": "funnel",
                "steps": [{"event_type": "page_view", "name": hostile}, STEPS[1]],
                "filters": [{"field": "properties.x", "op": "ne", "value": hostile}],
                **DAY,
            },
        )
    )

    assert [s["users"] for s in out["steps"]] == [0, 0]
    assert app.store.fetch("SELECT count(*) FROM events") == [(len(EVENTS),)]


async def test_a_raw_user_id_in_a_filter_matches_the_stored_hash(client: Client, app: App) -> None:
    load(app, EVENTS)
    only_u2 = [{"field": "user_id", "op": "eq", "value": "u2"}]

    out = structured(
        await client.call_tool(TOOL, {"analysis": "funnel", "steps": STEPS, "filters": only_u2, **DAY})
    )

    assert [(s["users"], s["avg_seconds_to_convert"]) for s in out["steps"]] == [(1, None), (1, 7200.0)]


def test_demo_calls_cover_every_analysis() -> None:
    analyses = [args["analysis"] for name, args in DEMO_CALLS if name == TOOL]

    assert set(analyses) == set(ANALYSES)
    assert analyses.count("funnel") >= 1 and analyses.count("dropoff") >= 1


async def test_the_sample_checkout_funnel_loses_most_users_between_add_payment_and_submit_order(
    client: Client, app: App
) -> None:
    load_sample(app)
    window = {"since": "2026-09-01", "until": "2026-11-01", "conversion_window": "1h"}

    funnel = structured(
        await client.call_tool(TOOL, {"analysis": "funnel", "steps": CHECKOUT_STEPS, **window})
    )
    dropoff = structured(
        await client.call_tool(TOOL, {"analysis": "dropoff", "steps": CHECKOUT_STEPS, **window})
    )

    steps = funnel["steps"]
    assert [s["label"] for s in steps] == ["checkout", "add_payment", "submit_order", "order_confirmed"]
    lost = [1 - s["conversion_from_previous"] for s in steps[1:]]
    assert max(lost) == lost[1]  # add_payment → submit_order
    assert 0.6 < lost[1] < 0.8  # planted: 30 % of payers submit
    assert "Biggest drop-off: step 1 'add_payment' → step 2 'submit_order'" in funnel["summary"]
    assert max(dropoff["dropoff"], key=lambda d: d["stopped"])["label"] == "add_payment"


async def test_a_funnel_step_never_seen_is_answered_with_zero_and_a_warning_not_refused(
    client: Client, app: App
) -> None:
    load(app, EVENTS)
    steps = [*STEPS, {"event_type": "step_three"}]

    result = await client.call_tool(TOOL, {"analysis": "funnel", "steps": steps, **DAY})

    assert not result.is_error
    out = structured(result)
    assert [s["users"] for s in out["steps"]] == [3, 2, 0]
    assert out["warnings"] == ['step 2 event_type "step_three" matches no stored event']
    assert "step_three" in out["summary"]
