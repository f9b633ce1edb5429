"""The login lockout, as django-axes calls it: one per username + client address, for every login form.

Axes counts failures in the cache for each (username, address) pair only, so failures against one account or
from one client never lock anybody else out. The limit and cool-off are read from the EXPLAINER_ settings at each
call, so overriding those settings (tests, a deployment's environment) is all it takes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from axes.handlers.cache import AxesCacheHandler
from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def login_failure_limit(request: HttpRequest, credentials: dict | None) -> int:
    return settings.EXPLAINER_LOGIN_MAX_FAILURES


def login_cool_off(request: HttpRequest | None) -> timedelta:
    return timedelta(minutes=settings.EXPLAINER_LOGIN_LOCKOUT_MINUTES)


def login_username(request: HttpRequest, credentials: dict | None) -> str:
    """The username as typed, folded: "ALICE " is the same account as "alice" on a case-insensitive database."""
    source = credentials if credentials else request.POST
    return str(source.get("username") or "").strip().casefold()


class LoginLockoutHandler(AxesCacheHandler):
    """Axes' cache handler, failing open: with the cache down nobody is counted and everyone may still sign in,
    rather than every sign-in answering 500."""

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        try:
            return super().get_failures(request, credentials)
        except Exception:
            logger.exception("login lockout: cache unavailable")
            return 0

    def user_login_failed(self, sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
        try:
            super().user_login_failed(sender, credentials, request, **kwargs)
        except Exception:
            logger.exception("login lockout: cache unavailable")

    def user_logged_in(self, sender, request: HttpRequest, user, **kwargs) -> None:
        try:
            super().user_logged_in(sender, request, user, **kwargs)
        except Exception:
            logger.exception("login lockout: cache unavailable")
