"""The smallest MCP server on the same SDK: one tool, stdio. The cold-start baseline."""

from mcp.server.mcpserver import MCPServer

server: MCPServer = MCPServer("trivial-bench-server")


@server.tool(description="Answer pong; exists so the server has one tool to list.")
def ping() -> str:
    return "pong"


if __name__ == "__main__":
    server.run()
