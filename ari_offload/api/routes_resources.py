"""Agents and flows: CRUD scoped to the caller's customer (another customer's id is a 404)."""

from __future__ import annotations

from aiohttp import web

from ari_offload.agent.egress import EgressGuard
from ari_offload.api import schemas as s
from ari_offload.api.agent_kinds import check_kind_fields
from ari_offload.api.errors import ApiError
from ari_offload.api.routing import PREFIX, Ctx, Resp, Route, json_response
from ari_offload.api.speech import SPEECH_OFFER, check_agent_speech, offer_json
from ari_offload.errors import AgentInUse, NameTaken, PolicyRefused
from ari_offload.flows.actions import Action, kind_of
from ari_offload.policy import Policy


def _taken(exc: NameTaken) -> ApiError:
    return ApiError(409, "name_taken", f"{exc}; pick another name", "name")


# The agent's URLs we connect to: one egress policy for all (agent.egress).
_AGENT_URL_FIELDS = ("webhook", "events_url", "base_url")


def _check_webhook(ctx: Ctx) -> None:
    """Refuse an agent URL no connection could be allowed to use; names are checked per call."""
    guard = EgressGuard(ctx.services.policy.egress, ctx.services.egress_refused)
    for name in _AGENT_URL_FIELDS:
        url = ctx.body.get(name)
        if url is None:
            continue
        try:
            guard.check_url(url)
        except PolicyRefused as exc:
            raise ApiError.refused(exc, name) from None


async def list_agents(ctx: Ctx) -> web.Response:
    agents = await ctx.store.agents.list(ctx.customer_id)
    return json_response({"agents": [s.agent_json(a) for a in agents]})


async def list_voices(ctx: Ctx) -> web.Response:
    return json_response(offer_json(ctx.services.speech))


async def create_agent(ctx: Ctx) -> web.Response:
    check_kind_fields(ctx.body, ctx.body.get("kind", "webhook"), creating=True)
    _check_webhook(ctx)
    check_agent_speech(ctx.body, ctx.services.speech)
    try:
        agent = await ctx.store.agents.create(ctx.customer_id, **ctx.body)
    except NameTaken as exc:
        raise _taken(exc) from None
    return json_response(s.agent_json(agent), 201)


async def get_agent(ctx: Ctx) -> web.Response:
    agent = await ctx.store.agents.get(ctx.path["agent_id"], customer_id=ctx.customer_id)
    if agent is None:
        raise ApiError.not_found("agent")
    return json_response(s.agent_json(agent))


async def update_agent(ctx: Ctx) -> web.Response:
    agent_id = ctx.path["agent_id"]
    stored = await ctx.store.agents.get(agent_id, customer_id=ctx.customer_id)
    if stored is None:
        raise ApiError.not_found("agent")
    check_kind_fields(ctx.body, stored.kind, creating=False)  # a kind never changes
    _check_webhook(ctx)
    check_agent_speech(ctx.body, ctx.services.speech)
    changes = {k: v for k, v in ctx.body.items() if k != "kind"}  # the same kind: no change
    try:
        agent = await ctx.store.agents.update(agent_id, customer_id=ctx.customer_id, **changes)
    except NameTaken as exc:
        raise _taken(exc) from None
    if agent is None:
        raise ApiError.not_found("agent")
    return json_response(s.agent_json(agent))


async def delete_agent(ctx: Ctx) -> web.Response:
    try:
        found = await ctx.store.agents.delete(ctx.path["agent_id"], customer_id=ctx.customer_id)
    except AgentInUse as exc:
        raise ApiError(409, "agent_in_use", f"{exc}; change or delete those flows first") from None
    if not found:
        raise ApiError.not_found("agent")
    return web.Response(status=204)


def _check_policy(actions: list[Action] | None, policy: Policy) -> None:
    """Each action's policy checks (a transfer's target must be listed; run again later)."""
    for i, action in enumerate(actions or ()):
        for name, check in kind_of(action).policy_checks.items():
            try:
                check(action, policy)
            except PolicyRefused as exc:
                raise ApiError.refused(exc, f"actions[{i}].{name}") from None


async def list_flows(ctx: Ctx) -> web.Response:
    flows = await ctx.store.flows.list(ctx.customer_id)
    return json_response({"flows": [s.flow_json(f) for f in flows]})


async def create_flow(ctx: Ctx) -> web.Response:
    _check_policy(ctx.body["actions"], ctx.services.policy)
    try:
        flow = await ctx.store.flows.create(
            ctx.customer_id, name=ctx.body["name"], actions=ctx.body["actions"]
        )
    except NameTaken as exc:
        raise _taken(exc) from None
    return json_response(s.flow_json(flow), 201)


async def get_flow(ctx: Ctx) -> web.Response:
    flow = await ctx.store.flows.get(ctx.path["flow_id"], customer_id=ctx.customer_id)
    if flow is None:
        raise ApiError.not_found("flow")
    return json_response(s.flow_json(flow))


async def update_flow(ctx: Ctx) -> web.Response:
    _check_policy(ctx.body.get("actions"), ctx.services.policy)
    try:
        flow = await ctx.store.flows.update(
            ctx.path["flow_id"],
            customer_id=ctx.customer_id,
            name=ctx.body.get("name"),
            actions=ctx.body.get("actions"),
        )
    except NameTaken as exc:
        raise _taken(exc) from None
    if flow is None:
        raise ApiError.not_found("flow")
    return json_response(s.flow_json(flow))


async def delete_flow(ctx: Ctx) -> web.Response:
    if not await ctx.store.flows.delete(ctx.path["flow_id"], customer_id=ctx.customer_id):
        raise ApiError.not_found("flow")
    return web.Response(status=204)


_AGENT = f"{PREFIX}/agents/{{agent_id}}"
_FLOW = f"{PREFIX}/flows/{{flow_id}}"
ROUTES = [
    Route(
        "GET",
        f"{PREFIX}/voices",
        list_voices,
        "listVoices",
        "The voices and languages an agent may choose",
        "agents",
        {200: Resp("the installed TTS voices (the default first) and STT languages", SPEECH_OFFER)},
        description="An agent's voice must be one of these names (a 422 otherwise), its"
        " language one of these codes or a tag of one (en-US for en).",
    ),
    Route(
        "GET",
        f"{PREFIX}/agents",
        list_agents,
        "listAgents",
        "List agents",
        "agents",
        {200: Resp("the customer's agents", s.AGENT_LIST)},
    ),
    Route(
        "POST",
        f"{PREFIX}/agents",
        create_agent,
        "createAgent",
        "Create an agent",
        "agents",
        {201: Resp("the new agent", s.AGENT)},
        body=s.AGENT_CREATE,
        errors=(403, 409),
        description="A webhook agent (kind webhook, the default) needs its webhook; an llm "
        "agent (kind llm) its base_url and model. Each URL must be an address the operator's "
        "policy allows (egress, a 403 naming the field and the rule); a name is checked each "
        "time a call connects to it.",
    ),
    Route(
        "GET",
        _AGENT,
        get_agent,
        "getAgent",
        "Get an agent",
        "agents",
        {200: Resp("the agent", s.AGENT)},
    ),
    Route(
        "PATCH",
        _AGENT,
        update_agent,
        "updateAgent",
        "Change some of an agent's fields",
        "agents",
        {200: Resp("the updated agent", s.AGENT)},
        body=s.AGENT_UPDATE,
        errors=(403, 409),
    ),
    Route(
        "DELETE",
        _AGENT,
        delete_agent,
        "deleteAgent",
        "Delete an agent no flow uses",
        "agents",
        {204: Resp("deleted")},
        errors=(409,),
    ),
    Route(
        "GET",
        f"{PREFIX}/flows",
        list_flows,
        "listFlows",
        "List flows",
        "flows",
        {200: Resp("the customer's flows", s.FLOW_LIST)},
    ),
    Route(
        "POST",
        f"{PREFIX}/flows",
        create_flow,
        "createFlow",
        "Create a flow",
        "flows",
        {201: Resp("the new flow", s.FLOW)},
        body=s.FLOW_CREATE,
        errors=(403, 409),
        description="An ai_talk action's agent_id must be one of the customer's agents; a "
        "transfer names a target of the operator's policy (403 otherwise). Calls reach the "
        "flow through a number the operator assigns to it, or Stasis(ari-offload,flow=ID).",
    ),
    Route(
        "GET", _FLOW, get_flow, "getFlow", "Get a flow", "flows", {200: Resp("the flow", s.FLOW)}
    ),
    Route(
        "PATCH",
        _FLOW,
        update_flow,
        "updateFlow",
        "Rename a flow or replace its actions",
        "flows",
        {200: Resp("the updated flow", s.FLOW)},
        body=s.FLOW_UPDATE,
        errors=(403, 409),
    ),
    Route(
        "DELETE",
        _FLOW,
        delete_flow,
        "deleteFlow",
        "Delete a flow (call history is kept)",
        "flows",
        {204: Resp("deleted")},
    ),
]
