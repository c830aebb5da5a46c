"""An agent's speaking rate: validated by the API, applied as piper's length_scale (the real
voices speaking at a rate: tests/test_speech_models.py)."""

from __future__ import annotations

import pytest

from ari_offload.api.schemas import AGENT_CREATE, AGENT_UPDATE
from ari_offload.errors import ValidationError
from ari_offload.speech.piper import length_scale_at

BODY = {"name": "a", "webhook": "http://127.0.0.1:9/x"}


@pytest.mark.parametrize(
    ("base", "rate", "scale"),
    [(1.0, 1.0, 1.0), (1.0, 2.0, 0.5), (1.0, 0.5, 2.0), (2.0, 2.0, 1.0), (1.4, 0.7, 2.0)],
)
def test_a_rate_divides_the_voices_own_length_scale(base: float, rate: float, scale: float) -> None:
    assert length_scale_at(base, rate) == pytest.approx(scale)


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_a_rate_that_is_no_pace_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="a speaking rate must be > 0"):
        length_scale_at(1.0, rate)


@pytest.mark.parametrize("rate", [0.5, 1, 1.25, 2.0, None])
def test_rates_from_half_to_twice_the_pace_or_null_are_accepted(rate: float | None) -> None:
    body = AGENT_CREATE.validate({**BODY, "speaking_rate": rate}, "")
    assert isinstance(body, dict)
    assert body["speaking_rate"] == rate
    assert AGENT_UPDATE.validate({"speaking_rate": rate}, "") == {"speaking_rate": rate}


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        (0.49, "speaking_rate: must be at least 0.5"),
        (2.01, "speaking_rate: must be at most 2"),
        (0, "speaking_rate: must be at least 0.5"),
        ("fast", "speaking_rate: expected a number"),
        (True, "speaking_rate: expected a number"),
    ],
)
def test_a_rate_out_of_range_or_not_a_number_names_the_field(rate: object, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        AGENT_CREATE.validate({**BODY, "speaking_rate": rate}, "")
    assert (err.value.field, str(err.value)) == ("speaking_rate", message)
