"""Fields that flow actions (flows/actions) and an agent's reply actions (agent/reply_actions)
share: one spec each, so a transfer target or a DTMF string means the same in both."""

from __future__ import annotations

from ari_offload.schema import Str

# The names of transfer targets in the policy file (policy.NAME_PATTERN).
TARGET_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"
TRANSFER_TARGET = Str(
    63, 1, TARGET_PATTERN,
    description="a transfer target the operator named (ask them for the list)",
)  # fmt: skip

MAX_DTMF_DIGITS = 32
# Asterisk's DTMF string: the keys, and ``w`` for a half-second wait ("1w2").
DTMF_PATTERN = rf"^[0-9A-D*#w]{{1,{MAX_DTMF_DIGITS}}}$"
DTMF_DIGITS = Str(
    MAX_DTMF_DIGITS, 1, DTMF_PATTERN,
    description="digits 0-9, *, #, A-D; w waits half a second",
)  # fmt: skip
