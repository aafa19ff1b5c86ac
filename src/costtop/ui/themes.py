"""Themes: TOML files of Textual theme colours, shipped in themes/ and added in the user's config dir.

A file that cannot be read or has a wrong field is left out with one line saying why (the app shows it
once and uses the default); it never stops costtop. Colours make states easier to see, but every state
is also written in words (ok, throttled, killed, WARN, CRIT, STALE, ?), so a 16-colour terminal or
NO_COLOR loses nothing.

The states' colours are theme variables too, read by every widget and the help legend (see `Palette`):
`status-ok`, `status-warning`, `status-critical`, `status-killed` and `status-unknown`. A theme file may
set any of them; the ones it leaves out follow its own `success`, `warning` and `error` colours (unknown:
the foreground, dimmed).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
from rich.style import Style
from textual.color import Color, ColorParseError
from textual.theme import Theme

if TYPE_CHECKING:
    from textual.app import App

DEFAULT_THEME = "costtop-dark"
# The states' colours: theme variables (also `$status-ok` ... in .tcss: the app fills in the ones a theme
# leaves out, `status_css_variables`; `status-unknown` only when the theme sets it).
STATUS_VARIABLES = ("status-ok", "status-warning", "status-critical", "status-killed", "status-unknown")
# The theme colour each state's colour follows when a theme leaves it out (unknown: the foreground, dimmed).
STATUS_FALLBACK = {"status-ok": "success", "status-warning": "warning", "status-critical": "error",
                   "status-killed": "error"}
FIELDS = {"name", "dark", "primary", "secondary", "accent", "warning", "error", "success", "foreground",
          "background", "surface", "panel", *STATUS_VARIABLES}


class ThemeError(ValueError):
    """One line: which file, what is wrong."""


def user_theme_dir() -> Path:
    return Path(platformdirs.user_config_dir("costtop")) / "themes"


def shipped_theme_files() -> list[Path]:
    folder = files("costtop") / "themes"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))


def load_theme(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThemeError(f"theme file {path}: {exc}") from None
    unknown = set(data) - FIELDS
    if unknown:
        raise ThemeError(f"theme file {path}: unknown field(s) {', '.join(sorted(unknown))}")
    if not isinstance(data.get("name"), str) or not isinstance(data.get("primary"), str):
        raise ThemeError(f"theme file {path}: needs a name and a primary colour")
    for name, value in data.items():
        if name not in ("name", "dark"):
            try:
                Color.parse(value)
            except (ColorParseError, TypeError, ValueError):
                raise ThemeError(f"theme file {path}: {name} = {value!r} is not a colour") from None
    if not isinstance(data.get("dark", True), bool):
        raise ThemeError(f"theme file {path}: dark must be true or false")
    variables = {name: data.pop(name) for name in STATUS_VARIABLES if name in data}
    try:
        return Theme(**data, variables=variables)
    except (TypeError, ValueError) as exc:
        raise ThemeError(f"theme file {path}: {exc}") from None


@dataclass
class ThemeSet:
    themes: dict[str, Theme] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def find_themes(user_dir: Path | None = None) -> ThemeSet:
    """The shipped themes, then the user's (a user file may replace a shipped theme of the same name)."""
    found = ThemeSet()
    folder = user_dir or user_theme_dir()
    user_files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    for path in [*shipped_theme_files(), *user_files]:
        try:
            theme = load_theme(path)
        except ThemeError as exc:
            found.errors.append(str(exc))
            continue
        found.themes[theme.name] = theme
    return found


@dataclass(frozen=True)
class Palette:
    """The states' styles in the running theme: what every widget colours a state or a level with.

    ok / warning / critical: the colour (the `strong_` ones bold); killed: bold text on the killed
    colour, for what must jump out (killed, EMERG, STALE, a provider down, the global kill), and
    `killed_text` the same colour as text; unknown: the unknown colour, else the foreground dimmed.
    """

    ok: Style
    strong_ok: Style
    warning: Style
    strong_warning: Style
    warning_block: Style
    critical: Style
    strong_critical: Style
    killed: Style
    killed_text: Style
    unknown: Style

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> Palette:
        """The styles from a theme's variables: each `status-*` one, or the theme colour it follows."""
        background = _colour(variables.get("background"), None) or Color(0, 0, 0)

        def colour(name: str, fallback: str) -> Color:
            return (_colour(variables.get(name), background) or _colour(variables.get(fallback), background)
                    or Color.parse(fallback))

        ok, warning = colour("status-ok", "success"), colour("status-warning", "warning")
        critical, killed = colour("status-critical", "error"), colour("status-killed", "error")
        unknown = _colour(variables.get("status-unknown"), background)
        bold = Style(bold=True)
        return cls(
            ok=Style(color=ok.rich_color), strong_ok=bold + Style(color=ok.rich_color),
            warning=Style(color=warning.rich_color), strong_warning=bold + Style(color=warning.rich_color),
            warning_block=Style(bold=True, color=warning.get_contrast_text(1.0).rich_color,
                                bgcolor=warning.rich_color),
            critical=Style(color=critical.rich_color), strong_critical=bold + Style(color=critical.rich_color),
            killed=Style(bold=True, color=killed.get_contrast_text(1.0).rich_color, bgcolor=killed.rich_color),
            killed_text=bold + Style(color=killed.rich_color),
            unknown=Style(dim=True) if unknown is None else Style(color=unknown.rich_color),
        )


def status_css_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """The states' colours a theme leaves out, as the colours they follow: so `$status-ok` ... can be used
    in .tcss (the wall screen's border) with every theme, and name the same colours as the Palette.
    `status-unknown` is left out: the Palette's unknown is then no colour at all (dim)."""
    return {name: variables[fallback] for name, fallback in STATUS_FALLBACK.items()
            if name not in variables and fallback in variables}


def _colour(value: str | None, background: Color | None) -> Color | None:
    """A variable's colour, made opaque over the background (Rich has no alpha); None if unusable."""
    if not value:
        return None
    try:
        colour = Color.parse(value)
    except ColorParseError:
        return None
    return background + colour if background is not None and colour.a < 1 else colour


# Outside a running app (a test formatting a snapshot): the terminal's own green, yellow and red.
DEFAULT_PALETTE = Palette.from_variables({"success": "green", "warning": "yellow", "error": "red"})
_resolved: tuple[dict[str, str], Palette] | None = None


def palette(app: App[object]) -> Palette:
    """The running theme's palette, resolved once per theme change (Textual makes a new
    `theme_variables` dict each time it applies a theme), not per cell."""
    global _resolved
    variables = app.theme_variables
    if not variables:
        return DEFAULT_PALETTE
    if _resolved is None or _resolved[0] is not variables:
        _resolved = (variables, Palette.from_variables(variables))
    return _resolved[1]
