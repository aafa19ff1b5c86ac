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

    __slots__ = ("_agent_switches", "_targets", "budgets", "by_key", "global_kill", "kills", "redis", "switches")

    def __init__(self, redis: RedisState | None) -> None:
        self.redis = redis
        self.switches: tuple[SwitchRecord, ...] = tuple(redis.switches) if redis is not None else ()
        self.budgets: dict[str, Decimal | Unparsed] = redis.budgets if redis is not None else {}
        self.by_key: dict[tuple[str, str, str], SwitchRecord] = {
            (s.kind, s.scope, s.target): s for s in self.switches}
        self.kills: dict[tuple[str, str | None], SwitchRecord] = {
            (s.scope, s.target): s for s in self.switches if s.kind is SwitchKind.KILL}
        self.global_kill = self.by_key.get((SwitchKind.KILL, "global", "*"))
        self._targets: dict[str, set[str]] = {}
        self._agent_switches: dict[tuple[str, str], SwitchRecord] | None = None

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
        """The targets of the switches of one scope (they have a row even without calls). Made once per
        view: with 50,000 switches a snapshot must not walk them again for every use."""
        found = self._targets.get(scope)
        if found is None:
            found = self._targets[scope] = {s.target for s in self.switches if s.scope == scope}
        return found

    def agent_switches(self) -> dict[tuple[str, str], SwitchRecord]:
        """(kind, agent) -> its own switch."""
        if self._agent_switches is None:
            self._agent_switches = {(kind, target): s for (kind, scope, target), s in self.by_key.items()
                                    if scope == "agent"}
        return self._agent_switches

    def agents_changed_since(self, before: RedisView | None) -> set[str] | None:
        """The agents whose row may read differently here than under `before`: those whose own budget or
        switch differs. None: every agent (Redis became known or unknown, or the global kill changed).
        A new read of 100,000 budgets that says what the last one said changes no row."""
        if before is None or before.known != self.known or before.global_kill != self.global_kill:
            return None
        if before.redis is self.redis:
            return set()
        changed: set[str] = set()
        old, new = before.budgets, self.budgets
        if old is not new and old != new:
            changed.update(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))
        old_switches, new_switches = before.agent_switches(), self.agent_switches()
        if old_switches != new_switches:
            changed.update(key[1] for key in old_switches.keys() | new_switches.keys()
                           if old_switches.get(key) != new_switches.get(key))
        return changed

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

