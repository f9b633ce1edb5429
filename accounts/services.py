"""Sign-up throttling: attempts counted per client address in the cache (login lockouts are django-axes's, see
``accounts.lockout``); a user's API token, made and remade from the account page."""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from rest_framework.authtoken.models import Token

from explainer_site.exceptions import ApplicationError

logger = logging.getLogger(__name__)

SIGNUP_WINDOW_SECONDS = 3600


def signup_attempt_register(*, address: str) -> None:
    """Count one sign-up attempt from this address, whatever its outcome, and refuse it past the hourly limit.

    Counting refusals too (a taken username, a weak password) caps how fast one client can create accounts or
    learn which usernames exist. With no cache nothing is counted: signing up matters more than the limit.
    """
    limit = settings.EXPLAINER_SIGNUP_PER_HOUR
    if limit <= 0:
        return
    key = "signup-attempts:" + hashlib.sha256(address.encode()).hexdigest()[:32]
    try:
        cache.add(f"{key}:until", time.time() + SIGNUP_WINDOW_SECONDS, SIGNUP_WINDOW_SECONDS)
        cache.add(key, 0, SIGNUP_WINDOW_SECONDS)
        attempts = cache.incr(key)
        until = cache.get(f"{key}:until") or time.time() + SIGNUP_WINDOW_SECONDS
    except Exception:
        logger.exception("sign-up throttle: cache unavailable")
        return
    if attempts > limit:
        minutes = max(math.ceil((until - time.time()) / 60), 1)
        raise ApplicationError(
            f"Too many sign-up attempts from your address. Wait {minutes} minute{'s' if minutes != 1 else ''} "
            "and try again.", status=429)


@transaction.atomic
def api_token_create(*, user) -> Token:
    """The user's API token (Django REST framework's), made the first time they ask for it on the account page."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def api_token_regenerate(*, user) -> Token:
    """A new key for the user's token. The old key stops working at once: REST framework looks every request's key
    up in this table, so deleting its row is enough."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
