"""False interruptions: which barge-ins held no words, and where a resumed reply picks up.

Barge-in stops playback at once, long before STT can say what the caller said. When the
transcript then holds no words — a cough, line noise, a "mm-hm" that means "go on" — the
reply resumes a little before the cut instead of leaving the caller in silence. Sans-IO:
text and samples in, verdicts and sample offsets out; ``TurnTaker`` applies them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.voice.turns import Segment

# The no-words verdict must come this soon after the caller went quiet, or the reply stays
# abandoned: past it the caller has sat through a silence long enough to take the floor, and
# a reply picking up again would talk over them. The verdict is the VAD endpoint (400 ms of
# silence) plus STT of a short sound: ~0.7 s on a quiet 2-core box, but 2.8 s measured on a
# loaded one (CI: whisper queued beside the cut reply's own synthesis). A filler sent on as a
# turn instead would not be answered sooner (STT, then the webhook, then TTS).
RESUME_WITHIN_S = 3.0
# How long the sound that cut the reply may go on after the cut and still be judged: a
# cough or an "um" is over within it; a longer one is the caller taking the floor.
SOUND_WITHIN_S = 3.0
# Line noise can cut the same reply again and again: after this many resumes it stays cut.
MAX_RESUMES = 2
# Barge-in waits for 200 ms of the caller's sound before it stops playback, so the last words
# before the cut were covered by the cough: the reply picks up this far before the cut, at
# the start of the word found there (word times are spread evenly over the sentence).
REWIND_MS = 400
# That word start is estimated; it moves to the quietest 20 ms within this distance (the gap
# between two words), so the reply does not pick up mid-phoneme.
SNAP_MS = 100
_SNAP_WINDOW_MS = 20

# Whisper's annotations of sounds that are not speech: "(coughing)", "[Music]", "*cough*", ♪.
_NON_SPEECH = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪")
_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")
_REPEATS = re.compile(r"(.)\1+")
# Sounds that, said over a reply with nothing else, ask it to go on (or mean nothing), spelt
# with repeated letters collapsed ("mmm-hmm" -> "m-hm"): hums and fillers. Deliberately not
# here: "okay", "yes", "yeah", "right", "no", "sure" (they may answer a question the reply
# asks: the caller who says them has the floor), and "mm-mm" (= "no").
BACKCHANNELS = frozenset(
    {"m", "hm", "m-hm", "mhm", "uh-huh", "uhu", "uh", "um", "uhm", "er", "erm", "ah", "oh"}
)


def holds_no_words(text: str) -> bool:
    """Nothing but punctuation and non-speech annotations: no turn, whenever it is said."""
    return not _WORD.search(_NON_SPEECH.sub(" ", text).lower())


def is_false_interruption(text: str) -> bool:
    """What the caller said over a reply does not take the floor: no words, or only
    backchannels (which, said when the caller has the floor, are a turn like any other)."""
    words = _WORD.findall(_NON_SPEECH.sub(" ", text).lower())
    return all(_REPEATS.sub(r"\1", word) in BACKCHANNELS for word in words)


def resume_point(
    text: str, pcm: Pcm, target: int, rate: int = SAMPLE_RATE, snap_ms: int = SNAP_MS
) -> tuple[int, int]:
    """Where a sentence (``text`` spoken as ``pcm``) picks up again to be heard from sample
    ``target`` on: (words before that point, sample offset into ``pcm``).

    The start of the word that holds ``target``, moved to the quietest 20 ms near it (the
    nearest such, if tied) but never past ``target``; the sentence's own start if that word
    is its first.
    """
    words = len(text.split())
    if not words or not len(pcm) or target <= 0:
        return 0, 0
    word = min(words - 1, target * words // len(pcm))
    if word == 0:
        return 0, 0
    start = word * len(pcm) // words
    snap, window = rate * snap_ms // 1000, rate * _SNAP_WINDOW_MS // 1000
    lo, hi = max(0, start - snap), min(target, start + snap, len(pcm) - window)
    if hi <= lo:
        return word, start
    energy = np.convolve(np.abs(pcm[lo : hi + window].astype(np.int64)), np.ones(window), "valid")
    quietest = lo + np.flatnonzero(energy == energy.min())
    return word, int(quietest[np.argmin(np.abs(quietest - start))])  # the nearest, if tied


def rewind(
    queued: Sequence[tuple[Segment, Pcm]], cut_at: int, rate: int = SAMPLE_RATE
) -> tuple[list[tuple[Segment, Pcm]], list[tuple[str, Pcm]]]:
    """A reply's queued sentences, cut at playout position ``cut_at``, picking up REWIND_MS
    before it: (what stays heard up to the resume point, the (text, audio) pieces that play
    again from there, in order)."""
    target = cut_at - REWIND_MS * rate // 1000
    kept: list[tuple[Segment, Pcm]] = []
    pieces: list[tuple[str, Pcm]] = []
    for segment, pcm in queued:
        if pieces:
            pieces.append((segment.text, pcm))  # queued after the cut: never heard
            continue
        if segment.end <= target:
            kept.append((segment, pcm))  # heard in full before the resume point
            continue
        word, offset = resume_point(segment.text, pcm, target - segment.start, rate)
        words = segment.text.split()
        if word:
            head = Segment(" ".join(words[:word]), segment.start, segment.start + offset)
            kept.append((head, pcm[:offset]))
        pieces.append((" ".join(words[word:]), pcm[offset:]))
    return kept, pieces
