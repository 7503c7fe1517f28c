"""DuckDB store: connection, migrations, ingest, guarded queries. Never imports mcp."""

from telemetry_mcp.store.db import Store

__all__ = ["Store"]
