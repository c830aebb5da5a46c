"""Calls: list and inspect, place outbound calls, act on a live call (hang up, speak, play
DTMF, transfer), and fetch a call's recording."""

from __future__ import annotations

import asyncio
import logging
from typing import BinaryIO

from aiohttp import web

from ari_offload.api import schemas as s
from ari_offload.api.errors import ApiError
from ari_offload.api.routing import PREFIX, Ctx, Resp, Route, json_response
from ari_offload.errors import PolicyRefused, QuotaExceeded, TalkQueueFull, TelephonyError
from ari_offload.flows.actions import SayMessage
from ari_offload.observe.wav import HEADER_BYTES, repaired_header
from ari_offload.quotas import WINDOW as QUOTA_WINDOW
from ari_offload.quotas import check_quotas, tenant_rules
from ari_offload.schema import Arr, Int, Param
from ari_offload.store import Call, CallStatus, Direction
from ari_offload.store._db import utcnow
from ari_offload.store.calls import DEFAULT_LIST_LIMIT

log = logging.getLogger("ari_offload.api")

MAX_LIST_LIMIT = 500


async def _own_call(ctx: Ctx) -> Call:
    call = await ctx.store.calls.get(ctx.path["call_id"], customer_id=ctx.customer_id)
    if call is None:
        raise ApiError.not_found("call")
    return call


def _not_live(call: Call) -> ApiError:
    return ApiError(409, "call_not_active", f"the call is {call.status.value}, not active")


async def list_calls(ctx: Ctx) -> web.Response:
    statuses = [CallStatus(v) for v in ctx.query["status"] or ()]
    direction = ctx.query["direction"]
    calls = await ctx.store.calls.list(
        ctx.customer_id, statuses=statuses, limit=ctx.query["limit"],
        direction=None if direction is None else Direction(direction),
    )  # fmt: skip
    return json_response({"calls": [s.call_json(c) for c in calls]})


async def get_call(ctx: Ctx) -> web.Response:
    call = await _own_call(ctx)
    transcript = await ctx.store.calls.transcript(call.id)
    turns = await ctx.store.calls.turns(call.id)
    return json_response(s.call_detail_json(call, transcript, turns))


async def hangup_call(ctx: Ctx) -> web.Response:
    call = await _own_call(ctx)
    if call.status.is_final:
        raise _not_live(call)
    try:
        found = await ctx.services.telephony.hangup(call.id)
    except TelephonyError as exc:
        log.warning("call %s: hangup failed: %s", call.id, exc)
        raise ApiError(502, "telephony_error", "Asterisk is not reachable; try again") from None
    if not found:
        raise ApiError(409, "call_not_active", "the call is not active on this server")
    return json_response(s.call_json(call), 202)


TALK_RETRY_AFTER_S = 3  # a queued text takes a few seconds to say


async def talk_call(ctx: Ctx) -> web.Response:
    call = await _own_call(ctx)
    if call.status != CallStatus.ACTIVE:
        raise _not_live(call)
    try:
        spoken = await ctx.services.telephony.talk(call.id, ctx.body["text"])
    except TalkQueueFull as exc:
        raise ApiError(
            429,
            "talk_queue_full",
            f"{exc.limit} texts are already queued for this call; retry once some are spoken",
            headers={"Retry-After": str(TALK_RETRY_AFTER_S)},
        ) from None
    if not spoken:
        raise ApiError(409, "call_not_active", "the call is not active on this server")
    return json_response(s.call_json(call), 202)


async def dtmf_call(ctx: Ctx) -> web.Response:
    call = await _own_call(ctx)
    if call.status != CallStatus.ACTIVE:
        raise _not_live(call)
    try:
        sent = await ctx.services.telephony.send_dtmf(call.id, ctx.body["digits"])
    except TelephonyError as exc:
        log.warning("call %s: DTMF failed: %s", call.id, exc)
        raise ApiError(502, "telephony_error", "Asterisk is not reachable; try again") from None
    if not sent:
        raise ApiError(409, "call_not_active", "the call is not active on this server")
    return json_response(s.call_json(call), 202)


async def transfer_call(ctx: Ctx) -> web.Response:
    call = await _own_call(ctx)
    if call.status != CallStatus.ACTIVE:
        raise _not_live(call)
    try:
        ctx.services.policy.transfer_target(ctx.body["target"])
    except PolicyRefused as exc:
        raise ApiError.refused(exc, "target") from None
    if not await ctx.services.telephony.transfer(call.id, ctx.body["target"]):
        raise ApiError(
            409, "call_not_active",
            "the call is not active on this server, runs no flow, or is leaving already "
            "(a transfer or a hangup under way)",
        )  # fmt: skip
    return json_response(s.call_json(call), 202)


async def delete_call(ctx: Ctx) -> web.Response:
    call = await _own_call(ctx)
    if not call.status.is_final:
        raise ApiError(409, "call_not_final", f"the call is {call.status.value}: hang it up first")
    if utcnow() - call.started_at < QUOTA_WINDOW:
        # The calls-per-minute quota counts these rows: deleting them would reset it.
        raise ApiError(409, "call_too_recent", "a call can be deleted a minute after it started",
                       headers={"Retry-After": str(int(QUOTA_WINDOW.total_seconds()))})  # fmt: skip
    if not await ctx.store.calls.delete(call.id, customer_id=ctx.customer_id):
        raise ApiError.not_found("call")  # deleted meanwhile
    return web.Response(status=204)


RECORDING_CHUNK = 256 * 1024  # bytes read from disk (in a thread) per write to the client


async def get_recording(ctx: Ctx) -> web.StreamResponse:
    call = await _own_call(ctx)
    if call.recording_path is None:
        raise ApiError(
            404, "not_recorded", "the call was not recorded: its flow has no record action"
        )
    try:
        file, header, size = await asyncio.to_thread(_open_recording, call.recording_path)
    except (OSError, ValueError) as exc:
        log.warning("call %s: recording %s unreadable: %s", call.id, call.recording_path, exc)
        raise ApiError(
            404, "recording_missing", "the call's recording file is gone from the server that "
            "recorded it (removed from its disk)",
        ) from None  # fmt: skip
    try:
        # The header is made for what the file holds now: a recording still running, or one
        # whose writer was killed before its last header update, is served whole and playable.
        response = web.StreamResponse(
            headers={
                "Content-Type": "audio/wav",
                "Content-Length": str(HEADER_BYTES + size),
                "Content-Disposition": f'attachment; filename="{call.id}.wav"',
            }
        )
        await response.prepare(ctx.request)
        await response.write(header)
        left = size
        while left > 0:
            chunk = await asyncio.to_thread(file.read, min(RECORDING_CHUNK, left))
            if not chunk:
                break  # cut short meanwhile (a resumed recording trims a torn frame)
            await response.write(chunk)
            left -= len(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(file.close)


def _open_recording(path: str) -> tuple[BinaryIO, bytes, int]:
    """The file positioned at its audio, the header for what it holds, the audio's size."""
    file = open(path, "rb")  # noqa: SIM115 (the caller streams it, then closes it)
    try:
        size = file.seek(0, 2)
        file.seek(0)
        header, data = repaired_header(file.read(HEADER_BYTES), size)
    except BaseException:
        file.close()
        raise
    return file, header, data


async def create_call(ctx: Ctx) -> web.Response:
    flow = await ctx.store.flows.get(ctx.body["flow_id"], customer_id=ctx.customer_id)
    if flow is None:
        raise ApiError(422, "validation_error", "flow_id: no such flow", "flow_id")
    message = ctx.body.get("message")
    if message is not None and not any(isinstance(a, SayMessage) for a in flow.actions):
        raise ApiError(
            422, "validation_error",
            "message: the flow has no say_message action to say it; add one", "message",
        )  # fmt: skip
    policy = ctx.services.policy
    rules = await tenant_rules(ctx.store, policy, ctx.customer_id)
    destination, caller_id = ctx.body["destination"], ctx.body.get("caller_id")
    try:
        dial = policy.outbound_dial_string(destination, ctx.body.get("route"), rules)
    except PolicyRefused as exc:
        log.info("customer %s: outbound call refused: %s", ctx.customer_id, exc)
        named_route = ctx.body.get("route") and exc.rule in ("tenant.routes", "outbound.routes")
        raise ApiError.refused(exc, "route" if named_route else "destination") from None
    if caller_id is not None:
        try:
            policy.check_caller_id(caller_id, rules)
        except PolicyRefused as exc:
            raise ApiError.refused(exc, "caller_id") from None
    # Recorded before originate: the controller may see the channel before we return.
    forwarder = ctx.services.forwarder  # in a cluster: this node places it (api/forward.py)
    call = await ctx.store.calls.create(
        ctx.customer_id, direction=Direction.OUT, flow_id=flow.id, caller=caller_id,
        destination=destination, message=message,
        node_id=forwarder.node_id if forwarder else None,
    )  # fmt: skip
    try:
        await check_quotas(ctx.store, policy, rules, ctx.customer_id, call.id, call.started_at)
    except QuotaExceeded as exc:
        # No row stays behind: refused attempts must not fill the windows that count calls
        # (one tenant hammering its own quota would otherwise lock every tenant out).
        await ctx.store.calls.set_status(call.id, CallStatus.FAILED, reason=f"quota: {exc.rule}")
        await ctx.store.calls.delete(call.id, customer_id=ctx.customer_id)
        ctx.services.metrics.call_not_started(Direction.OUT.value, "quota")
        raise ApiError.refused(exc) from None
    try:
        await ctx.services.telephony.originate(
            call_id=call.id, dial=dial, flow_id=flow.id, caller_id=caller_id
        )
    except TelephonyError as exc:
        # The operator's log gets the details; the tenant never sees dial strings or ARI bodies.
        log.info("call %s: originate refused: %s", call.id, exc)
        await ctx.store.calls.set_status(call.id, CallStatus.FAILED, reason="not placed")
        ctx.services.metrics.call_not_started(Direction.OUT.value, "failed")
        raise ApiError(
            502, "telephony_error", "the call could not be placed; the operator's log says why"
        ) from None
    fresh = await ctx.store.calls.get(call.id, customer_id=ctx.customer_id)
    return json_response(s.call_json(fresh or call), 201)


_CALL = f"{PREFIX}/calls/{{call_id}}"
ROUTES = [
    Route(
        "GET",
        f"{PREFIX}/calls",
        list_calls,
        "listCalls",
        "List calls, newest first",
        "calls",
        {200: Resp("the customer's calls", s.CALL_LIST)},
        query=(
            Param(
                "status",
                Arr(s.STATUS, 4),
                "only calls in these states (comma-separated, e.g. ringing,active)",
            ),
            Param("direction", s.DIRECTION, "only inbound (in) or outbound (out) calls"),
            Param(
                "limit",
                Int(1, MAX_LIST_LIMIT),
                "at most this many calls",
                default=DEFAULT_LIST_LIMIT,
            ),
        ),
    ),
    Route(
        "POST",
        f"{PREFIX}/calls",
        create_call,
        "createCall",
        "Place an outbound call",
        "calls",
        {201: Resp("the call, ringing", s.CALL)},
        body=s.CALL_CREATE,
        errors=(403, 429, 502),
        description="The flow runs when the destination answers; watch the call's status. "
        "The operator's policy decides what may be dialled: 403 names the rule that refused, "
        "429 (with Retry-After) a call quota. A message is said by the flow's say_message "
        "action on this call only, so one flow serves every message.",
    ),
    Route(
        "GET",
        _CALL,
        get_call,
        "getCall",
        "Get a call with its transcript and turn latencies",
        "calls",
        {200: Resp("the call", s.CALL_DETAIL)},
    ),
    Route(
        "DELETE",
        _CALL,
        delete_call,
        "deleteCall",
        "Delete an ended call with its transcript and turns",
        "calls",
        {204: Resp("deleted")},
        errors=(409,),
        description="409 while the call is ringing or active. Ended calls are also deleted "
        "after ARI_OFFLOAD_STORE_RETENTION_DAYS (90 by default; 0 keeps them).",
    ),
    Route(
        "GET",
        f"{_CALL}/recording",
        get_recording,
        "getCallRecording",
        "Download a call's recording",
        "calls",
        {200: Resp("a stereo WAV: the caller left, the agent right", content_type="audio/wav")},
        description="Only calls whose flow has a record action are recorded (404 not_recorded "
        "otherwise). While the call runs, what is recorded so far. Deleted with the call. In a "
        "cluster any node answers: the node that recorded the call sends the file on (503 "
        "while that node is down), unless ARI_OFFLOAD_RECORDING_DIR is shared by the nodes.",
    ),
    Route(
        "POST",
        f"{_CALL}/hangup",
        hangup_call,
        "hangupCall",
        "Hang up a call",
        "calls",
        {202: Resp("hangup requested; the status changes when Asterisk confirms", s.CALL)},
        errors=(409, 502),
    ),
    Route(
        "POST",
        f"{_CALL}/talk",
        talk_call,
        "talkCall",
        "Speak text into a live call",
        "calls",
        {202: Resp("queued for playback", s.CALL)},
        body=s.TALK,
        errors=(409, 429),
        description="Spoken after the reply in progress; a call holds a few texts at most "
        "(429 talk_queue_full with Retry-After beyond that).",
    ),
    Route(
        "POST",
        f"{_CALL}/dtmf",
        dtmf_call,
        "sendDtmf",
        "Play DTMF digits to the far end of a live call",
        "calls",
        {202: Resp("sent to Asterisk, which plays them (as RFC 4733 events on SIP)", s.CALL)},
        body=s.DTMF,
        errors=(409, 502),
        description="The keys go to the other party (on an outbound call, e.g. an IVR's "
        "menu), as a flow's send_dtmf action sends them; w waits half a second.",
    ),
    Route(
        "POST",
        f"{_CALL}/transfer",
        transfer_call,
        "transferCall",
        "Transfer a live call to a transfer target of the operator's policy",
        "calls",
        {202: Resp("the transfer runs; the call's status and transcript follow it", s.CALL)},
        body=s.TRANSFER,
        errors=(403, 409),
        description="What the flow is doing stops (a reply being said too) and the flow's "
        "transfer action runs: the target is a name from the operator's policy (403 names "
        "the rule otherwise), never a number or dial string. If the target does not answer, "
        "the caller hears an apology and the call ends. 409 while a transfer or a hangup is "
        "under way.",
    ),
]
