"""The command palette (ctrl+p): kill, throttle or resume any target by name, jump to an agent.

Every write goes through the same confirmation dialog as the keys (the palette only picks the
target), and in read-only mode no writing command is offered at all. Names are shown in their visible
form (`text.visible_id`: two different names never look the same); the command keeps the exact name,
so the dialog names the very key the gateway checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from costtop.engine.snapshot import AgentState, Snapshot
from costtop.sources.records import SwitchChange
from costtop.text import visible_id
from costtop.ui.widgets.usage_tables import row_key


class PaletteHost(Protocol):
    """What the palette needs from the app: what is on screen, and the two ways to act on a name."""

    read_only: bool

    @property
    def shown(self) -> Snapshot | None: ...
    def ask(self, change: SwitchChange) -> None: ...
    def jump_to_agent(self, agent: str) -> None: ...


class CosttopCommands(Provider):
    def commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        app: PaletteHost = self.app  # type: ignore[assignment]
        snap = app.shown
        if snap is None:
            return
        for agent in snap.agents:
            name = visible_id(agent.agent_id, 60) if agent.agent_id is not None else "(none)"
            key = row_key(agent.agent_id)
            yield (f"Jump to agent {name}", lambda a=key: app.jump_to_agent(a),
                   "select it in the table")
            if app.read_only or agent.agent_id is None:  # calls without an agent have no switch
                continue
            if agent.state is AgentState.KILLED:
                # Already killed: its own switch is what can be undone (a global kill is offered below,
                # with the other switches).
                if agent.switch is not None and agent.switch.scope == "agent":
                    resume = SwitchChange.removing(agent.switch)
                    yield (f"Resume agent {name}", lambda c=resume: app.ask(c), "removes its kill switch (asks first)")
            else:
                yield (f"Kill agent {name}",
                       lambda a=agent.agent_id: app.ask(SwitchChange("set", "kill", "agent", a)),
                       "kill:agent:… (asks first)")
            yield (f"Throttle agent {name}",
                   lambda a=agent.agent_id: app.ask(SwitchChange("set", "throttle", "agent", a)),
                   "throttle:agent:… (asks first)")
        if app.read_only:
            return
        targets = (("model", [m.model for m in snap.models]), ("provider", [p.provider for p in snap.providers]))
        for scope, names in targets:
            for target in names:
                if target is not None:
                    yield (f"Kill {scope} {visible_id(target, 60)}",
                           lambda s=scope, t=target: app.ask(SwitchChange("set", "kill", s, t)),
                           f"kill:{scope}:… (asks first)")
        for switch in snap.switches:
            change = SwitchChange.removing(switch)
            yield (f"Resume {visible_id(switch.key, 80)}", lambda c=change: app.ask(c),
                   "removes the switch (asks first)")

    async def discover(self) -> Hits:
        for text, command, help_text in self.commands():
            if text.startswith(("Kill agent", "Resume agent", "Jump")):
                yield DiscoveryHit(Content(text), command, text=text, help=help_text)

    async def search(self, query: str) -> Hits:
        """Shown as plain Content: a name like `x[/]` is text, not markup (Textual's highlight parses markup)."""
        matcher = self.matcher(query)
        for text, command, help_text in self.commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, Content(text), command, text=text, help=help_text)
