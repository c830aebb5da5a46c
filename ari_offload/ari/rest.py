"""A thin typed ARI REST client on aiohttp.

Why our own: the ARI libraries (ari-py, aioari) are unmaintained and sync or swagger-driven;
we need a dozen calls with typed results and our error tree, so a small layer is clearer.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import yarl

from ari_offload.ari.events import Bridge, Channel
from ari_offload.config import AriSettings
from ari_offload.errors import AriBadId, AriConnectError, AriHttpError, AriNotFound

log = logging.getLogger("ari_offload.ari")

REQUEST_TIMEOUT_S = 10.0
# Asterisk's channel ids (1795476849.0) and ours (aoff-media-<hex>, uuids) fit; '/', '%', '?',
# '#' and ',' (a list separator in ARI params) never do. ";2" is how Asterisk names the far
# half of a Local/ channel we originate under our id (ours;2); it is quoted in paths (%3B).
ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}(;2)?")
_BAD_CREDENTIALS = (
    "Asterisk rejected ARI user {!r}: check ARI_OFFLOAD_ARI_USERNAME/PASSWORD against ari.conf"
)


class AriRest:
    def __init__(self, session: aiohttp.ClientSession, settings: AriSettings) -> None:
        self._session = session
        self.settings = settings
        self._base = settings.url.rstrip("/") + "/ari"
        self._headers = basic_auth_headers(settings)
        self.app = settings.app
        self._user = settings.username

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        """One ARI call; returns the decoded JSON body (None when empty).

        `path` is built with `segment()` for every variable part; encoded=True keeps yarl from
        re-quoting or normalising it (no `x/../ID` can reach another resource).
        """
        url = yarl.URL(self._base + path, encoded=True)
        log.debug("ARI %s %s %s", method, path, _loggable(params))
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                json=json,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            ) as resp:
                body = await resp.text()
                if resp.status == 404:
                    raise AriNotFound(method, path, resp.status, body)
                if resp.status == 401:
                    raise AriHttpError(method, path, 401, _BAD_CREDENTIALS.format(self._user))
                if resp.status >= 400:
                    raise AriHttpError(method, path, resp.status, body)
                if not body:
                    return None
                return await resp.json(content_type=None)
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or str(exc.os_error)
            raise AriConnectError(
                f"cannot reach Asterisk ARI at {self._base} ({reason}): is Asterisk running, "
                "with http.conf enabled and res_ari loaded?"
            ) from exc
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise AriConnectError(f"ARI {method} {path}: {type(exc).__name__}: {exc}") from exc

    # --- channels -------------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.request("GET", "/channels") or []]

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{segment(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{segment(channel_id)}", {"reason": reason})

    async def send_dtmf(self, channel_id: str, digits: str) -> None:
        """Queue ``digits`` on the channel (Asterisk plays them 100 ms each, 100 ms apart)."""
        await self.request("POST", f"/channels/{segment(channel_id)}/dtmf", {"dtmf": digits})

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        params = {"variable": name, "value": value}
        await self.request("POST", f"/channels/{segment(channel_id)}/variable", params)

    async def get_variable(self, channel_id: str, name: str) -> str:
        """The variable's value; "" when unset (ARI's 404 "Provided variable was not found")."""
        path = f"/channels/{segment(channel_id)}/variable"
        try:
            found = await self.request("GET", path, {"variable": name})
        except AriNotFound as exc:
            if "variable was not found" in exc.body:
                return ""
            raise  # the channel is gone
        return str(found.get("value", "")) if isinstance(found, dict) else ""

    async def external_media(
        self,
        channel_id: str,
        external_host: str | None,
        codec: str,
        *,
        encapsulation: str,
        transport: str,
        direction: str = "both",
        options: Mapping[str, str] | None = None,
    ) -> Channel:
        """An externalMedia channel; the media transport chooses encapsulation, transport and
        any further options (``media.transports``: RTP over UDP is ``rtp``/``udp``)."""
        params = {
            **(options or {}),
            "app": self.app,
            "channelId": checked_id(channel_id),
            "format": codec,
            "encapsulation": encapsulation,
            "transport": transport,
            "direction": direction,
        }
        if external_host is not None:
            params["external_host"] = external_host
        return Channel.from_json(await self.request("POST", "/channels/externalMedia", params))

    async def originate(
        self,
        channel_id: str,
        endpoint: str,
        app_args: str,
        caller_id: str | None = None,
        timeout_s: int = 30,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        """Dial `endpoint` into our app; `variables` are set on the new channel (JSON body)."""
        params = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": app_args,
            "channelId": checked_id(channel_id),
            "timeout": str(timeout_s),
        }
        if caller_id:
            params["callerId"] = caller_id
        body = {"variables": variables} if variables else None
        return Channel.from_json(await self.request("POST", "/channels", params, body))

    async def continue_in_dialplan(
        self, channel_id: str, context: str, exten: str, prio: int
    ) -> None:
        params = {"context": context, "extension": exten, "priority": str(prio)}
        await self.request("POST", f"/channels/{segment(channel_id)}/continue", params)

    # --- bridges --------------------------------------------------------------------------

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self.request("GET", "/bridges") or []]

    async def create_bridge(self, bridge_id: str, name: str) -> Bridge:
        params = {"type": "mixing", "bridgeId": checked_id(bridge_id, "bridge"), "name": name}
        return Bridge.from_json(await self.request("POST", "/bridges", params))

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        params = {"channel": ",".join(checked_id(c) for c in channel_ids)}
        await self.request("POST", f"/bridges/{segment(bridge_id, 'bridge')}/addChannel", params)

    async def delete_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{segment(bridge_id, 'bridge')}")

    # --- application ----------------------------------------------------------------------

    async def subscribe_channel(self, channel_id: str) -> None:
        params = {"eventSource": f"channel:{checked_id(channel_id)}"}
        await self.request(
            "POST", f"/applications/{segment(self.app, 'application')}/subscription", params
        )

    async def asterisk_info(self) -> dict[str, Any]:
        info = await self.request("GET", "/asterisk/info")
        return info if isinstance(info, dict) else {}


def checked_id(value: str, what: str = "channel") -> str:
    """`value` if it has the id shape, else AriBadId (raised before any request is sent)."""
    if not ID_PATTERN.fullmatch(value) or value.strip(".") == "":
        raise AriBadId(what, value)  # '.' and '..' fit the characters but are path steps
    return value


def segment(value: str, what: str = "channel") -> str:
    """A checked id, quoted as one URL path segment."""
    return quote(checked_id(value, what), safe="")


def basic_auth_headers(settings: AriSettings) -> dict[str, str]:
    # Credentials travel in a header, never in a URL that could end up in a log line.
    token = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _loggable(params: dict[str, str] | None) -> str:
    # ARI params never carry our credentials (they travel in the Authorization header).
    return "" if not params else " ".join(f"{k}={v}" for k, v in params.items())
