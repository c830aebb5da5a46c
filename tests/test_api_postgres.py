"""The REST API end to end on a PostgreSQL store: test_api.py's server tests, run again.

The tests below are imported from test_api.py unchanged; pytest collects them here too, where
``env`` is this module's fixture: the same real API server, but on a fresh PostgreSQL database
of the throwaway server (tests/postgres_fixture.py) instead of a SQLite file. Among them,
test_readme_curl_calls_verbatim sends the README's three curl bodies, and schemathesis fuzzes
every route (any store error would be a 503 there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text

from ari_offload.api import RedactingAccessLogger, make_api_app
from ari_offload.config import ApiSettings, StoreSettings
from ari_offload.observe.metrics import Metrics
from ari_offload.policy_file import load_policy
from ari_offload.store import Store
from testbed.asterisk import TESTBED_POLICY_FILE
from tests.api_support import FAST_HASHER, TEST_SPEECH, ApiEnv, FakeTelephony
from tests.test_api import (  # noqa: F401 (collected here, on PostgreSQL)
    http,
    test_agents_crud,
    test_another_customers_resources_are_404,
    test_flows_crud,
    test_key_expiry_and_listing_never_shows_tokens,
    test_list_get_hangup_and_talk,
    test_missing_wrong_revoked_expired_keys_are_401,
    test_outbound_call_is_recorded_then_originated,
    test_readme_curl_calls_verbatim,
    test_refused_originate_marks_the_call_failed,
    test_secrets_never_reach_the_logs,
)
from tests.test_api_openapi import (  # noqa: F401 (fuzzes the API, and so the store, here)
    test_schemathesis_finds_no_server_error,
)


@pytest.fixture
def fuzz_examples() -> int:
    return 15  # per operation: the store's queries on PostgreSQL; the API is fuzzed on SQLite


@pytest.fixture
async def env(tmp_path: Path, postgres_url: str) -> AsyncIterator[ApiEnv]:
    """tests.api_support.running_api, with the store on PostgreSQL."""
    store = await Store.open(
        StoreSettings(data_dir=tmp_path / "data", url=postgres_url), password_hasher=FAST_HASHER
    )
    assert store.engine.dialect.name == "postgresql"
    telephony, metrics = FakeTelephony(), Metrics()
    # The test bed's policy, as in tests.api_support.running_api (webhooks on 127.0.0.1).
    policy = load_policy(TESTBED_POLICY_FILE)
    app = make_api_app(
        ApiSettings(host="127.0.0.1", port=0), store, telephony, metrics, policy,
        speech=TEST_SPEECH,
    )  # fmt: skip
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield ApiEnv(f"http://{host}:{port}", store, telephony, metrics, app)
        # The SQLite data dir stays empty: everything went to PostgreSQL.
        assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
    finally:
        await runner.cleanup()
        await store.close()


async def test_the_readme_flow_lands_in_postgresql(env: ApiEnv) -> None:
    async with aiohttp.ClientSession() as session:
        await test_readme_curl_calls_verbatim(env, session)
    async with env.store.engine.connect() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM agents),"
                    " (SELECT count(*) FROM flows), (SELECT count(*) FROM access_keys)"
                )
            )
        ).one()
    assert tuple(counts) == (1, 1, 1, 1)
