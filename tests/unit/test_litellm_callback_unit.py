"""The unit half of tests/integration/test_litellm_callback.py: the tests that need no server and no app."""

from __future__ import annotations

from typing import Any

from litellm.proxy._types import UserAPIKeyAuth

from costtop.config import LiteLLMSettings
from costtop.integrations.litellm import logged_agent, request_agent

LITE = LiteLLMSettings()


def full_request() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "user": "end-user-7",
        "metadata": {
            "agent_id": "agent-meta",
            "spend_logs_metadata": {"agent_id": "agent-sl", "team": "t1"},
            "user_api_key_alias": "alias-key",
            "user_api_key_user_id": "owner-1",
            "user_api_key_end_user_id": "end-user-7",
        },
    }


def test_identity_follows_the_configured_order() -> None:
    data = full_request()
    assert request_agent(data, LITE) == "agent-meta"
    del data["metadata"]["agent_id"]
    assert request_agent(data, LITE) == "agent-sl"
    # JSON text in the body: LiteLLM keeps it as text in the row too (the header's it parses before the hook)
    data["metadata"]["spend_logs_metadata"] = '{"agent_id": "from-body-text"}'
    assert request_agent(data, LITE) == "alias-key"
    data["metadata"]["spend_logs_metadata"] = {"agent_id": ""}  # empty names no one
    assert request_agent(data, LITE) == "alias-key"
    del data["metadata"]["user_api_key_alias"]
    assert request_agent(data, LITE) == "end-user-7"
    del data["metadata"]["user_api_key_end_user_id"]
    # The request's raw `user` is not read: LiteLLM's row names the end user it validated, or none.
    assert request_agent(data, LITE) == "owner-1"
    del data["user"]
    assert request_agent(data, LITE) == "owner-1"
    del data["metadata"]["user_api_key_user_id"]
    assert request_agent(data, LITE) is None


def test_identity_order_and_metadata_key_are_settings() -> None:
    data = full_request()
    assert request_agent(data, LiteLLMSettings(identity=("user", "agent_id"))) == "owner-1"
    assert request_agent(data, LiteLLMSettings(identity=("metadata",), metadata_key="team")) == "t1"
    assert request_agent(data, LiteLLMSettings(identity=("end_user", "key_alias"))) == "end-user-7"


def test_identity_falls_back_to_the_key_before_the_metadata_has_it() -> None:
    key = UserAPIKeyAuth(key_alias="k-alias", user_id="k-owner", end_user_id="k-end")
    assert request_agent({"model": "m"}, LiteLLMSettings(identity=("key_alias",)), key) == "k-alias"
    assert request_agent({"model": "m"}, LiteLLMSettings(identity=("user",)), key) == "k-owner"
    assert request_agent({"model": "m"}, LiteLLMSettings(identity=("end_user",)), key) == "k-end"


def test_logged_agent_reads_the_columns_the_spend_log_gets() -> None:
    """The logging hooks see the call as LiteLLM hands it to get_logging_payload: metadata inside
    litellm_params, the end user beside it. Same agent as the pre-call hook saw."""
    data = full_request()
    kwargs = {"model": "gpt-4o", "litellm_params": {"metadata": data["metadata"],
                                                    "user_api_key_end_user_id": "end-user-7"}}
    assert logged_agent(kwargs, LITE) == request_agent(data, LITE) == "agent-meta"
    kwargs["agent_id"] = "a2a-agent"  # an A2A call: the spend log's agent_id comes from the call itself
    assert logged_agent(kwargs, LITE) == "a2a-agent"
    del kwargs["agent_id"], data["metadata"]["agent_id"], data["metadata"]["spend_logs_metadata"]
    del data["metadata"]["user_api_key_alias"], data["metadata"]["user_api_key_end_user_id"]
    assert logged_agent(kwargs, LITE) == "end-user-7"
