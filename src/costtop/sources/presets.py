"""Presets: a known gateway's own table read as the contract's columns, without mapping them by hand.

`litellm` reads LiteLLM's `"LiteLLM_SpendLogs"` as its own migrations create it
(../shared/design/contract.md, the LiteLLM paragraph). LiteLLM added columns over its releases
(`session_id`, `status`, `agent_id`, `request_duration_ms`, ...), so the SQL is built when costtop
connects, from the columns the table has: one costtop reads every LiteLLM schema since its first
migration, and one that upgrades LiteLLM under a running costtop learns the new columns with the
schema check (postgres.check_columns).

Most of the contract's columns are an expression here, not a column (`TableNames.expressions`), because
LiteLLM keeps them elsewhere or in another shape:

- `created_at` is `"startTime"`, bare, so that every read is a range on `LiteLLM_SpendLogs_startTime_idx`.
  LiteLLM stamps a row with the call's start and writes its spend log in batches every 10 to 60 s, so
  rows commit up to a minute (plus the call's own duration) after their time: the lateness horizon
  (`max_lateness`, 300 s) catches them live.
- `agent_id`: the first non-empty of the sources in `[litellm] identity` (IDENTITY_SQL). The proxy
  callback (integrations/litellm.py) walks the same names in the same order over the request, so the
  agent a kill names is the agent the screen shows.
- `status`: LiteLLM says `success` or `failure`. A failure whose error message holds a costtop switch's
  marker (refusals.py) and whose error class is the callback's `Refused` is a call the gateway refused on
  costtop's behalf: `killed` or `throttled`, not an `error` (a kill must not raise an error-rate alert on
  the agent it stopped).
- `cost_usd`: `spend` is NOT NULL DEFAULT 0, so an unpriced call (a model LiteLLM has no price for)
  reads 0. A row with tokens, spend 0 and no cache hit is read as no recorded cost (NULL): the engine
  then prices it from the catalog when it can and shows it unpriced when it cannot, never as $0. A
  cache hit with spend 0 is a true $0.
"""

from __future__ import annotations

from collections.abc import Callable, Set

from costtop.config import IDENTITY_ORDER, IdentitySource, LiteLLMSettings, TableNames
from costtop.refusals import REFUSED_CLASS, refusal_marker
from costtop.sources.schema import qident


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _text(sql: str) -> str:
    """A text value, with the empty string LiteLLM writes for "none" read as none."""
    return f"nullif({sql}, '')"


METADATA = qident("metadata")

# How late a LiteLLM row normally commits after its "startTime": the call itself (seconds, up to a minute
# for a long stream) plus the spend log's batch interval (10 to 60 s). Lateness within this is how LiteLLM
# works, not news: only rows later than it are noted on screen (they are counted either way).
LITELLM_USUAL_LATENESS = 120.0


def usual_lateness(preset: str | None, default: float) -> float:
    """Seconds after its time stamp a row may commit before the screen notes it as late."""
    return LITELLM_USUAL_LATENESS if preset == "litellm" else default


def _json_text(path: str) -> str:
    """A JSON string inside the row's metadata, as text; anything else (a number, an object, an array: what a
    client can send) names no one, as in the callback (integrations/litellm.py takes strings only), so the
    screen's agent and the agent the proxy checks stay the same."""
    return _text(f"(CASE WHEN jsonb_typeof({path}) = 'string' THEN {path} #>> '{{}}' END)")


def _metadata_agent(options: LiteLLMSettings) -> str:
    return _json_text(f"{METADATA}->'spend_logs_metadata'->{_literal(options.metadata_key)}")


# Where each identity source is, by the names of config.IdentitySource: the column it needs, and its SQL.
# `metadata` is the client's `spend_logs_metadata` (LiteLLM keeps it inside the row's `metadata`),
# `key_alias` the alias of the API key the call used, `end_user` the request's `user` field, `user` the
# key owner's user id. Empty strings (LiteLLM's "none") are skipped.
IDENTITY_SQL: dict[IdentitySource, tuple[str, Callable[[LiteLLMSettings], str]]] = {
    "agent_id": ("agent_id", lambda _: _text(qident("agent_id"))),
    "metadata": ("metadata", _metadata_agent),
    "key_alias": ("metadata", lambda _: _json_text(f"{METADATA}->'user_api_key_alias'")),
    "end_user": ("end_user", lambda _: _text(qident("end_user"))),
    "user": ("user", lambda _: _text(qident("user"))),
}
assert tuple(IDENTITY_SQL) == IDENTITY_ORDER  # one name per source, in the callback's too


def identity_sql(real: Set[str], options: LiteLLMSettings) -> str | None:
    """The agent: the first non-empty source in the configured order, among those the table has."""
    parts = [build(options) for source in options.identity
             for column, build in (IDENTITY_SQL[source],) if column in real]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


ERROR_INFO = f"({METADATA}->'error_information')"


def failure_sql(real: Set[str]) -> str:
    """True for a failed call. With a `status` column (LiteLLM since May 2025) it says; rows written
    before it (NULL) and tables without it fall back to the row's metadata: its own `status`, or error
    details present (LiteLLM writes `error_information: null` for a success)."""
    from_metadata = (f"({METADATA}->>'status' = 'failure' OR "
                     f"(jsonb_typeof({ERROR_INFO}) = 'object' AND "
                     f"coalesce({ERROR_INFO}->>'error_code', {ERROR_INFO}->>'error_message', '') <> ''))")
    if "status" not in real:
        return from_metadata
    status = qident("status")
    return f"({status} = 'failure' OR ({status} IS NULL AND {from_metadata}))"


def status_sql(real: Set[str]) -> str:
    """`success`, `error`, or `killed` / `throttled` for a failure worded as a costtop switch's refusal and
    raised by costtop's callback (its exception's class: a message alone can echo what a client wrote)."""
    refused = f"({ERROR_INFO}->>'error_class') = {_literal(REFUSED_CLASS)}"
    message = f"(CASE WHEN {refused} THEN {ERROR_INFO}->>'error_message' END)"
    return (f"(CASE WHEN {failure_sql(real)} THEN (CASE "
            f"WHEN strpos({message}, {_literal(refusal_marker('killed'))}) > 0 THEN 'killed' "
            f"WHEN strpos({message}, {_literal(refusal_marker('throttled'))}) > 0 THEN 'throttled' "
            "ELSE 'error' END) ELSE 'success' END)")


def cost_sql() -> str:
    """`spend`, except an unpriced call (tokens, spend 0, not a cache hit): NULL, no recorded cost.
    Counts that are not zero, negative ones too, are tokens: such a row's $0 is not known to be true.
    Each count is compared on its own: their sum, in integer, overflows at LiteLLM's largest counts."""
    spend = qident("spend")
    tokens = f"(coalesce({qident('prompt_tokens')}, 0) <> 0 OR coalesce({qident('completion_tokens')}, 0) <> 0)"
    return (f"(CASE WHEN {spend} = 0 AND {tokens} AND coalesce({qident('cache_hit')}, '') <> 'True' "
            f"THEN NULL ELSE {spend} END)")


def cached_sql() -> str:
    """Cached input tokens from the usage LiteLLM keeps in `metadata`: `additional_usage_values`
    (Anthropic's `cache_read_input_tokens`, which LiteLLM also fills from OpenAI's
    `prompt_tokens_details.cached_tokens`), else the `usage_object`'s prompt token details. Text:
    column_types reads it as a count, and a value that is not one as unreadable."""
    extra, usage = f"{METADATA}->'additional_usage_values'", f"{METADATA}->'usage_object'"
    return (f"coalesce({extra}->>'cache_read_input_tokens', {extra}->'prompt_tokens_details'->>'cached_tokens', "
            f"{usage}->'prompt_tokens_details'->>'cached_tokens')")


def latency_sql(real: Set[str]) -> str:
    """`request_duration_ms` (LiteLLM since February 2026; NULL in the rows written before it), else
    the time from start to end. Numeric: column_types rounds it to whole milliseconds."""
    span = f"(extract(epoch FROM ({qident('endTime')} - {qident('startTime')})) * 1000)"
    if "request_duration_ms" in real:
        return f"coalesce({qident('request_duration_ms')}::numeric, {span})"
    return span


def tool_sql(real: Set[str]) -> str:
    """The MCP tool's namespaced name for an MCP tool call, else the call type (`acompletion`,
    `aembedding`, ...). A model call has a model, so the runaway-loop rule (engine/traces.py), which
    counts agent tools only, counts MCP tools and never a trace's model calls."""
    call_type = qident("call_type")
    if "mcp_namespaced_tool_name" in real:
        return f"coalesce({_text(qident('mcp_namespaced_tool_name'))}, {call_type})"
    return call_type


def litellm_tables(base: TableNames, real: Set[str], options: LiteLLMSettings) -> TableNames:
    """`base` (the user's tables settings) with LiteLLM's columns and expressions for the columns `real`
    holds. What the user mapped in `tables.columns` or `tables.expressions` wins over the preset."""
    columns = {"created_at": "startTime", "id": "request_id", "tokens_in": "prompt_tokens",
               "tokens_out": "completion_tokens"}
    if "session_id" in real:
        columns["trace_id"] = "session_id"  # bare, for its index (the trace drill-down)
    expressions = {
        "tool_name": tool_sql(real), "latency_ms": latency_sql(real),
        "model": f"coalesce({_text(qident('model_group'))}, {_text(qident('model'))})",
        "provider": _text(qident("custom_llm_provider")), "user_id": _text(qident("user")),
        "status": status_sql(real), "cost_usd": cost_sql(),
    }
    if "metadata" in real:
        expressions["cached_tokens"] = cached_sql()
        expressions["error_code"] = _text(f"{ERROR_INFO}->>'error_code'")
    agent = identity_sql(real, options)
    if agent is not None:
        expressions["agent_id"] = agent
    user_set = set(base.columns) | set(base.expressions)
    columns = {k: v for k, v in columns.items() if k not in user_set} | dict(base.columns)
    expressions = {k: v for k, v in expressions.items() if k not in user_set} | dict(base.expressions)
    return base.model_copy(update={"columns": columns, "expressions": expressions})


def preset_tables(preset: str | None, base: TableNames, real: Set[str], options: LiteLLMSettings) -> TableNames:
    """The tables settings a reader uses: `base` as configured, or with the preset's columns."""
    if preset == "litellm":
        return litellm_tables(base, real, options)
    return base
