"""Issue 15, item 6: error pages in Japanese with a way forward, and no empty bodies."""

import pytest
from django.test import Client, override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def assert_japanese_page(response, status):
    assert response.status_code == status
    text = response.content.decode()
    assert text.strip(), "empty body"
    assert '<html lang="ja"' in text
    assert 'href="/"' in text or 'href="/admin/"' in text
    assert "Forbidden" not in text and "Not Found" not in text


def test_404_is_a_japanese_page_with_a_way_home():
    assert_japanese_page(Client().get("/no-such-page/"), 404)


def test_405_of_a_post_only_view_is_a_page(client, supervisor):
    client.force_login(supervisor)
    response = client.get(reverse("recordings:play", args=[1]))  # require_POST
    assert_japanese_page(response, 405)


def test_csrf_failure_is_a_japanese_page():
    response = Client(enforce_csrf_checks=True).post(reverse("admin:login"), {"username": "x"})
    assert_japanese_page(response, 403)


def test_permission_denied_is_a_japanese_page(client, operator):
    client.force_login(operator.user)
    response = client.get(reverse("admin:auth_user_changelist"))
    assert_japanese_page(response, 403)


@override_settings(DEBUG=False)
def test_500_is_a_japanese_page():
    from contactcenter import views

    response = views.server_error(Client().get("/").wsgi_request)
    assert_japanese_page(response, 500)


def test_an_empty_403_becomes_a_page():
    """A listening-by-phone address with a bad signature answered 403 with no body."""
    response = Client().get(reverse("portal:phone-audio", args=["not-signed"]))
    assert_japanese_page(response, 403)


def test_machines_endpoints_keep_their_plain_answers():
    response = Client().get(reverse("healthz"))
    assert "<html" not in response.content.decode()
