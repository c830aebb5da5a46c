"""`ari-offload admin create-key` / `revoke-key`: the operator's credential, on the real store."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from ari_offload.cli import main
from ari_offload.config import StoreSettings
from ari_offload.store import Store


def _authenticates(data_dir: Path, token: str) -> bool:
    async def check() -> bool:
        store = await Store.open(StoreSettings(data_dir=data_dir))
        try:
            return await store.admin_keys.authenticate(token) is not None
        finally:
            await store.close()

    return asyncio.run(check())


def test_an_admin_key_is_printed_once_and_can_be_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARI_OFFLOAD_STORE_DATA_DIR", str(tmp_path))
    assert main(["admin", "create-key", "--name", "ops"]) == 0
    token = capsys.readouterr().out.strip()
    assert re.fullmatch(r"adm_[A-Za-z0-9_-]{40,}", token)
    assert _authenticates(tmp_path, token)

    async def key_id() -> str:
        store = await Store.open(StoreSettings(data_dir=tmp_path))
        try:
            key = await store.admin_keys.authenticate(token)
            assert key is not None
            return key.id
        finally:
            await store.close()

    kid = asyncio.run(key_id())
    assert main(["admin", "revoke-key", kid]) == 0
    assert not _authenticates(tmp_path, token)
    assert main(["admin", "revoke-key", kid]) == 1  # already revoked: says so
    assert "no live admin key" in capsys.readouterr().err
