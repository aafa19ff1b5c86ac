"""What Redis said at one snapshot, as the row builders look it up: the switches by key, the global
kill, the budgets, and the state each agent, model or provider is in. Built per snapshot; read only."""

from __future__ import annotations

from decimal import Decimal

from costtop.engine.snapshot import AgentState
from costtop.sources.records import RedisNumber, RedisState, SwitchKind, SwitchRecord, Unparsed

UNKNOWN: tuple[AgentState, SwitchRecord | None] = (AgentState.UNKNOWN, None)
OK: tuple[AgentState, SwitchRecord | None] = (AgentState.OK, None)


class RedisView:
    """`redis` None: Redis could not be read, so every switch state and budget is unknown."""

    __slots__ = ("budgets", "by_key", "global_kill", "kills", "redis", "switches")

    def __init__(self, redis: RedisState | None) -> None:
        self.redis = redis
        self.switches: tuple[SwitchRecord, ...] = tuple(redis.switches) if redis is not None else ()
        self.budgets: dict[str, Decimal | Unparsed] = redis.budgets if redis is not None else {}
        self.by_key: dict[tuple[str, str, str], SwitchRecord] = {
            (s.kind, s.scope, s.target): s for s in self.switches}
        self.kills: dict[tuple[str, str | None], SwitchRecord] = {
            (s.scope, s.target): s for s in self.switches if s.kind is SwitchKind.KILL}
        self.global_kill = self.by_key.get((SwitchKind.KILL, "global", "*"))

    @property
    def known(self) -> bool:
        return self.redis is not None

    @property
    def day_budget(self) -> RedisNumber:
        return self.redis.global_day_budget if self.redis is not None else None

    @property
    def month_budget(self) -> RedisNumber:
        return self.redis.global_month_budget if self.redis is not None else None

    def targets(self, scope: str) -> set[str]:
        """The targets of the switches of one scope (they have a row even without calls)."""
        return {s.target for s in self.switches if s.scope == scope}

    def agent(self, name: str) -> tuple[AgentState, SwitchRecord | None]:
        """An agent's state: killed (by its own kill or the global one), throttled, or running."""
        if self.redis is None:
            return UNKNOWN
        kill = self.by_key.get((SwitchKind.KILL, "agent", name)) or self.global_kill
        if kill:
            return AgentState.KILLED, kill
        throttle = self.by_key.get((SwitchKind.THROTTLE, "agent", name))
        if throttle:
            return AgentState.THROTTLED, throttle
        return OK

    def switched(self, scope: str, name: str | None) -> tuple[AgentState, SwitchRecord | None]:
        """A model's or provider's state: killed (by its own kill or the global one) or running."""
        if self.redis is None:
            return UNKNOWN
        kill = self.kills.get((scope, name)) or self.global_kill
        return (AgentState.KILLED, kill) if kill else OK

