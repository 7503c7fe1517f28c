"""The answer budget (server/budget.py) and the lean tool list (server/lean.py)."""

import json
from typing import Any

from mcp import Client
from pydantic import BaseModel

from helpers import load
from telemetry_mcp.config import load_settings
from telemetry_mcp.server import budget
from telemetry_mcp.server.app import App, build_server, open_app
from telemetry_mcp.server.lean import slim_schema


class Row(BaseModel):
    period_start: str
    count: int


class Answer(BaseModel):
    rows: list[Row]
    small: list[int]
    rows_truncated: bool = False
    truncated: bool = False
    summary: str


def big_answer(n: int) -> Answer:
    rows = [Row(period_start=f"2026-01-01T{i:05d}", count=i) for i in range(n)]
    return Answer(rows=rows, small=[1, 2, 3], summary="Busiest period: 2026-01-01T00000.")


def text(result: Any) -> str:
    return str(result.content[0].text)


def test_an_answer_within_the_budget_is_compact_json_after_its_summary_and_not_cut() -> None:
    result = budget.answer(big_answer(3), max_chars=25_000)

    assert text(result) == (
        "Busiest period: 2026-01-01T00000.\n"
        '{"rows":[{"period_start":"2026-01-01T00000","count":0},{"period_start":"2026-01-01T00001",'
        '"count":1},{"period_start":"2026-01-01T00002","count":2}],"small":[1,2,3],'
        '"rows_truncated":false,"truncated":false}'
    )
    assert result.structured_content == big_answer(3).model_dump(mode="json")


def test_the_longest_list_is_cut_from_its_end_and_the_summary_says_where_the_rest_starts() -> None:
    result = budget.answer(big_answer(2000), max_chars=5_000, rest_hint="a coarser period")

    data = result.structured_content
    assert data is not None
    kept = len(data["rows"])
    assert 0 < kept < 2000
    assert data["rows"] == big_answer(kept).model_dump(mode="json")["rows"]  # the first rows, in order
    assert data["small"] == [1, 2, 3]  # the short list is left alone
    assert data["truncated"] is True and data["rows_truncated"] is True
    assert len(text(result)) <= 5_000 and len(json.dumps(data)) <= 5_000
    assert data["summary"] == (
        "Busiest period: 2026-01-01T00000. truncated: cut to fit the 5,000-character answer budget: "
        f"rows {kept:,} of 2,000 (the rest from period_start 2026-01-01T{kept:05d}). "
        "For the rest: a coarser period."
    )
    assert text(result).startswith(data["summary"] + "\n")


def test_a_huge_single_value_is_shortened_when_no_list_is_left_to_cut() -> None:
    class One(BaseModel):
        value: str
        summary: str

    result = budget.answer(One(value="x" * 50_000, summary="one value"), max_chars=3_000)

    assert result.structured_content is not None
    assert len(json.dumps(result.structured_content)) <= 3_000
    assert len(text(result)) <= 3_000
    assert result.structured_content["truncated"] is True


def test_slim_schema_drops_titles_and_folds_nullable_types_but_keeps_bounds_enums_and_defaults() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string", "maxLength": 5},
            "mode": {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}], "default": None},
            "limit": {"title": "Limit", "type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
        },
    }

    assert slim_schema(schema) == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 5},
            "mode": {"enum": ["a", "b", None], "type": ["string", "null"]},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
        },
    }


async def test_the_whole_tool_list_serialises_to_at_most_32000_characters(client: Client) -> None:
    listed = await client.list_tools()
    data = listed.model_dump(mode="json", by_alias=True, exclude_none=True)

    assert len(json.dumps(data)) <= 32_000
    assert len(listed.model_dump_json(by_alias=True, exclude_none=True)) <= 32_000
    assert len(listed.tools) <= 10


async def test_every_listed_argument_keeps_its_type_and_every_tool_an_object_output_schema(
    client: Client,
) -> None:
    for tool in (await client.list_tools()).tools:
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", tool.name
        for name, prop in tool.input_schema["properties"].items():
            assert {"type", "anyOf", "$ref"} & set(prop) or name in ("events",), (tool.name, name)
    behavior = next(t for t in (await client.list_tools()).tools if t.name == "analyze_user_behavior")
    props = behavior.input_schema["properties"]
    assert props["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20,
                              "description": "max rows per list"}  # fmt: skip
    assert props["order"]["enum"] == ["ordered", "strict", "unordered"]
    assert props["order"]["default"] == "ordered"


async def test_a_tool_answer_over_the_configured_budget_is_cut_and_says_truncated() -> None:
    settings = load_settings({"db": ":memory:", "answer_max_chars": 4_000}, env={})
    app: App = open_app(settings)
    try:
        load(app, [{"event_type": f"type_{i:03d}", "timestamp": "2026-01-05T10:00:00Z"} for i in range(300)])
        async with Client(build_server(app)) as c:
            result = await c.call_tool(
                "describe_events", {"since": "2026-01-01", "until": "2026-02-01", "limit": 1000}
            )
    finally:
        app.store.close()

    data = result.structured_content
    assert data is not None and not result.is_error
    assert data["truncated"] is True
    assert 0 < len(data["event_types"]["values"]) < 300
    assert len(json.dumps(data)) <= 4_000 and len(text(result)) <= 4_000
    assert "event_types.values" in data["summary"] and "of 300" in data["summary"]
