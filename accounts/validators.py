"""Password rules Django does not ship."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class NotOnlyWhitespaceValidator:
    """Eight spaces pass the length check and are in no list of common passwords, yet anyone would guess them."""

    def validate(self, password: str, user=None) -> None:
        if not password.strip():
            raise ValidationError("This password is only spaces (or other blank characters).", code="password_blank")

    def get_help_text(self) -> str:
        return "Your password can’t be only spaces."
