"""Making untrusted text safe to show.

Agent names, models, reasons and switch values come from other programs. A control character that
reaches the terminal can retitle the window (OSC 0), write the clipboard (OSC 52) or move the cursor,
so every such string passes through `clean()` at the source boundary, and widgets render it as
`rich.text.Text`, never inside a markup string.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# C0 controls, DEL, C1 controls; the Unicode line and paragraph separators; the bidi marks, overrides
# and isolates and the zero-width and invisible characters that can make a name look like another one.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
# Lone surrogates (undecodable bytes kept by `surrogateescape`) cannot be written to a terminal at all.
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_TEXT = 200


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """A printable, bounded, single-line version of any value (bytes are decoded leniently)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    cut = len(text) > 4 * limit + 64  # a 1 MB name costs no more to clean than a long one
    if cut:
        text = text[: 4 * limit + 64]
    text = _SURROGATE.sub("\ufffd", _UNSAFE.sub("", text))
    if cut or len(text) > limit:
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
