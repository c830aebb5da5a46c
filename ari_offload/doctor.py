"""``ari-offload doctor``: what is configured, reachable and loaded, in one report."""

from __future__ import annotations

import aiohttp

from ari_offload.ari.rest import AriRest
from ari_offload.config import Settings
from ari_offload.errors import AriError, ConfigError
from ari_offload.media.transports import transport_opener
from ari_offload.policy_file import load_policy


async def run_doctor(settings: Settings) -> int:
    problems = 0
    print(f"ARI        {settings.ari.url} app={settings.ari.app} user={settings.ari.username}")
    async with aiohttp.ClientSession() as session:
        try:
            info = await AriRest(session, settings.ari).asterisk_info()
            version = info.get("system", {}).get("version", "?")
            print(f"  ok       Asterisk {version} answers")
        except AriError as exc:
            problems += 1
            print(f"  FAIL     {exc}")
    media = settings.media
    where = media.rtp_host if media.transport == "rtp" else settings.ari.url
    print(f"media      {media.transport} ({where}), codec {media.codec}")
    try:
        transport_opener(media.transport, media.codec)
    except ConfigError as exc:
        problems += 1
        print(f"  FAIL     {exc}")
    try:
        for line in load_policy(settings.policy.file).describe():
            print(f"policy     {line.removeprefix('policy: ')}")
    except ConfigError as exc:
        problems += 1
        print(f"  FAIL     {exc}")
    problems += _speech_report(settings)
    print("result     " + ("all good" if problems == 0 else f"{problems} problem(s)"))
    return 0 if problems == 0 else 1


def _speech_report(settings: Settings) -> int:
    try:
        from ari_offload.speech.models import describe_models
    except ImportError:
        print("speech     (not available in this build)")
        return 0
    try:
        for line in describe_models(settings.speech):
            print(f"speech     {line}")
    except Exception as exc:  # a report, not a crash: show what is wrong
        print(f"  FAIL     speech models: {exc}")
        return 1
    return 0
