"""``ari-offload serve | doctor | mcp | sample-agent | admin create-key``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from ari_offload import __version__
from ari_offload.config import Settings
from ari_offload.errors import AriOffloadError, ConfigError

log = logging.getLogger("ari_offload")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
        result: int = args.handler(args, settings)
        return result
    except (ConfigError, AriOffloadError) as exc:
        print(f"ari-offload: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ari-offload",
        description="AI agents on the phone through Asterisk ARI, without handing them audio. "
        "Settings come from ARI_OFFLOAD_* environment variables (see README).",
    )
    parser.add_argument("--version", action="version", version=f"ari-offload {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the Stasis app (and the REST API)")
    serve.set_defaults(handler=_serve)

    doctor = sub.add_parser("doctor", help="check Asterisk, models and settings; print a report")
    doctor.set_defaults(handler=_doctor)

    sample = sub.add_parser("sample-agent", help="run the built-in rule-based sample webhook")
    sample.add_argument("--host", default="127.0.0.1")
    sample.add_argument("--port", type=int, default=9000)
    sample.set_defaults(handler=_sample_agent)

    mcp = sub.add_parser("mcp", help="run the MCP server on stdio (for coding assistants)")
    mcp.set_defaults(handler=_mcp)

    admin = sub.add_parser("admin", help="operator tasks on the store (admin keys)")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="ADMIN_COMMAND", required=True)
    create_key = admin_sub.add_parser(
        "create-key",
        help="create an operator admin key for the /v1.0/admin API; the token is printed once",
    )
    create_key.add_argument("--name", default="operator", help="a label for the key")
    create_key.set_defaults(handler=_admin_create_key)
    revoke_key = admin_sub.add_parser("revoke-key", help="revoke an admin key by its id")
    revoke_key.add_argument("key_id", help="the id logged when the key was created")
    revoke_key.set_defaults(handler=_admin_revoke_key)
    return parser


def _require_ari_password(settings: Settings) -> None:
    if not settings.ari.password:
        raise ConfigError(
            "ARI_OFFLOAD_ARI_PASSWORD is not set: use the password of the [ari-offload] user "
            "in Asterisk's ari.conf (the test bed uses 'testbed-secret')"
        )


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    _require_ari_password(settings)
    from ari_offload.app import run_app

    asyncio.run(_until_signal(run_app(settings)))
    return 0


async def _until_signal(main_task: Coroutine[Any, Any, None]) -> None:
    """Run until SIGINT/SIGTERM, then let the app shut down cleanly (hang up, clean up)."""
    task = asyncio.ensure_future(main_task)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from ari_offload.doctor import run_doctor

    return asyncio.run(run_doctor(settings))


def _sample_agent(args: argparse.Namespace, settings: Settings) -> int:
    from ari_offload.agent.sample import run_sample_agent

    async def run() -> None:
        runner = await run_sample_agent(args.host, args.port)
        log.info("sample agent on http://%s:%d/ai-webhook", args.host, args.port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(_until_signal(run()))
    return 0


def _admin_create_key(args: argparse.Namespace, settings: Settings) -> int:
    """Writes straight into the store: whoever can read the store is the operator already."""
    from ari_offload.store import Store

    async def create() -> str:
        store = await Store.open(settings.store)
        try:
            return (await store.admin_keys.create(args.name)).token
        finally:
            await store.close()

    token = asyncio.run(create())
    print(token)
    print(
        "admin key created; it is shown only now. Use it as 'Authorization: Bearer <key>' on "
        "/v1.0/admin/... (tenants, their rules, inbound numbers).",
        file=sys.stderr,
    )
    return 0


def _admin_revoke_key(args: argparse.Namespace, settings: Settings) -> int:
    from ari_offload.store import Store

    async def revoke() -> bool:
        store = await Store.open(settings.store)
        try:
            return await store.admin_keys.revoke(args.key_id)
        finally:
            await store.close()

    if not asyncio.run(revoke()):
        print(f"ari-offload: no live admin key with id {args.key_id}", file=sys.stderr)
        return 1
    print(f"admin key {args.key_id} revoked", file=sys.stderr)
    return 0


def _mcp(args: argparse.Namespace, settings: Settings) -> int:
    from ari_offload.sdk.mcp_server import run_mcp

    run_mcp()
    return 0


if __name__ == "__main__":
    sys.exit(main())
