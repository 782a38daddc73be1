"""A real MCP server (the official `mcp` package's MCPServer, formerly FastMCP) for the tests.

    python mcp_test_server.py [--transport stdio|sse|streamable-http] [--port N]
                              [--crash-file PATH] [--grandchild]

Tools: echo, add, slow (sleeps), secret, gate (waits for a file), fail (raises: the tool's error), crash (the process exits),
grow (adds a tool and announces the change), note (a notification in the middle of a call).
--crash-file: each start appends a line to PATH (the tests count restarts).
--grandchild: starts a child that inherits our pipes and outlives us unless its group is killed.
"""
import argparse
import asyncio
import os
import subprocess
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

parser = argparse.ArgumentParser()
parser.add_argument("--transport", default="stdio")
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--crash-file")
parser.add_argument("--grandchild", action="store_true")
opts = parser.parse_args()

if opts.crash_file:
    with open(opts.crash_file, "a") as f:
        f.write("start\n")
if opts.grandchild:
    # Keeps stdin/stdout/stderr open after we exit: only killing the process group ends it.
    subprocess.Popen(["sleep", "6011"])

mcp = MCPServer("test")


@mcp.tool()
def echo(message: str) -> str:
    """Echo the message back."""
    return f"echo: {message}"


@mcp.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@mcp.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@mcp.tool()
def secret() -> str:
    """Tells the secret word."""
    return "The secret word is PINEAPPLE."


@mcp.tool()
async def gate() -> str:
    """Waits until the file named by MCP_TEST_GATE exists (a test opens it), then answers."""
    path = os.environ["MCP_TEST_GATE"]
    while not os.path.exists(path):
        await asyncio.sleep(0.05)
    return "the gate is open"


@mcp.tool()
def fail(reason: str) -> str:
    """Always fails (ToolError: its message reaches the client)."""
    raise ToolError(f"failed on purpose: {reason}")


@mcp.tool()
def crash() -> str:
    """Exits the whole server process."""
    sys.stdout.flush()
    os._exit(3)


@mcp.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool 'extra' and tells the client the tool list changed."""

    def extra() -> str:
        """Added at run time."""
        return "extra!"

    mcp.add_tool(extra)
    await ctx.session.send_tool_list_changed()
    return "grown"


@mcp.tool()
async def note(ctx: Context) -> str:
    """Sends a log notification in the middle of the call, then answers."""
    await ctx.info("halfway")
    await asyncio.sleep(0.05)
    return "noted"


if opts.transport == "stdio":
    mcp.run("stdio")
elif opts.transport == "sse":
    asyncio.run(mcp.run_sse_async(host="127.0.0.1", port=opts.port))
else:
    asyncio.run(mcp.run_streamable_http_async(host="127.0.0.1", port=opts.port))
