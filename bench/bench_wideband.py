"""Wideband callers: word error rate of what the app hears over 8 kHz RTP vs 16 kHz websocket.

    .venv/bin/python -m bench.bench_wideband [--voices espeak,piper] [--rounds 1]

Method: one wideband caller (SIPp streaming G.722, payload type 9) says the same held-out
utterances (none of them used elsewhere in the tests or benches: names, spelled letters,
digits, fricatives, where the band above 4 kHz carries the difference) in one call per
path, 3.5 s apart. The test-bed Asterisk 22 decodes G.722 to 16 kHz and hands the call to
ari-offload over the path measured:

- "8 kHz RTP": externalMedia RTP, ulaw (Asterisk transcodes down): whisper gets 8 kHz,
  upsampled to its 16 kHz;
- "16 kHz websocket": chan_websocket, slin16: whisper gets the caller's 16 kHz.

Everything after is the product as it runs: VAD segmentation, whisper tiny.en int8 (one
speech-model load shared by both paths), the webhook request the agent gets, whose text is
the hypothesis (a local webhook answers "Okay."). A text belongs to the utterance the caller
last started before it arrived (by the caller's RTP on the wire); a VAD split of one
utterance joins its texts. WER = (substitutions + deletions + insertions) / reference words
over all utterances, after normalising both sides: lower case, no punctuation, number words
and digits as digits, runs of single letters and digits joined ("X V 7 F" = "XV7F"). Voices:
espeak-ng (robotic, 16 kHz) and piper (the bundled joe voice, synthesized at 16 kHz). Prints
numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ari_offload.agent.client import WebhookClient
from ari_offload.ari.call import ActiveCall
from ari_offload.audio import WIDEBAND_RATE
from ari_offload.config import MediaSettings, Settings, SpeechSettings
from ari_offload.flows.actions import AiTalk
from ari_offload.flows.dispatch import FlowDispatcher
from ari_offload.flows.executor import FlowContext, run_actions
from ari_offload.service import AriService
from ari_offload.speech.models import SpeechModels, load_speech_models
from ari_offload.voice.conversation import AgentBinding
from bench.machine import describe
from testbed.asterisk import TESTBED_ARI, Testbed
from testbed.audio import CACHE_DIR
from testbed.capture import RtpCapture
from testbed.dialogue import Say, Silence, Step
from testbed.sipp import SippCall
from testbed.wideband import Voice16, espeak16, g722_encode, script16

UTTERANCES = [
    "My account number is four five one nine seven.",
    "Please spell it F as in Frank, S as in Sam.",
    "I live at six six Fifth Street, suite three.",
    "The confirmation code is X V seven F.",
    "Can you send it to Steve Fisher at his office?",
    "I would like to cancel my subscription this Thursday.",
    "My flight leaves at seven from San Francisco.",
    "The first three letters are S, F and H.",
    "I need to change the shipping address for my order.",
    "Is the pharmacy open on Saturday afternoon?",
    "My phone number is five five five, zero one six three.",
    "Please transfer me to the billing department.",
    "What is the status of my refund from last Friday?",
    "The serial number starts with F S seven seven.",
    "Thanks, that is everything for today.",
]
PATHS = {
    "8 kHz RTP": MediaSettings(transport="rtp", codec="ulaw"),
    "16 kHz websocket": MediaSettings(transport="websocket", codec="slin16"),
}
GAP_S = 3.5
LEAD_S = 1.0
_DIGITS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip


def normalise(text: str) -> list[str]:
    tokens = re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))
    out: list[str] = []
    joining = False
    for token in (_DIGITS.get(t, t) for t in tokens):
        piece = token.isdigit() or (len(token) == 1 and token not in ("a", "i"))
        if piece and joining:
            out[-1] += token
        else:
            out.append(token)
        joining = piece
    return out


def edits(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


@dataclass
class Heard:
    at: float  # wall clock of the webhook request
    text: str


@asynccontextmanager
async def agent() -> AsyncIterator[tuple[str, list[Heard]]]:
    heard: list[Heard] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        heard.append(Heard(time.time(), body.get("text", "")))
        return web.json_response({"text": "Okay."})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", heard
    finally:
        await runner.cleanup()


async def one_call(
    models: SpeechModels, media: MediaSettings, audio: bytes, spans: list[tuple[float, float]]
) -> list[str]:
    """One G.722 call over ``media``; what the agent was told after each utterance."""
    async with agent() as (url, heard), aiohttp.ClientSession() as session:
        settings = Settings(ari=TESTBED_ARI, media=media)
        binding = AgentBinding("bench", url)

        async def find(agent_id: str) -> AgentBinding | None:
            return binding

        ctx = FlowContext(settings, models, WebhookClient(session, 5.0), find)

        async def talk(call: ActiveCall) -> None:
            await run_actions(call, [AiTalk("bench", None)], ctx)

        service = AriService(settings, FlowDispatcher({"wide": talk}))
        await service.start()
        try:
            await service.wait_connected()
            path = CACHE_DIR / "bench-wideband.g722"
            path.write_bytes(audio)
            call = SippCall("8wide", path, hangup_after_s=len(audio) / 8000 + 2.0, codec="g722")
            capture = RtpCapture(call.media_port)
            await capture.start()
            result = await call.run()
            await capture.stop()
        finally:
            await service.stop()
    if not result.ok:
        raise RuntimeError(f"the SIPp call failed: {result.output} {result.errors}")
    start = min(p.time for p in capture.sent())  # the script's 0 on the wire
    texts = ["" for _ in spans]
    for item in heard:
        begun = [i for i, (s, _) in enumerate(spans) if start + s < item.at]
        if begun:
            texts[begun[-1]] = f"{texts[begun[-1]]} {item.text}".strip()
    return texts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", default="espeak,piper")
    parser.add_argument("--rounds", type=int, default=1, help="calls per voice and path")
    args = parser.parse_args()
    print(describe(("faster-whisper", "ctranslate2", "piper-tts")))
    print(f"method: see the module docstring; {len(UTTERANCES)} utterances, {args.rounds} round(s)")
    await Testbed().start()
    models = load_speech_models(SpeechSettings())
    voices: dict[str, Voice16] = {
        "espeak": espeak16,
        "piper": lambda text: models.synthesizer.synthesize_sentence(text, WIDEBAND_RATE),
    }
    try:
        for name in args.voices.split(","):
            steps: list[Step] = [Silence(LEAD_S)]
            for text in UTTERANCES:
                steps += [Say(text), Silence(GAP_S)]
            pcm, spans = script16(steps, voices[name])
            audio = g722_encode(pcm)
            print(f"\nvoice {name}: {sum(e - s for s, e in spans):.0f} s of speech")
            results: dict[str, list[list[str]]] = {}
            for path, media in PATHS.items():
                for _ in range(args.rounds):
                    results.setdefault(path, []).append(await one_call(models, media, audio, spans))
            reference_words = sum(len(normalise(t)) for t in UTTERANCES) * args.rounds
            for path, rounds in results.items():
                errors = sum(
                    edits(normalise(ref), normalise(hyp))
                    for texts in rounds
                    for ref, hyp in zip(UTTERANCES, texts, strict=True)
                )
                missed = sum(not hyp for texts in rounds for hyp in texts)
                print(
                    f"  {path:17s} WER {errors / reference_words:6.1%}"
                    f" ({errors} errors / {reference_words} words, {missed} utterances unheard)"
                )
            narrow, wide = (results[p][0] for p in PATHS)
            for ref, a, b in zip(UTTERANCES, narrow, wide, strict=True):
                if normalise(a) != normalise(b):
                    print(f"    {ref!r}\n      8 kHz:  {a!r}\n      16 kHz: {b!r}")
    finally:
        models.close()


if __name__ == "__main__":
    asyncio.run(main())
