"""A flow's actions as data: parsing, the JSON form and the JSON Schema (sans-IO).

A flow is an ordered list of actions run against one call::

    [{"type": "ai_talk", "agent_id": "...", "welcome_message": "Hello!"}]

``parse_actions(raw)`` turns decoded JSON into typed actions or raises ``ValidationError``
naming the exact field (``actions[0].agent_id``). Everything here is derived from the action
registry (``flows.actions``), whose shapes are ``schema`` specs: the JSON Schema the REST API
publishes and the check are the same object, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ari_offload.errors import ValidationError
from ari_offload.flows.actions import KINDS
from ari_offload.flows.actions.base import Action

MAX_ACTIONS = 50


def parse_actions(raw: object, path: str = "actions") -> list[Action]:
    """Validate decoded JSON and return typed actions; raises ``ValidationError``."""
    if not isinstance(raw, list):
        raise ValidationError(path, "expected a list of actions")
    if not raw:
        raise ValidationError(path, "a flow needs at least one action")
    if len(raw) > MAX_ACTIONS:
        raise ValidationError(path, f"at most {MAX_ACTIONS} actions")
    actions = [parse_action(item, f"{path}[{i}]") for i, item in enumerate(raw)]
    for i, action in enumerate(actions[1:], 1):
        if KINDS[action.type].first_only:
            raise ValidationError(
                f"{path}[{i}].type", f"'{action.type}' must be the flow's first action"
            )
    return actions


def parse_action(raw: object, path: str) -> Action:
    if not isinstance(raw, dict):
        raise ValidationError(path, "expected an object with a 'type'")
    kind = raw.get("type")
    if kind is None:
        raise ValidationError(f"{path}.type", "required")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValidationError(f"{path}.type", f"expected one of {', '.join(KINDS)}")
    action: Action = KINDS[kind].parse(raw, path)
    return action


def action_to_json(action: Action) -> dict[str, Any]:
    """The JSON form of an action, without absent optional fields; parses back equal."""
    out: dict[str, Any] = {"type": action.type}
    for key, value in vars(action).items():
        if value is not None:
            out[key] = value
    return out


def actions_to_json(actions: Sequence[Action]) -> list[dict[str, Any]]:
    return [action_to_json(a) for a in actions]


def action_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12, as used by OpenAPI 3.1) of one action."""
    components: dict[str, Any] = {}  # action shapes are inline objects: nothing lands here
    return {"oneOf": [kind.shape.schema(components) for kind in KINDS.values()]}


def action_catalogue() -> str:
    """One line per action type, its fields (``?``: optional) and what it does: for people
    and assistants (the MCP server's instructions), in registry order."""
    lines = []
    for kind in KINDS.values():
        names = [n if n in kind.required else f"{n}?" for n in kind.fields]
        fields = f" {{{', '.join(names)}}}" if names else ""
        lines.append(f"- {kind.type}{fields}: {kind.description}")
    return "\n".join(lines)
