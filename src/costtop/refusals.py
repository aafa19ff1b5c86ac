"""How a gateway words a call refused by one of costtop's switches, so that costtop can tell it apart.

A refused call is not a failure of the agent or the provider: counting it as an error would make every
kill raise an error-rate alert on the agent just killed. A gateway that records refused calls as
failures (LiteLLM writes them to its spend log with `status = 'failure'` and the error's message) is
read back through this wording: a message holding `refusal_marker("killed")` is a `killed` call, one
holding `refusal_marker("throttled")` a `throttled` one (sources/presets.py).
"""

from __future__ import annotations

from typing import Literal

Refusal = Literal["killed", "throttled"]
MARKER = "costtop switch"
# The class of the exception a gateway refuses with (integrations/litellm.py's `Refused`), which LiteLLM
# records beside the message (`error_information.error_class`). The marker alone is not enough: a provider's
# or the proxy's own error can echo text a client chose (a prompt, a name), so a client could word an
# ordinary failure as a refusal and hide it from the error rates.
REFUSED_CLASS = "Refused"


def refusal_marker(kind: Refusal) -> str:
    """The fixed part of the message: found anywhere in it, whatever the gateway puts around it."""
    return f"[{MARKER}: {kind}]"


def refusal_message(kind: Refusal, key: str, value: str | None = None) -> str:
    """The message a gateway answers a refused call with: the marker, then the switch and who set it."""
    why = f" ({value})" if value else ""
    verb = "is on" if kind == "killed" else "limits this agent"
    return f"{refusal_marker(kind)} {key} {verb}{why}"
