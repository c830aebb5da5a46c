"""What a flow action is: a frozen dataclass with a ``type``, its shape and its handler.

An ``ActionKind`` ties the three together and the registry (``flows.actions``) lists the kinds;
parsing, the JSON form, the JSON Schema, the executor and the MCP text are derived from it.

Action modules import only this module and ``schema`` at run time: the API, the store and the
SDK import them for the shapes, and must not pull in calls, media or speech. What a handler
needs to act on a call comes in as ``call`` and ``ctx`` (``flows.executor.FlowContext``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ari_offload.schema import Const, Obj, Spec

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext
    from ari_offload.policy import Policy

MAX_TEXT_LENGTH = 2000  # characters of one text to speak
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Action:
    """Base of every flow action; ``type`` names it in JSON."""

    type: ClassVar[str]


A = TypeVar("A", bound=Action)
# Runs one action on a call; returns False when the flow ends there (hangup, transfer).
Handler = Callable[["ActiveCall", A, "FlowContext"], Awaitable[bool]]
# Refuses a raw action (a dict) before its fields are checked; raises ValidationError.
Precheck = Callable[[Mapping[str, object], str], None]
# Checks one field of an action against the operator's policy when a flow is saved; raises
# PolicyRefused (the handler checks again when it runs: the policy may change in between).
PolicyCheck = Callable[[A, "Policy"], None]


@dataclass(frozen=True)
class ActionKind(Generic[A]):
    """One kind of action: its dataclass, its JSON fields (named as the dataclass's), a
    description for the JSON Schema and the MCP text, and the handler that runs it.

    ``agent_fields`` names the fields holding an agent's id: the store refuses a flow naming
    another tenant's agent there, and an agent in use there cannot be deleted.
    ``policy_checks`` maps a field to the check the API runs on it when a flow is saved.
    ``first_only``: the action must open the flow (it acts on the call's first moments).
    """

    cls: type[A]
    description: str
    handler: Handler[A]
    fields: Mapping[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    precheck: Precheck | None = None
    agent_fields: tuple[str, ...] = ()
    policy_checks: Mapping[str, PolicyCheck[A]] = field(default_factory=dict)
    first_only: bool = False

    @property
    def type(self) -> str:
        return self.cls.type

    @cached_property
    def shape(self) -> Obj:
        """The JSON object: ``type`` plus the fields, nothing else."""
        return Obj(
            None,
            {"type": Const(self.type), **self.fields},
            required=("type", *self.required),
            description=self.description,
            unknown_field=f"unknown field for action '{self.type}'",
        )

    def parse(self, raw: Mapping[str, object], path: str) -> A:
        if self.precheck is not None:
            self.precheck(raw, path)
        values = self.shape.validate(raw, path)
        assert isinstance(values, dict)
        kwargs: dict[str, Any] = {k: v for k, v in values.items() if k != "type"}
        return self.cls(**kwargs)

    def agent_refs(self, action: A) -> Iterator[tuple[str, str]]:
        """(field, agent id) for each agent the action names."""
        for name in self.agent_fields:
            agent_id = getattr(action, name)
            if agent_id is not None:
                yield name, agent_id
