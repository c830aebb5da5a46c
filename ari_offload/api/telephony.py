"""What the API needs from the telephony side; the ARI call controller implements it.

The API records an outbound call (ringing, direction out) before ``originate``; from then on
the controller moves its status forward through the Store.
"""

from __future__ import annotations

from typing import Protocol


class Telephony(Protocol):
    async def originate(
        self, *, call_id: str, dial: str, flow_id: str, caller_id: str | None
    ) -> None:
        """Dial ``dial`` (a dial string the policy built) into our Stasis app.

        Raises ``TelephonyError`` if Asterisk refused or could not be reached.
        """
        ...

    async def hangup(self, call_id: str) -> bool:
        """Hang the call up; False if the call is not active here."""
        ...

    async def talk(self, call_id: str, text: str) -> bool:
        """Speak text into the live call; False if the call is not active here.

        Raises ``TalkQueueFull`` when the call already has its bound of texts waiting.
        """
        ...

    async def send_dtmf(self, call_id: str, digits: str) -> bool:
        """Play DTMF ``digits`` (action_fields.DTMF_DIGITS) to the far end of the live call;
        False if the call is not active here.

        Raises ``TelephonyError`` if Asterisk could not be reached.
        """
        ...

    async def transfer(self, call_id: str, target: str) -> bool:
        """Stop what the call's flow is doing and run its transfer action to ``target``, a
        transfer target of the policy (the API checked it; the action checks it again);
        False if the call is not active here, runs no flow, or is leaving already.
        """
        ...
