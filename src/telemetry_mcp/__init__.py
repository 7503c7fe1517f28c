"""telemetry-mcp: submit component telemetry over MCP and ask it real questions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("telemetry-mcp")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
