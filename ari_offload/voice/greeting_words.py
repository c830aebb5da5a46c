"""What the words of a greeting say about who answered: a voicemail phrase, or a person's.

Timing alone misjudges two common openings: a short personal greeting ("Hi, it's Alex.
Leave a message.", 2.4 s, then a pause) sounds like a person; a receptionist's long one
("Good morning, Acme Dental, Sarah speaking, how can I help you?") like a machine. Their
words settle it. A voicemail phrase wins over a person's ("You're speaking to the voicemail
of..."). Phrases are matched on whisper's text, lower-cased, punctuation dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ari_offload.voice.machine_detect import AnsweredBy, MachineDetector, Verdict

WORDS_FROM_MS = 1200  # "Hello?" and "Hi, who's calling?" are shorter: not worth a whisper run

# (label, pattern): the label, never the far end's own words, is what a transcript line shows.
_MACHINE = (
    ("leave a message", r"leave (\w+ ){0,3}message"),
    ("after the tone", r"(after|at) the (tone|beep)"),
    ("record your message", r"record your message"),
    ("voicemail", r"voice ?mail|mailbox"),
    ("you have reached", r"(you have|you've|you) reached"),
    ("not available", r"(is|am|are) not available"),
    (
        "can't take your call",
        r"(can't|cannot|can not|unable to) (take|come to|answer|get to) (your|the)",
    ),
    ("not home right now", r"not (at home|home|in) right now"),
    ("office is closed", r"office is (now )?closed"),
    ("call you back as soon as", r"(get|call) (back to )?you (back )?as soon as"),
)
_PERSON = (
    ("how can I help", r"how (can|may) (i|we) help"),
    ("what can I do for you", r"what can i do for you"),
    ("who's calling", r"who('s| is) (calling|this)"),
    ("<name> speaking", r"\w+ speaking"),
)


@dataclass(frozen=True)
class WordsSay:
    answered_by: AnsweredBy
    phrase: str  # the label of the phrase that matched


def plain(text: str) -> str:
    """Lower case words and apostrophes, single spaces: what the phrases are written for."""
    return " ".join(re.findall(r"[a-z']+", text.lower().replace("\u2019", "'")))


def words_say(text: str) -> WordsSay | None:
    """A machine if any voicemail phrase is there, else a person if a person's phrase is."""
    words = plain(text)
    for phrases, answered_by in ((_MACHINE, AnsweredBy.MACHINE), (_PERSON, AnsweredBy.HUMAN)):
        for label, pattern in phrases:
            if re.search(pattern, words):
                return WordsSay(answered_by, label)
    return None


def words_worth(detector: MachineDetector) -> bool:
    """Whether the greeting is long enough to hold a phrase (and no beep has settled it)."""
    return detector.cue is None and detector.greeting_ms >= WORDS_FROM_MS


def check_words(detector: MachineDetector, text: str) -> Verdict:
    """The verdict, overruled if the greeting's words (``text``) say otherwise."""
    verdict = detector.verdict
    assert verdict is not None, "words check a verdict"
    said = words_say(text)
    if said is None or said.answered_by == verdict.answered_by:
        return verdict
    return detector.overrule(said.answered_by, f'the words "{said.phrase}"')
