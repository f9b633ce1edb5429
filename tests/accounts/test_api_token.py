"""The account page (issue 17, item 2): a logged-in user sees how to use the API and creates, reveals and
regenerates their own API token; the new key authenticates the API and the old one answers 401."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


def datasets_status(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/datasets/").status_code


def test_the_user_menu_links_to_the_account_page(client, user):
    client.force_login(user)
    html = client.get("/datasets/").content.decode()
    assert 'href="/accounts/"' in html and "Your account and API token" in html


def test_a_new_user_creates_a_token_that_authenticates_the_api(client, user):
    client.force_login(user)
    page = client.get("/accounts/")
    html = page.content.decode()
    assert page.status_code == 200 and "You have no API token yet" in html and "Create my API token" in html
    assert "no-store" in page["Cache-Control"]  # the page will show a secret: never cached
    assert "Authorization: Token YOUR_TOKEN" in html and "http://testserver/api/datasets/" in html
    assert not Token.objects.filter(user=user).exists()  # looking is not creating

    response = client.post("/accounts/token/", {"action": "create"})
    assert response.status_code == 302 and response["Location"] == "/accounts/#api-token"
    key = Token.objects.get(user=user).key
    html = client.get("/accounts/").content.decode()
    assert f'value="{key}"' in html and "Make a new token" in html and 'data-confirm="Make a new API token?' in html
    assert datasets_status(key) == 200
    client.post("/accounts/token/", {"action": "create"})  # a second click keeps the same token
    assert Token.objects.get(user=user).key == key


def test_regenerating_replaces_the_token_and_the_old_one_answers_401(client, user):
    old = Token.objects.create(user=user).key
    client.force_login(user)
    response = client.post("/accounts/token/", {"action": "regenerate"}, follow=True)
    new = Token.objects.get(user=user).key
    assert new != old and "The old one no longer works" in response.content.decode()
    assert datasets_status(new) == 200
    assert datasets_status(old) == 401


def test_the_page_never_shows_another_users_token(client, user, other_user):
    theirs = Token.objects.create(user=other_user).key
    client.force_login(user)
    assert theirs not in client.get("/accounts/").content.decode()
    client.post("/accounts/token/", {"action": "regenerate"})
    assert Token.objects.get(user=other_user).key == theirs  # only one's own token is ever replaced
    assert theirs not in client.get("/accounts/").content.decode()


def test_token_changes_need_a_login_and_the_csrf_token(user):
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.get("/accounts/")["Location"].startswith("/accounts/login/")
    assert anonymous.post("/accounts/token/", {"action": "create"}).status_code == 403
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(user)
    assert forged.post("/accounts/token/", {"action": "create"}).status_code == 403
    assert not Token.objects.filter(user=user).exists()
    assert forged.get("/accounts/token/")["Location"] == "/accounts/#api-token"  # a GET changes nothing
    assert not Token.objects.filter(user=user).exists()
