"""The hosted pages' language (OIDC Core §3.1.2.1 ``ui_locales``, idp.i18n), against the live
server: chosen from ui_locales (the first supported tag wins), else Accept-Language, else
English; kept by every page of the login; ``<html lang>`` follows."""

from __future__ import annotations

import re

import pytest
import requests

from idp.i18n import fr
from tests.helpers import Browser, auth_params, hidden_inputs, login_form_action, pkce


@pytest.fixture
def client(op):
    return op.factory.gen_client()


def _login_page(op, client, headers=None, **extra) -> tuple[requests.Session, requests.Response]:
    http = requests.Session()
    params = auth_params(client, pkce()[1], **extra)
    resp = http.get(f"{op.url}/authorize", params=params, headers=headers or {})
    assert resp.status_code == 200 and login_form_action(resp.text), resp.text[:300]
    return http, resp


def _lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', page)
    assert found is not None
    return found.group(1)


def test_ui_locales_chooses_french(op, client):
    _http, resp = _login_page(op, client, ui_locales="fr-CA en")
    assert _lang(resp.text) == "fr"
    assert "<h1>Connexion</h1>" in resp.text and ">Mot de passe<" in resp.text
    assert "Forgot your password?" not in resp.text


def test_the_first_supported_ui_locale_wins_over_accept_language(op, client):
    _http, resp = _login_page(op, client, {"Accept-Language": "fr"}, ui_locales="de en fr")
    assert _lang(resp.text) == "en" and "<h1>Sign in</h1>" in resp.text


def test_accept_language_when_ui_locales_has_nothing_we_have(op, client):
    headers = {"Accept-Language": "de-DE;q=0.9, fr-CH;q=0.8, en;q=0.5"}
    _http, resp = _login_page(op, client, headers, ui_locales="de")
    assert _lang(resp.text) == "fr" and "<h1>Connexion</h1>" in resp.text
    assert "Accept-Language" in resp.headers.get("Vary", "")


def test_english_by_default(op, client):
    _http, resp = _login_page(op, client, {"Accept-Language": "ja"})
    assert _lang(resp.text) == "en" and "<h1>Sign in</h1>" in resp.text


def test_every_page_of_the_login_keeps_the_language(op, client):
    """A wrong password is answered by /interaction/<uid>/login, in French, with no header."""
    http, resp = _login_page(op, client, ui_locales="fr")
    fields = hidden_inputs(resp.text) | {"email": "nobody@example.test", "password": "wrong-pw"}
    again = http.post(op.url + login_form_action(resp.text), data=fields)
    assert _lang(again.text) == "fr"
    assert fr.MESSAGES["Wrong email or password."] in again.text.replace("&#39;", "'")


def test_sign_up_page_in_french(op, client):
    http, resp = _login_page(op, client, ui_locales="fr")
    uid = login_form_action(resp.text).split("/")[2]
    page = http.get(f"{op.url}/interaction/{uid}/signup")
    if page.status_code == 404:  # sign-up switched off on this server
        pytest.skip("sign-up disabled")
    assert _lang(page.text) == "fr" and "Créez votre compte" in page.text.replace("&#39;", "'")
    # the password policy's refusals, formatted with their numbers before translation
    form = hidden_inputs(page.text) | {"email": "not-an-address", "password": "short"}
    refused = http.post(f"{op.url}/interaction/{uid}/signup", data=form)
    text = refused.text.replace("&#39;", "'")
    assert "Saisissez une adresse e-mail valide." in text
    assert re.search(r"Utilisez au moins \d+ caractères\.", text), text[:2000]


def test_error_page_follows_accept_language(op):
    resp = requests.get(f"{op.url}/interaction/nope/consent", headers={"Accept-Language": "fr"})
    assert _lang(resp.text) == "fr"
    assert "Demande expirée" in resp.text or "Lien de connexion expiré" in resp.text


def test_mfa_page_in_french(op, client):
    user = op.factory.gen_user()
    browser = Browser(op.url)
    mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
    params = auth_params(client, pkce()[1], ui_locales="fr", acr_values=mfa)
    result = browser.authorize(params, user)
    assert result.code is None and _lang(result.page) == "fr"
    assert "deuxième étape" in result.page.replace("&#39;", "'")


def test_consent_page_in_french(op):
    third = op.factory.gen_client(first_party=False)
    user = op.factory.gen_user()
    params = auth_params(third, pkce()[1], ui_locales="fr", scope="openid email")
    result = Browser(op.url).authorize(params, user)
    assert result.consent_shown and _lang(result.page) == "fr"
    page = result.page.replace("&#39;", "'")
    assert "Voir votre adresse e-mail" in page and ">Autoriser</button>" in page
