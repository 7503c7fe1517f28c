"""Documentation cannot drift: every tool, setting and version named in README/server.json is real."""

import json
import re
import tomllib
from pathlib import Path

from mcp import Client

from telemetry_mcp import __version__
from telemetry_mcp.config import Settings, env_name, flag_name
from telemetry_mcp.server.app import App, build_server

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SERVER_JSON = json.loads((ROOT / "server.json").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


async def test_every_tool_the_server_offers_is_in_the_readme(app: App) -> None:
    async with Client(build_server(app)) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    assert len(names) >= 1
    missing = [n for n in names if f"`{n}`" not in README]
    assert missing == []


def test_every_setting_is_in_the_readme_with_flag_and_env_var() -> None:
    for field in Settings.model_fields:
        assert f"`{env_name(field)}`" in README, field
        assert flag_name(field) in README, field


def test_server_json_lists_every_setting_and_matches_the_package_version() -> None:
    package = SERVER_JSON["packages"][0]
    assert SERVER_JSON["version"] == package["version"] == PYPROJECT["project"]["version"]
    assert __version__ == PYPROJECT["project"]["version"]
    assert package["identifier"] == PYPROJECT["project"]["name"] == "telemetry-mcp"
    assert package["registryType"] == "pypi" and package["transport"] == {"type": "stdio"}
    assert len(SERVER_JSON["description"]) <= 100
    declared = {e["name"] for e in package["environmentVariables"]}
    assert declared == {env_name(f) for f in Settings.model_fields}


def test_readme_carries_the_registry_name_line() -> None:
    assert f"mcp-name: {SERVER_JSON['name']}" in README
    assert re.fullmatch(r"io\.github\.[\w-]+/[\w-]+", SERVER_JSON["name"])


def test_readme_opens_with_the_run_and_test_commands_and_ci_runs_the_test_one() -> None:
    head = README.splitlines()[:12]
    commands = [line.strip() for line in head if line.startswith("    ")]
    assert any("telemetry-mcp demo" in c for c in commands)
    assert "bash scripts/test.sh" in commands
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
