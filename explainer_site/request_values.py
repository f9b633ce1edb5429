"""Values from the query string (``?row=5&feature=age``) and from posted forms, read strictly: an
``ApplicationError`` naming the parameter (a 400), never a 500 from ``int()`` or from the database."""

from __future__ import annotations

from django.http import QueryDict

from explainer_site.exceptions import ApplicationError

QUERY_TEXT_MAX = 1000


def query_int(params: QueryDict, name: str, *, maximum: int = 2**31 - 1) -> int | None:
    """``?name=`` as a whole number from 0 to ``maximum``, or None when absent; ASCII digits only
    (``"²".isdigit()`` is true but ``int("²")`` fails; 5,000 digits pass ``isdigit`` and fail ``int``)."""
    raw = params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise ApplicationError(f"{name} must be a whole number.", {"field": name})
    if len(raw) > len(str(maximum)) or int(raw) > maximum:
        raise ApplicationError(f"{name} must be a whole number from 0 to {maximum}.", {"field": name})
    return int(raw)


def query_text(params: QueryDict, name: str, default: str = "") -> str:
    """``?name=`` as text: bounded in length and free of NUL characters (which PostgreSQL refuses)."""
    raw = params.get(name, default)
    if len(raw) > QUERY_TEXT_MAX or "\x00" in raw:
        raise ApplicationError(f"{name} must be text of at most {QUERY_TEXT_MAX} characters, without NUL characters.",
                               {"field": name})
    return raw


def form_text_check(data: QueryDict) -> None:
    """A posted form holds no NUL character: PostgreSQL refuses it in text and in JSON, as a 500 at save time."""
    for name, values in data.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            shown = name.replace("\x00", "")
            raise ApplicationError(f"“{shown}” holds a NUL character; remove it and send again.", {"field": shown})
