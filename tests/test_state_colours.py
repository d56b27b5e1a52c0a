"""Eight states, eight colours that stay apart for colour-blind eyes and read on
the theme's background.

Colour-blindness is simulated with the Machado, Oliveira and Fernandes (2009)
matrices at full severity, in linear RGB; distance is CIE76 delta E in Lab.
A delta E of about 10 is clearly different side by side.
"""

from __future__ import annotations

import itertools

import pytest

from sluice_tui.model.states import ALL_STATES
from sluice_tui.ui.text import STATE_COLOURS

SIMULATIONS = {
    "normal": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "protanopia": (
        (0.152286, 1.052583, -0.204868),
        (0.114503, 0.786281, 0.099216),
        (-0.003882, -0.048116, 1.051998),
    ),
    "deuteranopia": (
        (0.367322, 0.860646, -0.227968),
        (0.280085, 0.672501, 0.047413),
        (-0.011820, 0.042940, 0.968881),
    ),
    "tritanopia": (
        (1.255528, -0.076749, -0.178779),
        (-0.078411, 0.930809, 0.147602),
        (0.004733, 0.691367, 0.303900),
    ),
}
# Textual's own theme backgrounds (textual-dark, textual-light) and surfaces.
THEMES = {"dark": (0, ("#121212", "#1e1e1e")), "light": (1, ("#e0e0e0", "#d8d8d8"))}
LEAST_CONTRAST = {"dark": 4.5, "light": 3.0}
LEAST_DISTANCE = 15.0


def linear(hex_colour: str) -> tuple[float, ...]:
    def channel(c: int) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return tuple(channel(int(hex_colour[i : i + 2], 16)) for i in (1, 3, 5))


def luminance(rgb: tuple[float, ...]) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def contrast(a: str, b: str) -> float:
    low, high = sorted((luminance(linear(a)), luminance(linear(b))))
    return (high + 0.05) / (low + 0.05)


def lab(rgb: tuple[float, ...]) -> tuple[float, float, float]:
    r, g, b = rgb
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def seen_as(hex_colour: str, matrix) -> tuple[float, float, float]:
    rgb = linear(hex_colour)
    simulated = tuple(
        min(1.0, max(0.0, sum(m * c for m, c in zip(row, rgb, strict=True)))) for row in matrix
    )
    return lab(simulated)


def test_every_state_has_its_own_colour():
    for column in (0, 1):
        colours = [STATE_COLOURS[state][column] for state in ALL_STATES]
        assert len(set(colours)) == len(ALL_STATES)


@pytest.mark.parametrize("theme", THEMES)
def test_each_colour_reads_on_the_theme_background(theme):
    column, backgrounds = THEMES[theme]
    for state in ALL_STATES:
        for background in backgrounds:
            ratio = contrast(STATE_COLOURS[state][column], background)
            assert ratio >= LEAST_CONTRAST[theme], (state, background, round(ratio, 2))


@pytest.mark.parametrize("vision", SIMULATIONS)
@pytest.mark.parametrize("theme", THEMES)
def test_no_two_states_look_alike(theme, vision):
    column = THEMES[theme][0]
    seen = {
        state: seen_as(STATE_COLOURS[state][column], SIMULATIONS[vision]) for state in ALL_STATES
    }
    for a, b in itertools.combinations(ALL_STATES, 2):
        distance = sum((p - q) ** 2 for p, q in zip(seen[a], seen[b], strict=True)) ** 0.5
        assert distance >= LEAST_DISTANCE, (a.value, b.value, round(distance, 1))
