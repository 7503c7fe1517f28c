"""Shared fixtures: an in-memory store, the app around it, and an in-process MCP client."""

from collections.abc import AsyncIterator, Iterator
import pytest
from mcp import Client

from telemetry_mcp.config import Settings, load_settings
from telemetry_mcp.server.app import App, build_server, open_app

TEST_SALT = "00112233445566778899aabbccddeeff"


@pytest.fixture
def settings() -> Settings:
    return load_settings({"db": ":memory:", "threads": 2, "salt": TEST_SALT}, env={})


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = open_app(settings)
    yield application
    application.store.close()


@pytest.fixture
async def client(app: App) -> AsyncIterator[Client]:
    async with Client(build_server(app)) as c:
        yield c
