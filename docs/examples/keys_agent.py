"""A webhook agent that takes a PIN on the keypad, then hands the caller to a person."""

import os

from aiohttp import web

from ari_offload.agent import Collect, Transfer, WebhookReply, WebhookRequest, aiohttp_handler

SECRET = os.environ.get("AGENT_SECRET")
PIN = "1234"  # a real agent looks it up
ASK_PIN = Collect(max_digits=4, terminator="#", timeout_s=10)


async def answer(request: WebhookRequest) -> str | WebhookReply:
    if request.type == "dtmf" and request.ended_by is not None:  # the keys asked for
        if request.digits == PIN:
            # "desk" is a transfer target the PBX operator named in the policy.
            return WebhookReply("Thank you. Putting you through.", actions=(Transfer("desk"),))
        if request.ended_by == "timeout" and not request.digits:
            return WebhookReply("I did not get any keys. Your PIN, please.", actions=(ASK_PIN,))
        return WebhookReply("That PIN did not match. Try again, then hash.", actions=(ASK_PIN,))
    if request.type == "dtmf":  # keys pressed unasked
        return f"You pressed {request.digits}."
    return WebhookReply("Please enter your PIN, then press hash.", actions=(ASK_PIN,))


def make_app(secret: str | None = SECRET) -> web.Application:
    app = web.Application()
    app.router.add_post("/ai-webhook", aiohttp_handler(answer, secret=secret))
    return app


if __name__ == "__main__":
    web.run_app(make_app(), port=9000)
