"""Argument validation errors reach the agent as one short line per problem (issue 9)."""

from mcp import Client


async def test_a_bad_enum_value_is_one_line_naming_the_argument_the_value_and_what_is_accepted(
    client: Client,
) -> None:
    result = await client.call_tool("collect_metrics", {"interval": "fortnight"})
    assert result.is_error
    message = result.content[0].text  # type: ignore[union-attr]
    assert message.count("\n") == 0
    assert message.startswith('collect_metrics: interval: given "fortnight" — ')
    for accepted in ("'minute'", "'hour'", "'day'", "'week'", "'month'", "'total'"):
        assert accepted in message
    assert "pydantic" not in message and "Arguments" not in message and "http" not in message


async def test_two_bad_arguments_give_two_lines_with_nested_paths(client: Client) -> None:
    result = await client.call_tool(
        "analyze_user_behavior",
        {"analysis": "funnel", "steps": [{"event_type": 5}, {"event_type": "b"}], "limit": 5000},
    )
    assert result.is_error
    lines = result.content[0].text.splitlines()  # type: ignore[union-attr]
    assert len(lines) == 2
    assert any(line.startswith("analyze_user_behavior: steps[0].event_type: given 5 — ") for line in lines)
    assert any(
        line.startswith("analyze_user_behavior: limit: given 5000 — ") and "1000" in line for line in lines
    )
    assert all("errors.pydantic.dev" not in line for line in lines)
