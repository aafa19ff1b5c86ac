"""A LiteLLM proxy callback that obeys costtop's switches and keeps costtop's live counters.

Load it from the proxy's config.yaml (README, "LiteLLM proxy"):

    litellm_settings:
      callbacks: costtop.integrations.litellm.costtop_callback

LiteLLM 1.108 resolves that string by importing the module `costtop.integrations.litellm` (a file of that
path beside the config would win, so none is needed when costtop is installed in the proxy's environment)
and taking its `costtop_callback` attribute. The settings are costtop's own (COSTTOP_REDIS_URL, COSTTOP_CONFIG
and the `[litellm]` table), read once at import: a bad setting stops the proxy at start, not at a call.

Why each hook:
- `async_pre_call_hook` runs before the proxy routes the call: one round trip over every switch that may refuse
  it; raising there refuses the call, and LiteLLM records the refusal in its spend log as a failure whose
  message holds `refusal_marker(...)`, which costtop's reader counts as killed or throttled, not as an error.
- `async_log_success_event` and `async_post_call_failure_hook` are where LiteLLM writes its spend-log rows
  (one per served call, one per failed or refused request), so `calls:{day}` is bumped at the same two
  places and compares one to one with the rows; `spent:{agent}:{day}` gets the served call's cost.

Nothing here imports textual: the proxy's environment has no UI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.litellm_core_utils.core_helpers import get_litellm_metadata_from_kwargs
from litellm.proxy._types import ProxyException

from costtop.config import LiteLLMSettings, Settings, cluster_seeds, load_settings
from costtop.gateway import (
    Decision,
    check_switches,
    count_minute,
    day_of,
    queue_counters,
    retry_after,
)
from costtop.refusals import REFUSED_CLASS, refusal_message
from costtop.sources.redis_state import REDIS_ERRORS, RedisClient, connect_redis

log = logging.getLogger("costtop.litellm")



def _text(value: object) -> str | None:
    """A non-empty string, or None: an empty or non-string field names no agent."""
    return value if isinstance(value, str) and value != "" else None


def _spend_logs_metadata(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    """The client's `spend_logs_metadata` when it is a dict. LiteLLM parses the x-litellm-spend-logs-metadata
    header before the pre-call hook runs, but keeps a JSON string sent in the body as that string, in the
    request and in the spend log's row: read as no metadata here too, as the reader does (sources/presets.py),
    so that the agent checked is the agent the row names."""
    raw = metadata.get("spend_logs_metadata")
    return raw if isinstance(raw, Mapping) else {}


def agent_of(fields: Mapping[str, str | None], settings: LiteLLMSettings) -> str | None:
    """The first source in `settings.identity` that holds a value: the same rule as the reader's."""
    for source in settings.identity:
        if value := fields.get(source):
            return value
    return None


def identity_fields(top: Mapping[str, Any], metadata: Mapping[str, Any], settings: LiteLLMSettings,
                    key: Any = None) -> dict[str, str | None]:
    """Each identity source's value, taken where LiteLLM's spend-log builder (get_logging_payload) takes the
    column: `agent_id` from the call's own `agent_id` or metadata.agent_id, `key_alias` from
    metadata.user_api_key_alias, `end_user` from user_api_key_end_user_id (LiteLLM's reading of the request's
    `user`), `user`
    from metadata.user_api_key_user_id. `key` (the proxy's UserAPIKeyAuth, before the call) fills a field
    the metadata does not carry yet."""
    def attr(name: str) -> str | None:
        return _text(getattr(key, name, None)) if key is not None else None

    import litellm

    # With `disable_end_user_cost_tracking` LiteLLM writes no end user in the row (end_user ''), so the
    # screen's agent comes from the next source: the callback must skip it too. The request's raw `user` is
    # not a source: LiteLLM's row takes the end user it validated (user_api_key_end_user_id: stripped, a
    # number as text, blank or structured values dropped), so a raw "   " named an agent no row names.
    end_user = None if litellm.disable_end_user_cost_tracking else (
        _text(top.get("user_api_key_end_user_id")) or _text(metadata.get("user_api_key_end_user_id"))
        or attr("end_user_id"))
    return {
        "agent_id": _text(top.get("agent_id")) or _text(metadata.get("agent_id")),
        "metadata": _text(_spend_logs_metadata(metadata).get(settings.metadata_key)),
        "key_alias": _text(metadata.get("user_api_key_alias")) or attr("key_alias"),
        "end_user": end_user,
        "user": _text(metadata.get("user_api_key_user_id")) or attr("user_id"),
    }


def request_agent(data: Mapping[str, Any], settings: LiteLLMSettings, key: Any = None) -> str | None:
    """The agent of a request as the pre-call hook sees it (the proxy's request body, metadata merged in)."""
    metadata = get_litellm_metadata_from_kwargs({"litellm_params": data})
    return agent_of(identity_fields(data, metadata or {}, settings, key), settings)


def logged_agent(kwargs: Mapping[str, Any], settings: LiteLLMSettings) -> str | None:
    """The agent of a call as the logging hooks see it: what the spend-log row will name."""
    params = kwargs.get("litellm_params") or {}
    metadata = get_litellm_metadata_from_kwargs(dict(kwargs)) or {}
    top = {"agent_id": kwargs.get("agent_id"), "user_api_key_end_user_id": params.get("user_api_key_end_user_id")}
    return agent_of(identity_fields(top, metadata, settings), settings)


def _proxy_router() -> Any:
    """The running proxy's router (None outside a proxy): where a public model name's deployments are."""
    try:
        from litellm.proxy import proxy_server
    except ImportError:
        return None
    return getattr(proxy_server, "llm_router", None)


class Refused(ProxyException):
    """A call refused by a costtop switch. ProxyException is what the proxy turns into the HTTP answer
    (status, headers, OpenAI-style error body) and into the spend log's error message."""

    def __init__(self, message: str, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message=message, type="costtop_switch", param=None, code=status, headers=headers)


assert Refused.__name__ == REFUSED_CLASS  # the reader recognises a refusal by this class (sources/presets.py)


class CosttopCallback(CustomLogger):
    """Checks costtop's switches before each call and keeps `spent:` and `calls:` after it."""

    def __init__(self, settings: Settings | None = None, router: Callable[[], Any] = _proxy_router) -> None:
        super().__init__()
        self.settings = settings if settings is not None else load_settings()
        self._router = router
        self._redis: RedisClient | None = None
        self._providers: dict[tuple[str, str | None], str] = {}

    @property
    def redis(self) -> RedisClient:
        """One client for the proxy's lifetime, created on first use (inside the proxy's event loop): one
        Redis or a Redis Cluster, as costtop's own (`cluster = true` or a `redis+cluster://` URL)."""
        if self._redis is None:
            self._redis = connect_redis(self.settings, self.settings.litellm.redis_timeout)
        return self._redis

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # -- which switches a request answers to ---------------------------------------------------------

    def targets(self, public_model: str | None) -> tuple[list[str], list[str]]:
        """The model names and providers a request may go by: its public name, and for each deployment the
        router has under that name, the deployment's model and provider. A group with several deployments
        is refused when any one of them is killed (routing around a killed deployment is the router's job,
        and costtop's kill means: no more spend there)."""
        models = [public_model] if public_model else []
        providers: list[str] = []
        router = self._router()
        for deployment in (getattr(router, "model_list", None) or []) if public_model else []:
            if not isinstance(deployment, Mapping) or deployment.get("model_name") != public_model:
                continue
            params = deployment.get("litellm_params") or {}
            model = _text(params.get("model"))
            if model is None:
                continue
            models.append(model)
            if provider := self._provider(model, _text(params.get("custom_llm_provider"))):
                providers.append(provider)
        return models, providers

    def _provider(self, model: str, explicit: str | None) -> str | None:
        """The deployment's provider as LiteLLM names it (`openai/gpt-4o` -> openai), kept per deployment."""
        found = self._providers.get((model, explicit))
        if found is None:
            import litellm

            try:
                found = litellm.get_llm_provider(model=model, custom_llm_provider=explicit)[1]
            except Exception:  # an unknown provider: the model kill still applies
                found = explicit or (model.split("/", 1)[0] if "/" in model else "")
            self._providers[(model, explicit)] = found
        return found or None

    # -- LiteLLM's hooks -----------------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: Any) -> dict | None:
        """Refuse the call if a switch says so; otherwise let it through unchanged."""
        lite = self.settings.litellm
        agent = request_agent(data, lite, user_api_key_dict)
        models, providers = self.targets(_text(data.get("model")))
        started = time.monotonic()
        try:
            async with asyncio.timeout(lite.redis_timeout):
                decision, value = await check_switches(self.redis, self.settings.keys, agent, providers, models)
                calls_this_minute = await self._count_minute(agent) if decision.throttled and agent else 0
        except REDIS_ERRORS as exc:
            self._unreachable(exc, time.monotonic() - started)
            if lite.fail_mode == "closed":
                raise Refused("costtop: the switches could not be read (Redis unreachable) and fail_mode is "
                              "closed", 503) from None
            return data
        self._refuse_if_switched(decision, value, calls_this_minute)
        return data

    def _refuse_if_switched(self, decision: Decision, value: str | None, calls_this_minute: int) -> None:
        if not decision.allowed and decision.blocked_by:
            raise Refused(refusal_message("killed", decision.blocked_by, value), 403)
        limit = self.settings.litellm.throttle_per_minute
        if decision.throttled and decision.blocked_by and calls_this_minute > limit:
            raise Refused(refusal_message("throttled", decision.blocked_by, value), 429,
                          {"retry-after": str(retry_after(datetime.now(UTC)))})

    async def _count_minute(self, agent: str) -> int:
        """This agent's calls in the current UTC minute, this one included (a second round trip, made only
        for a throttled agent)."""
        return await count_minute(self.redis, self.settings.keys, agent, datetime.now(UTC))

    def _unreachable(self, exc: BaseException, waited: float) -> None:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("costtop: Redis at %s not reached in %.2fs (%s); fail_mode=%s: call %s",
                    _where(self.settings.redis_url), waited, reason, self.settings.litellm.fail_mode,
                    "let through" if self.settings.litellm.fail_mode == "open" else "refused")

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        """A served call: one more call that day, and its cost on the agent's day."""
        cost = _cost(kwargs)
        await self._count(logged_agent(kwargs, self.settings.litellm), cost, start_time)

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> None:
        """A failed or refused request: LiteLLM writes it one spend-log row (status failure), so it is one
        more call in `calls:{day}` too; nothing was spent."""
        await self._count(None, None, request_data.get("start_time"))

    async def _count(self, agent: str | None, cost: Decimal | None, start: object) -> None:
        day = day_of(start if isinstance(start, datetime) else datetime.now(UTC))
        spent = {f"{self.settings.keys.spent}:{agent}:{day}": cost} if agent and cost else {}
        try:
            async with asyncio.timeout(self.settings.litellm.redis_timeout):
                pipe = self.redis.pipeline(transaction=False)
                queue_counters(pipe, self.settings.keys, spent, {day: 1})
                await pipe.execute()
        except REDIS_ERRORS as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("costtop: counters not updated, Redis at %s unreachable (%s)",
                        _where(self.settings.redis_url), reason)


def _cost(kwargs: Mapping[str, Any]) -> Decimal | None:
    """The call's cost as LiteLLM computed it (the spend log's `spend`), None when it has none."""
    raw = kwargs.get("response_cost")
    if raw is None:
        raw = (kwargs.get("standard_logging_object") or {}).get("response_cost")
    try:
        cost = Decimal(str(raw)) if raw is not None else None
    except InvalidOperation:
        return None
    return cost if cost is not None and cost.is_finite() and cost > 0 else None


def _where(url: str) -> str:
    """Host and port of the Redis URL (a cluster's first node), never its password (a log line is read by
    many)."""
    from urllib.parse import urlsplit

    parts = urlsplit(cluster_seeds(url)[0])
    return f"{parts.hostname or parts.path}:{parts.port or 6379}" if parts.hostname else url.split("@")[-1]


def keys_checked(callback: CosttopCallback, data: Mapping[str, Any], key: Any = None) -> list[str]:
    """Every key the pre-call hook reads (one round trip) for this request, in order (for tests and the README)."""
    from costtop.gateway import switch_keys

    lite = callback.settings.litellm
    agent = request_agent(data, lite, key)
    models, providers = callback.targets(_text(data.get("model")))
    keys = switch_keys(callback.settings.keys, agent, providers, models)
    return [*keys, f"{callback.settings.keys.throttle}:agent:{agent}"] if agent else keys


costtop_callback = CosttopCallback()
