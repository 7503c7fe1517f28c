"""Shared fixtures: an in-memory store, the app around it, and an in-process MCP client."""

import asyncio
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
    """An in-process MCP client of the real server.

    pytest-asyncio runs a fixture's setup and teardown in different tasks, while the client's
    cancel scopes must be entered and exited in one: so the client lives in a task of its own.
    """
    ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
    finished = asyncio.Event()

    async def hold() -> None:
        try:
            async with Client(build_server(app)) as c:
                ready.set_result(c)
                await finished.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    task = asyncio.create_task(hold())
    try:
        yield await asyncio.wait_for(ready, timeout=30)
    finally:
        finished.set()
        await asyncio.wait_for(task, timeout=30)
