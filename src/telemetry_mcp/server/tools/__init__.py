"""Tool modules. Each has `register(mcp, app)` and `DEMO_CALLS`; a new tool is one module plus one line."""

TOOL_MODULES: list[str] = [
    "ingest",
    "metrics",
    "performance",
    "realtime",
    "adoption",
    "behavior",
    "discovery",
    "anomalies",
    "explain",
    "sql",
    "resources",
]
