"""Logins that cannot be brute-forced or used to lock others out: one lockout for the site's and the admin's login
forms, keyed by username + client address (the proxy's header only when trusted), and a throttled sign-up that
runs Django's password validators."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client, RequestFactory

from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password-1"
LOCKED = b"Too many failed sign-in attempts. Wait 15 minutes and try again."


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)


def login(path: str, username: str, password: str, client: Client | None = None, **headers):
    client = client or Client()
    response = client.post(path, {"username": username, "password": password}, **{"REMOTE_ADDR": "10.0.0.1", **headers})
    return client, response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# ---------------------------------------------------------------- one lockout for every login form


def test_the_admin_login_is_locked_after_too_many_failures(staff):
    for _ in range(25):
        login("/admin/login/", "root", "wrong-password")
    client, response = login("/admin/login/", "root", PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    assert LOCKED in response.content


def test_a_lock_from_the_main_login_also_blocks_the_admin(staff):
    for _ in range(5):
        login("/accounts/login/", "root", "wrong-password")
    client, response = login("/admin/login/", "root", PASSWORD)
    assert response.status_code == 429 and not signed_in(client)


def test_a_lock_from_the_admin_also_blocks_the_main_login(staff):
    for _ in range(5):
        login("/admin/login/", "root", "wrong-password")
    client, response = login("/accounts/login/", "root", PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    assert LOCKED in response.content


def test_the_admin_login_still_signs_a_staff_member_in(staff):
    client, response = login("/admin/login/", "root", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_the_api_takes_no_password_so_it_needs_no_lockout(user):
    """Tokens and sessions only: HTTP Basic (a password path the lockout would not see) is refused."""
    import base64

    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    response = Client().get("/api/datasets/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code in (401, 403)


# ---------------------------------------------------------------- keyed per username + address


def test_spraying_random_usernames_from_one_address_locks_no_other_account(user):
    for _ in range(30):
        login("/accounts/login/", f"nobody-{uuid.uuid4().hex[:8]}", "guess")
    client, response = login("/accounts/login/", "alice", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_failures_against_one_account_leave_other_accounts_at_that_address_alone(user, other_user):
    for _ in range(10):
        login("/accounts/login/", "mallory", "wrong-password")
    assert login("/accounts/login/", "mallory", "a-long-password-2")[1].status_code == 429
    client, response = login("/accounts/login/", "alice", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_a_spoofed_x_forwarded_for_is_ignored_by_default(user):
    for i in range(5):
        login("/accounts/login/", "alice", "wrong-password", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    client, response = login("/accounts/login/", "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.50")
    assert response.status_code == 429 and not signed_in(client)


def test_behind_a_trusted_proxy_the_client_address_comes_from_its_header(user, settings):
    settings.EXPLAINER_TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "172.18.0.2"}
    for i in range(5):  # the attacker sends its own X-Forwarded-For; the proxy appends the address it saw
        login("/accounts/login/", "alice", "wrong-password", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 198.51.100.7", **proxy)
    assert login("/accounts/login/", "alice", PASSWORD, HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.7",
                 **proxy)[1].status_code == 429
    client, response = login("/accounts/login/", "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy)
    assert response.status_code == 302 and signed_in(client)  # the same proxy, another person: not locked


def test_client_address_reads_the_trusted_header_only_when_configured(settings):
    from accounts.client_address import client_address

    request = RequestFactory().get("/", REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7",
                                   HTTP_X_REAL_IP="192.0.2.4")
    assert client_address(request) == "172.18.0.2"
    settings.EXPLAINER_TRUSTED_PROXY_COUNT = 1
    assert client_address(request) == "198.51.100.7"
    settings.EXPLAINER_TRUSTED_PROXY_COUNT = 2
    assert client_address(request) == "6.6.6.6"
    settings.EXPLAINER_TRUSTED_PROXY_COUNT = 3  # fewer entries than proxies: the request did not come through them
    assert client_address(request) == "172.18.0.2"
    settings.EXPLAINER_TRUSTED_PROXY_COUNT = 1
    settings.EXPLAINER_CLIENT_IP_HEADER = "X-Real-IP"
    assert client_address(request) == "192.0.2.4"
    settings.EXPLAINER_CLIENT_IP_HEADER = "X-Forwarded-For"
    garbage = RequestFactory().get("/", REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR="not-an-address")
    assert client_address(garbage) == "172.18.0.2"


def test_a_cache_outage_does_not_stop_anyone_signing_in(user, monkeypatch):
    """No cache, no counting: signing in matters more than the limit (and it must not answer 500)."""
    from axes.handlers.proxy import AxesProxyHandler

    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("cache down")
            return fail

    monkeypatch.setattr(AxesProxyHandler.get_implementation(), "cache", Down())
    assert login("/accounts/login/", "alice", "wrong-password")[1].status_code == 200
    client, response = login("/accounts/login/", "alice", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


# ---------------------------------------------------------------- sign-up


def signup(username: str, password: str = "a-very-long-pass-9", ip: str = "10.0.0.9"):
    client = Client()
    response = client.post("/accounts/signup/", {"username": username, "password1": password, "password2": password},
                           REMOTE_ADDR=ip)
    return client, response


@pytest.mark.parametrize("password, message", [
    (" " * 8, b"only spaces"),
    ("\t \n  \u00a0   ", b"only spaces"),
    ("73920418562", b"entirely numeric"),
])
def test_sign_up_refuses_weak_passwords(password, message):
    client, response = signup("newbie", password)
    assert response.status_code == 200 and message in response.content
    assert not get_user_model().objects.filter(username="newbie").exists() and not signed_in(client)


def test_sign_up_is_throttled_per_address(settings):
    settings.EXPLAINER_SIGNUP_PER_HOUR = 5
    for i in range(5):
        assert signup(f"person{i}")[1].status_code == 302
    client, response = signup("person5")
    assert response.status_code == 429 and not signed_in(client)
    assert b"Too many sign-up attempts from your address. Wait 60 minutes and try again." in response.content
    assert not get_user_model().objects.filter(username="person5").exists()
    assert signup("person6", ip="10.0.0.10")[1].status_code == 302  # another address is not throttled


def test_taken_usernames_count_against_the_throttle_so_enumeration_is_capped(user, settings):
    settings.EXPLAINER_SIGNUP_PER_HOUR = 5
    for _ in range(5):
        response = signup("alice")[1]
        assert response.status_code == 200 and b"already exists" in response.content
    response = signup("alice")[1]
    assert response.status_code == 429 and b"already exists" not in response.content
    assert signup("someone-new")[1].status_code == 429
