"""Themes: TOML files of Textual theme colours, shipped in themes/ and added in the user's config dir.

A file that cannot be read or has a wrong field is left out with one line saying why (the app shows it
once and uses the default); it never stops costtop. Colours make states easier to see, but every state
is also written in words (ok, throttled, killed, WARN, CRIT, STALE, ?), so a 16-colour terminal or
NO_COLOR loses nothing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import platformdirs
from textual.color import Color, ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "costtop-dark"
FIELDS = {"name", "dark", "primary", "secondary", "accent", "warning", "error", "success", "foreground",
          "background", "surface", "panel"}


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
    try:
        return Theme(**data)
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
