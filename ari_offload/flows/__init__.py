"""Flows: what happens on a call, as an ordered list of actions (``model``) and their executor."""
