"""Is the gateway doing what the screen assumes? Kills honoured, rows still written (issue 16).

A kill switch is only a request: a gateway that does not check it keeps spending while the screen says
"killed". Every call costtop reads is held against the kill switches that were on when it *started*
(`created_at`: LiteLLM stamps a row with its call's start and commits it up to a minute later, so a
late row of a call begun before the kill is not a violation). A call refused by a switch (status
`killed` or `throttled`) is the gateway obeying. A call that started more than `kill_grace_seconds`
after the switch was set, and was not refused, is a violation.

When was a switch set? Redis does not say. costtop knows the time it wrote a switch itself (its one
writer), and sees every switch first appear in a Redis read. A switch's time is the earlier of the two;
a switch already on when costtop started (or set by another tool) has only its first sighting, which
is later than the truth, so it can only under-count violations, never invent one.

Silence: the newest row's age, from costtop's clock. Rows that stop while traffic was flowing
(at least `silence_min_calls` rows in the `silence_seconds` before the newest), or while the
gateway's own `calls:{day}` keeps rising, mean the gateway stopped writing the table or bypasses it.
A fleet that is simply quiet has no traffic before the lull, and a `calls:{day}` that did not rise
either says the fleet itself stopped: neither is silence.

On a hot standby (sources/replica.py) a row reaches costtop its lag after the gateway wrote it: the
silence limit, and the age a counter reading must have before its calls' rows are due, both grow by
the measured lag. A standby whose lag is unknown (not streaming) says nothing about the gateway: no
silence is judged until its lag is known again, and the Postgres badge says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from costtop.ages import whole
from costtop.config import Thresholds
from costtop.engine.snapshot import Alert, KillCheck, Severity
from costtop.sources.records import CallRecord, GatewayCounters, ReplicaLag, SwitchKind, SwitchRecord

REFUSED = frozenset({"killed", "throttled"})
NEVER = -math.inf


@dataclass(slots=True)
class Watch:
    """One kill switch seen on, and the calls that started after it."""

    key: str
    scope: str
    target: str
    since: float  # epoch seconds: when it was set, as far as costtop can know (see the module's doc)
    written: bool  # True: costtop wrote it and knows the time; False: its first sighting
    violations: int = 0
    latest: float | None = None  # the newest violating call's start


@dataclass(slots=True)
class Liveness:
    thresholds: Thresholds
    # Each target's newest call (epoch seconds of its start), per scope.
    agents: dict[str | None, float] = field(default_factory=dict)
    models: dict[str | None, float] = field(default_factory=dict)
    providers: dict[str | None, float] = field(default_factory=dict)
    newest: float | None = None  # the newest row's time stamp, any target
    seen_from: float | None = None  # every agent's and provider's call since then was read (the baseline window)
    read_from: float | None = None  # every model's call since then was read (the baseline has no model window)
    recent: dict[int, int] = field(default_factory=dict)  # second -> rows, up to silence_seconds before newest
    watches: dict[tuple[str, str], Watch] = field(default_factory=dict)  # (scope, target) -> kill switch on
    written: dict[str, float] = field(default_factory=dict)  # switch key -> when costtop set it, not yet seen
    known: bool = False  # the switches are known (Redis answered at the last snapshot)
    readings: list[tuple[float, int]] = field(default_factory=list)  # (read at, calls:{day}) today
    _counters: GatewayCounters | None = None
    _pruned: int = -(2**62)  # the second `recent` was last trimmed at
    _switches: tuple[SwitchRecord, ...] | None = None  # the switches last taken in
    _checks: dict[tuple[str, str], KillCheck] = field(default_factory=dict)  # each watch's check, as last made
    _stale: set[tuple[str, str]] | None = None  # watches whose check must be made again; None: all
    _made: tuple[KillCheck, ...] = ()  # the checks last returned

    # -- rows --------------------------------------------------------------------------------------

    def call(self, row: CallRecord, stamp: float) -> None:
        """One call read: its targets' last call, the newest row, and the kill check. Hot (per row, 10,000
        agents at 1,000 calls/s): one dict per scope, no tuple built, the kill check only while a kill is on."""
        agents, models, providers = self.agents, self.models, self.providers
        agent, model, provider = row.agent_id, row.model, row.provider
        if agents.get(agent, NEVER) < stamp:
            agents[agent] = stamp
        if models.get(model, NEVER) < stamp:
            models[model] = stamp
        if providers.get(provider, NEVER) < stamp:
            providers[provider] = stamp
        self._stamp(stamp, 1)
        if self.watches:
            judged = self.known and row.status not in REFUSED
            grace = self.thresholds.kill_grace_seconds
            stale = self._stale
            for key in (("agent", agent), ("model", model), ("provider", provider), ("global", "*")):
                watch = self.watches.get(key)  # type: ignore[arg-type]
                if watch is None:
                    continue
                if stale is not None:
                    stale.add(key)  # type: ignore[arg-type]  # its target's last call moved
                if judged and stamp >= watch.since + grace:
                    watch.violations += 1
                    watch.latest = stamp if watch.latest is None else max(watch.latest, stamp)

    def group(self, second: int, agent: str | None, calls: int) -> None:
        """An agent's calls of one second, read in bulk at start-up: before any switch costtop watches."""
        if self.agents.get(agent, NEVER) < second:
            self.agents[agent] = float(second)
        self._stamp(float(second), calls)
        self._stale = None

    def provider_group(self, second: int, provider: str | None) -> None:
        if self.providers.get(provider, NEVER) < second:
            self.providers[provider] = float(second)
        self._stale = None

    def _stamp(self, stamp: float, calls: int) -> None:
        newest = self.newest
        second = int(stamp // 1)
        if newest is None or stamp > newest:
            self.newest = newest = stamp
            if second > self._pruned:  # at most once a second, however many rows: a dict of a few hundred
                self._pruned = second
                first = math.floor(newest - self.thresholds.silence_seconds)
                self.recent = {s: n for s, n in self.recent.items() if s >= first}
        if second >= newest - self.thresholds.silence_seconds:
            recent = self.recent
            recent[second] = recent.get(second, 0) + calls

    def watching_from(self, at: float, window: float) -> None:
        """The first baseline, read at `at`, held every agent's and provider's calls of the `window`
        seconds before; models' calls are read one by one from then on."""
        if self.seen_from is None:
            self.seen_from, self.read_from = at - window, at
            self._stale = None

    def known_from(self, scope: str) -> float | None:
        """Since when a target's every call was read: a target without one has not called since."""
        return self.read_from if scope == "model" else self.seen_from

    def last_call(self, scope: str, name: str | None) -> float | None:
        if scope == "global":
            return self.newest
        return {"agent": self.agents, "model": self.models, "provider": self.providers}.get(scope, {}).get(name)

    # -- switches ----------------------------------------------------------------------------------

    def set_by_costtop(self, key: str, at: float) -> None:
        """costtop's writer set this kill switch at `at`: the switch's time, if it is earlier than the
        first sighting (it is, unless the switch was on already)."""
        for watch in self.watches.values():
            if watch.key == key:
                if at < watch.since:
                    watch.since, watch.written = at, True
                    self._stale = None
                return
        self.written[key] = min(at, self.written.get(key, at))

    def switches(self, switches: tuple[SwitchRecord, ...] | None, now: float) -> None:
        """The kill switches Redis holds now. A switch that went away (resumed, expired) forgets its
        violations; one that comes back starts afresh. Unknown switches (Redis down) change nothing,
        and no call is judged meanwhile."""
        if (switches is not None) != self.known:
            self._stale = None  # a check says whether its calls are judged
        self.known = switches is not None
        if switches is None or switches is self._switches:
            return  # unknown, or the very read taken in already
        self._switches = switches
        self._stale = None
        on: dict[tuple[str, str], SwitchRecord] = {
            (s.scope, s.target): s for s in switches if s.kind is SwitchKind.KILL}
        for key in [k for k, w in self.watches.items() if k not in on or on[k].key != w.key]:
            del self.watches[key]
        for key, switch in on.items():
            if key not in self.watches:
                written = self.written.pop(switch.key, None)
                since = now if written is None or written > now else written
                self.watches[key] = Watch(switch.key, switch.scope, switch.target, since, written is not None)
        keys = {s.key for s in on.values()}
        for key in [k for k, at in self.written.items() if k not in keys and now - at > 60]:
            del self.written[key]  # set, then removed before any read saw it

    def checks(self) -> tuple[KillCheck, ...]:
        """Every kill's check. Made again only for the watches whose target called since the last time
        (or all, when the switches or what every check reads changed): 50,000 kills are not 50,000 new
        checks a second."""
        made, stale = self._checks, self._stale
        if stale is None:
            made.clear()
            stale = set(self.watches)
        elif not stale and ("global", "*") not in self.watches:  # a global kill's last call is the newest row
            return self._made  # the same object: whoever draws it knows nothing changed
        if ("global", "*") in self.watches:
            stale.add(("global", "*"))
        for key in stale:
            w = self.watches.get(key)
            if w is not None:
                made[key] = KillCheck(w.key, w.scope, w.target, datetime.fromtimestamp(w.since, UTC), w.written,
                                      self.last_call(w.scope, w.target), w.violations, self.known_from(w.scope))
        self._stale = set()
        self._made = tuple(map(made.__getitem__, self.watches))
        return self._made

    # -- silence -----------------------------------------------------------------------------------

    def counters(self, counters: GatewayCounters | None, now: float) -> None:
        """Keep `calls:{day}` as read over time (a new read is a new object)."""
        if counters is None or counters is self._counters:
            return
        if self._counters is not None and self._counters.day != counters.day:
            self.readings = []
        self._counters = counters
        if isinstance(counters.calls, int):
            self.readings.append((now, counters.calls))
            horizon = now - 3 * self.thresholds.silence_seconds
            while len(self.readings) > 2 and self.readings[1][0] < horizon:
                self.readings.pop(0)

    def counter_rise(self, now: float, lag: float = 0.0) -> int | None:
        """How much `calls:{day}` rose from its first read after the newest row's time stamp to its last
        read at least half a silence (plus a standby's lag) old: calls the gateway counted after the last
        row, early enough for their rows to be in. None: no two such reads yet (or no counter)."""
        first = -math.inf if self.newest is None else self.newest
        due = now - self.thresholds.silence_seconds / 2 - lag
        after = [(at, calls) for at, calls in self.readings if first <= at <= due]
        if len(after) < 2:
            return None
        return after[-1][1] - after[0][1]

    def silence(self, now: float, replica: ReplicaLag | None = None) -> tuple[float | None, Alert | None]:
        """The newest row's age, and the alert when the gateway has gone silent; on a standby, allowing
        for its lag (the module's doc)."""
        th = self.thresholds
        age = None if self.newest is None else max(0.0, now - self.newest)
        if replica is not None and replica.seconds is None:
            return age, None
        lag = replica.seconds if replica is not None and replica.seconds is not None else 0.0
        quiet = age is None or age > th.silence_seconds + lag
        if not quiet:
            return age, None
        rise = self.counter_rise(now, lag)
        waited = "no row yet" if age is None else f"no row for {whole(age)}"
        if lag:
            waited += f" (the replica's lag of {whole(lag)} allowed for)"
        counter = self._counters.day if self._counters is not None else "{day}"
        if rise is not None and rise > 0:
            return age, Alert("silence:gateway", "gateway not writing rows", Severity.CRITICAL, "fleet",
                              f"calls:{counter} rose by {rise:,} but {waited}: the gateway stopped writing "
                              "the table, or calls bypass it")
        flowed = sum(self.recent.values())
        if age is not None and flowed >= th.silence_min_calls and rise is None:
            return age, Alert("silence:gateway", "rows stopped", Severity.WARNING, "fleet",
                              f"{waited} after {flowed:,} in the {whole(th.silence_seconds)} before: the "
                              "gateway stopped writing the table, or every agent stopped at once")
        return age, None
