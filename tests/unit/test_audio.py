import numpy as np
import pytest

from ari_offload.audio import WIDEBAND_RATE, Halver, Pcm, Resampler, resample


def tone(freq: float, rate: int, seconds: float = 1.0) -> Pcm:
    t = np.arange(int(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_hz(pcm: Pcm, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm))


def stream(resampler: Resampler, pcm: Pcm, chunk: int) -> Pcm:
    parts = [resampler.process(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk)]
    return np.concatenate([*parts, resampler.flush()])


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 8000)])
def test_one_shot_keeps_frequency_and_length(src: int, dst: int) -> None:
    out = resample(tone(1000, src), src, dst)

    assert out.dtype == np.int16
    assert abs(len(out) - dst) <= 3
    assert peak_hz(out, dst) == pytest.approx(1000, abs=3)


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 8000)])
def test_streaming_20ms_chunks_keeps_frequency_and_length(src: int, dst: int) -> None:
    out = stream(Resampler(src, dst), tone(1000, src), src // 50)

    assert out.dtype == np.int16
    assert abs(len(out) - dst) <= 3
    assert peak_hz(out, dst) == pytest.approx(1000, abs=3)


def test_streaming_output_lines_up_with_one_shot() -> None:
    pcm = tone(440, 22050)

    streamed = stream(Resampler(22050, 8000), pcm, 441)
    whole = resample(pcm, 22050, 8000)

    n = min(len(streamed), len(whole))
    diff = np.abs(streamed[:n].astype(int) - whole[:n])
    assert np.median(diff) <= 2  # same filter, not shifted in time


def test_a_resampler_can_be_reused_after_flush() -> None:
    resampler = Resampler(8000, 16000)
    first = stream(resampler, tone(500, 8000), 160)

    second = stream(resampler, tone(500, 8000, 0.5), 160)

    assert abs(len(first) - 16000) <= 3
    assert abs(len(second) - 8000) <= 3


def test_same_rate_is_a_copy() -> None:
    pcm = tone(1000, 8000, 0.02)

    assert np.array_equal(Resampler(8000, 8000).process(pcm), pcm)
    assert np.array_equal(resample(pcm, 8000, 8000), pcm)


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sample rates must be positive, got 0 -> 8000"):
        Resampler(0, 8000)


def test_the_halver_keeps_the_telephone_band_and_stops_what_would_fold_onto_it() -> None:
    halver = Halver()
    for freq, kept in ((300, True), (1000, True), (3000, True), (5000, False), (7000, False)):
        wide = tone(freq, WIDEBAND_RATE)
        out = np.concatenate([halver.process(wide[i : i + 320]) for i in range(0, len(wide), 320)])
        assert len(out) == len(wide) // 2  # exactly half, frame by frame: no burst, no lag
        level = float(np.sqrt(np.mean(out[200:].astype(np.float64) ** 2))) / (10000 / np.sqrt(2))
        assert level > 0.9 if kept else level < 0.01, (freq, level)
        if kept:
            assert peak_hz(out, WIDEBAND_RATE // 2) == pytest.approx(freq, abs=3)


def test_the_halver_takes_even_chunks_only() -> None:
    with pytest.raises(ValueError, match="even-length chunks, got 3"):
        Halver().process(np.zeros(3, np.int16))
