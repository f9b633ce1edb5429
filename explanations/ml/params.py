"""User-settable parameters: what a form field shows and how a value is checked (pure Python, no numpy).

The web side validates a job's settings with these before any numeric library is loaded; the explainers and
classifiers declare theirs in ``explanations.ml.catalogue``.
"""

from __future__ import annotations

import math
import numbers
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
    """One user-settable parameter: enough to validate input and to render a form field."""

    name: str
    label: str
    default: Any
    kind: str = "int"  # "int" | "float" | "choice" | "bool"
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def clean(self, value: Any) -> Any:
        """Coerce and bound-check ``value``; raise ``ValueError`` with a sentence a user can act on."""
        if value is None or value == "":
            return self.default
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


def params_clean(spec: tuple[Param, ...], values: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a user's parameter dict against ``spec``; unknown names are an error, missing ones get defaults."""
    if values is not None and not isinstance(values, dict):
        raise ValueError(f"settings must be an object such as {{\"name\": value}} (got {value_shown(values)}).")
    values = dict(values or {})
    known = {p.name for p in spec}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown parameter(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known)) or 'none'}.")
    return {p.name: p.clean(values.get(p.name)) for p in spec}
