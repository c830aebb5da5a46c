"""Persistence: SQLite by default (``<data_dir>/ari-offload.db``), any SQLAlchemy async URL
otherwise (e.g. ``postgresql+asyncpg://...``), through the same SQLAlchemy Core code.

    store = await Store.open(settings.store)
    call = await store.calls.create(customer_id, direction=Direction.IN, flow_id=flow.id)
    await store.calls.set_status(call.id, CallStatus.ACTIVE)
"""

from ari_offload.store.records import (
    AccessKey,
    Agent,
    Call,
    CallStatus,
    Customer,
    Direction,
    Flow,
    NewAccessKey,
    Node,
    Role,
    TranscriptRecord,
    Turn,
)
from ari_offload.store.store import Store, database_url

__all__ = [
    "AccessKey",
    "Agent",
    "Call",
    "CallStatus",
    "Customer",
    "Direction",
    "Flow",
    "NewAccessKey",
    "Node",
    "Role",
    "Store",
    "TranscriptRecord",
    "Turn",
    "database_url",
]
