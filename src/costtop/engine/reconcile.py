"""The gateway's counters against the table (seed: llm-cost-flow). A difference above 10 % means
calls are bypassing attribution or rows are stuck in the gateway's fallback file."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from costtop.engine.snapshot import Reconciliation, SpendCheck
from costtop.money import exact
from costtop.sources.numbers import in_range, parse_count
from costtop.sources.records import GatewayCounters, Unparsed

# Below these, a difference is the counters' float drift or a row committed a moment later: noise.
MIN_USD = Decimal("0.05")
MIN_CALLS = 5


def differs(gateway: Decimal, table: Decimal, fraction: float, floor: Decimal) -> bool:
    gap = abs(gateway - table)
    return gap >= floor and gap > exact(fraction) * max(abs(gateway), abs(table))


def reconcile(counters: GatewayCounters, table_spend: Mapping[str, Decimal], table_calls: int,
              fraction: float = 0.10) -> Reconciliation:
    """`table_spend`: each agent's recorded cost today from the rows. A missing counter counts as $0
    when the gateway keeps counters for other agents (that agent's calls bypass it), and is not
    compared at all when it keeps none."""
    checks = []
    keeps_counters = bool(counters.spent)
    # Calls without an agent (a NULL agent_id) have no counter of their own: nothing to compare.
    named = {agent for agent in table_spend if agent is not None}
    for agent in sorted(set(counters.spent) | (named if keeps_counters else set())):
        raw = counters.spent.get(agent, Decimal(0))
        table = table_spend.get(agent, Decimal(0))
        # Out of range is unknown here too, whoever built the counters: `abs(1e999999 - x)` overflows.
        gateway = None if isinstance(raw, Unparsed) or not in_range(raw) else raw
        flagged = gateway is None or differs(gateway, table, fraction, MIN_USD)
        checks.append(SpendCheck(agent, gateway, table, flagged))
    checks.sort(key=lambda c: (not c.flagged, -abs((c.gateway or 0) - c.table), c.agent_id))
    calls = counters.calls
    if isinstance(calls, Decimal):  # never int() of it unchecked: `1e99999999` would take minutes
        calls = parse_count(str(calls))
    gateway_calls = calls if isinstance(calls, int) else None
    calls_flagged = isinstance(calls, Unparsed) or (
        gateway_calls is not None and differs(Decimal(gateway_calls), Decimal(table_calls), fraction,
                                              Decimal(MIN_CALLS)))
    return Reconciliation(counters.day, tuple(checks), gateway_calls, table_calls, calls_flagged)
