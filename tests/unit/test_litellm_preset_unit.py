"""The unit half of tests/integration/test_litellm_preset.py: the tests that need no server and no app."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from costtop.cli import build_parser
from costtop.config import ConfigError, IdentitySource, LiteLLMSettings, Settings, TableNames, load_settings
from costtop.sources.presets import IDENTITY_SQL, identity_sql


def test_the_preset_names_litellms_table_unless_the_user_named_one(tmp_path: Path) -> None:
    assert Settings().tables.calls == "tool_calls"
    assert Settings(preset="litellm").tables.calls == "LiteLLM_SpendLogs"
    chosen = Settings(preset="litellm", tables=TableNames(expressions={"tool_name": "call_type"}))
    assert (chosen.tables.calls, chosen.tables.expressions) == ("LiteLLM_SpendLogs", {"tool_name": "call_type"})
    assert Settings(preset="litellm", tables=TableNames(calls="mine")).tables.calls == "mine"
    config = tmp_path / "c.toml"
    config.write_text("")
    assert load_settings({}, env={"COSTTOP_PRESET": "litellm"}, config_path=config).tables.calls == "LiteLLM_SpendLogs"
    config.write_text('preset = "litellm"\n[tables]\ncalls = "spend_copy"\n')
    assert load_settings({}, env={}, config_path=config).tables.calls == "spend_copy"
    config.write_text('preset = "litellm"\n[litellm]\nidentity = ["key_alias", "user"]\n')
    settings = load_settings({}, env={}, config_path=config)
    assert (settings.tables.calls, settings.litellm.identity) == ("LiteLLM_SpendLogs", ("key_alias", "user"))
    with pytest.raises(ConfigError, match="preset"):
        load_settings({"preset": "portkey"}, env={})


def test_the_cli_takes_preset_on_the_app_and_its_commands() -> None:
    parser = build_parser()
    assert parser.parse_args(["--preset", "litellm"]).preset == "litellm"
    assert parser.parse_args(["snapshot", "--preset", "litellm"]).preset == "litellm"
    assert parser.parse_args(["report", "--day", "2026-01-01", "--preset", "litellm"]).preset == "litellm"
    with pytest.raises(SystemExit):
        parser.parse_args(["--preset", "nope"])


def test_created_at_cannot_be_an_expression_and_names_are_the_contracts() -> None:
    with pytest.raises(ValueError, match="created_at must be a column"):
        TableNames(expressions={"created_at": "now()"})
    with pytest.raises(ValueError, match="not one of costtop's columns"):
        TableNames(expressions={"agent": "x"})
    assert TableNames(expressions={"agent_id": "coalesce(a, b)"}).expression("agent_id") == "coalesce(a, b)"


def test_identity_sources_are_the_configs_names_in_its_order() -> None:
    """The callback (integrations/litellm.py) walks config.IdentitySource: the reader knows each name."""
    assert tuple(IDENTITY_SQL) == get_args(IdentitySource)
    every = {"agent_id", "metadata", "end_user", "user"}
    order = identity_sql(every, LiteLLMSettings())
    assert order is not None
    spots = [order.index(s) for s in ('nullif("agent_id"', "'spend_logs_metadata'", "'user_api_key_alias'",
                                      'nullif("end_user"', 'nullif("user"')]
    assert spots == sorted(spots)
    # A source whose column the table lacks is skipped; none at all is no agent.
    assert '"agent_id"' not in (identity_sql(every - {"agent_id"}, LiteLLMSettings()) or "")
    assert identity_sql(set(), LiteLLMSettings(identity=("agent_id",))) is None
    custom = identity_sql(every, LiteLLMSettings(identity=("user", "metadata"), metadata_key="bot.name"))
    bot = "\"metadata\"->'spend_logs_metadata'->'bot.name'"
    assert custom == (f"coalesce(nullif(\"user\", ''), nullif((CASE WHEN jsonb_typeof({bot}) = 'string' "
                      f"THEN {bot} #>> '{{}}' END), ''))")
