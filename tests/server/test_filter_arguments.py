"""Which tool arguments the user_id hashing walks: those whose type can hold a Filter, never the
events of a batch."""

from typing import Annotated, Any, Literal

from pydantic import Field

from telemetry_mcp.analytics.common import Filter, Filters
from telemetry_mcp.server.app import _may_hold_model


def test_filter_types_are_walked_and_plain_values_and_event_lists_are_not() -> None:
    assert _may_hold_model(Filters)
    assert _may_hold_model(Annotated[list[Filter] | None, Field(max_length=50)])
    assert _may_hold_model(dict[str, list[Filter]])
    assert not _may_hold_model(Annotated[list[Any], Field(description="events")])
    assert not _may_hold_model(str | None)
    assert not _may_hold_model(Annotated[Literal["day", "hour"], Field()])
    assert not _may_hold_model(bool)
