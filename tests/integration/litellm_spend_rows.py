"""Test-only LiteLLM callback: the spend-log rows the proxy would write, as JSON lines in a file.

The test proxy has no database (LiteLLM's Prisma client downloads its engines at run time, impossible
here), so its own spend-log writer never runs. This callback runs LiteLLM's own row building instead:
- a failed or refused request goes through LiteLLM's `_ProxyDBLogger.async_post_call_failure_hook`, the
  hook that writes failure rows, with only its last step (the database writer) swapped for one that
  keeps the payload `get_logging_payload` built;
- a served call's payload is built by `get_logging_payload` with the call's cost as `spend`, as
  DBSpendUpdateWriter.update_database does (LiteLLM's success path adds key/team bookkeeping that needs
  a database and does not change the row).
The test inserts the lines into a "LiteLLM_SpendLogs" built from LiteLLM's migrations.

Loaded by the test proxy's config as `litellm_spend_rows.spend_rows` (the file sits beside the config).
It runs inside the proxy's own virtualenv, so it imports LiteLLM's proxy modules freely.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy.db.db_spend_update_writer import DBSpendUpdateWriter
from litellm.proxy.hooks.proxy_track_cost_callback import _ProxyDBLogger
from litellm.proxy.spend_tracking.spend_tracking_utils import get_logging_payload

ROWS_FILE = os.environ.get("COSTTOP_TEST_SPEND_ROWS", "spend_rows.jsonl")


def _append(payload: dict[str, Any], response_cost: float | None) -> None:
    row = dict(payload)
    row["spend"] = response_cost or 0.0
    with open(ROWS_FILE, "a", encoding="utf-8") as out:
        out.write(json.dumps(row, default=str) + "\n")


class _RowWriter(DBSpendUpdateWriter):
    """LiteLLM's spend writer with the database replaced by the rows file."""

    async def update_database(self, token: str | None, user_id: str | None, end_user_id: str | None,
                              team_id: str | None, org_id: str | None, kwargs: dict | None,
                              completion_response: object, start_time: datetime, end_time: datetime,
                              response_cost: float | None, project_id: str | None = None) -> bool:
        _append(dict(get_logging_payload(kwargs=kwargs, response_obj=completion_response, start_time=start_time,
                                         end_time=end_time)), response_cost)
        return True


class SpendRows(CustomLogger):
    """Failure rows by LiteLLM's own failure hook, success rows by its payload builder."""

    def __init__(self) -> None:
        super().__init__()
        self._writer = _RowWriter()
        self._failures = _ProxyDBLogger(spend_writer=lambda: self._writer)

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> None:
        await self._failures.async_post_call_failure_hook(request_data, original_exception, user_api_key_dict,
                                                          traceback_str)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: datetime,
                                      end_time: datetime) -> None:
        await self._writer.update_database(None, None, None, None, None, kwargs, response_obj, start_time,
                                           end_time, kwargs.get("response_cost"))


spend_rows = SpendRows()
