"""The cockpit's themes: dark (default), light, and high contrast for projectors.

Verdict colours come from the theme's success/error/warning, so every theme keeps
forwarded green, dropped red and audit yellow, at the contrast it needs.
"""

from __future__ import annotations

from textual.theme import Theme

DARK = Theme(
    name="kcockpit-dark",
    primary="#4aa3df",
    secondary="#2d6a9f",
    accent="#c792ea",
    warning="#e5c07b",
    error="#ef5b5b",
    success="#7ec97e",
    foreground="#d8dde3",
    background="#14181d",
    surface="#1a1f25",
    panel="#232a33",
    dark=True,
)

LIGHT = Theme(
    name="kcockpit-light",
    primary="#0b5cad",
    secondary="#3b78b5",
    accent="#7a3aa8",
    warning="#8a5a00",
    error="#b3001b",
    success="#1d7a1d",
    foreground="#1c2128",
    background="#f4f5f7",
    surface="#ffffff",
    panel="#dde2e8",
    dark=False,
)

HIGH_CONTRAST = Theme(
    name="kcockpit-high-contrast",
    primary="#ffff00",
    secondary="#00ffff",
    accent="#ff00ff",
    warning="#ffff00",
    error="#ff3030",
    success="#00ff00",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#202020",
    dark=True,
    text_alpha=1.0,
    variables={
        "block-cursor-background": "#ffffff",
        "block-cursor-foreground": "#000000",
        "block-cursor-blurred-background": "#a0a0a0",
        "block-cursor-blurred-foreground": "#000000",
        "footer-key-foreground": "#ffff00",
    },
)

THEMES = {"dark": DARK, "light": LIGHT, "high-contrast": HIGH_CONTRAST}
