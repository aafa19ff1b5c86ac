"""Settings: CLI flags over environment variables over a TOML file over defaults.

Every Redis key prefix, table and column name of the contract is configurable, because real gateways
name things differently (../shared/design/contract.md).
"""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """Bad configuration; the message is one line for the user."""


_BOOL: TypeAdapter[bool] = TypeAdapter(bool)
KEY_PREFIX = r"^[^:*?\[\]\s\x00-\x1f\x7f]{1,64}$"


class KeyNames(BaseModel):
    """Redis key prefixes; a key is `{prefix}:{scope}:{target}` or `{prefix}:{agent}:{day}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # A prefix is part of every key the gateway checks: empty, or with `:` or `*`, the kill would be
    # written where no gateway looks (`:agent:x`), or a SCAN would match other keys.
    kill: str = "kill"
    throttle: str = "throttle"
    budget: str = "budget"
    spent: str = "spent"
    calls: str = "calls"

    @field_validator("kill", "throttle", "budget", "spent", "calls")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(KEY_PREFIX, value):
            raise ValueError("a key prefix is 1 to 64 characters with no ':', '*', '?', '[', ']', space or "
                             f"control character (got {value[:20]!r})")
        return value


# Logical column name -> meaning. Required ones must exist; the rest are used when present.
REQUIRED_COLUMNS = ("agent_id", "tool_name", "latency_ms", "created_at")
OPTIONAL_COLUMNS = (
    "id", "provider", "model", "tokens_in", "tokens_out", "cached_tokens", "cost_usd", "status",
    "error_code", "trace_id", "span_id", "parent_span_id", "task_id", "user_id",
)


class TableNames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    calls: str = "tool_calls"
    audit: str = "costtop_audit"
    schema_name: str = Field(default="public", alias="schema")
    # costtop's own pre-aggregate (rollup/schema.py): the only schema costtop writes besides its audit table.
    rollup_schema: str = Field(default="costtop_rollup", min_length=1, max_length=63)
    # Logical name -> the real column name, for tables that name a column differently.
    columns: dict[str, str] = Field(default_factory=dict)
    # Logical name -> an SQL expression over the table's columns, for a value no single column holds
    # (LiteLLM's agent is the first non-empty of several places: sources/presets.py). Its type is learnt
    # by preparing `SELECT <expression> FROM <table>` at start, so a bad one is refused there. created_at
    # stays a bare column: every read is a range on its index.
    expressions: dict[str, str] = Field(default_factory=dict)

    @field_validator("expressions")
    @classmethod
    def _expressions(cls, value: dict[str, str]) -> dict[str, str]:
        known = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        for name, sql in value.items():
            if name == "created_at":
                raise ValueError("created_at must be a column, not an expression (every read is a range on "
                                 "its index): map it with tables.columns")
            if name not in known:
                raise ValueError(f"{name!r} is not one of costtop's columns ({', '.join(known)})")
            if not sql.strip() or ";" in sql:
                raise ValueError(f"the expression for {name} must be one SQL expression (got {sql[:40]!r})")
        return value

    def column(self, logical: str) -> str:
        return self.columns.get(logical, logical)

    def expression(self, logical: str) -> str | None:
        """The SQL expression standing for this column, or None when it is a column of the table."""
        return self.expressions.get(logical)


# Where a LiteLLM call's agent may be found, by name (README, "LiteLLM"): the spend log's `agent_id`
# column (the request's `metadata.agent_id`), the `spend_logs_metadata` the client sent, the API key's
# alias, the request's `user` field (LiteLLM's end user), and the key owner's user id. The first one
# that holds a non-empty value is the agent; the reader (sources/presets.py) and the proxy callback
# (integrations/litellm.py) follow the same order, so a kill is checked under the name the screen shows.
IdentitySource = Literal["agent_id", "metadata", "key_alias", "end_user", "user"]
IDENTITY_ORDER: tuple[IdentitySource, ...] = ("agent_id", "metadata", "key_alias", "end_user", "user")


class LiteLLMSettings(BaseModel):
    """The `[litellm]` table: how the preset reads LiteLLM's spend log and how the proxy callback acts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    identity: tuple[IdentitySource, ...] = IDENTITY_ORDER
    # The key that names the agent inside the request's `spend_logs_metadata` (the `metadata` source).
    metadata_key: str = Field(default="agent_id", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    # What the callback does when Redis cannot be reached in time: `open` lets the call through (a Redis
    # outage must not stop the fleet), `closed` refuses it (nothing runs unchecked). Logged each time.
    fail_mode: Literal["open", "closed"] = "open"
    # A throttled agent gets at most this many calls a minute; past it, 429 with Retry-After.
    throttle_per_minute: int = Field(default=6, ge=1, le=100_000)
    # How long the callback waits for Redis before applying fail_mode.
    redis_timeout: float = Field(default=0.25, gt=0, le=10, allow_inf_nan=False)

    @field_validator("identity")
    @classmethod
    def _identity(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("identity needs at least one source")
        if len(set(value)) != len(value):
            raise ValueError("identity names a source twice")
        return value


# The table each preset reads (sources/presets.py builds its columns from what the table has).
PRESET_TABLES = {"litellm": "LiteLLM_SpendLogs"}


# Bounds for every threshold, checked at start: a typo (`budget_warning = 80` for 80 %, a negative
# dollar figure, 0 calls) would otherwise make an alert that never trips or always does.
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Money = Annotated[Decimal, Field(gt=0, le=Decimal("1e12"), allow_inf_nan=False)]
Millis = Annotated[int, Field(ge=1, le=86_400_000)]
Count = Annotated[int, Field(ge=1, le=1_000_000_000)]


SILENCE_SECONDS = 60.0
# Under the LiteLLM preset: twice LiteLLM's usual lateness (presets.LITELLM_USUAL_LATENESS, the call plus
# a 10-60 s batch): a row stamped with its call's start is never expected later than half of it.
LITELLM_SILENCE_SECONDS = 240.0
# Runaway traces (seed), the defaults of `loop_calls` and `context_tokens` below:
LOOP_CALLS = 5  # more than this many calls of one agent tool in a trace
CONTEXT_LIMIT = 100_000  # input tokens


class Thresholds(BaseModel):
    """Seed defaults: velocity in USD over the 5-minute window; budget fractions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    velocity_warning: Money = Decimal("5")
    velocity_critical: Money = Decimal("15")
    velocity_emergency: Money = Decimal("50")
    # The fleet's burn (the header's level and the chart's lines), in USD over the 5-minute window: all
    # three or none. Unset, they follow the global day budget, or a fixed rule without one
    # (engine/budgets.py `fleet_levels`): one agent's thresholds would call a healthy fleet critical.
    fleet_velocity_warning: Money | None = None
    fleet_velocity_critical: Money | None = None
    fleet_velocity_emergency: Money | None = None
    budget_warning: Fraction = 0.8
    # Providers (seed alert rules): down above 50 % errors in 2 minutes; degraded above 10 % errors
    # in 5 minutes or a p95 latency above 10 s.
    provider_down_errors_2m: Fraction = 0.5
    provider_degraded_errors_5m: Fraction = 0.10
    provider_slow_p95_ms: Millis = 10_000
    # Alert rules (seed): an agent above 10 % errors in 5 minutes; more than 3 such agents at once;
    # a p95 latency above 10 s over 5 minutes.
    error_rate_5m: Fraction = 0.10
    erroring_agents: Count = 3
    slow_p95_ms: Millis = 10_000
    # Runaway traces (seed): one agent tool called more than 5 times in a trace; input tokens above 100K.
    loop_calls: Count = LOOP_CALLS
    context_tokens: Count = CONTEXT_LIMIT
    # Anomalies (seed): an agent's spend today above its trailing 7-day mean plus 2 standard deviations;
    # this clock hour above 3 times the one before. costtop's own guards against crying wolf: at least
    # 3 days of history, and at least $1 spent before anything is unusual.
    anomaly_sigmas: Decimal = Field(default=Decimal("2"), ge=0, le=100, allow_inf_nan=False)
    anomaly_hour_factor: Decimal = Field(default=Decimal("3"), ge=1, le=1000, allow_inf_nan=False)
    anomaly_min_days: int = Field(default=3, ge=1, le=7)  # the history is the 7 days before
    anomaly_min_usd: Decimal = Field(default=Decimal("1"), ge=0, le=Decimal("1e12"), allow_inf_nan=False)
    # The gateway's fallback file (seed: drained within an hour): its oldest line older than this is
    # an alert, rows are not reaching the table.
    fallback_drain_seconds: float = Field(default=3600.0, ge=10, le=30 * 86400, allow_inf_nan=False)
    # Kill verification (issue 16): a call that started this many seconds after a kill switch was set,
    # and was not refused by it, means the gateway is not checking that switch. The grace covers calls
    # already on their way when the switch went on.
    kill_grace_seconds: float = Field(default=10.0, ge=0, le=3600, allow_inf_nan=False)
    # A silent gateway: no row stamped in this many seconds after traffic was flowing, or while the
    # gateway's `calls:{day}` kept rising. Above LiteLLM's batch delay under `preset = "litellm"` (240 s,
    # set by Settings when not given); 60 s for a gateway that writes each row as the call ends.
    silence_seconds: float = Field(default=SILENCE_SECONDS, ge=10, le=86_400, allow_inf_nan=False)
    # "Traffic was flowing": at least this many rows in the silence_seconds before the newest one, so a
    # lull of silence_seconds is ten times the usual gap between calls, not a trickle's pause.
    silence_min_calls: Count = 10

    @model_validator(mode="after")
    def _velocity_order(self) -> Thresholds:
        if not self.velocity_warning <= self.velocity_critical <= self.velocity_emergency:
            raise ValueError("velocity_warning <= velocity_critical <= velocity_emergency must hold "
                             f"(got {self.velocity_warning}, {self.velocity_critical}, {self.velocity_emergency})")
        fleet = (self.fleet_velocity_warning, self.fleet_velocity_critical, self.fleet_velocity_emergency)
        if any(level is None for level in fleet) and any(level is not None for level in fleet):
            raise ValueError("fleet_velocity_warning, fleet_velocity_critical and fleet_velocity_emergency: "
                             "set all three, or none (then they follow the global day budget)")
        if fleet[0] is not None and not fleet[0] <= fleet[1] <= fleet[2]:  # type: ignore[operator]
            raise ValueError("fleet_velocity_warning <= fleet_velocity_critical <= fleet_velocity_emergency "
                             f"must hold (got {fleet[0]}, {fleet[1]}, {fleet[2]})")
        return self


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # The primary, when database_url names a hot standby (sources/replica.py): audit rows, the rollup
    # (`costtop rollup`) and `costtop db init` are written there. Unset: they go to database_url.
    audit_database_url: str | None = None
    refresh: float = 1.0
    read_only: bool = False
    # The wall screen (`--wall`): large figures and the fleet's state as a colour, for a monitor across
    # the room that nobody touches. Always read-only: a screen nobody watches must not hold a kill key.
    wall: bool = False
    bell: bool = True  # ring the terminal bell once when a critical alert trips
    # Rows committed up to this many seconds after their created_at are counted live (gateways that
    # batch commit late); later ones at the next full resynchronisation. Replaces `overlap_seconds`.
    max_lateness: float = Field(default=300.0, ge=5, le=86_400)
    # A row dated more than this far ahead of costtop's clock is not counted until its time comes:
    # the data never moves the day, the windows or the watermark.
    clock_skew: float = Field(default=120.0, ge=0, le=86_400)
    # Every read and write waits at most this long (a whole-day read, ten times it): never 0, never hours.
    timeout_seconds: float = Field(default=3.0, ge=0.1, le=600, allow_inf_nan=False)
    # Where `costtop pricing sync` fetches prices: OpenRouter's public models list, or a mirror of it.
    pricing_url: str = "https://openrouter.ai/api/v1/models"
    # Where audit rows wait while Postgres is unreachable (default: the user's state directory).
    audit_spool: str | None = None
    # The gateway's fallback JSONL file (rows Postgres refused, waiting to be drained); a glob allowed,
    # e.g. "/var/lib/gateway/fallback.jsonl*" to count the batches being drained too. Its depth and
    # oldest line are shown in the header; unset: not watched.
    fallback_file: str | None = Field(default=None, min_length=1, max_length=4096)
    # A Redis Cluster (README, "A Redis Cluster"): the URL names any one node, the client finds the rest.
    # A `redis+cluster://` or `rediss+cluster://` URL says the same without this setting.
    cluster: bool = False
    keys: KeyNames = Field(default_factory=KeyNames)
    tables: TableNames = Field(default_factory=TableNames)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    # Keys by binding id, e.g. {kill = "x", quit = "q,ctrl+q"}: `costtop keys` lists the ids.
    keymap: dict[str, str] = Field(default_factory=dict)
    screenshot_dir: str = "."  # where ctrl+s saves the screen as SVG
    theme: str = "costtop-dark"  # a file in themes/ or in the user config dir's costtop/themes/
    # A known gateway's own schema (`litellm`: LiteLLM's "LiteLLM_SpendLogs"), read without mapping columns.
    preset: Literal["litellm"] | None = None
    litellm: LiteLLMSettings = Field(default_factory=LiteLLMSettings)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "overlap_seconds" in data:
            raise ValueError("overlap_seconds is replaced by max_lateness (seconds a row may commit after "
                             "its created_at and still be counted live; default 300)")
        return data

    @model_validator(mode="before")
    @classmethod
    def _wall_reads_only(cls, data: Any) -> Any:
        """The wall implies read-only, whatever else says otherwise (a config's `read_only = false`). Read
        as the field reads it, so a `wall = "yes"` pydantic takes for true cannot give a wall that writes."""
        if not isinstance(data, dict) or data.get("wall") is None:
            return data
        try:
            wall = _BOOL.validate_python(data["wall"])
        except ValidationError:
            return data  # the field's own check says why, in one line
        return {**data, "read_only": True} if wall else data

    @model_validator(mode="before")
    @classmethod
    def _preset_table(cls, data: Any) -> Any:
        """A preset names the gateway's table, unless the user named one: `tables.calls` set in the file
        wins, so a renamed or copied spend log can still be read with the preset's columns."""
        if not isinstance(data, dict) or data.get("preset") not in PRESET_TABLES:
            return data
        tables = data.get("tables")
        if isinstance(tables, TableNames):  # what was set on it, so that a default name is not taken as chosen
            tables = tables.model_dump(by_alias=True, exclude_unset=True)
        tables = dict(tables) if isinstance(tables, dict) else {}
        tables.setdefault("calls", PRESET_TABLES[data["preset"]])
        return {**data, "tables": tables, "thresholds": cls._preset_thresholds(data)}

    @staticmethod
    def _preset_thresholds(data: dict[str, Any]) -> Any:
        """LiteLLM writes its spend log in batches, rows stamped with the call's start: a silence limit
        below its delay would call every batch gap a stopped gateway. A limit the user set is kept."""
        thresholds = data.get("thresholds")
        if isinstance(thresholds, Thresholds):
            if "silence_seconds" in thresholds.model_fields_set:
                return thresholds
            return thresholds.model_copy(update={"silence_seconds": LITELLM_SILENCE_SECONDS})
        thresholds = dict(thresholds) if isinstance(thresholds, dict) else {}
        thresholds.setdefault("silence_seconds", LITELLM_SILENCE_SECONDS)
        return thresholds

    @model_validator(mode="after")
    def _cluster_url(self) -> Settings:
        """A cluster has database 0 only and is reached over TCP: said at start, not at the first read."""
        first, seeds = cluster_seeds(self.redis_url)
        if seeds and not self.redis_cluster:
            raise ValueError("a Redis URL names several nodes only for a cluster: redis+cluster:// or cluster = true")
        if self.redis_cluster:
            from redis.connection import parse_url

            parsed = parse_url(first)
            if urlsplit(self.redis_url).scheme == "unix":
                raise ValueError("a Redis Cluster is reached over TCP: redis:// or rediss://, not unix://")
            if int(parsed.get("db") or 0) != 0:
                raise ValueError(f"a Redis Cluster has database 0 only (the URL names {parsed['db']})")
        return self

    @property
    def redis_cluster(self) -> bool:
        """Whether Redis is a cluster: `cluster = true`, or a `+cluster` URL scheme."""
        return self.cluster or urlsplit(self.redis_url).scheme in CLUSTER_SCHEMES

    @field_validator("refresh")
    @classmethod
    def _refresh_bounds(cls, value: float) -> float:
        if not 0.1 <= value <= 3600:
            raise ValueError("refresh must be between 0.1 and 3600 seconds")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        first, _ = cluster_seeds(value)  # several nodes, comma-separated: a cluster's (checked below)
        scheme = _port_checked(first).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("redis URL must start with redis://, rediss://, unix://, redis+cluster:// or "
                             f"rediss+cluster:// (got {urlsplit(value).scheme or 'no'} scheme)")
        from redis.connection import parse_url  # the client's own reading of it: a bad ?db= or option

        parse_url(first)
        return value

    @field_validator("database_url", "audit_database_url")
    @classmethod
    def _pg_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = _port_checked(value).scheme
        if scheme not in ("postgres", "postgresql"):
            raise ValueError(f"database URL must start with postgresql:// (got {scheme or 'no'} scheme)")
        return value


CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def plain_redis_url(url: str) -> str:
    """The URL as the Redis client reads it: `redis+cluster://` is `redis://` (TLS: `rediss://`)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.removesuffix('+cluster')}{sep}{rest}" if scheme in CLUSTER_SCHEMES else url


def cluster_seeds(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster's URL may name several nodes, `redis+cluster://h1:7000,h2:7000/0`: a client starting
    while the first is down (the primary that just failed) asks the next. The URL of the first node as
    the client reads it, and the host and port of the others (port 6379 where none is given)."""
    plain = plain_redis_url(url)
    scheme, sep, rest = plain.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hosts = netloc.rpartition("@")
    first, *others = hosts.split(",")
    seeds = []
    for other in others:
        host, colon, port = other.rpartition(":")
        if not colon or host.endswith(":"):  # no port, or a bare IPv6 address
            host, port = other, "6379"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad node {other[:40]!r} in the cluster's URL (host:port, comma-separated)")
        seeds.append((host.strip("[]"), int(port)))
    return f"{scheme}{sep}{userinfo}{at}{first}{tail}", seeds


def _port_checked(url: str) -> SplitResult:
    """The URL's parts, its port read now: a bad one is said at start, under the setting's name, not at the
    first connection as a bare "Port out of range"."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- reading it is the check
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return parts


ENV_PREFIX = "COSTTOP_"
ENV_KEYS = {"redis_url": str, "database_url": str, "refresh": float, "read_only": bool, "pricing_url": str,
            "theme": str, "wall": bool, "preset": str, "fallback_file": str, "audit_database_url": str}


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("costtop")) / "config.toml"


ENV_KEYS["cluster"] = bool  # COSTTOP_CLUSTER (README, "A Redis Cluster")


def _env_bool(name: str, raw: str) -> bool:
    """A yes/no from the environment. Anything else is refused: a mistyped COSTTOP_READ_ONLY=ture must
    not quietly give a session that can write."""
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: {ENV_PREFIX}{name.upper()} must be true or false (got {raw.strip()[:20]!r})")


def load_settings(cli: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                  config_path: Path | None = None) -> Settings:
    """Merge the layers; raise ConfigError with one line on anything bad."""
    env = dict(os.environ) if env is None else env
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    path = config_path or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    explicit = path is not None
    path = path or default_config_path()
    merged: dict[str, Any] = {}
    if path.exists():
        try:
            merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")
    for name, kind in ENV_KEYS.items():
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        merged[name] = _env_bool(name, raw) if kind is bool else raw
    merged.update(cli)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
