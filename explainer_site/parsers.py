"""The API's JSON parser: strict and within bounds (query-string values: ``explainer_site.request_values``).

A body is refused here with a 400 naming the problem, so that nothing past this point meets ``NaN``, ``1e400``
(a float that is infinite), an int that overflows a float, nesting that exhausts Python's recursion limit or a
NUL character (PostgreSQL refuses it in text). No import of ``explainer_site.exceptions`` here: DRF imports
this module while it loads its settings, which ``explainer_site.exceptions`` itself triggers.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

JSON_MAX_DEPTH = 32
JSON_MAX_INT = 2**63 - 1
STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


def json_too_deep(text: str, limit: int = JSON_MAX_DEPTH) -> bool:
    """Whether ``text`` nests arrays and objects deeper than ``limit``, counted without recursion (brackets inside
    strings skipped): Python's own parser would raise ``RecursionError`` at about 1,000 levels."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = re.sub(r"[^\[\]{}]", "", STRING.sub("", text))
    return bool(brackets) and max(accumulate(map(BRACKET_STEP.__getitem__, brackets))) > limit


def json_constant_refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a finite number")


def json_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:20]} is too large")
    return number


def json_int(text: str) -> int:
    number = int(text)  # over 4,300 digits this raises ValueError itself
    if abs(number) > JSON_MAX_INT:
        raise ValueError(f"the number {text[:20]}... is too large")
    return number


def json_strict_loads(text: str) -> Any:
    """``json.loads`` for input from outside; ``ValueError`` with a sentence for anything refused."""
    if json_too_deep(text):
        raise ValueError(f"nested more than {JSON_MAX_DEPTH} levels deep")
    if ESCAPED_NUL.search(text):
        raise ValueError("text may not contain the NUL character (\\u0000)")
    try:
        return json.loads(text, parse_constant=json_constant_refuse, parse_float=json_float, parse_int=json_int)
    except RecursionError:  # cannot happen below JSON_MAX_DEPTH; kept so that it is never a 500
        raise ValueError("nested too deeply") from None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing NaN/Infinity, numbers out of range, deep nesting and NUL characters."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"JSON parse error - the body is not {encoding} text.") from None
        try:
            return json_strict_loads(text)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
