"""The pages outside a login speak the login's language (OIDC Core §3.1.2.1 ``ui_locales``,
idp.i18n), against a live server with real SMTP: the account pages, password reset and its
mail, email verification, logout (with its own ``ui_locales``, RP-Initiated Logout §2), the
device flow; and none of them leaves English in a French page.

The language of a page outside a login: the ``ui_locales`` of the browser's last login
(remembered in its cookie session), else ``Accept-Language``; a mailed link carries the mail's.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from email.header import decode_header, make_header
from html.parser import HTMLParser
from typing import Any

import pytest
import requests

from idp.i18n import fr
from tests.conftest import LiveServer, build_app, serving
from tests.device.helpers import Person, device_client, started
from tests.helpers import Browser, auth_params, hidden_inputs, login_form_action, pkce
from tests.mfa.test_totp import enrol

# English messages of more than one word whose French differs: none may show on a French page
ENGLISH = sorted(
    (k for k, v in fr.MESSAGES.items() if "{" not in k and " " in k.strip() and k != v),
    key=len,
    reverse=True,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, smtp: Any) -> Iterator[LiveServer]:
    inbox, port = smtp
    tmp = tmp_path_factory.mktemp("locales")
    settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "DEVICE_FLOW_ENABLED": True}
    with serving(lambda p: build_app(tmp, p, **settings)) as server:
        server.inbox = inbox  # type: ignore[attr-defined]
        yield server


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._script = tag in ("script", "style")
        self.parts += [v for k, v in attrs if k in ("alt", "title", "aria-label") and v]

    def handle_data(self, data: str) -> None:
        if not self._script:
            self.parts.append(data)


def french(resp: requests.Response) -> str:
    """The page's visible text, after checking it is French: ``<html lang="fr">`` and no
    English message of the catalogue left."""
    found = re.search(r'<html lang="([^"]+)">', resp.text)
    assert found is not None and found.group(1) == "fr", resp.text[:300]
    parser = _Text()
    parser.feed(resp.text)
    text = " ".join(" ".join(parser.parts).split())
    left = [message for message in ENGLISH if message in text]
    assert left == [], f"English on {resp.url}: {left}"
    return text


def _mail(site: LiveServer, to: str, subject: str) -> tuple[str, str]:
    """The subject (decoded: RFC 2047 words for non-ASCII) and body of the mail to ``to``."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for msg in site.inbox.to(to):  # type: ignore[attr-defined]
            decoded = str(make_header(decode_header(msg["Subject"])))
            if subject in decoded:
                return decoded, msg.get_payload(decode=True).decode()
        time.sleep(0.05)
    raise AssertionError(f"no mail to {to} about {subject!r}")


def _login(site: LiveServer, user: Any = None, **extra: Any) -> Browser:
    """A browser that signed in through a login with ``extra`` (``ui_locales``)."""
    browser = Browser(site.url)
    user = user or site.factory.gen_user()
    result = browser.authorize(auth_params(site.factory.gen_client(), pkce()[1], **extra), user)
    assert result.code, result.page
    return browser


def test_the_guard_sees_english() -> None:
    """``french`` fails on an English page and on a French page with an English sentence."""
    page = requests.Response()
    page._content = b'<html lang="en"><p>Bonjour</p></html>'
    with pytest.raises(AssertionError):
        french(page)
    page._content = b'<html lang="fr"><p>Bonjour. Send me a link</p></html>'
    with pytest.raises(AssertionError):
        french(page)


def test_account_pages_follow_the_login(site):
    """After a login with ui_locales=fr, the account pages are French with no header."""
    browser = _login(site, ui_locales="fr-FR")
    sessions = french(browser.http.get(f"{site.url}/account/sessions"))
    assert "Vos sessions" in sessions and "(ce navigateur)" in sessions
    assert re.search(r"Connexion le \d+ [a-zéû.]+ \d{4}", sessions), sessions
    assert "Deuxième étape (MFA)" in sessions
    assert "Votre deuxième étape" in french(browser.http.get(f"{site.url}/account/mfa"))
    page = browser.http.get(f"{site.url}/account/password")
    assert "Mot de passe actuel" in french(page)
    form = hidden_inputs(page.text) | {"current_password": "wrong", "new_password": "x"}
    refused = browser.http.post(f"{site.url}/account/password", data=form)
    assert refused.status_code == 400
    assert "Le mot de passe actuel est incorrect." in french(refused)


def test_a_later_login_without_ui_locales_is_forgotten(site):
    """The remembered language is the last login's: one that names none lets the browser's
    Accept-Language decide again, on its pages and the account's."""
    browser = _login(site, ui_locales="fr")
    assert "<h1>Vos sessions</h1>" in browser.http.get(f"{site.url}/account/sessions").text
    params = auth_params(site.factory.gen_client(), pkce()[1], prompt="login")
    login = browser.http.get(f"{site.url}/authorize", params=params, allow_redirects=False)
    assert login_form_action(login.text) and '<html lang="en">' in login.text
    page = browser.http.get(f"{site.url}/account/sessions")
    assert '<html lang="en">' in page.text and "<h1>Your sessions</h1>" in page.text


def test_accept_language_without_a_login(site):
    headers = {"Accept-Language": "fr-BE, en;q=0.5"}
    for path in ("/account/sessions", "/password/forgot", "/oidc/logout", "/device"):
        assert french(requests.get(site.url + path, headers=headers))
    missing = requests.get(f"{site.url}/no-such-page", headers=headers)
    assert missing.status_code == 404 and "Page introuvable" in french(missing)
    refused = requests.get(
        f"{site.url}/authorize",
        params={"client_id": "nope", "response_type": "code"},
        headers=headers,
    )
    assert refused.status_code == 400 and "Demande d'autorisation non valide" in french(refused)
    assert "Cette application n'existe pas sur ce serveur." in french(refused)
    redirect = {"client_id": site.factory.gen_client().client_id, "response_type": "code",
                "redirect_uri": "https://x.test/"}  # fmt: skip
    wrong = requests.get(f"{site.url}/authorize", params=redirect, headers=headers)
    assert "L'URI de redirection https://x.test/ n'est pas enregistrée" in french(wrong)


def test_reset_from_a_french_login_page_mail_and_link(site):
    """The login page's "Forgot your password?" link, the reset mail (subject, body) and the
    link it carries, opened in another browser: all French."""
    user = site.factory.gen_user()
    browser = requests.Session()
    login = browser.get(
        f"{site.url}/authorize",
        params=auth_params(site.factory.gen_client(), pkce()[1], ui_locales="fr"),
    )
    assert login_form_action(login.text) and 'href="/password/forgot"' in login.text
    # the passkey button's live status, which webauthn.js shows, is the page's French too
    assert 'data-follow="Suivez les instructions de votre navigateur' in login.text
    forgot = browser.get(f"{site.url}/password/forgot")
    assert "Réinitialiser votre mot de passe" in french(forgot)
    sent = browser.post(
        f"{site.url}/password/forgot", data=hidden_inputs(forgot.text) | {"email": user.email}
    )
    assert "nous lui avons envoyé un lien" in french(sent)
    subject, body = _mail(site, user.email, "Réinitialiser votre mot de passe")
    assert subject == "Réinitialiser votre mot de passe"
    assert "Ouvrez ce lien pour choisir un nouveau mot de passe" in body
    link = re.search(r"https?://\S+", body).group(0)
    assert "ui_locales=fr" in link
    other = requests.Session()  # the mail opened on another device, any browser language
    page = other.get(link, headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Choisissez un nouveau mot de passe" in french(page)
    form = hidden_inputs(page.text) | {"password": "short"}
    weak = other.post(f"{site.url}/password/reset", data=form, headers={"Accept-Language": "en"})
    assert weak.status_code == 400 and re.search(r"Utilisez au moins \d+ caractères", french(weak))
    form["password"] = "violet-harbour-tractor-91-" + secrets.token_hex(4)
    done = other.post(f"{site.url}/password/reset", data=form)
    assert done.status_code == 200 and "Mot de passe changé" in french(done)


def test_an_english_mail_link_carries_no_language(site):
    user = site.factory.gen_user()
    http = requests.Session()
    forgot = http.get(f"{site.url}/password/forgot", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in forgot.text
    http.post(
        f"{site.url}/password/forgot", data=hidden_inputs(forgot.text) | {"email": user.email}
    )
    link = site.inbox.link(user.email, "Reset your password")
    assert "ui_locales" not in link
    assert '<html lang="en">' in requests.get(link).text


def test_sign_up_mail_and_verification_page(site):
    browser = requests.Session()
    params = auth_params(site.factory.gen_client(), pkce()[1], ui_locales="fr")
    login = browser.get(f"{site.url}/authorize", params=params)
    uid = login_form_action(login.text).split("/")[2]
    signup = browser.get(f"{site.url}/interaction/{uid}/signup")
    email = f"fr-{secrets.token_hex(4)}@example.test"
    fields = hidden_inputs(signup.text) | {"email": email, "password": "violet-harbour-91-xq"}
    done = browser.post(f"{site.url}/interaction/{uid}/signup", data=fields)
    assert "Consultez votre messagerie" in french(done)
    _subject, body = _mail(site, email, "Vérifiez votre adresse e-mail")
    assert "Ouvrez ce lien pour vérifier votre adresse e-mail" in body
    link = re.search(r"https?://\S+", body).group(0)
    page = requests.Session().get(link)
    assert "Vérifier mon adresse e-mail" in french(page)
    verified = requests.post(
        f"{site.url}/verify-email",
        data=hidden_inputs(page.text),
        cookies=page.cookies,
    )
    assert "Adresse e-mail vérifiée" in french(verified)


def test_logout_pages_follow_the_login(site):
    """RP-initiated logout without a hint asks to confirm, then says signed out: French after
    a French login."""
    browser = _login(site, ui_locales="fr")
    confirm = browser.http.get(f"{site.url}/oidc/logout")
    assert "Oui, me déconnecter" in french(confirm)
    fields = hidden_inputs(confirm.text) | {"decision": "logout"}
    done = browser.http.post(f"{site.url}/oidc/logout/confirm", data=fields)
    assert "Vous êtes déconnecté" in french(done)
    gone = browser.http.get(f"{site.url}/account/sessions")
    assert gone.status_code == 401 and "Vous n'êtes pas connecté" in french(gone)


def test_logout_takes_its_own_ui_locales(site):
    """RP-Initiated Logout §2: ui_locales of the logout request, over Accept-Language."""
    http = requests.Session()
    confirm = http.get(
        f"{site.url}/oidc/logout",
        params={"ui_locales": "fr"},
        headers={"Accept-Language": "en"},
    )
    assert "Se déconnecter ?" in french(confirm)
    fields = hidden_inputs(confirm.text) | {"decision": "stay"}
    stay = http.post(f"{site.url}/oidc/logout/confirm", data=fields)
    assert "Vous êtes toujours connecté" in french(stay)
    bad = http.get(f"{site.url}/oidc/logout", params={"id_token_hint": "x.y.z", "ui_locales": "fr"})
    assert "La déconnexion a échoué" in french(bad)


def test_device_pages_in_french(site):
    """The device form's language goes on through the device's login to its last page."""
    client = device_client(site, first_party=True)
    body = started(site.url, client, scope="openid email")
    person = Person(site.url)
    person.http.headers["Accept-Language"] = "fr"
    wrong = person.enter("BCDF-GHJK")
    assert wrong.status_code == 400 and "Ce code n'est pas valide" in french(wrong)
    person.http.headers["Accept-Language"] = "fr"
    approval = person.go(body["user_code"], site.factory.gen_user(), decision=None)
    text = french(approval)
    assert "Un appareil exécutant" in text and "Voir votre adresse e-mail" in text
    fields = hidden_inputs(approval.text) | {"decision": "deny"}
    denied = person.http.post(approval.url, data=fields)
    assert "L'appareil n'est pas connecté." in french(denied)


def test_second_step_pages_in_french(site):
    """A French login that asks for MFA: the enrolment page, then the account's second-step
    page, whose factor (stored with its English name) reads in French, and its notices."""
    browser = Browser(site.url)
    params = auth_params(site.factory.gen_client(), pkce()[1], ui_locales="fr", acr_values="mfa")
    result = browser.authorize(params, site.factory.gen_user())
    assert "Configurer une deuxième étape" in french_page(result.page)
    enrol(browser, result.page)
    page = browser.http.get(f"{site.url}/account/mfa")
    assert "Application d'authentification" in french(page)
    (factor_id,) = re.findall(r'data-factor="([^"]+)"', page.text)
    url = f"{site.url}/account/mfa/factors/{factor_id}/remove"
    removed = browser.http.post(url, data=hidden_inputs(page.text))
    assert "Le facteur a été retiré." in french(removed)


def french_page(html: str) -> str:
    page = requests.Response()
    page._content = html.encode()
    return french(page)
