"""The agent webhook: contract (sans-IO types, parsing, signing) and the HTTP client.

The sample agent lives in ``ari_offload.agent.sample`` and is imported on its own.
"""
