"""Schemas for text and images: which column holds the text, how pixel columns fold into an image.

A schema with ``text: [column]`` is a text dataset (the classifiers read that column only); one with
``image_shape: [height, width]`` or ``[height, width, channels]`` is an image dataset whose feature columns,
in order, are the pixels row by row. Tabular schemas carry neither key.
"""

from __future__ import annotations

import math
import re

from explainer_site.exceptions import ApplicationError

IMAGE_SIDE_MIN = 4
PIXEL_COLUMNS_MIN = 16
PIXEL_NAME = re.compile(r"^(?P<prefix>[A-Za-z_]*?)[_-]?(?P<index>\d+)$")


def text_column_clean(*, columns: dict[str, dict], text: list[str], label: str) -> str:
    """The one text column, checked: it exists, is not the label and holds words rather than numbers."""
    text = [t for t in dict.fromkeys(text or []) if t]
    if len(text) != 1:
        raise ApplicationError("Pick one column of free text (several text columns are not supported yet).",
                               {"field": "text"})
    name = text[0]
    if name not in columns:
        raise ApplicationError(f"There is no column called “{name}” to read text from.", {"field": "text"})
    if name == label:
        raise ApplicationError(f"“{name}” is the column you predict; pick another column as the text.", {"field": "text"})
    if columns[name]["dtype"] == "numeric":
        raise ApplicationError(f"“{name}” holds numbers, not text. Pick the column with the messages or documents.",
                               {"field": "text"})
    return name


def image_shape_clean(*, columns: dict[str, dict], image_shape: list, features: list[str]) -> list[int]:
    """``[h, w]`` or ``[h, w, c]`` whose pixel count matches the ticked numeric columns."""
    try:
        shape = [int(s) for s in image_shape]
        if any(not isinstance(s, (int, str)) and s != int(s) for s in image_shape):  # 2.5; float() of 10**400 overflowed
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ApplicationError("The image shape must be whole numbers: height, width and optionally channels, "
                               "e.g. 28 × 28.", {"field": "image_shape"}) from None
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ApplicationError("Give the image shape as height × width (grey) or height × width × 3 (colour).",
                               {"field": "image_shape"})
    if min(shape[:2]) < IMAGE_SIDE_MIN:
        raise ApplicationError(f"Images must be at least {IMAGE_SIDE_MIN} × {IMAGE_SIDE_MIN} pixels.", {"field": "image_shape"})
    words = [f for f in features if columns[f]["dtype"] != "numeric"]
    if words:
        raise ApplicationError(f"Pixel columns must hold numbers; {', '.join(words[:5])} do{'es' if len(words) == 1 else ''} not. "
                               "Untick them.", {"field": "features"})
    pixels = math.prod(shape)
    if pixels != len(features):
        raise ApplicationError(
            f"An image of {' × '.join(map(str, shape))} has {pixels:,} pixel values, but {len(features):,} feature columns "
            f"are ticked. Tick exactly the pixel columns, or fix the shape"
            + (f" (for {len(features):,} columns: {' × '.join(map(str, image_shape_infer(len(features))))})."
               if image_shape_infer(len(features)) else "."), {"field": "image_shape"})
    return shape


def image_shape_infer(n_pixels: int) -> list[int] | None:
    """Square images: 784 -> [28, 28]; 3 * 32 * 32 -> [32, 32, 3]."""
    for channels in (1, 3):
        side = math.isqrt(n_pixels // channels) if n_pixels % channels == 0 else 0
        if side >= IMAGE_SIDE_MIN and side * side * channels == n_pixels:
            return [side, side] if channels == 1 else [side, side, 3]
    return None


def pixel_columns(columns: list[dict]) -> list[str]:
    """Numeric columns named like ``pixel0``…``pixel783`` (one prefix, consecutive numbers), in their order."""
    by_prefix: dict[str, list[tuple[int, str]]] = {}
    for column in columns:
        match = PIXEL_NAME.match(column["name"])
        if match and column["dtype"] == "numeric":
            by_prefix.setdefault(match["prefix"].lower(), []).append((int(match["index"]), column["name"]))
    best = max(by_prefix.values(), key=len, default=[])
    indices = [i for i, _ in best]
    if len(best) < PIXEL_COLUMNS_MIN or indices != list(range(indices[0], indices[0] + len(indices))):
        return []
    return [name for _, name in best]


def schema_default_media(columns: list[dict], label_values: dict) -> dict | None:
    """A first guess for datasets that are clearly images (square pixel columns) or texts (a free-text column
    and nothing else to learn from); ``None`` for tables."""
    pixels = pixel_columns(columns)
    shape = image_shape_infer(len(pixels)) if pixels else None
    if shape:
        labels = [c["name"] for c in columns if c["name"] not in pixels and c["name"] in label_values
                  and 2 <= c["n_unique"] <= 100]
        if labels:
            return {"label": labels[-1], "features": pixels, "categorical": [], "image_shape": shape}
    texts = [c for c in columns if c["dtype"] == "text"]
    others = [c for c in columns if c["dtype"] != "text" and not (c["name"] in label_values and 2 <= c["n_unique"] <= 50)]
    labels = [c["name"] for c in columns if c["dtype"] != "text" and c["name"] in label_values and 2 <= c["n_unique"] <= 50]
    if texts and labels and not others:
        return {"label": labels[-1], "features": [texts[0]["name"]], "categorical": [], "text": [texts[0]["name"]]}
    return None
