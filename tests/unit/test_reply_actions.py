"""What a reply may ask for besides speech: each rule refused with the field and the fix."""

from __future__ import annotations

import pytest

from ari_offload.agent.reply_actions import (
    MAX_REPLY_ACTIONS,
    Collect,
    Hangup,
    SendDtmf,
    Transfer,
    checked_actions,
    describe,
    parse_reply_actions,
    split_hangup,
)
from ari_offload.errors import WebhookBadReply


def test_the_four_actions_parse_into_their_types() -> None:
    actions = parse_reply_actions(
        [
            {"type": "send_dtmf", "digits": "1w2#"},
            {"type": "collect", "max_digits": 4, "terminator": "#", "timeout_s": 20},
        ]
    )
    assert actions == (SendDtmf("1w2#"), Collect(4, "#", 20))
    assert parse_reply_actions([{"type": "transfer", "target": "sales"}]) == (Transfer("sales"),)
    assert parse_reply_actions([{"type": "hangup"}]) == (Hangup(),)


def test_collect_has_defaults() -> None:
    assert parse_reply_actions([{"type": "collect"}]) == (Collect(),)


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ("transfer", "actions", "list"),
        ([{"type": "dial", "to": "PJSIP/x"}], "actions[0].type", "one of"),
        ([{"type": "send_dtmf", "digits": "12;Dial(x)"}], "actions[0].digits", ""),
        ([{"type": "send_dtmf"}], "actions[0].digits", ""),
        ([{"type": "transfer", "target": "PJSIP/1000@trunk"}], "actions[0].target", ""),
        ([{"type": "collect", "max_digits": 0}], "actions[0].max_digits", ""),
        ([{"type": "collect", "terminator": "5"}], "actions[0].terminator", ""),
        ([{"type": "collect", "timeout_s": 3600}], "actions[0].timeout_s", ""),
        ([{"type": "hangup", "when": "now"}], "actions[0]", "unknown field"),
        ([{"type": "hangup"}, {"type": "send_dtmf", "digits": "1"}], "actions[0]", "last"),
        ([{"type": "collect"}, {"type": "collect"}], "actions[1]", "at most one collect"),
        ([{"type": "collect"}, {"type": "hangup"}], "actions[1]", "cannot follow collect"),
        ([{"type": "hangup"}] * (MAX_REPLY_ACTIONS + 1), "actions", f"at most {MAX_REPLY_ACTIONS}"),
    ],
)
def test_bad_actions_are_refused_naming_the_field(raw: object, field: str, says: str) -> None:
    with pytest.raises(WebhookBadReply) as caught:
        parse_reply_actions(raw)
    message = str(caught.value)
    assert f'reply "{field}' in message, message
    assert says in message


def test_a_streams_actions_are_checked_together() -> None:
    with pytest.raises(WebhookBadReply, match="joined"):
        checked_actions([Transfer("desk"), SendDtmf("1")])
    assert checked_actions([SendDtmf("1"), Transfer("desk")]) == (SendDtmf("1"), Transfer("desk"))


def test_hangup_is_kept_once_as_the_replys_flag() -> None:
    assert split_hangup((SendDtmf("1"), Hangup()), hangup=False) == ((SendDtmf("1"),), True)
    assert split_hangup((SendDtmf("1"),), hangup=True) == ((SendDtmf("1"),), True)
    with pytest.raises(WebhookBadReply, match="conflicts with its transfer"):
        split_hangup((Transfer("desk"),), hangup=True)


def test_each_action_has_a_transcript_line() -> None:
    assert describe(Transfer("sales")) == "transfer to sales"
    assert describe(SendDtmf("12")) == "send keys 12"
    assert describe(Collect(4, "#", 10)) == "collect up to 4 keys, # ends, 10 s timeout"
    assert describe(Hangup()) == "hang up"
