"""The official Python MCP SDK's WebSocket client against Mesh: the key travels in the
query string (the SDK cannot set headers on its WebSocket). Prints one JSON line with
what it saw; run by tests/mcp.rs with the test virtualenv's Python.

    python mcp_ws_client.py ws://127.0.0.1:PORT/ws?api_key=KEY
"""

import asyncio
import json
import sys
import warnings

from mcp import ClientSession
from mcp.client.websocket import websocket_client

warnings.simplefilter("ignore", DeprecationWarning)


async def main(url: str) -> None:
    async with websocket_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            submitted = await session.call_tool(
                "submit_task", {"kind": "echo", "input": {"from": "python"}}
            )
            task = submitted.structuredContent
            for _ in range(1000):
                got = await session.call_tool("get_task", {"id": task["id"]})
                task = got.structuredContent
                if task["status"] == "completed":
                    break
                await asyncio.sleep(0.01)
            bad = await session.call_tool("get_task", {"id": "not-a-uuid"})
            print(
                json.dumps(
                    {
                        "protocol": init.protocolVersion,
                        "server": init.serverInfo.name,
                        "tools": sorted(t.name for t in tools.tools),
                        "task": task,
                        "bad": {"is_error": bad.isError, "content": bad.structuredContent},
                    }
                )
            )


asyncio.run(main(sys.argv[1]))
