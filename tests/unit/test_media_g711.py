import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from ari_offload.audio import Pcm
from ari_offload.media.g711 import (
    ALAW,
    SLIN16,
    ULAW,
    alaw_decode,
    alaw_encode,
    codec_for,
    slin_decode,
    slin_encode,
    ulaw_decode,
    ulaw_encode,
)

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    # The reference: deprecated since 3.11 (removed in 3.13), so only the tests use it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    return audioop


def test_ulaw_encode_matches_audioop_for_every_int16(audioop: ModuleType) -> None:
    assert ulaw_encode(ALL_INT16) == audioop.lin2ulaw(ALL_INT16.tobytes(), 2)


def test_ulaw_decode_matches_audioop_for_every_code(audioop: ModuleType) -> None:
    assert ulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_encode_matches_audioop_for_every_int16(audioop: ModuleType) -> None:
    assert alaw_encode(ALL_INT16) == audioop.lin2alaw(ALL_INT16.tobytes(), 2)


def test_alaw_decode_matches_audioop_for_every_code(audioop: ModuleType) -> None:
    assert alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_a_frame_round_trips_within_quantisation_error(
    encode: Callable[[Pcm], bytes], decode: Callable[[bytes], Pcm]
) -> None:
    t = np.arange(160) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)

    encoded = encode(tone)
    decoded = decode(encoded)

    assert len(encoded) == 160
    assert decoded.dtype == np.int16
    assert decoded.shape == (160,)
    # G.711 keeps about 3% relative error at this level.
    assert np.max(np.abs(decoded.astype(int) - tone)) < 8000 * 0.04


def test_encode_works_on_a_strided_view() -> None:
    pcm = np.arange(-1000, 1000, 5, dtype=np.int16)

    assert ulaw_encode(pcm[::2]) == ulaw_encode(pcm[::2].copy())


def test_encode_refuses_float_audio() -> None:
    with pytest.raises(ValueError, match="PCM must be int16, got float64"):
        ulaw_encode(np.zeros(160))  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "codec", "pt"), [("ulaw", ULAW, 0), ("alaw", ALAW, 8)])
def test_codec_for_names_the_rtp_codecs(name: str, codec: object, pt: int) -> None:
    found = codec_for(name)

    assert found is codec
    assert (found.name, found.payload_type, found.sample_rate) == (name, pt, 8000)
    assert abs(int(found.decode(bytes([found.silence]))[0])) <= 8  # A-law has no exact 0
    assert found.encode(np.zeros(1, np.int16)) == bytes([found.silence])


def test_codec_for_an_unknown_name_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown codec 'opus': expected one of 'ulaw', 'alaw'"):
        codec_for("opus")


def test_slin16_is_16_khz_little_endian_two_bytes_a_sample() -> None:
    assert codec_for("slin16") is SLIN16
    assert (SLIN16.sample_rate, SLIN16.frame_samples, SLIN16.frame_bytes) == (16000, 320, 640)
    assert (ULAW.frame_samples, ULAW.frame_bytes) == (160, 160)
    assert slin_encode(np.array([1, -2, 0x1234], np.int16)) == b"\x01\x00\xfe\xff\x34\x12"
    assert np.array_equal(slin_decode(slin_encode(ALL_INT16)), ALL_INT16)
    assert np.array_equal(slin_decode(b"\x01\x00\x02"), [1])  # a stray odd byte is cut
    assert SLIN16.encode(np.zeros(1, np.int16)) == bytes([SLIN16.silence]) * 2
