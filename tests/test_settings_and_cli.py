"""Settings from environment variables and flags, and the command line around them."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import telemetry_mcp
from telemetry_mcp.cli import build_parser, main
from telemetry_mcp.config import Settings, env_name, flag_name, load_settings
from telemetry_mcp.errors import ConfigError
from wire import server_env

ENV = {
    "TELEMETRY_MCP_SAMPLE_RATE": "0.5",
    "TELEMETRY_MCP_HONOR_DNT": "false",
    "TELEMETRY_MCP_EXCLUDED_PATHS": "a,b",
}


def from_flags(*argv: str, env: dict[str, str] | None = None) -> Settings:
    """Settings as `telemetry-mcp ARGV` would build them."""
    args = build_parser().parse_args(list(argv))
    return load_settings({name: getattr(args, name) for name in Settings.model_fields}, env=env or {})


# --- loading ---------------------------------------------------------------------------------------


def test_settings_are_read_from_telemetry_mcp_environment_variables() -> None:
    settings = load_settings(env=ENV)

    assert settings.sample_rate == 0.5
    assert settings.honor_dnt is False
    assert settings.excluded_paths == ("a", "b")


def test_defaults_are_the_spec_defaults() -> None:
    settings = load_settings(env={})

    assert (settings.sample_rate, settings.honor_dnt, settings.excluded_paths) == (
        1.0,
        True,
        ("properties.password", "properties.token"),
    )
    assert (settings.max_batch_events, settings.max_request_bytes, settings.session_timeout_minutes) == (
        10_000,
        10 * 1024 * 1024,
        30.0,
    )
    assert settings.db.endswith("telemetry.duckdb")


def test_flags_override_environment_variables() -> None:
    settings = from_flags(
        "--sample-rate", "0.25", "--honor-dnt", "--excluded-paths", "properties.pin", env=ENV
    )

    assert settings.sample_rate == 0.25
    assert settings.honor_dnt is True
    assert settings.excluded_paths == ("properties.pin",)


def test_a_flag_not_given_leaves_the_environment_value() -> None:
    settings = from_flags("--no-scrub-values", env=ENV)

    assert (settings.sample_rate, settings.honor_dnt, settings.scrub_values) == (0.5, False, False)


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)]
)
def test_boolean_environment_values_accept_the_usual_spellings(raw: str, value: bool) -> None:
    assert load_settings(env={"TELEMETRY_MCP_HONOR_DNT": raw}).honor_dnt is value


def test_an_empty_environment_variable_counts_as_unset() -> None:
    assert load_settings(env={"TELEMETRY_MCP_SAMPLE_RATE": ""}).sample_rate == 1.0


@pytest.mark.parametrize(
    ("overrides", "env", "message"),
    [
        ({"sample_rate": 0}, {}, "invalid setting --sample-rate=0: Input should be greater than 0"),
        (
            {},
            {"TELEMETRY_MCP_SAMPLE_RATE": "1.5"},
            "invalid setting TELEMETRY_MCP_SAMPLE_RATE='1.5': Input should be less than or equal to 1",
        ),
        ({"salt": "xyz"}, {}, "invalid setting --salt='xyz': must be hexadecimal (e.g. 32 hex characters)"),
        (
            {},
            {"TELEMETRY_MCP_SALT": "abcd"},
            "invalid setting TELEMETRY_MCP_SALT='abcd': must be at least 16 hex characters (8 bytes)",
        ),
        (
            {"memory_limit": "lots"},
            {},
            "invalid setting --memory-limit='lots': must be a size such as 512MB or 2GB",
        ),
        (
            {},
            {"TELEMETRY_MCP_MEMORY_LIMIT": "lots"},
            "invalid setting TELEMETRY_MCP_MEMORY_LIMIT='lots': must be a size such as 512MB or 2GB",
        ),
        ({}, {"TELEMETRY_MCP_HONOR_DNT": "maybe"}, "TELEMETRY_MCP_HONOR_DNT='maybe': expected true or false"),
        (
            {},
            {"TELEMETRY_MCP_LOG_LEVEL": "loud"},
            "invalid setting TELEMETRY_MCP_LOG_LEVEL='loud': "
            "Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        (
            {"max_batch_events": "0"},
            {},
            "invalid setting --max-batch-events='0': Input should be greater than or equal to 1",
        ),
    ],
)
def test_an_invalid_value_names_its_variable_or_flag_and_what_is_accepted(
    overrides: dict[str, Any], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides, env=env)

    assert str(info.value) == message


def test_a_flag_value_is_blamed_on_the_flag_even_when_the_environment_is_also_set() -> None:
    with pytest.raises(ConfigError) as info:
        from_flags("--sample-rate", "2", env={"TELEMETRY_MCP_SAMPLE_RATE": "0.5"})

    assert str(info.value) == "invalid setting --sample-rate='2': Input should be less than or equal to 1"


# --- the command line ------------------------------------------------------------------------------


def test_help_lists_every_settings_flag_and_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])

    text = capsys.readouterr().out
    assert info.value.code == 0
    for name, field in Settings.model_fields.items():
        assert flag_name(name) in text, name
        assert env_name(name) in text, name
        if field.annotation is bool:
            assert "--no-" + flag_name(name).removeprefix("--") in text, name
    for command in ("serve", "import", "demo"):
        assert command in text


def run_module(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemetry_mcp", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(**env),
    )


def test_an_invalid_environment_value_exits_2_with_one_line_and_no_traceback() -> None:
    done = run_module("--db", ":memory:", TELEMETRY_MCP_SAMPLE_RATE="1.5")

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "telemetry-mcp: invalid setting TELEMETRY_MCP_SAMPLE_RATE='1.5': "
        "Input should be less than or equal to 1\n"
    )


def test_version_prints_the_package_version() -> None:
    done = run_module("--version")

    assert done.returncode == 0
    assert done.stdout == f"telemetry-mcp {telemetry_mcp.__version__}\n"
    assert telemetry_mcp.__version__ == "0.1.0"
