"""The long-lived owner of a store over HTTP: /mcp, the collector, health and metrics, and how
other telemetry-mcp processes find and reach the owner. Only cli.py and server/run.py import this."""
