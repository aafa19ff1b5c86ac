"""Making untrusted text safe to show.

Agent names, models, reasons and switch values come from other programs. A control character that
reaches the terminal can retitle the window (OSC 0), write the clipboard (OSC 52) or move the cursor,
so every such string passes through `clean()` at the source boundary, and widgets render it as
`rich.text.Text`, never inside a markup string.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# C0 controls, DEL, C1 controls; plus the Unicode bidi overrides/isolates and zero-width characters
# that can make a name look like another one.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
MAX_TEXT = 200


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """A printable, bounded, single-line version of any value (bytes are decoded leniently)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = _UNSAFE.sub("", str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def mask_url(url: str) -> str:
    """The URL with any password replaced, for error messages and the screen."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def one_line(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """A one-line description of an error, with known secrets masked."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return clean(text.splitlines()[0] if text else "", 160)
