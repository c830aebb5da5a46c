"""Call records, their transcript and their per-turn latencies.

Status only moves forward: ringing -> active -> ended, or to failed from ringing/active.
A late or repeated update (e.g. StasisEnd after the API marked the call failed) is ignored.

A call's recording file goes with its row: deleting a call (the API, the retention purge)
removes the file too, once the row is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ari_offload.errors import StoreError
from ari_offload.store import schema as t
from ari_offload.store._db import Repo, new_id, storable, utcnow
from ari_offload.store.recording_files import remove_recordings
from ari_offload.store.records import (
    Call,
    CallStatus,
    Direction,
    Role,
    TranscriptRecord,
    Turn,
)
from ari_offload.turn_fields import STORED_FIELDS, stored_webhook_failure

log = logging.getLogger("ari_offload.store")

DEFAULT_LIST_LIMIT = 50
# Column widths of free text that comes from callers, Asterisk or webhooks (see schema).
MAX_PARTY, MAX_REASON, MAX_WEBHOOK_ERROR = 200, 200, 500
# The measurements of a turn; every one but webhook_error is a number of milliseconds.
_TURN_VALUES = tuple(f.name for f in STORED_FIELDS)
_FINAL = [CallStatus.ENDED.value, CallStatus.FAILED.value]
_UNFINISHED = [CallStatus.RINGING.value, CallStatus.ACTIVE.value]
ANSWERED_BY = ("human", "machine")
_ORDER = {CallStatus.RINGING: 0, CallStatus.ACTIVE: 1, CallStatus.ENDED: 2, CallStatus.FAILED: 2}


class Calls(Repo):
    async def create(
        self,
        customer_id: str,
        *,
        direction: Direction,
        flow_id: str | None,
        caller: str | None = None,
        destination: str | None = None,
        status: CallStatus = CallStatus.RINGING,
        channel_id: str | None = None,
        call_id: str | None = None,
        started_at: datetime | None = None,
        message: str | None = None,
        node_id: str | None = None,
    ) -> Call:
        call = Call(
            id=call_id or new_id(),
            customer_id=customer_id,
            flow_id=flow_id,
            direction=Direction(direction),
            status=CallStatus(status),
            caller=storable(caller, MAX_PARTY) if caller is not None else None,
            destination=storable(destination, MAX_PARTY) if destination is not None else None,
            channel_id=channel_id,
            started_at=started_at or utcnow(),
            answered_at=None,
            ended_at=None,
            hangup_reason=None,
            message=message,
            node_id=node_id,
        )
        async with self._tx() as conn:
            await conn.execute(
                insert(t.calls).values(
                    **{**vars(call), "direction": call.direction.value, "status": call.status.value}
                )
            )
        log.debug("call %s recorded (%s, %s)", call.id, call.direction, call.status)
        return call

    async def get(self, call_id: str, *, customer_id: str | None) -> Call | None:
        query = select(t.calls).where(t.calls.c.id == call_id)
        if customer_id is not None:
            query = query.where(t.calls.c.customer_id == customer_id)
        async with self._tx() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _call(row) if row else None

    async def list_unfinished(self, node_id: str | None = None) -> list[Call]:
        """Every customer's ringing or active calls (only those of cluster node ``node_id``
        if given): what a restarted controller reconciles."""
        c = t.calls.c
        query = select(t.calls).where(c.status.in_(_UNFINISHED))
        if node_id is not None:
            query = query.where(c.node_id == node_id)
        async with self._tx() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_call(r) for r in rows]

    async def count_unfinished_by_node(self) -> dict[str, int]:
        """Ringing or active calls per cluster node (nodes with none are left out)."""
        c = t.calls.c
        query = (
            select(c.node_id, func.count())
            .where(c.status.in_(_UNFINISHED), c.node_id.is_not(None))
            .group_by(c.node_id)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return {str(node): int(count) for node, count in rows}

    async def close_unfinished_of(self, node_id: str, reason: str, at: datetime) -> int:
        """End the ringing (failed) and active (ended) calls of a node that is gone, in one
        statement each: nodes closing the same calls at once cannot both count them."""
        c = t.calls.c
        reason = storable(reason, MAX_REASON)
        closed = 0
        async with self._tx() as conn:
            for before, after in ((CallStatus.RINGING, CallStatus.FAILED),
                                  (CallStatus.ACTIVE, CallStatus.ENDED)):  # fmt: skip
                result = await conn.execute(
                    update(t.calls)
                    .where(c.node_id == node_id, c.status == before.value)
                    .values(status=after.value, ended_at=at, hangup_reason=reason)
                )
                closed += int(result.rowcount or 0)
        return closed

    async def set_status(
        self,
        call_id: str,
        status: CallStatus,
        *,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> Call | None:
        """Move the call forward; sets answered_at/ended_at. None if there is no such call."""
        status = CallStatus(status)
        at = at or utcnow()
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(t.calls).where(t.calls.c.id == call_id)))
                .mappings()
                .first()
            )
            if row is None:
                log.warning("call %s: status %s for an unknown call", call_id, status)
                return None
            call = _call(row)
            if _ORDER[status] <= _ORDER[call.status]:
                if status != call.status:
                    log.debug("call %s: ignoring %s after %s", call_id, status, call.status)
                return call
            values: dict[str, Any] = {"status": status.value}
            if status == CallStatus.ACTIVE:
                values["answered_at"] = at
            if status.is_final:
                values["ended_at"] = at
                values["hangup_reason"] = storable(reason, MAX_REASON) if reason else None
            await conn.execute(update(t.calls).where(t.calls.c.id == call_id).values(**values))
            row = (
                (await conn.execute(select(t.calls).where(t.calls.c.id == call_id)))
                .mappings()
                .one()
            )
        log.debug("call %s: %s", call_id, status)
        return _call(row)

    async def set_recording(self, call_id: str, path: str, started_at: datetime) -> str | None:
        """Note that the call is recorded to ``path``; a call already recorded keeps the path
        it has (an adopted call's recording goes on in its file). Returns the call's recording
        path, or None if there is no such call."""
        c = t.calls.c
        async with self._tx() as conn:
            row = (await conn.execute(select(c.recording_path).where(c.id == call_id))).first()
            if row is None:
                return None
            if row.recording_path is not None:
                return str(row.recording_path)
            await conn.execute(
                update(t.calls)
                .where(c.id == call_id)
                .values(recording_path=path, recording_started_at=started_at)
            )
        return path

    async def existing(self, call_ids: Collection[str]) -> set[str]:
        """Which of ``call_ids`` have a call record (of any tenant, in any state)."""
        found: set[str] = set()
        ids = list(call_ids)
        async with self._tx() as conn:
            for start in range(0, len(ids), 500):  # under every database's parameter limit
                query = select(t.calls.c.id).where(t.calls.c.id.in_(ids[start : start + 500]))
                found.update((await conn.execute(query)).scalars())
        return found

    async def set_answered_by(self, call_id: str, answered_by: str) -> None:
        """Who answered an outbound call: "human" or "machine" (flows' detect_machine)."""
        if answered_by not in ANSWERED_BY:
            raise ValueError(f"answered_by must be one of {ANSWERED_BY}, not {answered_by!r}")
        async with self._tx() as conn:
            await conn.execute(
                update(t.calls).where(t.calls.c.id == call_id).values(answered_by=answered_by)
            )

    async def set_channel(self, call_id: str, channel_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                update(t.calls).where(t.calls.c.id == call_id).values(channel_id=channel_id)
            )

    async def add_transcript(
        self,
        call_id: str,
        role: Role,
        text: str,
        *,
        at: datetime | None = None,
    ) -> TranscriptRecord:
        """Append one line; raises ``StoreError`` if the call does not exist."""
        at = at or utcnow()
        text = storable(text)
        try:
            async with self._tx() as conn:
                await _require_call(conn, call_id)
                result = await conn.execute(
                    insert(t.transcript_entries).values(
                        call_id=call_id, role=Role(role).value, text=text, at=at
                    )
                )
                seq = result.inserted_primary_key[0] if result.inserted_primary_key else 0
        except IntegrityError as exc:
            raise StoreError(f"call {call_id}: cannot add transcript") from exc
        return TranscriptRecord(call_id=call_id, seq=int(seq), role=Role(role), text=text, at=at)

    async def add_turn(
        self, call_id: str, *, turn: int, at: datetime | None = None, **values: float | str | None
    ) -> Turn:
        """Record one turn's ``STORED_FIELDS`` by name (None or left out: not measured);
        raises ``StoreError`` on a duplicate turn."""
        _turn_values(values)
        measured: dict[str, Any] = {name: _turn_value(values.get(name)) for name in _TURN_VALUES}
        record = Turn(call_id=call_id, turn=turn, at=at or utcnow(), **measured)
        try:
            async with self._tx() as conn:
                await _require_call(conn, call_id)
                await conn.execute(insert(t.turns).values(**vars(record)))
        except IntegrityError as exc:
            raise StoreError(f"call {call_id}: cannot add turn {turn}") from exc
        return record

    async def update_turn(self, call_id: str, *, turn: int, **values: float | str | None) -> None:
        """Set a recorded turn's ``STORED_FIELDS`` (those left out keep their value), as the
        turn's later steps measure them; raises ``StoreError`` if there is no such turn."""
        measured = {name: _turn_value(value) for name, value in _turn_values(values).items()}
        c = t.turns.c
        async with self._tx() as conn:
            result = await conn.execute(
                update(t.turns).where(c.call_id == call_id, c.turn == turn).values(**measured)
            )
        if not result.rowcount:
            raise StoreError(f"call {call_id}: no turn {turn} to update")

    async def update_transcript(self, call_id: str, seq: int, text: str) -> None:
        """Replace the text of line ``seq`` (e.g. an agent line with what the caller heard of
        it); raises ``StoreError`` if the call has no such line."""
        c = t.transcript_entries.c
        async with self._tx() as conn:
            result = await conn.execute(
                update(t.transcript_entries)
                .where(c.call_id == call_id, c.seq == seq)
                .values(text=storable(text))
            )
        if not result.rowcount:
            raise StoreError(f"call {call_id}: no transcript line {seq} to update")

    async def transcript(self, call_id: str) -> list[TranscriptRecord]:
        c = t.transcript_entries.c
        async with self._tx() as conn:
            rows = (
                (
                    await conn.execute(
                        select(t.transcript_entries).where(c.call_id == call_id).order_by(c.seq)
                    )
                )
                .mappings()
                .all()
            )
        return [
            TranscriptRecord(
                call_id=r["call_id"], seq=r["seq"], role=Role(r["role"]), text=r["text"], at=r["at"]
            )
            for r in rows
        ]

    async def turns(self, call_id: str) -> list[Turn]:
        c = t.turns.c
        async with self._tx() as conn:
            rows = (
                (await conn.execute(select(t.turns).where(c.call_id == call_id).order_by(c.turn)))
                .mappings()
                .all()
            )
        return [_turn(r) for r in rows]

    async def delete(self, call_id: str, *, customer_id: str) -> bool:
        """Delete one of the customer's final calls with its transcript and turns (cascade).

        False if there is no such final call of theirs: a ringing or active call stays.
        """
        c = t.calls.c
        mine = (c.id == call_id, c.customer_id == customer_id, c.status.in_(_FINAL))
        async with self._tx() as conn:
            recording = (await conn.execute(select(c.recording_path).where(*mine))).scalar()
            result = await conn.execute(sql_delete(t.calls).where(*mine))
        deleted = bool(result.rowcount)
        if deleted:
            log.info("call %s deleted", call_id)
            await remove_recordings([recording])
        return deleted

    async def purge_ended_before(self, cutoff: datetime) -> int:
        """Delete every final call that ended (or, with no end time, started) before
        ``cutoff``, with its transcript and turns; returns how many calls went."""
        c = t.calls.c
        old = or_(c.ended_at < cutoff, and_(c.ended_at.is_(None), c.started_at < cutoff))
        purged = (c.status.in_(_FINAL), old)
        async with self._tx() as conn:
            recordings = (
                (
                    await conn.execute(
                        select(c.recording_path).where(*purged, c.recording_path.is_not(None))
                    )
                )
                .scalars()
                .all()
            )
            result = await conn.execute(sql_delete(t.calls).where(*purged))
        await remove_recordings(recordings)
        return int(result.rowcount or 0)

    # Last in the class: a method named list would shadow the builtin in later annotations.
    async def list(
        self,
        customer_id: str,
        *,
        statuses: Collection[CallStatus] | None = None,
        direction: Direction | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> list[Call]:
        """The customer's calls, newest first, optionally only those in ``statuses`` and
        of ``direction``."""
        c = t.calls.c
        query = select(t.calls).where(c.customer_id == customer_id)
        if statuses:
            query = query.where(c.status.in_([CallStatus(s).value for s in statuses]))
        if direction is not None:
            query = query.where(c.direction == Direction(direction).value)
        query = query.order_by(c.started_at.desc(), c.id).limit(limit)
        async with self._tx() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_call(r) for r in rows]


async def _require_call(conn: AsyncConnection, call_id: str) -> None:
    # Checked explicitly: SQLite only enforces foreign keys when the pragma is on.
    found = (await conn.execute(select(t.calls.c.id).where(t.calls.c.id == call_id))).first()
    if found is None:
        raise StoreError(f"call {call_id}: no such call")


def _turn_values(values: dict[str, float | str | None]) -> dict[str, float | str | None]:
    unknown = values.keys() - _TURN_VALUES
    if unknown:
        raise ValueError(f"not stored turn fields: {', '.join(sorted(unknown))}")
    return values


def _turn_value(value: float | str | None) -> float | str | None:
    """Text (the webhook failure) made fit for every backend; numbers as they are."""
    if isinstance(value, str):
        return storable(value, MAX_WEBHOOK_ERROR) if value else None
    return value


def _turn(row: Any) -> Turn:
    values: dict[str, Any] = {name: row[name] for name in _TURN_VALUES}
    values["webhook_error"] = stored_webhook_failure(values["webhook_error"])
    return Turn(call_id=row["call_id"], turn=row["turn"], at=row["at"], **values)


def _call(row: Any) -> Call:
    return Call(
        id=row["id"],
        customer_id=row["customer_id"],
        flow_id=row["flow_id"],
        direction=Direction(row["direction"]),
        status=CallStatus(row["status"]),
        caller=row["caller"],
        destination=row["destination"],
        channel_id=row["channel_id"],
        started_at=row["started_at"],
        answered_at=row["answered_at"],
        ended_at=row["ended_at"],
        hangup_reason=row["hangup_reason"],
        node_id=row["node_id"],
        answered_by=row["answered_by"],
        message=row["message"],
        recording_path=row["recording_path"],
        recording_started_at=row["recording_started_at"],
    )
