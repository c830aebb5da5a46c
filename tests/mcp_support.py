"""Driving the MCP server as a real stdio subprocess with the official MCP client session.

Shared by the source-tree tests (``tests/test_mcp.py``) and the installed wheel's
(``tests/integration/test_wheel.py``): only the command that starts the server differs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

EXPECTED_TOOLS = {
    "create_agent",
    "list_agents",
    "create_flow",
    "make_call",
    "list_active_calls",
    "get_transcript",
    "say_and_listen",
    "send_dtmf",
    "transfer_call",
    "hangup_call",
}
# The server from the source tree, without relying on an installed console script.
SOURCE_SERVER = (sys.executable, "-c", "from ari_offload.sdk.mcp_server import run_mcp; run_mcp()")


@asynccontextmanager
async def mcp_session(
    base_url: str,
    token: str,
    errlog: Path,
    command: Sequence[str] = SOURCE_SERVER,
    cwd: Path | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialised session with the server started by ``command``, its stderr in ``errlog``."""
    params = StdioServerParameters(
        command=command[0],
        args=list(command[1:]),
        env={"ARI_OFFLOAD_URL": base_url, "ARI_OFFLOAD_ACCESSKEY": token},
        cwd=cwd,
    )
    with errlog.open("w") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def tool_result(result: CallToolResult) -> dict[str, Any]:
    """The JSON a tool answered (structured, or as its one text block); fails on an error."""
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return dict(result.structured_content)
    (content,) = result.content
    assert isinstance(content, TextContent)
    data: dict[str, Any] = json.loads(content.text)
    return data
