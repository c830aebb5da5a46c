"""The flow-action registry: type -> kind (dataclass, shape, handler), one module per action.

A new action is one new module declaring its ``KIND`` plus one line in ``_BUILTIN`` below;
parsing, the JSON form, the JSON Schema, the executor and the MCP text follow from it.
"""

from __future__ import annotations

from typing import Any

from ari_offload.flows.actions import (
    ai_talk,
    detect_machine,
    hangup,
    pause,
    record,
    say_message,
    send_dtmf,
    talk,
    transfer,
)
from ari_offload.flows.actions.ai_talk import AiTalk
from ari_offload.flows.actions.base import Action, ActionKind
from ari_offload.flows.actions.detect_machine import DetectMachine
from ari_offload.flows.actions.hangup import Hangup
from ari_offload.flows.actions.pause import Pause
from ari_offload.flows.actions.record import Record
from ari_offload.flows.actions.say_message import SayMessage
from ari_offload.flows.actions.send_dtmf import SendDtmf
from ari_offload.flows.actions.talk import Talk
from ari_offload.flows.actions.transfer import Transfer

_BUILTIN: tuple[ActionKind[Any], ...] = (
    ai_talk.KIND,
    detect_machine.KIND,
    talk.KIND,
    pause.KIND,
    hangup.KIND,
    transfer.KIND,
    send_dtmf.KIND,
    say_message.KIND,
    record.KIND,
)
# In the order they are documented (JSON Schema oneOf, error messages, MCP text).
KINDS: dict[str, ActionKind[Any]] = {kind.type: kind for kind in _BUILTIN}


def kind_of(action: Action) -> ActionKind[Any]:
    return KINDS[action.type]


def agent_refs(action: Action) -> list[tuple[str, str]]:
    """(field, agent id) for each agent an action names, whatever its kind."""
    return list(kind_of(action).agent_refs(action))


def register(kind: ActionKind[Any]) -> None:
    """Add a kind of action (for an extension, or a test); its type must be new."""
    if kind.type in KINDS:
        raise ValueError(f"a flow action named {kind.type!r} is already registered")
    KINDS[kind.type] = kind


__all__ = [
    "KINDS",
    "Action",
    "ActionKind",
    "AiTalk",
    "DetectMachine",
    "Hangup",
    "Pause",
    "Record",
    "SayMessage",
    "SendDtmf",
    "Talk",
    "Transfer",
    "agent_refs",
    "kind_of",
    "register",
]
