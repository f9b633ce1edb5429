"""The look every plot shares: colours, fonts, a title block, and conditions written as people read them."""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Sequence

import matplotlib
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter, MaxNLocator

from explanations.ml.explainers.base import readable_number

TOWARDS = "#0072B2"  # pushes towards the predicted class (Okabe-Ito blue)
AWAY = "#E69F00"  # pushes away from it (Okabe-Ito orange)
MUTED = "#9A9A9A"
INK = "#222222"
SOFT_INK = "#555555"
FONT_SIZE = 9.0
TITLE_SIZE = 11.0
SUBTITLE_SIZE = 9.0
WIDTH = 6.0  # inches: about 900 px at 150 dpi, crisp when a card shows it at ~500 px
LINE = 0.16  # inches per line of FONT_SIZE text, line spacing included

number_text = readable_number  # the one number formatter of every plot, tick and alt text: 129,243 · 0.0012

# Names are text, never markup: a column ``price_$^$`` or a class ``$\x$`` is drawn as typed. Mathtext would
# parse the dollars (and fail the job on a syntax error); LaTeX would need a TeX install and escape nothing.
# A ``Text`` reads ``text.parse_math`` when it is created, and tick labels are created while a figure is drawn,
# so this holds for the whole process (every module that draws imports this one) and ``figure_render``
# applies it again around every render.
PLAIN_TEXT_RC = {"text.parse_math": False, "text.usetex": False}
matplotlib.rcParams.update(PLAIN_TEXT_RC)


def wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=True)) or text


# A number beside a comparison, as explainers write thresholds ("age <= 28.00", "1.5e+05 < fnlwgt <= 2e+05").
_BOUND = re.compile(r"(?:(?<=[<>] )|(?<=[<>]= ))-?\d[\d.]*(?:e[+-]?\d+)?(?=$| )|^-?\d[\d.]*(?:e[+-]?\d+)?(?= < )")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def number_pretty(text: str) -> str:
    """A number stored as text (``"1.292e+05"``, ``"45.00"``) as ``number_text`` writes it; other text as it is."""
    return number_text(float(text)) if _NUMBER.fullmatch(text.strip()) else text


def condition_pretty(condition: str, width: int = 42) -> str:
    """``age <= 28.00`` -> ``age ≤ 28``, thresholds in readable numbers, wrapped so long names do not squeeze the bars.

    Only numbers beside ``<``/``>`` are rewritten: after ``=`` comes a category, drawn as typed.
    """
    return wrap(condition_text(condition), width)


def condition_text(condition: str) -> str:
    """A condition as ``condition_pretty`` writes it, on one line (for alt texts)."""
    condition = _BOUND.sub(lambda match: number_text(float(match.group())), condition)
    return condition.replace(" <= ", " ≤ ").replace(" >= ", " ≥ ")


def value_condition(name: str, value: str, *, categorical: bool) -> str:
    """``fnlwgt = 129,200`` for a number stored as ``1.292e+05``; a category as typed."""
    return f"{name} = {value if categorical else number_pretty(value)}"


def lines_of(labels: Sequence[str]) -> int:
    """The most lines any of these (already wrapped) labels takes."""
    return max((label.count("\n") + 1 for label in labels), default=1)


def row_pitch(labels: Sequence[str], minimum: float = 0.34) -> float:
    """Inches between two rows of a horizontal chart, so that its wrapped tick labels never touch."""
    return max(minimum, LINE * lines_of(labels) + 0.08)


def legend_above(ax: Axes, handles: Sequence[Artist], *, width: float = WIDTH * 0.8) -> None:
    """The legend above the axes, from their left edge: its entries wrapped to ``width`` inches, in as many columns
    as that width holds (measured, as the title is)."""
    size = FONT_SIZE - 0.5
    key = 2.8 * size / 72  # the handle and the gap after it (handlelength 2 + handletextpad 0.8, in font sizes)
    gap = 2.0 * size / 72  # columnspacing
    for handle in handles:
        handle.set_label("\n".join(lines_measured(handle.get_label(), width - key, size=size)))
    widths = [key + max(text_inches(line, size=size) for line in h.get_label().split("\n")) for h in handles]
    columns = 1
    for count in range(len(handles), 1, -1):
        per_column = -(-len(handles) // count)  # matplotlib fills each column in turn
        chunks = [widths[k:k + per_column] for k in range(0, len(widths), per_column)]
        if len(chunks) == count and sum(max(chunk) for chunk in chunks) + gap * (count - 1) <= width:
            columns = count
            break
    ax.legend(handles=list(handles), loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=columns, frameon=False,
              fontsize=size, borderaxespad=0.3)


def number_axis(axis, *, bins: int = 5, percent_values: bool = False) -> None:
    """Ticks in readable numbers (``129,243``, never ``1e6`` or an offset), few enough never to touch."""
    axis.set_major_locator(MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(FuncFormatter(lambda value, _: percent(value) if percent_values else number_text(value)))


@functools.cache
def _measurer() -> RendererAgg:
    return RendererAgg(10, 10, 72)  # at 72 dpi a pixel is a point


def text_inches(text: str, *, size: float, weight: str = "normal") -> float:
    """How wide ``text`` is drawn, measured by the renderer that draws the PNG (not guessed from its length)."""
    width, _, _ = _measurer().get_text_width_height_descent(text, FontProperties(size=size, weight=weight),
                                                            ismath=False)
    return width / 72


def lines_measured(text: str, inches: float, *, size: float, weight: str = "normal") -> list[str]:
    """``text`` wrapped at word boundaries into lines at most ``inches`` wide; a word wider than that is cut."""
    def fits(line: str) -> bool:
        return text_inches(line, size=size, weight=weight) <= inches

    lines: list[str] = []
    joinable = False  # the last line ends a whole word (not a piece of a cut one)
    for word in text.split():
        while len(word) > 1 and not fits(word):
            cut = next((k for k in range(len(word) - 1, 1, -1) if fits(word[:k])), 1)
            lines.append(word[:cut])
            word, joinable = word[cut:], False
        if lines and joinable and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
        joinable = True
    return lines


def figure_with_header(title: str, subtitle: str, body_height: float, width: float = WIDTH) -> tuple[Figure, SubFigure]:
    """A figure whose top holds the wrapped title and subtitle, and a body subfigure laid out automatically.

    Keeping the header in its own subfigure stops long titles from overlapping the axes' labels.
    """
    title_lines = lines_measured(title, width - 0.3, size=TITLE_SIZE, weight="bold") or [""]
    subtitle_lines = lines_measured(subtitle, width - 0.3, size=SUBTITLE_SIZE) if subtitle else []
    header_height = 0.3 + 0.2 * len(title_lines) + 0.17 * len(subtitle_lines)
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


def signed(value: float, digits: int = 3) -> str:
    """A weight with its sign, as the bars' labels write it: ``+0.21``, ``-0.0012``."""
    text = number_text(round_significant(value, digits))
    return text if text.startswith("-") else f"+{text}"


def round_significant(value: float, digits: int) -> float:
    return float(f"{float(value):.{digits}g}")


def alt_opening(explanation, space) -> tuple[str, str]:
    """The explained class's name, and the alt text's first sentence: ``Predicted spam (97%).``"""
    class_name = space.class_names[explanation.data.get("label", explanation.predicted)]
    return class_name, f"Predicted {class_name} ({percent(explanation.probabilities[explanation.predicted])})."


def features_alt_text(explanation, space, pairs: list[tuple[str, float]]) -> str:
    """The prediction and its strongest (condition, signed value) reasons, in words."""
    class_name, opening = alt_opening(explanation, space)
    if not pairs:
        return f"{opening} No feature stood out."
    reasons = "; ".join(f"{condition} ({'towards' if value > 0 else 'away from'} {class_name}, {signed(value)})"
                        for condition, value in pairs)
    return f"{opening} Strongest features ({explanation.method.upper()}): {reasons}."
