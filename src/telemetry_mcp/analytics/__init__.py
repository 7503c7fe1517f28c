"""Analyses: one module each, a params model in and a result model out. Never imports mcp."""
