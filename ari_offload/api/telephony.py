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
