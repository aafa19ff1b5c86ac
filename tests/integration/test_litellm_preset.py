"""`--preset litellm` against LiteLLM's own schema, built from its migration SQL at several releases
(tests/litellm_schema.py), on a real PostgreSQL: every reader's figures equal the rows as LiteLLM wrote
them, read by the rules the preset documents (sources/presets.py)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from costtop.cli import main
from costtop.config import LiteLLMSettings, Settings, TableNames
from costtop.engine.engine import Engine
from costtop.engine.snapshot import Snapshot
from costtop.oneshot import read_once
from costtop.pricing.catalog import Catalog, Price
from costtop.refusals import refusal_message
from costtop.session import Session
from costtop.sources.errors import SourceError, WrongColumnType
from costtop.sources.history import daily_spend, daily_spend_sql
from costtop.sources.postgres import PostgresReader
from costtop.sources.traces import agent_calls, agent_models, agent_traces, trace_steps
from costtop.ui.widgets.usage_tables import shadow_text
from litellm_schema import BASELINE, CUTOFFS, WITH_AGENT, WITH_STATUS, apply_migrations
from test_sources_postgres import NO_REDIS

TABLE = '"LiteLLM_SpendLogs"'
DEFAULTS = LiteLLMSettings()
CUT_IDS = {BASELINE: "baseline", WITH_STATUS: "with-status", WITH_AGENT: "with-agent", None: "newest"}


@dataclass
class Spend:
    """One call as LiteLLM's `get_logging_payload` writes it: the columns it fills, the usage and the
    error inside `metadata`, empty strings for "none"."""

    request_id: str
    start: datetime
    duration_ms: int = 800
    call_type: str = "acompletion"
    model: str = "openai/gpt-4o-2024-08-06"
    model_group: str = "gpt-4o"
    provider: str = "openai"
    spend: float = 0.001
    prompt: int = 100
    completion: int = 20
    cache_hit: str = "False"
    user: str = ""
    end_user: str = ""
    agent_col: str | None = None
    key_alias: str | None = None
    meta_agent: str | None = None
    session: str | None = None
    failed: bool = False
    error_message: str | None = None
    cached: int | None = None
    mcp_tool: str | None = None
    status_in_metadata: bool = True
    error_class: str | None = None  # None: the callback's `Refused` for a marked message, else APIError
    extra: dict[str, object] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        usage: dict[str, object] = {}
        if self.cached is not None:
            usage = {"cache_read_input_tokens": self.cached, "prompt_tokens_details": {"cached_tokens": self.cached}}
        meta: dict[str, object] = {
            "user_api_key_alias": self.key_alias, "user_api_key_user_id": self.user or None,
            "spend_logs_metadata": {"agent_id": self.meta_agent} if self.meta_agent is not None else None,
            "additional_usage_values": usage,
            "error_information": ({"error_code": "429" if self.error_message else "500",
                                   "error_class": self.error_class or ("Refused" if self.refusal() else "APIError"),
                                   "error_message": self.error_message or "upstream failed"}
                                  if self.failed else None),
        }
        if self.status_in_metadata:
            meta["status"] = "failure" if self.failed else "success"
        return meta

    def values(self, columns: set[str]) -> dict[str, object]:
        start = self.start.astimezone(UTC).replace(tzinfo=None)  # timestamp(3) without time zone, in UTC
        start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        out: dict[str, object] = {
            "request_id": self.request_id, "call_type": self.call_type, "api_key": "88dc28d0f030c55ed4ab77ed8faf",
            "spend": self.spend, "total_tokens": self.prompt + self.completion, "prompt_tokens": self.prompt,
            "completion_tokens": self.completion, "startTime": start,
            "endTime": start + timedelta(milliseconds=self.duration_ms), "model": self.model,
            "model_group": self.model_group, "custom_llm_provider": self.provider, "user": self.user,
            "metadata": json.dumps(self.metadata()), "cache_hit": self.cache_hit, "end_user": self.end_user,
            "agent_id": self.agent_col, "session_id": self.session,
            "status": "failure" if self.failed else "success", "request_duration_ms": self.duration_ms,
            "mcp_namespaced_tool_name": self.mcp_tool, **self.extra,
        }
        return {k: v for k, v in out.items() if k in columns}

    # What the preset's rules make of it, written out plainly.
    def agent(self, columns: set[str], options: LiteLLMSettings = DEFAULTS) -> str | None:
        meta = self.metadata()["spend_logs_metadata"]
        found = {"agent_id": self.agent_col if "agent_id" in columns else None,
                 "metadata": meta.get(options.metadata_key) if isinstance(meta, dict) else None,
                 "key_alias": self.key_alias, "end_user": self.end_user, "user": self.user}
        return next((found[s] for s in options.identity if found[s]), None)

    def refusal(self) -> str | None:
        for kind in ("killed", "throttled"):
            if self.error_message and f"[costtop switch: {kind}]" in self.error_message:
                return kind
        return None

    def status(self) -> str:
        if not self.failed:
            return "success"
        refused = self.refusal() if self.error_class in (None, "Refused") else None
        return refused or "error"

    def cost(self) -> Decimal | None:
        if self.spend == 0 and (self.prompt != 0 or self.completion != 0) and self.cache_hit != "True":
            return None
        return Decimal(repr(self.spend))


async def litellm_db(url: str, upto: str | None) -> set[str]:
    """LiteLLM's schema at a cut-off; the spend log's columns."""
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn, upto)
        rows = await conn.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                "'LiteLLM_SpendLogs'")
    finally:
        await conn.close()
    return {r["column_name"] for r in rows}


async def insert(url: str, rows: list[Spend], columns: set[str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for row in rows:
            values = row.values(columns)
            names = list(values)
            marks = [f"${i}::jsonb" if n == "metadata" else f"${i}" for i, n in enumerate(names, start=1)]
            await conn.execute(f"INSERT INTO {TABLE} ({', '.join(chr(34) + n + chr(34) for n in names)}) "
                               f"VALUES ({', '.join(marks)})", *values.values())
    finally:
        await conn.close()


def fleet(rng: random.Random, start: datetime, end: datetime, n: int, prefix: str) -> list[Spend]:
    """Calls with every kind of identity, outcome and price, between `start` and `end`."""
    span = (end - start).total_seconds()
    rows = []
    for i in range(n):
        failed = rng.random() < 0.25
        refusal = rng.choice([None, None, refusal_message("killed", "kill:agent:x", "manual:adam:loop"),
                              refusal_message("throttled", "throttle:agent:x")]) if failed else None
        model = rng.choice([("openai/gpt-4o-2024-08-06", "gpt-4o", "openai"), ("claude-sonnet-4", "", "anthropic"),
                            ("my-local-llama", "llama-internal", "ollama")])
        spend = 0.0 if failed or rng.random() < 0.2 else round(rng.uniform(0.0001, 0.05), 6)
        rows.append(Spend(
            request_id=f"{prefix}-{i}", start=start + timedelta(seconds=rng.uniform(0, span)),
            duration_ms=rng.randrange(50, 20_000), model=model[0], model_group=model[1], provider=model[2],
            spend=spend, prompt=0 if failed else rng.randrange(1, 5000),
            completion=0 if failed else rng.randrange(0, 900),
            cache_hit=rng.choice(["False", "False", "True", ""]),
            user=rng.choice(["", "user-1"]), end_user=rng.choice(["", "", "customer-9"]),
            agent_col=rng.choice([None, "", "planner"]), key_alias=rng.choice([None, "", "key-support"]),
            meta_agent=rng.choice([None, "", "researcher"]), session=rng.choice([None, "sess-a", "sess-b"]),
            failed=failed, error_message=refusal, cached=rng.choice([None, 0, 37]),
            status_in_metadata=rng.random() < 0.5,
        ))
    return rows


def expected(rows: list[Spend], columns: set[str], start: datetime, end: datetime,
             options: LiteLLMSettings = DEFAULTS) -> dict[str | None, tuple[Decimal, int, int]]:
    out: dict[str | None, tuple[Decimal, int, int]] = {}
    for r in rows:
        if not start <= r.start.replace(microsecond=r.start.microsecond // 1000 * 1000) < end:
            continue
        spend, calls, errors = out.get(r.agent(columns, options), (Decimal(0), 0, 0))
        cost = r.cost()
        out[r.agent(columns, options)] = (spend + (cost or 0), calls + 1, errors + (r.status() == "error"))
    return out


def by_agent(snap: Snapshot) -> dict[str | None, tuple[Decimal, int, int]]:
    return {a.agent_id: (a.spend_today or Decimal(0), a.calls_today or 0, a.errors_today or 0) for a in snap.agents}


def preset(url: str, **kw: object) -> Settings:
    return Settings(database_url=url, preset="litellm", **kw)


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


# -- configuration ---------------------------------------------------------------------------------------


# -- expressions on any table ----------------------------------------------------------------------------


async def test_an_expression_column_is_read_compared_and_typed_from_the_server(pg, db_url) -> None:
    """tables.expressions on the contract's table: the agent is `coalesce(agent_id, user_id)`-like; its
    type comes from preparing the expression, and the drill-down's match compares on it."""
    now = datetime.now(UTC)
    await pg.execute("INSERT INTO tool_calls (agent_id, tool_name, latency_ms, user_id, cost_usd, created_at) "
                     "VALUES ('', 'llm', 5, 'u-7', 0.5, $1), ('a', 'llm', 7, NULL, 0.25, $1)",
                     now - timedelta(seconds=2))
    settings = Settings(database_url=db_url, tables=TableNames(expressions={
        "agent_id": "coalesce(nullif(agent_id, ''), user_id)", "latency_ms": "latency_ms * 2.5"}))
    reader = PostgresReader(settings)
    try:
        await reader.connect()
        assert reader.types["latency_ms"].data_type == "numeric"
        assert reader.types["agent_id"].data_type == "text"
        calls = await agent_calls(reader, "u-7")
        assert [(c.agent_id, c.latency_ms, c.cost_usd) for c in calls] == [("u-7", 13, Decimal("0.5"))]
        base = await reader.baseline(now)
        assert {d.agent_id: d.cost for d in base.days} == {"u-7": Decimal("0.5"), "a": Decimal("0.25")}
    finally:
        await reader.close()


@pytest.mark.parametrize("sql", ["no_such_column || 'x'", "agent_id +", "lower(42)"])
async def test_a_bad_expression_is_refused_at_start_in_one_line_naming_it(db_url, sql: str) -> None:
    reader = PostgresReader(Settings(database_url=db_url, tables=TableNames(expressions={"agent_id": sql})))
    with pytest.raises(WrongColumnType) as caught:
        await reader.connect()
    message = str(caught.value)
    assert "\n" not in message and "expression for agent_id" in message and "tables.expressions.agent_id" in message
    assert reader.pool is None


async def test_an_expression_of_a_type_costtop_cannot_read_is_refused(db_url) -> None:
    reader = PostgresReader(Settings(database_url=db_url, tables=TableNames(expressions={"cost_usd": "metadata"})))
    with pytest.raises(WrongColumnType, match=r"cost_usd \(an expression\) is jsonb"):
        await reader.connect()


# -- the preset's rules, row by row ------------------------------------------------------------------------


RULE_ROWS = [
    # identity, in the default order
    (Spend("r1", datetime.now(UTC), agent_col="planner", meta_agent="m", key_alias="k", user="u"), "planner"),
    (Spend("r2", datetime.now(UTC), agent_col="", meta_agent="m", key_alias="k", user="u"), "m"),
    (Spend("r3", datetime.now(UTC), meta_agent="", key_alias="k", end_user="e", user="u"), "k"),
    (Spend("r4", datetime.now(UTC), end_user="e", user="u"), "e"),
    (Spend("r5", datetime.now(UTC), user="u"), "u"),
    (Spend("r6", datetime.now(UTC)), None),
]


async def loaded_engine(url: str, now: datetime, catalog: Catalog | None = None) -> Engine:
    """An engine loaded with the preset reader's baseline at `now` (with `catalog`'s prices if given)."""
    reader = PostgresReader(preset(url))
    try:
        await reader.connect()
        assert reader.columns is not None
        engine = Engine(columns=reader.columns.present)
        if catalog is not None:
            engine.use_catalog(catalog)
        engine.load(await reader.baseline(now))
        return engine
    finally:
        await reader.close()


async def read_rules(url: str, rows: list[Spend], **kw: object) -> dict[str, dict[str, object]]:
    columns = await litellm_db(url, None)
    await insert(url, rows, columns)
    reader = PostgresReader(preset(url, **kw))
    try:
        await reader.connect()
        got = await reader.fetch_rows(f"SELECT {reader.select_list_sql()}, "
                                      f"{reader.optional('error_code')} AS error_code, "
                                      f"{reader.optional('user_id')} AS user_id FROM {reader.table_sql()}")
    finally:
        await reader.close()
    return {r["key"]: dict(r) for r in got}


async def test_the_agent_is_the_first_non_empty_identity_source(empty_db_url) -> None:
    got = await read_rules(empty_db_url, [row for row, _ in RULE_ROWS])
    assert {k: v["agent_id"] for k, v in got.items()} == {row.request_id: agent for row, agent in RULE_ROWS}


async def test_the_identity_order_and_metadata_key_come_from_the_settings(empty_db_url) -> None:
    rows = [Spend("a", datetime.now(UTC), agent_col="col", key_alias="alias", user="u",
                  extra={"metadata": json.dumps({"spend_logs_metadata": {"bot": "b-1"},
                                                 "user_api_key_alias": "alias"})}),
            Spend("b", datetime.now(UTC), agent_col="col", user="u")]
    options = LiteLLMSettings(identity=("metadata", "user"), metadata_key="bot")
    got = await read_rules(empty_db_url, rows, litellm=options)
    assert (got["a"]["agent_id"], got["b"]["agent_id"]) == ("b-1", "u")


async def test_model_provider_tool_latency_tokens_and_trace(empty_db_url) -> None:
    t = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    rows = [Spend("grouped", t, model="azure/gpt-4o-deploy-eu", model_group="gpt-4o", provider="azure",
                  duration_ms=1234, cached=37, session="s-1", user="u-3"),
            Spend("ungrouped", t, model="claude-sonnet-4", model_group="", provider="", cached=None),
            Spend("mcp", t, call_type="call_mcp_tool", model="", model_group="", mcp_tool="github-search_issues",
                  spend=0, prompt=0, completion=0)]
    got = await read_rules(empty_db_url, rows)
    g = got["grouped"]
    assert (g["model"], g["provider"], g["tool_name"], g["latency_ms"]) == ("gpt-4o", "azure", "acompletion", 1234)
    assert (g["tokens_in"], g["tokens_out"], g["cached_tokens"]) == (100, 20, 37)
    assert (g["trace_id"], g["user_id"]) == ("s-1", "u-3")
    assert g["created_at"] == t.replace(microsecond=250_000)
    u = got["ungrouped"]
    assert (u["model"], u["provider"], u["cached_tokens"], u["user_id"]) == ("claude-sonnet-4", None, None, None)
    assert (got["mcp"]["tool_name"], got["mcp"]["model"]) == ("github-search_issues", None)


async def test_status_refusals_and_error_codes(empty_db_url) -> None:
    t = datetime.now(UTC)
    rows = [Spend("ok", t), Spend("failed", t, failed=True, spend=0, prompt=0, completion=0),
            Spend("killed", t, failed=True, spend=0, prompt=0, completion=0,
                  error_message="litellm.BadRequestError: " + refusal_message("killed", "kill:agent:a", "manual:x:y")),
            Spend("throttled", t, failed=True, spend=0, prompt=0, completion=0,
                  error_message=refusal_message("throttled", "throttle:agent:a"))]
    got = await read_rules(empty_db_url, rows)
    assert {k: v["status"] for k, v in got.items()} == {"ok": "success", "failed": "error", "killed": "killed",
                                                        "throttled": "throttled"}
    assert (got["ok"]["error_code"], got["failed"]["error_code"], got["killed"]["error_code"]) == (None, "500", "429")


async def test_spend_zero_with_tokens_is_unpriced_and_a_cache_hit_is_a_true_zero(empty_db_url) -> None:
    t = datetime.now(UTC)
    rows = [Spend("priced", t, spend=0.0125), Spend("unpriced", t, spend=0),
            Spend("cache", t, spend=0, cache_hit="True"),
            Spend("empty", t, spend=0, prompt=0, completion=0)]
    got = await read_rules(empty_db_url, rows)
    assert {k: v["cost_usd"] for k, v in got.items()} == {"priced": Decimal("0.0125"), "unpriced": None,
                                                          "cache": Decimal(0), "empty": Decimal(0)}


async def test_an_unpriced_model_shows_no_price_never_a_true_zero(empty_db_url) -> None:
    """spend 0 with tokens: a model the catalog prices gets an estimate; one it cannot is `no price`, and
    its average cost unknown; neither adds a $0 recorded cost."""
    now = datetime.now(UTC)
    t = now - timedelta(seconds=30)
    rows = [Spend(f"k{i}", t, model="my-local-llama", model_group="", provider="ollama", spend=0) for i in range(3)]
    rows += [Spend(f"g{i}", t, model="openai/gpt-4o", model_group="gpt-4o", spend=0, prompt=1000, completion=100)
             for i in range(2)]
    columns = await litellm_db(empty_db_url, None)
    await insert(empty_db_url, rows, columns)
    prices = {"openai/gpt-4o": Price(Decimal("0.0000025"), Decimal("0.00001"))}
    engine = await loaded_engine(empty_db_url, now, Catalog(prices, "test", "2026-01-01"))
    models = {m.model: m for m in engine.snapshot(now, NO_REDIS).models}
    llama, gpt = models["my-local-llama"], models["gpt-4o"]
    assert (llama.priced_calls, llama.flat_calls, llama.shadow_cost, llama.average_cost) == (0, 3, None, None)
    assert shadow_text(llama).plain == "no price"
    assert gpt.flat_calls == 2 and gpt.shadow_cost == Decimal("0.0070")
    assert shadow_text(gpt).plain.startswith("~")


# -- every reader at several of LiteLLM's releases ---------------------------------------------------------


@pytest.mark.parametrize("upto", [None, WITH_AGENT, WITH_STATUS, BASELINE], ids=lambda u: CUT_IDS[u])
async def test_every_reader_equals_the_rows_litellm_wrote(empty_db_url, redis, redis_url, upto: str | None) -> None:
    """Live window and day, the resync after live reads, the week's history, the day report, the
    drill-down and the one-shot snapshot, on LiteLLM's schema as that release left it."""
    columns = await litellm_db(empty_db_url, upto)
    rng = random.Random(15)
    now = datetime.now(UTC)
    today = max(day_start(now), now - timedelta(hours=3))
    yesterday = day_start(now) - timedelta(days=1)
    rows = fleet(rng, today, now - timedelta(seconds=1), 150, "t") + fleet(rng, yesterday, day_start(now), 60, "y")
    await insert(empty_db_url, rows, columns)
    settings = preset(empty_db_url, redis_url=redis_url)
    reader = PostgresReader(settings)
    try:
        await reader.connect()
        assert reader.columns is not None and not reader.id_mode
        assert reader.columns.has("trace_id") == ("session_id" in columns)
        engine = Engine(columns=reader.columns.present)
        engine.load(await reader.baseline(now))
        # Live: more calls after the baseline, read incrementally.
        later = fleet(rng, now - timedelta(seconds=1), now, 20, "live")
        await insert(empty_db_url, later, columns)
        read_at = datetime.now(UTC)
        reader.clock = lambda: read_at
        engine.ingest(await reader.new_rows())
        rows += later
        want = expected(rows, columns, day_start(read_at), read_at + timedelta(seconds=1))
        assert by_agent(engine.snapshot(read_at, NO_REDIS)) == want
        killed = [r for r in rows if r.status() in ("killed", "throttled")]
        assert killed and all(r.failed for r in killed)
        # The week behind the day anomaly: yesterday's spend per agent.
        history = await daily_spend(reader, day_start(read_at).strftime("%Y-%m-%d"))
        got_history = {agent: cost for agent, back, cost in history.sums if back == 6}
        want_history = {a: s for a, (s, _, _) in expected(rows, columns, yesterday, day_start(now)).items()}
        assert got_history == want_history
        # The drill-down: an agent's traces, one trace's steps, its latest calls and models.
        agent = max((a for a in want if a is not None), key=lambda a: want[a][1])
        mine = [r for r in rows if r.agent(columns) == agent]
        calls = await agent_calls(reader, agent, limit=500)
        assert len(calls) == len(mine) and {c.agent_id for c in calls} == {agent}
        shares = await agent_models(reader, agent, day_start(read_at) - timedelta(days=2))
        assert sum(s.calls for s in shares) == len(mine)
        if reader.columns.has("trace_id"):
            traces = await agent_traces(reader, agent, day_start(read_at) - timedelta(days=2))
            want_traces = {}
            for r in mine:
                if r.session is not None:
                    want_traces[r.session] = want_traces.get(r.session, 0) + 1
            assert {t.trace_id: t.steps for t in traces} == want_traces
            steps = await trace_steps(reader, "sess-a")
            assert len(steps) == sum(r.session == "sess-a" for r in rows)
    finally:
        await reader.close()
    # `costtop report` for today and `costtop snapshot`.
    day = day_start(read_at).strftime("%Y-%m-%d")
    report = await Session.live(settings).read_day(day)
    assert {u.name: (u.spend, u.calls, u.errors) for u in report.agents} == want
    snap = await read_once(settings, read_at)
    assert by_agent(snap) == want


async def test_refused_calls_are_not_errors_in_the_error_rates(empty_db_url) -> None:
    """A call a costtop switch refused is `killed` or `throttled`: out of every error rate, so killing an
    agent never raises an error-rate alert on it."""
    columns = await litellm_db(empty_db_url, None)
    now = datetime.now(UTC)
    t = now - timedelta(seconds=20)
    kill = "litellm.BadRequestError: " + refusal_message("killed", "kill:agent:a", "manual:ops:loop")
    rows = [Spend(f"k{i}", t, agent_col="a", failed=True, spend=0, prompt=0, completion=0, error_message=kill)
            for i in range(6)]
    rows += [Spend("th", t, agent_col="a", failed=True, spend=0, prompt=0, completion=0,
                   error_message=refusal_message("throttled", "throttle:agent:a"))]
    rows += [Spend("e", t, agent_col="a", failed=True, spend=0, prompt=0, completion=0)]
    rows += [Spend(f"s{i}", t, agent_col="a") for i in range(2)]
    await insert(empty_db_url, rows, columns)
    snap = (await loaded_engine(empty_db_url, now)).snapshot(now, NO_REDIS)
    (agent,) = snap.agents
    assert (agent.calls_5m, agent.errors_5m, agent.errors_today) == (10, 1, 1)
    assert snap.header.error_rate_1h == 0.1
    assert not [a for a in snap.alerts if "error" in a.rule]


@pytest.mark.parametrize("upto", CUTOFFS, ids=lambda u: CUT_IDS[u])
async def test_the_preset_connects_at_every_release(empty_db_url, upto: str | None) -> None:
    columns = await litellm_db(empty_db_url, upto)
    reader = PostgresReader(preset(empty_db_url))
    try:
        await reader.connect()
        assert reader.columns is not None
        wanted = {"agent_id", "tool_name", "latency_ms", "created_at", "cost_usd", "status", "model"}
        assert wanted <= reader.columns.present
        assert reader.tables.column("created_at") == "startTime"
        assert ("request_duration_ms" in reader.tables.expressions["latency_ms"]) == ("request_duration_ms" in columns)
    finally:
        await reader.close()


async def test_the_preset_without_litellms_table_says_so(db_url) -> None:
    with pytest.raises(SourceError, match=r"LiteLLM_SpendLogs not found \(LiteLLM's migrations create it"):
        await PostgresReader(preset(db_url)).connect()


def test_db_init_under_the_preset_leaves_litellms_table_to_litellm(empty_db_url, capsys) -> None:
    assert main(["db", "init", "--preset", "litellm", "--database-url", empty_db_url]) == 0
    out = capsys.readouterr().out
    assert "LiteLLM_SpendLogs: missing, not created" in out


@pytest.mark.parametrize("upto", [BASELINE, None], ids=lambda u: CUT_IDS[u])
async def test_window_reads_use_litellms_start_time_index(empty_db_url, upto: str | None) -> None:
    """Every read is a range on "startTime": the live window and the week's history go through its
    index, whatever the session's time zone (the parameter is converted, never the column)."""
    columns = await litellm_db(empty_db_url, upto)
    now = datetime.now(UTC)
    await insert(empty_db_url, fleet(random.Random(3), now - timedelta(days=3), now, 300, "x"), columns)
    reader = PostgresReader(preset(empty_db_url))
    try:
        await reader.connect()
        window = (f"SELECT {reader.select_list_sql()} FROM {reader.table_sql()} "
                  f"WHERE {reader.since('$1')} AND {reader.since('$2', '<')}")
        async with reader.pool.acquire() as conn:  # type: ignore[union-attr]
            await conn.execute("SET enable_seqscan = off; SET TIME ZONE 'America/New_York'")
            live = f"{window} ORDER BY {reader.raw('created_at')}, {reader.column('id')} LIMIT 100000"
            for sql in (window, live, daily_spend_sql(reader)):
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", now - timedelta(minutes=5), now))
                assert "LiteLLM_SpendLogs_startTime_idx" in plan or (
                    upto is None and "LiteLLM_SpendLogs_startTime_request_id_idx" in plan), plan
            await conn.execute("RESET ALL")
    finally:
        await reader.close()


async def test_rows_litellm_commits_a_minute_late_are_counted_live(empty_db_url) -> None:
    """LiteLLM writes its spend log in batches, each row stamped with the call's start: rows committed
    60 to 90 s after their startTime, after costtop read past it, are counted by the live reads (not
    only at the next resynchronisation) under the default lateness horizon."""
    columns = await litellm_db(empty_db_url, None)
    rng = random.Random(7)
    now = datetime.now(UTC)
    settings = preset(empty_db_url)
    assert settings.max_lateness == 300
    early = fleet(rng, now - timedelta(minutes=10), now - timedelta(seconds=1), 40, "early")
    await insert(empty_db_url, early, columns)
    reader = PostgresReader(settings)
    try:
        await reader.connect()
        assert reader.columns is not None
        engine = Engine(columns=reader.columns.present)
        engine.load(await reader.baseline(now))
        reader.late_check_seconds = 0
        engine.ingest(await reader.new_rows())
        fresh = datetime.now(UTC)
        await insert(empty_db_url, [Spend(f"now{i}", fresh - timedelta(seconds=1), agent_col="batcher", spend=0.5)
                                    for i in range(3)], columns)
        engine.ingest(await reader.new_rows())  # the reads are past the late rows' time now
        late = [Spend(f"late{i}", fresh - timedelta(seconds=rng.uniform(60, 90)), agent_col="batcher", spend=0.25)
                for i in range(6)]
        await insert(empty_db_url, late, columns)
        for _ in range(2):
            engine.ingest(await reader.new_rows())
        at = datetime.now(UTC)
        agents = by_agent(engine.snapshot(at, NO_REDIS))
        assert agents["batcher"] == (Decimal("3.0"), 9, 0)
        quality = reader.read_quality()
        # A minute or so late is how LiteLLM writes: counted, and not noted on screen as late.
        assert quality.late_rows == 0 and quality.missed_rows == 0
        # Later than its usual batch delay (a stuck writer, a very long call): counted, and noted.
        later = [Spend(f"later{i}", datetime.now(UTC) - timedelta(seconds=rng.uniform(150, 200)),
                       agent_col="batcher", spend=0.25) for i in range(2)]
        await insert(empty_db_url, later, columns)
        engine.ingest(await reader.new_rows())
        assert by_agent(engine.snapshot(datetime.now(UTC), NO_REDIS))["batcher"] == (Decimal("3.5"), 11, 0)
        quality = reader.read_quality()
        assert quality.late_rows == 2 and quality.latest_lateness >= 150 and quality.missed_rows == 0
    finally:
        await reader.close()


def test_serve_passes_the_preset_to_each_tabs_costtop(monkeypatch, empty_db_url) -> None:
    """`costtop serve --preset litellm` starts one costtop per browser tab: each reads LiteLLM's table."""
    import costtop.serve

    started: list[str] = []

    class Recorder:
        def __init__(self, command: str, **_: object) -> None:
            started.append(command)

        def serve(self) -> None:
            return None

    monkeypatch.setattr(costtop.serve, "TokenServer", Recorder)
    assert main(["serve", "--preset", "litellm", "--database-url", empty_db_url]) == 0
    assert started and "--preset litellm" in started[0]
