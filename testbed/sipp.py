"""SIPp callers: one SIPp process per call, each with its own SIP and media ports.

SIPp 3.6 streams every call of one process from the same media port, so concurrent calls are
separate processes: their RTP can then be captured and told apart by port.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed.dtmf import EVENT_PT, dtmf_pcap, keys_seconds

SCENARIO_TEMPLATE = Path(__file__).with_name("sipp") / "uac.xml"
AUTH_SCENARIO_TEMPLATE = Path(__file__).with_name("sipp") / "uac_auth.xml"
UAS_SCENARIO = Path(__file__).with_name("sipp") / "uas.xml"
UAS_SIP_PORT = 5070  # asterisk-conf/testbed/pjsip.conf: endpoint sipp-uas
ASTERISK_SIP = "127.0.0.1:5060"
PAYLOAD_TYPES = {"ulaw": 0, "alaw": 8, "g722": 9}  # g722: a wideband caller (testbed.wideband)

_port_counter = itertools.count()


def free_port_block(size: int = 4, start: int = 30000, end: int = 39000) -> int:
    """A base port with `size` consecutive free UDP ports (SIPp uses media_port..+3)."""
    offset = os.getpid() % 500 * 16
    for _ in range(2000):
        base = start + (offset + next(_port_counter) * size) % (end - start)
        if _udp_ports_free(base, size):
            return base
    raise RuntimeError("no free UDP port block for SIPp")


def _udp_ports_free(base: int, size: int) -> bool:
    socks = []
    try:
        for port in range(base, base + size):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


@dataclass
class SippResult:
    returncode: int
    output: str
    errors: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class SippCall:
    """One caller: dial `service`, stream `audio` (raw 8 kHz G.711, or G.722 offered alone with
    ``codec="g722"``: 8000 bytes a second either way), hang up after `hangup_after_s`
    unless the far end hangs up first. `dtmf`: (seconds after the audio starts, keys) pressed
    as RFC 4733 events (testbed.dtmf), the audio paused meanwhile (the call lasts that much
    longer); the far end must not hang up before the last.
    `telephone_event`: offer RFC 4733 events (implied by `dtmf`) so keys sent to us arrive.
    `proxy`: call through this SIP proxy ("host:port", e.g. the cluster's Kamailio) instead of
    the test bed's Asterisk; the ACK and BYE then follow the route set it recorded, to the
    Contact of the node that answered."""

    def __init__(
        self,
        service: str,
        audio: Path,
        hangup_after_s: float,
        codec: str = "ulaw",
        auth: tuple[str, str] | None = None,
        dtmf: Sequence[tuple[float, str]] = (),
        telephone_event: bool = False,
        proxy: str | None = None,
    ) -> None:
        if shutil.which("sipp") is None:
            raise RuntimeError("sipp not found: run scripts/install-testbed (Debian sip-tester)")
        self.auth = auth  # (user, password): call as that user, answering the digest challenge
        self.service = service
        self.audio = audio.resolve()
        self.hangup_after_s = hangup_after_s
        self.codec = codec
        self.dtmf = sorted(dtmf)
        self.telephone_event = telephone_event or bool(dtmf)  # offer RFC 4733 events
        self.proxy = proxy
        self.sip_port = free_port_block(1, 15000, 19000)
        self.media_port = free_port_block(4)
        self._dir = Path(tempfile.mkdtemp(prefix="aoff-sipp-"))
        self._proc: asyncio.subprocess.Process | None = None

    def _scenario(self) -> Path:
        template = AUTH_SCENARIO_TEMPLATE if self.auth else SCENARIO_TEMPLATE
        text = template.read_text()
        text = text.replace("@AUDIO@", str(self.audio))
        text = text.replace("@PT@", str(PAYLOAD_TYPES[self.codec]))
        if self.codec == "g722":
            text = self._wideband(text)
        pressed_until = self.dtmf[-1][0] if self.dtmf else 0.0
        text = text.replace("@WAIT_MS@", str(int((self.hangup_after_s - pressed_until) * 1000)))
        if self.telephone_event:
            text = self._with_keys(text)
        if self.proxy:
            text = _routed(text)
        path = self._dir / "uac.xml"
        path.write_text(text)
        return path

    def _wideband(self, text: str) -> str:
        """Offer G.722 only, as a wideband desk phone set to it would."""
        g711 = "m=audio [media_port] RTP/AVP 0 8\n      a=rtpmap:0 PCMU/8000\n"
        g711 += "      a=rtpmap:8 PCMA/8000"
        assert g711 in text
        return text.replace(g711, "m=audio [media_port] RTP/AVP 9\n      a=rtpmap:9 G722/8000")

    def _with_keys(self, text: str) -> str:
        """Offer telephone-event, and press the keys on time after the audio starts."""
        offer = "m=audio [media_port] RTP/AVP 0 8"
        assert offer in text
        assert "a=ptime:20" in text
        text = text.replace(offer, f"{offer} {EVENT_PT}").replace(
            "a=ptime:20", f"a=rtpmap:{EVENT_PT} telephone-event/8000\n      a=ptime:20"
        )
        steps, before = [], 0.0
        for n, (at, keys) in enumerate(self.dtmf):
            pcap = dtmf_pcap(keys, self._dir / f"keys-{n}.pcap")
            # The voice stream stops while the keys play (testbed.dtmf): `at` counts the
            # caller's audio, which goes on after them where it stopped.
            steps.append(f'  <pause milliseconds="{int((at - before) * 1000)}"/>')
            steps.append('  <nop><action><exec rtp_stream="pause"/></action></nop>')
            steps.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            steps.append(f'  <pause milliseconds="{int(keys_seconds(keys) * 1000)}"/>')
            steps.append('  <nop><action><exec rtp_stream="resume"/></action></nop>')
            before = at
        anchor = "  <!-- Either we hang up after -d ms"
        assert anchor in text
        return text.replace(anchor, "\n".join(steps) + "\n" + anchor)

    async def start(self) -> None:
        args = [
            "sipp", self.proxy or ASTERISK_SIP, "-sf", str(self._scenario()), "-s", self.service,
            "-m", "1", "-l", "1", "-i", "127.0.0.1", "-p", str(self.sip_port),
            "-mp", str(self.media_port), "-nostdin", "-trace_err",
            "-error_file", str(self._dir / "errors.log"),
            "-timeout", str(int(self.hangup_after_s + 60)), "-timeout_error",
        ]  # fmt: skip
        if self.auth:
            args += ["-au", self.auth[0], "-ap", self.auth[1]]
        self._proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=self._dir,
        )  # fmt: skip

    # timeout (ASYNC109): None means "the scenario's own length + 30 s", computed inside.
    async def wait(self, timeout: float | None = None) -> SippResult:
        assert self._proc is not None, "start() first"
        limit = timeout if timeout is not None else self.hangup_after_s + 30
        return await _finish(self._proc, self._dir, limit)

    async def run(self) -> SippResult:
        await self.start()
        return await self.wait()

    async def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()


def _routed(text: str) -> str:
    """The caller's in-dialog requests to the Contact of the 200 OK, along the Record-Route
    set (a proxy that record-routes), instead of to the dialled URI."""
    answered = '<recv response="200" rtd="true"/>'
    assert answered in text
    text = text.replace(answered, '<recv response="200" rtd="true" rrs="true"/>')
    for method in ("ACK", "BYE"):
        line = f"{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0"
        assert line in text
        text = text.replace(line, f"{method} [next_url] SIP/2.0")
    # [routes] expands to the Route header (the proxy), in the requests after the INVITE.
    invite, rest = text.split("ACK [next_url]", 1)
    line = "      Call-ID: [call_id]\n"
    return invite + "ACK [next_url]" + rest.replace(line, line + "      [routes]\n")


class SippAnswerer:
    """The far end of an outbound call (endpoint PJSIP/sipp-uas): answers one call, then
    waits for the BYE. With ``audio`` (raw 8 kHz mu-law) it streams that once, from the
    answer on: a voicemail greeting, or a person saying "Hello?"."""

    def __init__(self, audio: Path | None = None) -> None:
        if shutil.which("sipp") is None:
            raise RuntimeError("sipp not found: run scripts/install-testbed (Debian sip-tester)")
        self.audio = audio.resolve() if audio is not None else None
        self.media_port = free_port_block(4)
        self._dir = Path(tempfile.mkdtemp(prefix="aoff-sipp-uas-"))
        self._proc: asyncio.subprocess.Process | None = None

    def _scenario(self) -> Path:
        if self.audio is None:
            return UAS_SCENARIO
        stream = f'<nop><action><exec rtp_stream="{self.audio},1,0"/></action></nop>'
        path = self._dir / "uas.xml"
        path.write_text(UAS_SCENARIO.read_text().replace("<!-- @STREAM@ -->", stream))
        return path

    async def start(self) -> None:
        args = [
            "sipp", "-sf", str(self._scenario()), "-m", "1", "-i", "127.0.0.1",
            "-p", str(UAS_SIP_PORT), "-mp", str(self.media_port), "-nostdin", "-trace_err",
            "-error_file", str(self._dir / "errors.log"),
        ]  # fmt: skip
        self._proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=self._dir
        )
        await asyncio.sleep(0.3)  # bound and listening

    async def wait(self, timeout: float = 60.0) -> SippResult:
        assert self._proc is not None, "start() first"
        return await _finish(self._proc, self._dir, timeout)

    async def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()


async def _finish(proc: asyncio.subprocess.Process, workdir: Path, limit: float) -> SippResult:
    """Wait for SIPp (killed past `limit`), collect its output and error log, clean up."""
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    errors_file = workdir / "errors.log"
    errors = errors_file.read_text(errors="replace") if errors_file.exists() else ""
    shutil.rmtree(workdir, ignore_errors=True)
    return SippResult(proc.returncode or 0, out.decode(errors="replace"), errors)
