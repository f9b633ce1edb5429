"""The API's JSON parser: strict and within bounds (query-string values: ``explainer_site.request_values``).

A body is refused here with a 400 naming the problem, so that nothing past this point meets ``NaN``, ``1e400``
(a float that is infinite), an int that overflows a float, nesting that exhausts Python's recursion limit, a
NUL character (PostgreSQL refuses it in text) or a lone surrogate (no character at all). No import of
``explainer_site.exceptions`` here: DRF imports this module while it loads its settings, which
``explainer_site.exceptions`` itself triggers.
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
SUSPECT_NUMBER = re.compile(r"\d{19}|[eE][-+]?\d{3}")  # an int past int64 or a float past 1e308 needs one
BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # half of a pair, perhaps alone


def json_too_deep(bare: str, limit: int = JSON_MAX_DEPTH) -> bool:
    """Whether JSON text whose strings were taken out (``bare``) nests arrays and objects deeper than ``limit``,
    counted without recursion: Python's own parser raises ``RecursionError`` at about 1,000 levels."""
    if bare.count("[") + bare.count("{") <= limit:
        return False
    brackets = re.sub(r"[^\[\]{}]", "", bare)
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
    bare = STRING.sub("", text)
    if json_too_deep(bare):
        raise ValueError(f"nested more than {JSON_MAX_DEPTH} levels deep")
    if ESCAPED_NUL.search(text):
        raise ValueError("text may not contain the NUL character (\\u0000)")
    # The number hooks are Python calls per number: only for bodies holding a number that could be out of range.
    hooks = {"parse_float": json_float, "parse_int": json_int} if SUSPECT_NUMBER.search(bare) else {}
    try:
        value = json.loads(text, parse_constant=json_constant_refuse, **hooks)
    except RecursionError:  # cannot happen below JSON_MAX_DEPTH; kept so that it is never a 500
        raise ValueError("nested too deeply") from None
    if ESCAPED_SURROGATE.search(text):  # a lone one is no character: saving or rendering it raised UnicodeEncodeError
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValueError("text may not contain a lone surrogate escape (\\ud800 to \\udfff)") from None
    return value


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
