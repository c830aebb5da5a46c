"""The conversation: turn-taking over a media port (a sans-IO core, a thin async shell)."""
