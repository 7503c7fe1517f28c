"""The common since/until arguments: an empty string is refused, not read as "absent" (issue 9)."""

import pytest
from mcp import Client

from telemetry_mcp.analytics.common import parse_range
from telemetry_mcp.errors import InvalidArgument


@pytest.mark.parametrize("which", ["since", "until"])
def test_an_empty_or_blank_since_or_until_is_refused_with_what_is_accepted(which: str) -> None:
    for blank in ("", "   "):
        with pytest.raises(InvalidArgument, match=f"^{which} is empty: give an ISO date") as info:
            parse_range(**{"since": None, "until": None, which: blank})
        assert "30m, 24h, 7d, 8w" in str(info.value)


@pytest.mark.parametrize("tool", ["collect_metrics", "analyze_performance", "describe_events"])
async def test_every_analysis_tool_refuses_an_empty_since(client: Client, tool: str) -> None:
    result = await client.call_tool(tool, {"since": ""})
    assert result.is_error
    assert ": since is empty: give an ISO date" in result.content[0].text  # type: ignore[union-attr]
