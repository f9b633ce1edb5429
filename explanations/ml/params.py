"""User-settable parameters: what a form field shows and how a value is checked (pure Python, no numpy).

The web side validates a job's settings with these before any numeric library is loaded; the explainers and
classifiers declare theirs in ``explanations.ml.catalogue``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def number_parse(value: Any, *, whole: bool) -> int | float:
    """A JSON number or a form's text as a finite number (a whole one when ``whole``); ``ValueError`` otherwise.

    Refuses what ``int()``/``float()`` would take or crash on further down: bools, lists, NaN, infinities,
    ``1e400`` and ints too large for a float (``OverflowError``), strings past Python's digit limit.
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)) or isinstance(value, str) and len(value) > 64:
        raise ValueError(value)
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(value) from None
    if not math.isfinite(number):
        raise ValueError(value)
    if not whole:
        return number
    if isinstance(value, str):
        return int(value)  # "2.5" and "1e3" are not whole numbers as typed
    if number != int(number):
        raise ValueError(value)
    return int(value)


def value_shown(value: Any) -> str:
    """A user's value quoted in a message: short, and never ``repr`` of a huge int (which raises past 4,300 digits)."""
    text = "a very large number" if isinstance(value, int) and abs(value) >= 2**64 else repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


@dataclass(frozen=True)
class Param:
    """One user-settable parameter: enough to validate input and to render a form field.

    Kinds: ``int``, ``float`` (bounded by ``min``/``max``), ``choice``, ``bool``, ``text`` (a short string),
    ``features`` (a list of the dataset's feature names; ``default=FEATURES_PROTECTED`` starts from the columns
    that look like personal attributes, ``protected_features``) and ``bounds`` (``{feature: [low, high]}``, either
    side ``None``; typed on a form as lines ``duration: 6, 48``). Feature names are checked against the dataset
    when ``params_clean`` is given its features.
    """

    name: str
    label: str
    default: Any
    kind: str = "int"  # "int" | "float" | "choice" | "bool" | "text" | "features" | "bounds"
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def clean(self, value: Any, features: Sequence[str] | None = None) -> Any:
        """Coerce and bound-check ``value``; raise ``ValueError`` with a sentence a user can act on."""
        if self.kind in ("features", "bounds"):
            return (feature_list_clean if self.kind == "features" else bounds_clean)(self, value, features)
        if value is None or value == "":
            return self.default
        if self.kind == "text":
            if not isinstance(value, (str, int, float)) or isinstance(value, bool) or len(str(value)) > 200:
                raise ValueError(f"{self.label} must be a short text (got {value_shown(value)}).")
            return str(value).strip()
        if self.kind == "bool":
            if isinstance(value, str):
                return value.lower() in {"1", "true", "on", "yes"}
            return bool(value)
        if self.kind == "choice":
            if str(value) not in self.choices:
                raise ValueError(f"{self.label} must be one of {', '.join(self.choices)} (got {value_shown(value)}).")
            return str(value)
        try:
            number = number_parse(value, whole=self.kind == "int")
        except ValueError:
            raise ValueError(f"{self.label} must be a{'n integer' if self.kind == 'int' else ' number'} "
                             f"(got {value_shown(value)}).") from None
        if self.min is not None and number < self.min or self.max is not None and number > self.max:
            raise ValueError(f"{self.label} must be between {self.min:g} and {self.max:g} (got {number:g}).")
        return number

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["choices"] = list(self.choices)
        return data


# A ``features`` parameter's default: the columns ``protected_features`` finds, resolved once the features are known.
FEATURES_PROTECTED = "protected"
PROTECTED_WORDS = frozenset({"age", "sex", "gender", "race", "ethnicity", "ethnic", "marital", "nationality",
                             "native", "citizenship", "religion"})


def protected_features(feature_names: Sequence[str]) -> list[str]:
    """Columns whose name looks like age, sex/gender, race/ethnicity, marital status or nationality (by word,
    case-insensitive: ``age`` and ``marital-status`` do, ``page`` and ``mileage`` do not)."""
    def words(name: str) -> set[str]:
        spaced = "".join(f" {c}" if c.isupper() and i and name[i - 1].islower() else c for i, c in enumerate(name))
        return {word for word in "".join(c if c.isalnum() else " " for c in spaced.lower()).split()}

    return [name for name in feature_names if words(str(name)) & PROTECTED_WORDS]


def features_default(param: Param, feature_names: Sequence[str]) -> list[str]:
    """What a ``features`` parameter holds on this dataset when the user said nothing."""
    if param.default == FEATURES_PROTECTED:
        return protected_features(feature_names)
    return [name for name in (param.default or []) if name in feature_names]


def _unknown_features(param: Param, names: Sequence[str], features: Sequence[str] | None) -> None:
    unknown = [name for name in names if features is not None and name not in features]
    if unknown:
        raise ValueError(f"{param.label}: {', '.join(value_shown(n) for n in unknown[:5])} "
                         f"{'is not a feature' if len(unknown) == 1 else 'are not features'} of this dataset.")


def feature_list_clean(param: Param, value: Any, features: Sequence[str] | None) -> Any:
    """A list of feature names (a comma-separated text too); ``None`` keeps the default, resolved on the features
    when they are known."""
    if value is None:
        return param.default if features is None else features_default(param, features)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(name, str) and len(name) <= 200 for name in value) or len(value) > 2000:
        raise ValueError(f"{param.label} must be a list of feature names (got {value_shown(value)}).")
    names = list(dict.fromkeys(value))
    _unknown_features(param, names, features)
    return names


def bounds_clean(param: Param, value: Any, features: Sequence[str] | None) -> dict[str, list[float | None]]:
    """``{feature: [low, high]}`` from an object (``[low, high]`` or ``{"min": .., "max": ..}``) or form lines
    ``duration: 6, 48`` (a side left empty is open)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        lines = [line.strip() for line in value.replace(";", "\n").splitlines() if line.strip()]
        value = {}
        for line in lines:
            name, colon, sides = line.rpartition(":")
            if not colon or sides.count(",") != 1:
                raise ValueError(f"{param.label}: write one feature per line as “name: low, high” (got {value_shown(line)}).")
            value[name.strip()] = [side.strip() or None for side in sides.split(",")]
    if not isinstance(value, dict) or len(value) > 2000:
        raise ValueError(f"{param.label} must be an object such as {{\"duration\": [6, 48]}} (got {value_shown(value)}).")
    out: dict[str, list[float | None]] = {}
    for name, sides in value.items():
        if isinstance(sides, dict):
            sides = [sides.get("min"), sides.get("max")]
        if not isinstance(sides, (list, tuple)) or len(sides) != 2:
            raise ValueError(f"{param.label}: give {value_shown(name)} a pair [low, high] (got {value_shown(sides)}).")
        try:
            low, high = (None if side is None or side == "" else float(number_parse(side, whole=False)) for side in sides)
        except ValueError:
            raise ValueError(f"{param.label}: the bounds of {value_shown(name)} must be numbers (got {value_shown(sides)}).") from None
        if low is not None and high is not None and low > high:
            raise ValueError(f"{param.label}: the low bound of {value_shown(name)} is above its high bound.")
        out[str(name)] = [low, high]
    _unknown_features(param, list(out), features)
    return out


def params_clean(spec: tuple[Param, ...], values: dict[str, Any] | None, *,
                 features: Sequence[str] | None = None) -> dict[str, Any]:
    """Validate a user's parameter dict against ``spec``; unknown names are an error, missing ones get defaults.

    ``features``: the dataset's feature names, when known, to check (and resolve the defaults of) ``features``
    and ``bounds`` parameters."""
    if values is not None and not isinstance(values, dict):
        raise ValueError(f"settings must be an object such as {{\"name\": value}} (got {value_shown(values)}).")
    values = dict(values or {})
    known = {p.name for p in spec}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown parameter(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known)) or 'none'}.")
    return {p.name: p.clean(values.get(p.name), features) for p in spec}
