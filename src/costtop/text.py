"""Making untrusted text safe to show.

Agent names, models, reasons and switch values come from other programs. A control character that
reaches the terminal can retitle the window (OSC 0), write the clipboard (OSC 52) or move the cursor,
so every such string passes through `clean()` at the source boundary, and widgets render it as
`rich.text.Text`, never inside a markup string.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from rich.text import Text

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


# Scripts whose letters are confusable with one another (UTS #39's confusables are mostly between these):
# an id whose letters come from two of them (`pаy-bot` with a Cyrillic а) is flagged.
_CONFUSABLE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC"})
# Characters that draw nothing, or draw as blank, though Unicode files them as letters, marks or symbols
# (the Hangul fillers, the combining grapheme joiner, Khmer inherent vowels, Mongolian variation
# selectors, the braille blank): shown as markers like the format characters.
_BLANK = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
# Look-alikes of the ASCII punctuation ids are made of, that NFKC does not fold: hyphens and minus signs,
# angle brackets (a `˂U+200B˃` must not pass for a marker), the one-dot leader.
_LOOKALIKE = frozenset("\u02c2\u02c3\u02d7\u2010\u2011\u2012\u2013\u2014\u2015\u2039\u203a\u2043\u2212"
                       "\u2329\u232a\u3008\u3009\u2024")
MIXED = "⚠"  # the prefix of an id that mixes scripts; the character itself in an id is shown as a marker


def _marker(char: str) -> str:
    return f"<U+{ord(char):04X}>"


def _hidden(char: str) -> bool:
    """True for a character that would not show as itself: invisible, blank, a control or a variation selector."""
    if char == " ":
        return False
    code = ord(char)
    return (unicodedata.category(char) in _INVISIBLE_CATEGORIES or char in _BLANK
            or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or 0xE0000 <= code <= 0xE007F)


def _lookalike(char: str) -> bool:
    """A character drawn like another, more usual one: a compatibility form (fullwidth letters, ligatures,
    `ⅼ`, superscripts: whatever NFKC folds) or a look-alike of ASCII punctuation."""
    return char in _LOOKALIKE or unicodedata.normalize("NFKC", char) != char


def _unstable(char: str) -> bool:
    """A character an NFC/NFD twin could draw the same: a combining mark, a conjoining Hangul jamo, or a
    singleton NFC replaces (U+212B ANGSTROM SIGN for Å)."""
    code = ord(char)
    return (unicodedata.category(char).startswith("M") or 0x1100 <= code <= 0x11FF or 0xA960 <= code <= 0xA97F
            or 0xD7B0 <= code <= 0xD7FF or unicodedata.normalize("NFC", char) != char)


def mixed_scripts(text: str) -> bool:
    """True when the letters come from more than one of Latin, Cyrillic, Greek, Armenian, Cherokee and
    Coptic (the script is the first word of the letter's Unicode name). A simplified form of UTS #39's
    mixed-script check: those scripts hold the look-alike letters, and ids mixing them are rare enough to
    flag all; Latin with Han, kana or digits is not flagged."""
    scripts = set()
    for char in text:
        if char.isalpha():
            script = unicodedata.name(char, "").split(" ", 1)[0]
            if script in _CONFUSABLE_SCRIPTS:
                scripts.add(script)
                if len(scripts) > 1:
                    return True
    return False


def id_pieces(value: object) -> list[tuple[str, bool]]:
    """An identifier as (text, is_marker) pieces; see `visible_id`."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    if len(text) > 4 * MAX_TEXT + 64:  # a 1 MB name costs no more to show than a long one
        text = text[: 4 * MAX_TEXT + 64]
    if (text.isascii() and text.isprintable() and "<U+" not in text  # the usual id: shown as it is
            and not text.startswith(" ") and not text.endswith(" ") and "  " not in text):
        return [(text, False)]
    denormal = not unicodedata.is_normalized("NFC", _SURROGATE.sub("\ufffd", text))
    pieces: list[tuple[str, bool]] = [(MIXED + " ", True)] if mixed_scripts(text) else []
    last = len(text) - 1
    for i, char in enumerate(text):
        # A space is shown as itself only between two other characters: `pay-bot ` is not `pay-bot`.
        loose = char == " " and (i in (0, last) or text[i - 1] == " " or text[i + 1] == " ")
        if (_hidden(char) or char == MIXED or loose or (denormal and _unstable(char))
                or (char == "<" and text.startswith("U+", i + 1)) or (not char.isascii() and _lookalike(char))):
            pieces.append((_marker(char), True))
        else:
            pieces.append((char, False))
    return pieces


def none_last(name: str | None) -> tuple[bool, str]:
    """A name for sort keys: rows without one (a NULL agent_id, shown as `(none)`) after the named
    ones; comparing None with a str would raise."""
    return (name is None, name or "")


def visible_id(value: object, limit: int = MAX_TEXT) -> str:
    """An identifier (agent, model, provider, key, trace) as shown: two ids that differ never look the same.

    `clean()` drops invisible characters, so `pay-bot` and `pay-bot<U+200B>` would look identical while the
    gateway treats them as two agents; a kill of the one on screen would miss the other. Here every character
    that would not show as itself (controls, format, bidi, zero-width, variation selectors, non-ASCII spaces,
    unassigned, private use, lone surrogates) is replaced by a `<U+XXXX>` marker; in an id that is not in NFC
    the combining marks, conjoining jamo and NFC singletons are markers too, so `é` and `e<U+0301>` differ;
    a literal `<` before `U+` and a literal `⚠` are markers, so no id can fake one; and an id mixing
    look-alike scripts (`mixed_scripts`) starts with `⚠ `. Each marker stands for one character, so the
    shown form is one-to-one with the id (up to `limit`, past which it is cut with `…`).
    """
    if value is None:
        return ""
    text = "".join(piece for piece, _ in id_pieces(value))
    return text if len(text) <= limit else text[: max(0, limit - len(_tag(value)))] + _tag(value)


def _tag(value: object) -> str:
    """What stands for the cut end of a long id: `…` and 4 hex digits of a hash of the exact id, so two
    long ids that differ only past the cut still look different (but for one pair in 65,536)."""
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8", errors="surrogatepass")
    return "…#" + hashlib.blake2b(raw, digest_size=2).hexdigest()


def id_text(value: object, limit: int = MAX_TEXT, style: str = "") -> Text:
    """`visible_id` as rich Text, the markers styled apart from the characters that are really there."""
    out = Text(style=style)
    if value is None:
        return out
    for piece, marker in id_pieces(value):
        out.append(piece, style=("bold yellow" if piece.startswith(MIXED) else "reverse") if marker else "")
    if len(out) > limit:
        tag = _tag(value)
        out.truncate(max(0, limit - len(tag)))
        out.append(tag, style="dim")
    return out


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
