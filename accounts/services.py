"""Sign-in rate limiting: failed attempts counted in the cache per username + client address, and per address."""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

ADDRESS_FACTOR = 4  # one address may fail this many times the per-account limit, across all usernames


def login_keys(*, username: str, ip: str) -> list[tuple[str, int]]:
    """Cache keys with their failure limits: the username at this address, and the address alone."""
    account = hashlib.sha256(f"{username.strip().lower()}|{ip}".encode()).hexdigest()[:32]
    address = hashlib.sha256(ip.encode()).hexdigest()[:32]
    limit = settings.EXPLAINER_LOGIN_MAX_FAILURES
    return [(f"login-failures:{account}", limit), (f"login-failures-ip:{address}", limit * ADDRESS_FACTOR)]


def login_lockout_minutes(*, username: str, ip: str) -> int:
    """Whole minutes until this username may try again from this address; 0 when it may try now."""
    try:
        until = max((cache.get(f"{key}:until") or 0) for key, _ in login_keys(username=username, ip=ip))
    except Exception:  # no cache, no limit: signing in matters more than counting
        logger.exception("login rate limit: cache unavailable")
        return 0
    return max(math.ceil((until - time.time()) / 60), 0)


def login_failure_record(*, username: str, ip: str) -> None:
    window = settings.EXPLAINER_LOGIN_LOCKOUT_MINUTES * 60
    try:
        for key, limit in login_keys(username=username, ip=ip):
            cache.add(key, 0, window)
            if cache.incr(key) >= limit:
                cache.set(f"{key}:until", time.time() + window, window)
                cache.delete(key)
    except Exception:
        logger.exception("login rate limit: cache unavailable")


def login_failures_clear(*, username: str, ip: str) -> None:
    """A successful sign-in forgets this account's failures (not the address's)."""
    try:
        cache.delete(login_keys(username=username, ip=ip)[0][0])
    except Exception:
        logger.exception("login rate limit: cache unavailable")
