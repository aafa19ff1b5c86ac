"""The unit half of tests/integration/test_litellm_hostile.py: the tests that need no server and no app."""

from __future__ import annotations

from costtop.config import LiteLLMSettings
from costtop.integrations.litellm import logged_agent, request_agent


def test_with_litellms_end_user_tracking_off_the_callback_skips_the_end_user(monkeypatch) -> None:
    """`litellm_settings: disable_end_user_cost_tracking: true` makes LiteLLM write `end_user` '' in every row
    (spend_tracking_utils.get_logging_payload), so the screen names the key owner; the callback checked the
    end user's kill key instead, one no screen shows."""
    import litellm

    data = {"model": "m", "user": "customer-9",
            "metadata": {"user_api_key_end_user_id": "customer-9", "user_api_key_user_id": "owner"}}
    kwargs = {"litellm_params": {"metadata": dict(data["metadata"]), "user_api_key_end_user_id": "customer-9"}}
    lite = LiteLLMSettings()
    assert request_agent(data, lite) == logged_agent(kwargs, lite) == "customer-9"
    monkeypatch.setattr(litellm, "disable_end_user_cost_tracking", True)
    assert request_agent(data, lite) == logged_agent(kwargs, lite) == "owner"
