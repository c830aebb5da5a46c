"""Call events (agent/events.py) from what the controller and the conversation tell us.

An agent with an ``events_url`` joins a call when a flow's ``ai_talk`` starts talking to it
(``FlowContext.agent_joined``). It is then told, in this order:

* ``call.started``  at the call's start: ``{"direction", "caller"}``
* ``call.answered`` at its answer (both already happened when the agent joins; ``at`` says
  when each did)
* ``turn.finished`` once per turn, as its reply ends: ``{"turn", "caller", "agent", "heard",
  <the turn's timings, as the API's turns>}``
* ``call.ended`` once the call is over (after its record is written):
  ``{"reason", "duration_s", "transcript": [{"role", "text", "at", "heard"}], "turns": [...]}``

Every hook only builds the event and hands it to ``EventSender.send``, which never waits: no
receiver, slow or dead, can delay a call. ``CallObservers`` and ``ConversationObservers``
fan one hook out to several observers (the recorder first, then the events).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ari_offload.agent.event_sender import EventSender
from ari_offload.agent.events import (
    CALL_ANSWERED,
    CALL_ENDED,
    CALL_STARTED,
    TURN_FINISHED,
    iso_time,
    new_event,
)
from ari_offload.ari.call import ActiveCall
from ari_offload.ari.observer import CallObserver
from ari_offload.voice.call_book import ConversationObserver
from ari_offload.voice.conversation import AgentBinding
from ari_offload.voice.turns import TranscriptEntry, TurnTiming

log = logging.getLogger("ari_offload.agent")


@dataclass
class _Watched:
    """A call some agent with an events URL joined: those agents, what was said, the turns."""

    agents: dict[str, AgentBinding] = field(default_factory=dict)
    transcript: list[TranscriptEntry] = field(default_factory=list)
    turns: list[dict[str, object]] = field(default_factory=list)


def _entry_json(entry: TranscriptEntry) -> dict[str, Any]:
    return {"role": entry.role, "text": entry.text, "at": iso_time(entry.at), "heard": entry.heard}


def _last(entries: list[TranscriptEntry], role: str) -> TranscriptEntry | None:
    return next((e for e in reversed(entries) if e.role == role), None)


class CallEvents:
    """A CallObserver and a ConversationObserver that turn call facts into call events."""

    def __init__(self, sender: EventSender, clock: Callable[[], float] = time.time) -> None:
        self._sender = sender
        self._clock = clock  # wall clock: an event's "at"
        self._calls: dict[str, _Watched] = {}

    def agent_joined(self, call: ActiveCall, agent: AgentBinding) -> None:
        """The call starts talking to ``agent``: from now on it hears of the call."""
        if not agent.events_url or call.ended.is_set():
            return
        watched = self._calls.setdefault(call.call_id, _Watched())
        if agent.agent_id in watched.agents:
            return  # a second ai_talk with the same agent: it knows of the call already
        watched.agents[agent.agent_id] = agent
        started = {"direction": call.direction, "caller": call.channel.caller_number or None}
        self._emit(call, agent, CALL_STARTED, call.started_at, started)
        if call.answered_at is not None:
            self._emit(call, agent, CALL_ANSWERED, call.answered_at, {})

    def _emit(
        self, call: ActiveCall, agent: AgentBinding, type_: str, at: float, data: Mapping[str, Any]
    ) -> None:
        assert agent.events_url is not None
        event = new_event(type_, call.call_id, agent.agent_id, at, data)
        self._sender.send(agent.events_url, agent.secret, event)

    def _emit_all(self, call: ActiveCall, type_: str, data: Mapping[str, Any]) -> None:
        watched = self._calls.get(call.call_id)
        for agent in watched.agents.values() if watched is not None else ():
            self._emit(call, agent, type_, self._clock(), data)

    # --- ConversationObserver -------------------------------------------------------------

    def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None:
        watched = self._calls.get(call.call_id)
        if watched is not None:
            watched.transcript.append(entry)

    def transcript_corrected(
        self, call: ActiveCall, entry: TranscriptEntry, corrected: TranscriptEntry
    ) -> None:
        watched = self._calls.get(call.call_id)
        if watched is None:
            return
        for i, line in enumerate(watched.transcript):
            if line is entry:
                watched.transcript[i] = corrected
                return

    def turn_updated(self, call: ActiveCall, timing: TurnTiming) -> None:
        return None  # told once whole, when its reply ends

    async def caught_up(self, call: ActiveCall) -> None:
        return None  # nothing to write

    def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None:
        watched = self._calls.get(call.call_id)
        if watched is None:
            return
        turn = timing.as_dict()
        watched.turns.append(turn)
        caller, agent = _last(watched.transcript, "caller"), _last(watched.transcript, "agent")
        data = {
            **turn,
            "caller": caller.text if caller is not None else None,
            "agent": agent.text if agent is not None else None,
            "heard": agent.heard if agent is not None else None,
        }
        self._emit_all(call, TURN_FINISHED, data)

    # --- CallObserver ---------------------------------------------------------------------

    async def call_started(self, call: ActiveCall) -> None:
        return None  # no agent has joined yet: agent_joined tells them

    async def call_ended(self, call: ActiveCall) -> None:
        watched = self._calls.get(call.call_id)
        if watched is None:
            return
        now = self._clock()
        data = {
            "reason": call.hangup_reason or "unknown",
            "duration_s": round(max(0.0, now - call.started_at), 3),
            "transcript": [_entry_json(e) for e in watched.transcript],
            "turns": watched.turns,
        }
        self._emit_all(call, CALL_ENDED, data)
        del self._calls[call.call_id]

    async def outbound_failed(self, call_id: str, reason: str) -> None:
        return None  # never answered, so no agent ever joined

    async def call_refused(self, call: ActiveCall) -> None:
        return None


class CallObservers:
    """Several CallObservers as one, told in order; one that fails does not stop the next."""

    def __init__(self, *observers: CallObserver) -> None:
        self._observers = observers

    async def call_started(self, call: ActiveCall) -> None:
        for observer in self._observers:
            await observer.call_started(call)

    async def call_ended(self, call: ActiveCall) -> None:
        for observer in self._observers:
            try:
                await observer.call_ended(call)
            except Exception:
                log.exception("call %s: %r failed on call_ended", call.call_id, observer)

    async def outbound_failed(self, call_id: str, reason: str) -> None:
        for observer in self._observers:
            await observer.outbound_failed(call_id, reason)

    async def call_refused(self, call: ActiveCall) -> None:
        for observer in self._observers:
            await observer.call_refused(call)


class ConversationObservers:
    """Several ConversationObservers as one, told in order."""

    def __init__(self, *observers: ConversationObserver) -> None:
        self._observers = observers

    def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None:
        for observer in self._observers:
            observer.transcript_added(call, entry)

    def transcript_corrected(
        self, call: ActiveCall, entry: TranscriptEntry, corrected: TranscriptEntry
    ) -> None:
        for observer in self._observers:
            observer.transcript_corrected(call, entry, corrected)

    def turn_updated(self, call: ActiveCall, timing: TurnTiming) -> None:
        for observer in self._observers:
            observer.turn_updated(call, timing)

    def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None:
        for observer in self._observers:
            observer.turn_finished(call, timing)

    async def caught_up(self, call: ActiveCall) -> None:
        for observer in self._observers:
            await observer.caught_up(call)
