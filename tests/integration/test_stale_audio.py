"""What the caller said before ai_talk began never reaches the agent (real call).

A `talk` action plays for several seconds while the caller speaks over it; nobody listens
then. The first webhook text must be what the caller said once ai_talk was listening, not
seconds of audio left over from the `talk` (which the single inbox of old kept, and counted
as RTP loss when it overflowed).
"""

from __future__ import annotations

import pytest

from ari_offload.agent.contract import WebhookRequest
from ari_offload.flows.actions import Talk
from testbed.dialogue import Say, Silence, run_dialogue
from tests.integration.conftest import AgentServiceFactory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

NOTICE = (
    "Thank you for calling the order line. Calls may be recorded for training, and our"
    " opening hours are nine to five on weekdays."
)


async def test_speech_during_a_talk_is_not_sent_to_the_agent_after_it(
    start_agent_service: AgentServiceFactory,
    sample_agent: tuple[str, list[WebhookRequest]],
) -> None:
    url, received = sample_agent
    log = await start_agent_service(url, welcome=None, before=(Talk(NOTICE),))

    result = await run_dialogue(
        "8talk",
        [
            Silence(2.5),
            Say("I want to cancel my order"),  # over the notice
            Silence(7.0),
            Say("I need to reset my password"),  # once ai_talk listens
            Silence(6.0),
        ],
    )

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    said_over = result.caller[0]
    notice = result.agent[0]  # its first sentence, at least
    assert notice.start < said_over.start < notice.end, "the caller spoke over the notice"
    assert received, "the agent heard nothing at all"
    first = received[0].text.lower()
    assert "password" in first, received
    assert "cancel" not in first, received
    assert "order" not in first, received
    assert all("cancel" not in r.text.lower() for r in received), received
    assert [e.role for e in log.only_call()][:1] == ["caller"], log.only_call()
