"""Reads of a user's own account data."""

from __future__ import annotations

from rest_framework.authtoken.models import Token


def api_token_get(*, user) -> Token | None:
    """The user's API token, or None before they first create one (only ever the asking user's own)."""
    return Token.objects.filter(user=user).first()
