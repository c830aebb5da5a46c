"""A soak: many real SIPp calls through a real ``ari-offload serve``, with everything an
operator's bad day brings at once, then an audit of what was left behind.

Each caller speaks three sentences and hangs up at a random moment (during the welcome,
mid-sentence, while the webhook thinks, mid-reply). The webhook misbehaves on purpose
(testbed/hostile_agent.py). While calls run, the API lists live calls and sends ``talk`` and
``hangup`` to some; garbage UDP is sprayed at every port the app has open. Optionally
Asterisk restarts a third of the way in and the app is SIGKILLed and restarted two thirds of
the way in. New calls wait while a fault is being injected (calls in flight do not).

The audit: SIPp failures, channels and bridges left in Asterisk, calls not final in the API,
ERROR lines of any logger in the app's log, the app's RSS/fds/threads every N calls, and per
call the turns the webhook was asked vs the turns the store kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import re
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import ClientError, web

from ari_offload.config import StoreSettings
from ari_offload.sdk.client import ApiError, Client
from ari_offload.store.records import Role
from ari_offload.store.store import Store
from testbed.asterisk import Testbed
from testbed.audio import CACHE_DIR
from testbed.dialogue import Say, Silence, script_audio
from testbed.hostile_agent import HostileAgent
from testbed.serve import ProcessSample, ServeProcess, soak_policy
from testbed.sipp import SippCall, SippResult

WEBHOOK_TIMEOUT_S = 2.0  # short, so that timeouts cost the soak little time
WELCOME = "Hello, thanks for calling the soak line. How can I help you today?"
SCRIPTS: list[list[Say | Silence]] = [
    [Say("I would like to check the status of my order please."), Silence(2.5),
     Say("My account number is four five six seven."), Silence(2.5),
     Say("Can you tell me when the shop opens tomorrow?"), Silence(3.0)],
    [Silence(4.5), Say("Hello, is anybody there?"), Silence(3.0),
     Say("I need to change the address on my account."), Silence(3.0),
     Say("Thank you, goodbye."), Silence(2.0)],
]  # fmt: skip
_SIP_STATUS = re.compile(r"SIP/2\.0 (\d{3} [^\r\n]*)")
TALK_TEXT = "Just a moment please, I am still with you."


@dataclass(frozen=True)
class SoakPlan:
    calls: int
    concurrency: int
    asterisk_restart: bool = False
    app_kill: bool = False
    seed: int = 1
    hostile_share: float = 0.6
    max_hangup_s: float = 18.0
    sample_every: int = 50
    warmup_calls: int = 100
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    calls_done: int
    run: int  # which start of the app (a SIGKILL starts a new one)
    process: ProcessSample


@dataclass
class SoakReport:
    plan: SoakPlan
    placed: int = 0
    sipp_failures: list[str] = field(default_factory=list)  # calls no fault was injected in
    cut_by_fault: list[str] = field(default_factory=list)  # failed while a fault was injected
    answered: int = 0
    recorded: int = 0
    leaked_channels: list[str] = field(default_factory=list)
    leaked_bridges: list[str] = field(default_factory=list)
    not_final: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    turns_received: int = 0
    turns_stored: int = 0
    turn_mismatches: list[str] = field(default_factory=list)
    lost_writes: list[str] = field(default_factory=list)  # the store's "not recorded" warnings
    api_actions: Counter[str] = field(default_factory=Counter)
    udp_packets: int = 0
    webhook_behaviours: dict[str, int] = field(default_factory=dict)
    hangup_reasons: Counter[str] = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)
    alive_at_end: bool = False
    exit_code: int | None = None
    seconds: float = 0.0

    def after_warmup(self) -> dict[int, list[Sample]]:
        """Per run of the app, its samples from ``warmup_calls`` after its start on."""
        runs: dict[int, list[Sample]] = {}
        for run in sorted({s.run for s in self.samples}):
            points = [s for s in self.samples if s.run == run]
            first = points[0].calls_done
            runs[run] = [s for s in points if s.calls_done - first >= self.plan.warmup_calls]
        return runs

    def peak_growth(self) -> dict[int, tuple[int, float]]:
        """Per run: calls after warm-up, and how much the highest RSS ever (VmHWM) grew over
        them; a process whose memory is bounded stops raising it."""
        return {
            run: (points[-1].calls_done - points[0].calls_done,
                  points[-1].process.peak_mb - points[0].process.peak_mb)
            for run, points in self.after_warmup().items()
            if points
        }  # fmt: skip

    def rss_slopes(self) -> dict[int, float]:
        """MB per 100 calls after warm-up, per run of the app (least squares)."""
        slopes: dict[int, float] = {}
        for run, points in self.after_warmup().items():
            if len(points) >= 2:
                xs = [float(s.calls_done) for s in points]
                ys = [s.process.rss_mb for s in points]
                mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
                var = sum((x - mx) ** 2 for x in xs)
                slopes[run] = (
                    100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
                )
        return slopes


class _Run:
    def __init__(self, plan: SoakPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.report = SoakReport(plan)
        self.random = random.Random(plan.seed)
        self.open = asyncio.Event()  # new calls may be placed (no fault being injected)
        self.open.set()
        self.done = 0
        self.fault_windows: dict[str, tuple[float, float]] = {}  # what -> (start, end)
        self.failed: list[tuple[float, float, str]] = []  # SIPp calls that failed: when, why
        self.testbed = Testbed()
        self.agent = HostileAgent(WEBHOOK_TIMEOUT_S, plan.hostile_share, plan.seed)
        policy = soak_policy(workdir, tenant_concurrent=plan.concurrency * 3, per_minute=1000)
        env = {"ARI_OFFLOAD_AGENT_WEBHOOK_TIMEOUT_S": str(WEBHOOK_TIMEOUT_S), **plan.extra_env}
        self.serve = ServeProcess(workdir, _free_port(), policy, env)

    def sample(self) -> None:
        if not self.serve.running:
            return
        with contextlib.suppress(OSError):  # the process is going away (a fault)
            self.report.samples.append(Sample(self.done, self.serve.starts, self.serve.sample()))

    async def call(self, number: int, service: str, audio: Path, slot: asyncio.Semaphore) -> None:
        try:
            hangup_after = self.random.uniform(0.5, self.plan.max_hangup_s)
            started = time.monotonic()
            result: SippResult = await SippCall(service, audio, hangup_after).run()
            if not result.ok:
                answer = _SIP_STATUS.findall(result.errors)
                last = answer[-1] if answer else "none"
                line = f"call {number}: SIPp exit {result.returncode}, last response {last}"
                self.failed.append((started, time.monotonic(), f"{line}: {result.errors[-300:]}"))
        finally:
            slot.release()
            self.done += 1
            if self.done % self.plan.sample_every == 0 and self.open.is_set():
                self.sample()

    def sort_failures(self) -> None:
        """A call that failed while a fault was being injected was cut by it; others failed."""
        for started, ended, line in self.failed:
            during = [f for f, (a, b) in self.fault_windows.items() if a < ended and b > started]
            if during:
                self.report.cut_by_fault.append(f"{line[:120]} (live during: {', '.join(during)})")
            else:
                self.report.sipp_failures.append(line)

    async def fault(self, index: int) -> None:
        third = self.plan.calls // 3
        if self.plan.asterisk_restart and index == third:
            await self._inject("Asterisk restart", index, self.testbed.restart())
        if self.plan.app_kill and index == 2 * third:
            self.sample()
            await self._inject("app SIGKILL", index, self._kill_and_restart_app())
            self.sample()

    async def _inject(self, name: str, index: int, fault: Awaitable[None]) -> None:
        """No new call while ``fault`` runs and the app reconnects; its window is kept, so
        failures of calls live during it can be told from real ones."""
        self.open.clear()
        started = time.monotonic()
        await fault
        await self.testbed.wait_app()
        self.fault_windows[name] = (started, time.monotonic())
        self.report.faults.append(
            f"{name} before call {index + 1} (app reconnected in "
            f"{time.monotonic() - started:.1f} s)"
        )
        self.open.set()

    async def _kill_and_restart_app(self) -> None:
        await self.serve.kill()
        await self.serve.start()

    async def api_actions(self, client: Client) -> None:
        """Every ~2 s: list live calls, say something into one, sometimes hang one up."""
        while True:
            await asyncio.sleep(self.random.uniform(1.0, 3.0))
            action = "list"
            try:
                live = await client.calls.list("active")
                self.report.api_actions["list 200"] += 1
                if not live:
                    continue
                target = self.random.choice(live)
                action = "hangup" if self.random.random() < 0.1 else "talk"
                if action == "hangup":
                    await client.calls.hangup(target.id)
                else:
                    await client.calls.talk(target.id, TALK_TEXT)
                self.report.api_actions[f"{action} 200"] += 1
            except ApiError as exc:  # 404/409: the call ended meanwhile; 5xx: a defect
                self.report.api_actions[f"{action} {exc.status} {exc.code}"] += 1
            except (ClientError, OSError):
                self.report.api_actions[f"{action}: app not reachable"] += 1

    async def udp_garbage(self) -> None:
        """Junk at every UDP port of the app, from a stranger's address, five times a second."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            while True:
                await asyncio.sleep(0.2)
                if not self.serve.running:
                    continue
                with contextlib.suppress(OSError):  # the process may be gone meanwhile
                    for port in self.serve.udp_ports():
                        with contextlib.suppress(OSError):
                            sock.sendto(self.junk(), ("127.0.0.1", port))
                            self.report.udp_packets += 1
        finally:
            sock.close()

    def junk(self) -> bytes:
        kind = self.random.randrange(4)
        if kind == 0:  # a runt
            return os.urandom(self.random.randrange(0, 12))
        if kind == 1:  # RTP-shaped, PCMU, a stranger's SSRC
            header = bytes([0x80, 0x00]) + os.urandom(10)
            return header + os.urandom(160)
        if kind == 2:  # too big for a 20 ms frame
            return bytes([0x80, 0x00]) + os.urandom(1400)
        return os.urandom(self.random.randrange(1, 300))


async def run_soak(plan: SoakPlan, workdir: Path) -> SoakReport:
    """Run the plan; the app is stopped (SIGTERM) at the end and its store audited."""
    run = _Run(plan, workdir)
    started = time.monotonic()
    await run.testbed.start()
    audio = [_audio_file(steps) for steps in SCRIPTS]
    async with _webhook(run.agent) as hook_url:
        await run.serve.start()
        run.sample()
        client = await Client.signup(run.serve.api_url, "soak", "soak-password-1")
        try:
            agent = await client.agents.create(name="hostile", webhook=hook_url)
            flow = await client.flows.create(
                "soak", [{"type": "ai_talk", "agent_id": agent.id, "welcome_message": WELCOME}]
            )
            background = [
                asyncio.create_task(run.api_actions(client)),
                asyncio.create_task(run.udp_garbage()),
            ]
            slot = asyncio.Semaphore(plan.concurrency)
            calls: list[asyncio.Task[None]] = []
            for index in range(plan.calls):
                await run.fault(index)
                await slot.acquire()
                await run.open.wait()
                run.report.placed += 1
                script = audio[run.random.randrange(len(audio))]
                calls.append(asyncio.create_task(run.call(index + 1, f"8{flow.id}", script, slot)))
            await asyncio.gather(*calls)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await _audit_live(run, client)
        finally:
            await client.close()
        run.report.alive_at_end = run.serve.running
        run.sample()
        run.report.exit_code = await run.serve.stop()
    run.sort_failures()
    await _audit_store(run, flow.id)
    run.report.errors = run.serve.error_lines()
    run.report.lost_writes = run.serve.lines_with("not recorded")
    run.report.webhook_behaviours = {str(k): v for k, v in run.agent.behaviours.items()}
    run.report.seconds = time.monotonic() - started
    return run.report


async def _audit_live(run: _Run, client: Client) -> None:
    """With every caller gone: what Asterisk and the API still hold."""
    channels, bridges = await run.testbed.wait_idle(timeout=20)
    run.report.leaked_channels, run.report.leaked_bridges = channels, bridges
    deadline = time.monotonic() + 30  # a restarted app closes its lost calls after a grace
    while True:
        live = await client.calls.list(["ringing", "active"], limit=500)
        if not live or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    run.report.not_final = [f"{c.id} {c.status}" for c in live]


async def _audit_store(run: _Run, flow_id: str) -> None:
    store = await Store.open(StoreSettings(data_dir=run.workdir))
    try:
        flow = await store.flows.get(flow_id, customer_id=None)
        assert flow is not None, "the soak's flow is gone from the store"
        records = await store.calls.list(flow.customer_id, limit=1_000_000)
        run.report.recorded = len(records)
        run.report.answered = sum(1 for r in records if r.answered_at is not None)
        run.report.hangup_reasons = Counter((r.hangup_reason or "-").split(":")[0] for r in records)
        asked_calls = set(run.agent.asked)
        for record in records:
            lines = await store.calls.transcript(record.id)
            said = [line.text for line in lines if line.role == Role.CALLER]
            turns = await store.calls.turns(record.id)
            stored = [t.turn for t in turns]  # in order
            asked = run.agent.asked.get(record.id, [])
            asked_calls.discard(record.id)
            run.report.turns_received += len(asked)
            run.report.turns_stored += len(stored)
            asked_turns = sorted(turn for turn, _ in asked)
            # A call may end between its last turn going on record and the agent being asked
            # (the turn is stored first, so a crash there loses nothing): that turn is the
            # call's last and is stored unanswered. Any other difference is a loss.
            ended_before_asking = (
                bool(turns) and turns[-1].webhook_ms is None and asked_turns == stored[:-1]
            )
            problems = []
            if asked_turns != stored and not ended_before_asking:
                problems.append(f"webhook asked turns {[t for t, _ in asked]}, store has {stored}")
            unsaid = [text for _, text in asked if text not in said]
            if unsaid:
                problems.append(f"asked about {unsaid!r}, not among the caller's stored lines")
            if problems:
                run.report.turn_mismatches.append(f"{record.id}: {'; '.join(problems)}")
        for call_id in sorted(asked_calls):  # asked about a call the store has no record of
            run.report.turn_mismatches.append(f"{call_id}: webhook asked, no call record")
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _webhook(agent: HostileAgent) -> AsyncIterator[str]:
    runner = web.AppRunner(agent.app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


def _audio_file(steps: list[Say | Silence]) -> Path:
    audio = script_audio(steps)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"soak-{hashlib.sha256(audio).hexdigest()[:16]}.ulaw"  # stable: cached
    path.write_bytes(audio)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
