"""The look every plot shares: colours, fonts, a title block, and conditions written as people read them."""

from __future__ import annotations

import textwrap

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

TOWARDS = "#0072B2"  # pushes towards the predicted class (Okabe-Ito blue)
AWAY = "#E69F00"  # pushes away from it (Okabe-Ito orange)
MUTED = "#9A9A9A"
INK = "#222222"
SOFT_INK = "#555555"
FONT_SIZE = 9.0
TITLE_SIZE = 11.0
SUBTITLE_SIZE = 9.0
WIDTH = 6.0  # inches: about 900 px at 150 dpi, crisp when a card shows it at ~500 px

# Names are text, never markup: a column ``price_$^$`` or a class ``$\x$`` is drawn as typed. Mathtext would
# parse the dollars (and fail the job on a syntax error); LaTeX would need a TeX install and escape nothing.
# A ``Text`` reads ``text.parse_math`` when it is created, and tick labels are created while a figure is drawn,
# so this holds for the whole process (every module that draws imports this one) and ``figure_render``
# applies it again around every render.
PLAIN_TEXT_RC = {"text.parse_math": False, "text.usetex": False}
matplotlib.rcParams.update(PLAIN_TEXT_RC)


def wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=True)) or text


def condition_pretty(condition: str, width: int = 42) -> str:
    """``age <= 28`` -> ``age ≤ 28``, wrapped so long category names do not squeeze the bars."""
    return wrap(condition.replace(" <= ", " ≤ ").replace(" >= ", " ≥ "), width)


def figure_with_header(title: str, subtitle: str, body_height: float, width: float = WIDTH) -> tuple[Figure, SubFigure]:
    """A figure whose top holds the wrapped title and subtitle, and a body subfigure laid out automatically.

    Keeping the header in its own subfigure stops long titles from overlapping the axes' labels.
    """
    chars = int(width * 11)
    title_lines = textwrap.wrap(title, width=chars) or [""]
    subtitle_lines = textwrap.wrap(subtitle, width=int(chars * 1.15)) if subtitle else []
    header_height = 0.22 + 0.2 * len(title_lines) + 0.17 * len(subtitle_lines)
    fig = Figure(figsize=(width, header_height + body_height), dpi=100, layout="constrained")
    header, body = fig.subfigures(2, 1, height_ratios=[header_height, body_height])
    header.text(0.02, 1 - 0.12 / header_height, "\n".join(title_lines), va="top", ha="left",
                fontsize=TITLE_SIZE, fontweight="bold", color=INK)
    if subtitle_lines:
        header.text(0.02, 1 - (0.16 + 0.2 * len(title_lines)) / header_height, "\n".join(subtitle_lines),
                    va="top", ha="left", fontsize=SUBTITLE_SIZE, color=SOFT_INK)
    return fig, body


def axes_tidy(ax: Axes, *, grid_axis: str | None = "x") -> None:
    """Quiet axes: no box, light grid behind the data, readable tick labels."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#BBBBBB")
    ax.tick_params(labelsize=FONT_SIZE, colors=SOFT_INK, labelcolor=INK)
    if grid_axis:
        ax.grid(axis=grid_axis, color="#E6E6E6", linewidth=0.8)
        ax.set_axisbelow(True)


def percent(value: float) -> str:
    """``0.26`` -> ``26%``; a small but non-zero share reads ``<1%`` rather than a misleading ``0%``."""
    value = float(value)
    return "<1%" if 0 < value < 0.005 else f"{value:.0%}"


def alt_opening(explanation, space) -> tuple[str, str]:
    """The explained class's name, and the alt text's first sentence: ``Predicted spam (97%).``"""
    class_name = space.class_names[explanation.data.get("label", explanation.predicted)]
    return class_name, f"Predicted {class_name} ({percent(explanation.probabilities[explanation.predicted])})."


def features_alt_text(explanation, space, pairs: list[tuple[str, float]]) -> str:
    """The prediction and its strongest (condition, signed value) reasons, in words."""
    class_name, opening = alt_opening(explanation, space)
    if not pairs:
        return f"{opening} No feature stood out."
    reasons = "; ".join(f"{condition} ({'towards' if value > 0 else 'away from'} {class_name}, {value:+.3g})"
                        for condition, value in pairs)
    return f"{opening} Strongest features ({explanation.method.upper()}): {reasons}."
