"""The unit half of tests/integration/test_visible_ids.py: the tests that need no server and no app."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from test_hostile_unit import FORBIDDEN

# Characters a terminal draws as nothing or as a blank: controls, format (zero-width, bidi, soft hyphen),
# non-ASCII spaces, Hangul fillers, the braille blank, variation selectors, the grapheme joiner.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066", "\u061c", "\u00ad", "\u00a0",
             "\u3000", "\u2800", "\u3164", "\ufe0f", "\U000e0100", "\u034f", "\u180e", "\x1b", "\x7f", "\x9b"]
# (Latin letter, a letter of another script drawn the same)
LOOK_ALIKES = [("a", "\u0430"), ("e", "\u0435"), ("o", "\u043e"), ("p", "\u0440"), ("c", "\u0441"),
               ("x", "\u0445"), ("y", "\u0443"), ("i", "\u0456"), ("o", "\u03bf"), ("v", "\u03bd")]
SKELETON = str.maketrans({other: latin for latin, other in LOOK_ALIKES})
# Precomposed letters (NFC) and the singletons NFC replaces (U+212B ANGSTROM SIGN, U+2126 OHM SIGN)
COMPOSED = ["é", "å", "ñ", "ü", "ç", "ö", "\u00c5", "\u03a9"]
SINGLETON = {"\u00c5": "\u212b", "\u03a9": "\u2126"}

stem = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=10)


@st.composite
def look_alike_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """Two ids a person could not tell apart if each character were drawn as itself."""
    left, right = draw(stem), draw(stem)
    kind = draw(st.sampled_from(["invisible", "space", "normalisation", "confusable"]))
    if kind == "invisible":
        hidden = draw(st.one_of(st.sampled_from([c for c in INVISIBLE if not c.isspace()]),
                                st.characters(codec=None, categories=("Cc", "Cf"))))
        return "bot" + left + right, "bot" + left + hidden + right
    if kind == "space":
        space = draw(st.characters(codec=None, categories=("Zs",), exclude_characters=" "))
        return "bot" + left + " " + right, "bot" + left + space + right
    if kind == "normalisation":
        letter = draw(st.sampled_from(COMPOSED))
        composed = "bot" + left + letter + right
        decomposed = unicodedata.normalize("NFD", composed)
        return composed, draw(st.sampled_from([decomposed, composed.replace(letter, SINGLETON.get(letter, letter))])
                              .filter(lambda other: other != composed))
    latin, other = draw(st.sampled_from(LOOK_ALIKES))
    return "bot" + left + latin + right, "bot" + left + other + right


def looks(text: str) -> str:
    """What a person sees: NFC and NFD drawn alike, invisible characters not drawn, spaces as spaces,
    look-alike letters as their Latin twin."""
    shown = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if category.startswith("Z"):
            shown.append(" ")
        elif not (category in ("Cc", "Cf", "Cs", "Co", "Cn") or char in INVISIBLE):
            shown.append(char)
    return "".join(shown).translate(SKELETON)


@given(look_alike_pairs())
def test_look_alike_ids_are_shown_apart(pair: tuple[str, str]) -> None:
    from costtop.text import visible_id

    a, b = pair
    assert a != b and looks(a) == looks(b)  # the pair really does look the same when drawn as is
    assert looks(visible_id(a)) != looks(visible_id(b))
    assert FORBIDDEN.search(visible_id(a) + visible_id(b)) is None


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_two_ids_are_shown_apart(a: str, b: str) -> None:
    """The visible form is one-to-one: each marker stands for one character, and no id can fake one."""
    from costtop.text import visible_id

    if a != b:
        assert visible_id(a) != visible_id(b)


def test_the_visible_form_names_what_is_hidden() -> None:
    from costtop.text import visible_id

    assert visible_id("pay-bot\u200b") == "pay-bot<U+200B>"
    assert (visible_id("caf\u00e9"), visible_id("cafe\u0301")) == ("caf\u00e9", "cafe<U+0301>")
    assert visible_id("p\u0430y-bot") == "⚠ p\u0430y-bot"  # Cyrillic а among Latin letters
    assert visible_id("<U+200B>") == "<U+003C>U+200B>" and visible_id("⚠ x") == "<U+26A0> x"
    assert visible_id("日本語-bot") == "日本語-bot" and visible_id("gpt-4o") == "gpt-4o"


def test_spaces_at_the_edges_punctuation_look_alikes_and_fake_markers_are_shown() -> None:
    """Found by review: `pay-bot ` passed as `pay-bot`, `pay‐bot` (U+2010) as `pay-bot`, and `˂U+200B˃`
    (modifier letter brackets) as a real marker."""
    from costtop.text import visible_id
    assert visible_id("pay-bot ") == "pay-bot<U+0020>" and visible_id(" pay-bot") == "<U+0020>pay-bot"
    assert visible_id("pay  bot") == "pay<U+0020><U+0020>bot" and visible_id("pay bot") == "pay bot"
    assert visible_id("pay\u2010bot") == "pay<U+2010>bot" and visible_id("\uff50ay") == "<U+FF50>ay"
    spoof = visible_id("pay-bot\u02c2U+200B\u02c3")
    assert spoof != visible_id("pay-bot\u200b") and "<U+02C2>" in spoof


def test_two_long_ids_cut_to_a_column_still_look_different() -> None:
    """Cut to fit, an id keeps a hash of the whole: a difference past the cut still shows."""
    from costtop.text import id_text, visible_id
    a, b = "invoice-reconciliation-agent-v2\u200b", "invoice-reconciliation-agent-v2-canary"
    assert visible_id(a, 32) != visible_id(b, 32) and len(visible_id(a, 32)) == 32
    assert id_text(a, 32).plain != id_text(b, 32).plain
