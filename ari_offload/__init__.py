"""ari-offload: AI agents on the phone through Asterisk ARI, text only."""

__version__ = "0.1.0"
