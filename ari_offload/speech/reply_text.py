"""A reply's text cut into the pieces TTS says one at a time (sans-IO).

Sentences first (``split_sentences``); then the reply is planned as chunks (``plan_chunks``)
so the caller hears something as early as possible: piper renders a sentence in one go, in
about a tenth of its spoken length, and nothing of it plays before it is done. So the first
sentence is cut after its first clause (at the first comma, colon or semicolon, or after a
few words at a phrase boundary, never mid-word): "You said:" takes ~45 ms where the whole
sentence takes ~220 ms. The next chunk is larger but bounded, so it is ready before the first
has played out; later chunks are whole sentences, synthesized while the one before plays.

A clause cut mid-sentence is spoken with a comma after it (``Chunk.speak``): piper's
intonation then rises as in the middle of a sentence instead of falling as at its end, and
the short pause after it (``CLAUSE_PAUSE_MS``) is what a speaker leaves there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Piper's working memory grows with the longest piece it has ever been given and is kept
# (onnxruntime's arena): with two workers, pieces of up to 10/20/30/40 words reached
# 414/635/913/998 MB RSS (bench/bench_tts_memory.py). A bound on the piece bounds the process.
MAX_SENTENCE_CHARS = 140
# Silence put back between chunks (piper's own edges are trimmed): after a sentence, after a
# clause that ends in a punctuation mark, and after a cut between two words.
SENTENCE_PAUSE_MS = 250
CLAUSE_PAUSE_MS = 120
WORD_CUT_PAUSE_MS = 40
# The first chunk: a clause of FIRST_MIN_WORDS..FIRST_MAX_WORDS words ending in , ; : or a
# dash; else, in a sentence of more than FIRST_MAX_WORDS words, a cut after FIRST_CUT_WORDS
# words (at a phrase boundary if one is near).
FIRST_MIN_WORDS = 1  # "Sure," is a clause: the shortest first audio there is
FIRST_MAX_WORDS = 8
FIRST_CUT_WORDS = 5
MIN_TAIL_WORDS = 3  # never leave a remainder shorter than this after a word cut
# The second chunk must be rendered while the first plays (~0.3 s of audio per two words).
SECOND_MAX_WORDS = 10
# Words a new phrase often starts with: a cut before one sounds like a speaker's breath.
_PHRASE_STARTS = frozenset(
    {"and", "but", "or", "so", "because", "if", "when", "while", "with", "for", "to", "in"}
    | {"on", "at", "by", "from", "that", "which", "who", "where", "after", "before", "until"}
    | {"unless", "about", "into", "than", "of"}
)
_CLAUSE_END = (",", ";", ":", "—", "–")

# A period after these is not a sentence end ("Dr. Smith", "e.g. this").
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "a.m", "p.m"}
    | {"inc", "ltd", "approx", "dept"}
)
# espeak-ng (inside piper) would end a sentence at "Dr."; without the dot it still says
# "Doctor" and the sentence stays whole.
_TITLE_DOT = re.compile(r"\b(Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|vs|etc)\.(?=\s)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")


@dataclass(frozen=True)
class Chunk:
    """One piece of a reply: ``text`` as written (what the transcript and ``heard`` use),
    ``speak`` as the synthesizer is given it, and the silence after it when more follows."""

    text: str
    speak: str
    pause_ms: int


def plan_chunks(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[Chunk]:
    """The reply as chunks to synthesize in order: the first clause, a bounded second
    chunk, then whole sentences (each at most ``max_chars``)."""
    sentences = split_sentences(text, max_chars)
    if not sentences:
        return []
    head = _cut_words(sentences[0].split(), first=True)
    if len(head) > 1:
        head = head[:1] + _cut_words(head[1].text.split(), first=False)
    return head + [Chunk(s, s, SENTENCE_PAUSE_MS) for s in sentences[1:]]


def _cut_words(words: list[str], first: bool) -> list[Chunk]:
    """One sentence (its words) as one chunk, or as a bounded chunk and the rest."""
    whole = " ".join(words)
    limit = FIRST_MAX_WORDS if first else SECOND_MAX_WORDS
    cut, pause = _clause_cut(words, limit)
    if cut is None and len(words) <= limit:
        return [Chunk(whole, whole, SENTENCE_PAUSE_MS)]
    if cut is None:
        cut, pause = _word_cut(words, FIRST_CUT_WORDS if first else limit), WORD_CUT_PAUSE_MS
    piece, rest = " ".join(words[:cut]), " ".join(words[cut:])
    spoken = piece if piece.endswith(_CLAUSE_END) else f"{piece},"
    return [
        Chunk(piece, spoken, pause),
        Chunk(rest, rest, SENTENCE_PAUSE_MS),
    ]


def _clause_cut(words: list[str], limit: int) -> tuple[int | None, int]:
    """After the first word (of FIRST_MIN_WORDS..limit) that ends a clause, if any, with
    at least MIN_TAIL_WORDS after it."""
    for index in range(FIRST_MIN_WORDS - 1, min(limit, len(words) - MIN_TAIL_WORDS)):
        if words[index].endswith(_CLAUSE_END):
            return index + 1, CLAUSE_PAUSE_MS
    return None, 0


def _word_cut(words: list[str], target: int) -> int:
    """How many words go first: ``target``, moved by up to two words to land before a
    phrase start ("I can help you | with that"), leaving at least MIN_TAIL_WORDS."""
    last = len(words) - MIN_TAIL_WORDS
    for cut in sorted(range(target - 2, target + 3), key=lambda c: abs(c - target)):
        if 2 <= cut <= last and words[cut].lower() in _PHRASE_STARTS:
            return cut
    return max(2, min(target, last))


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences to speak one at a time; lines are sentences; long ones cut at commas."""
    sentences: list[str] = []
    for line in text.splitlines():
        for sentence in _split_line(line.strip()):
            sentences.extend(_split_long(sentence, max_chars))
    return sentences


def _split_line(line: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        if match.group().startswith(".") and _is_abbreviation(line[start : match.start()]):
            continue
        pieces.append(line[start : match.end()].strip())
        start = match.end()
    pieces.append(line[start:].strip())
    return [piece for piece in pieces if piece]


def _is_abbreviation(before_dot: str) -> bool:
    words = before_dot.split()
    return bool(words) and words[-1].lower().lstrip("(\"'") in _ABBREVIATIONS


def _split_long(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > max_chars:
        cut = _cut_point(sentence, max_chars)
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence] if sentence else pieces


def _cut_point(sentence: str, max_chars: int) -> int:
    """After the last comma (or ; :) that fits, else at the last space that fits, else
    (one word longer than the bound) at the bound: no piece is ever longer."""
    before = max(sentence.rfind(mark, 0, max_chars) for mark in (",", ";", ":"))
    if before >= max_chars // 3:  # not a first piece of two words
        return before + 1
    space = sentence.rfind(" ", 0, max_chars + 1)
    return space if space > 0 else max_chars


def speakable(sentence: str) -> str:
    """The sentence as piper should read it (title abbreviations lose their dot)."""
    return _TITLE_DOT.sub(r"\1", sentence)


_WORD = re.compile(r"\S+")
_LINE_OR_SENTENCE_END = re.compile(r"\n|[.!?…]+[\"'”’)\]]*(?=\s)")


class StreamPlanner:
    """``plan_chunks`` for a reply whose text arrives in pieces (a streamed webhook reply).

    A chunk goes out once it is complete: the first clause as soon as its mark (, ; : or a
    dash) and the space after it arrived, or after FIRST_CUT_WORDS words of a long clause;
    then the rest of the first sentence (bounded like ``plan_chunks``' second chunk) once
    that sentence ends, then each sentence as it ends; ``end()`` flushes what is left.
    """

    def __init__(self, max_chars: int = MAX_SENTENCE_CHARS) -> None:
        self._max_chars = max_chars
        self._buffer = ""
        self._said = 0  # chunks handed out
        self._early_clause = False  # the first clause went out before its sentence ended

    def feed(self, text: str) -> list[Chunk]:
        self._buffer += text
        chunks = self._sentences()
        if self._said == 0:
            chunks += self._first_clause()
        return chunks

    def end(self) -> list[Chunk]:
        chunks = self._sentences()
        rest, self._buffer = self._buffer.strip(), ""
        return chunks + (self._plan(rest) if rest else [])

    def _sentences(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        start = 0
        for match in _LINE_OR_SENTENCE_END.finditer(self._buffer):
            if match.group().startswith(".") and _is_abbreviation(
                self._buffer[start : match.start()]
            ):
                continue
            sentence = self._buffer[start : match.end()].strip()
            start = match.end()
            if sentence:
                chunks += self._plan(sentence)
        self._buffer = self._buffer[start:]
        return chunks

    def _plan(self, sentence: str) -> list[Chunk]:
        if self._said == 0:
            chunks = plan_chunks(sentence, self._max_chars)
        elif self._early_clause:  # the rest of the first sentence: the bounded second chunk
            self._early_clause = False
            head, *tail = split_sentences(sentence, self._max_chars) or [""]
            chunks = _cut_words(head.split(), first=False) if head else []
            chunks += [Chunk(s, s, SENTENCE_PAUSE_MS) for s in tail]
        else:
            chunks = [Chunk(s, s, SENTENCE_PAUSE_MS) for s in split_sentences(sentence)]
        self._said += len(chunks)
        return chunks

    def _first_clause(self) -> list[Chunk]:
        """The first sentence's first clause, before the sentence is complete, if it is."""
        words = list(_WORD.finditer(self._buffer))
        if words and not self._buffer[-1].isspace():
            words.pop()  # the last word may still grow
        texts = [w.group() for w in words]
        cut, pause = _clause_cut(texts + [""] * MIN_TAIL_WORDS, FIRST_MAX_WORDS)
        if cut is None and len(texts) >= FIRST_MAX_WORDS + MIN_TAIL_WORDS:
            cut, pause = _word_cut(texts, FIRST_CUT_WORDS), WORD_CUT_PAUSE_MS
        if cut is None or cut > len(texts):
            return []
        piece = " ".join(texts[:cut])
        self._buffer = self._buffer[words[cut - 1].end() :]
        self._said, self._early_clause = 1, True
        spoken = piece if piece.endswith(_CLAUSE_END) else f"{piece},"
        return [Chunk(piece, spoken, pause)]
