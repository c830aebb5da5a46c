"""``client.calls``: list and inspect calls, place outbound calls, and act on a live call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ari_offload.sdk.records import Call, CallStatus
from ari_offload.sdk.resources import Resource, seg


class Calls(Resource):
    async def list(
        self,
        status: CallStatus | Sequence[CallStatus] | None = None,
        *,
        limit: int | None = None,
    ) -> list[Call]:
        """Newest first; ``status`` filters (``"active"`` or ``["ringing", "active"]``)."""
        params: dict[str, str] = {}
        if status:
            params["status"] = status if isinstance(status, str) else ",".join(status)
        if limit is not None:
            params["limit"] = str(limit)
        data = await self._client.request("GET", "/calls", params=params)
        return [Call.from_json(c) for c in data["calls"]]

    async def get(self, call_id: str) -> Call:
        """The call with its transcript and turn latencies."""
        return Call.from_json(await self._client.request("GET", f"/calls/{seg(call_id)}"))

    async def create(
        self,
        destination: str,
        flow_id: str,
        *,
        caller_id: str | None = None,
        route: str | None = None,
        message: str | None = None,
    ) -> Call:
        """Place an outbound call; the flow runs when it is answered.

        ``destination`` is a number (dialled on ``route``, or the operator's default route)
        or the name of an endpoint the operator allows; the operator's policy decides.
        ``message``: what the flow's ``say_message`` action says on this call (one flow, a
        different message per call).
        """
        body: dict[str, Any] = {"destination": destination, "flow_id": flow_id}
        if caller_id is not None:
            body["caller_id"] = caller_id
        if route is not None:
            body["route"] = route
        if message is not None:  # sent only when set: a server before it refuses it
            body["message"] = message
        return Call.from_json(await self._client.request("POST", "/calls", body))

    async def delete(self, call_id: str) -> None:
        """Delete an ended call with its transcript, turns and recording (409 while it is
        live)."""
        await self._client.request("DELETE", f"/calls/{seg(call_id)}")

    async def recording(self, call_id: str) -> bytes:
        """The call's recording, a stereo WAV (the caller left, the agent right); ApiError 404
        if the call was not recorded (its flow has no record action)."""
        return await self._client.download(f"/calls/{seg(call_id)}/recording")

    async def hangup(self, call_id: str) -> Call:
        path = f"/calls/{seg(call_id)}/hangup"
        return Call.from_json(await self._client.request("POST", path))

    async def talk(self, call_id: str, text: str) -> Call:
        return Call.from_json(
            await self._client.request("POST", f"/calls/{seg(call_id)}/talk", {"text": text})
        )

    async def send_dtmf(self, call_id: str, digits: str) -> Call:
        """Play DTMF ``digits`` (0-9 * # A-D; ``w`` waits half a second) to the far end of a
        live call, e.g. an IVR's menu on an outbound call."""
        path = f"/calls/{seg(call_id)}/dtmf"
        return Call.from_json(await self._client.request("POST", path, {"digits": digits}))

    async def transfer(self, call_id: str, target: str) -> Call:
        """Hand the caller of a live call to ``target``, a transfer target the operator
        named in the policy; what the flow was doing stops."""
        path = f"/calls/{seg(call_id)}/transfer"
        return Call.from_json(await self._client.request("POST", path, {"target": target}))
