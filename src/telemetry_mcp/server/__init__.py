"""MCP surface: tools, resources, prompts, transports. Thin: parse, call analytics, return models."""
