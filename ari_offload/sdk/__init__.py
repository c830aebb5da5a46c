"""The Python SDK (``client``: an async typed client of the REST API) and the MCP server on it."""
