"""The error tree. Every error ari-offload raises on purpose is an ``AriOffloadError``.

    AriOffloadError
    ├── ConfigError          a setting or the policy file is malformed (names the key)
    ├── PolicyRefused        the operator's policy forbids what a tenant asked (names the rule)
    │   └── QuotaExceeded    a call quota is used up for now (carries retry_after_s)
    ├── AriError             talking to Asterisk's ARI failed
    │   ├── AriConnectError  Asterisk is unreachable (refused, timed out, websocket closed)
    │   ├── AriBadId         an id for an ARI path is malformed; refused before any request
    │   └── AriHttpError     ARI answered with a non-2xx status (carries status and body)
    │       └── AriNotFound  404: the channel/bridge is already gone (often harmless)
    ├── ModelError           a speech model could not be found or loaded (names the path)
    ├── WebhookError         the agent (its webhook or LLM endpoint) failed; the call goes on
    │                        with a fallback line
    │   ├── WebhookTimeout
    │   ├── WebhookUnreachable
    │   │   └── EgressRefused   the egress guard refused the address (names the rule)
    │   ├── WebhookStatusError  non-2xx status
    │   └── WebhookBadReply     not JSON, or no "text"
    ├── StoreError           persistence failed
    │   ├── NameTaken        a customer/agent/flow/admin key name already exists
    │   ├── AgentInUse       a flow still uses the agent being deleted
    │   └── KeyLimitReached  the customer has as many live access keys as allowed
    ├── Busy                 a bounded queue is full (password hashing): retry after a pause
    ├── ValidationError      input failed validation (a body, query or flow action); names the
    │                        field path, e.g. actions[0].agent_id (schema, flows.model)
    ├── TalkQueueFull        a live call already has as many API `talk` texts queued as allowed
    └── TelephonyError       Asterisk refused or could not place a call (telephony)

Outside the tree: ``api.errors.ApiError`` is an HTTP answer being built (status, code,
field), and ``sdk.client.ApiError`` is that answer as the SDK raises it.

Malformed wire data (RTP, ARI events) raises plain ``ValueError`` with an exact message from
the sans-IO parsers; the async layers log it at debug, count it and drop the packet.
"""

from __future__ import annotations


class AriOffloadError(Exception):
    """Base class of every error ari-offload raises on purpose."""


class ConfigError(AriOffloadError):
    pass


class PolicyRefused(AriOffloadError):
    """A tenant asked for something the operator's policy does not allow.

    ``rule`` is the policy key that refused (``outbound.routes.carrier.deny``): the API puts it
    in the error so a tenant knows what to ask the operator for.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} (policy rule {rule})")
        self.rule = rule
        self.message = message


class QuotaExceeded(PolicyRefused):
    """Too many calls at once or per minute, for the tenant or the whole server."""

    def __init__(self, rule: str, message: str, retry_after_s: int) -> None:
        super().__init__(rule, message)
        self.retry_after_s = retry_after_s


class AriError(AriOffloadError):
    pass


class AriConnectError(AriError):
    pass


class AriBadId(AriError):
    """An id that would go into an ARI URL is not of the id shape (``rest.ID_PATTERN``)."""

    def __init__(self, what: str, value: str) -> None:
        super().__init__(f"malformed ARI {what} id {value[:80]!r}: refused, nothing was sent")
        self.what = what
        self.value = value


class AriHttpError(AriError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {body[:200]}")
        self.method = method
        self.path = path
        self.status = status
        self.body = body


class AriNotFound(AriHttpError):
    pass


class ModelError(AriOffloadError):
    pass


class WebhookError(AriOffloadError):
    pass


class WebhookTimeout(WebhookError):
    pass


class WebhookUnreachable(WebhookError):
    pass


class EgressRefused(WebhookUnreachable, OSError):
    """The egress guard (agent.egress) refused every address a webhook could connect to.

    An OSError too, because it is raised inside aiohttp's connector (resolver, socket
    factory), which treats it as a failed connection attempt; ``rule`` is the policy key.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class WebhookStatusError(WebhookError):
    def __init__(self, status: int) -> None:
        super().__init__(f"webhook answered HTTP {status}")
        self.status = status


class WebhookBadReply(WebhookError):
    pass


class StoreError(AriOffloadError):
    pass


class NameTaken(StoreError):
    """A unique name (customer, or agent/flow within one customer) is already used."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"a {kind} named {name!r} already exists")
        self.kind = kind
        self.name = name


class AgentInUse(StoreError):
    """An agent cannot be deleted while flows still talk to it."""

    def __init__(self, flow_names: list[str]) -> None:
        super().__init__(f"the agent is used by flow(s): {', '.join(flow_names)}")
        self.flow_names = flow_names


class TalkQueueFull(AriOffloadError):
    """The call's talk inbox is full: the API answers 429 and the text is not queued."""

    def __init__(self, call_id: str, limit: int) -> None:
        super().__init__(f"call {call_id} already has {limit} texts queued to speak")
        self.call_id = call_id
        self.limit = limit


class KeyLimitReached(StoreError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the customer already has {limit} live access keys")
        self.limit = limit


class Busy(AriOffloadError):
    """Work refused at once because its queue is full; ``retry_after_s`` is a hint."""

    def __init__(self, what: str, retry_after_s: float) -> None:
        super().__init__(f"{what} is busy; retry in {retry_after_s:g} s")
        self.what = what
        self.retry_after_s = retry_after_s


class ValidationError(AriOffloadError, ValueError):
    """Input failed validation; ``field`` is the path to the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TelephonyError(AriOffloadError):
    """Asterisk refused or could not place the call; the message is shown to the API user."""
