"""idp's SAML service provider (idp.connections.saml) against a real SAML IdP: pysaml2's
Server over HTTP on loopback (tests/connections/saml_idp.py)."""

from __future__ import annotations

import base64
import zlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.connections import saml
from idp.connections.saml import Started, UpstreamError, credentials
from tests.connections.saml_idp import SETTINGS, SP, SamlIdp, SamlLoginError


class Seen:
    """The replay store: a dict, as the login flow's table would be."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __call__(self, assertion_id: str, until: int) -> bool:
        if assertion_id in self.ids:
            return False
        self.ids[assertion_id] = until
        return True


def sign_in(idp: SamlIdp, username: str, options: dict[str, Any], **knobs: Any) -> Any:
    started = saml.begin(options, sp=SP, relay_state="uid.secret", force_authn=False,
                         settings=SETTINGS)  # fmt: skip
    fields = idp.login(started, username, **knobs)
    assert fields["RelayState"] == "uid.secret"
    return saml.finish(
        options, sp=SP, saml_response=fields["SAMLResponse"], relay_state=fields["RelayState"],
        kept=started.kept, settings=SETTINGS, replay=Seen(),
    )  # fmt: skip


def test_a_login_through_the_redirect_binding(saml_idp: SamlIdp) -> None:
    profile = sign_in(saml_idp, "alice", saml_idp.options())
    assert profile.user_id == "alice"
    assert profile.email == "alice@saml.test"
    assert profile.email_verified is False
    assert profile.claims == {"email": "alice@saml.test", "given_name": "Alice",
                              "family_name": "Saml", "name": "Alice Saml"}  # fmt: skip
    assert profile.raw["groups"] == ["staff", "team-alice"]
    assert profile.raw["name_id_format"] == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    assert profile.raw["session_index"]
    assert saml_idp.requests[-1]["binding"].endswith("HTTP-Redirect")
    assert saml_idp.requests[-1]["signed"] is False


def finish(
    options: dict[str, Any], fields: dict[str, str], kept: dict[str, Any] | None, **extra: Any
) -> Any:
    return saml.finish(
        options, sp=SP, saml_response=fields["SAMLResponse"], relay_state="uid.secret",
        kept=kept, settings=SETTINGS, replay=extra.pop("replay", Seen()), **extra,
    )  # fmt: skip


def started(options: dict[str, Any], force_authn: bool = False) -> Started:
    return saml.begin(options, sp=SP, relay_state="uid.secret", force_authn=force_authn,
                      settings=SETTINGS)  # fmt: skip


def refused(options: dict[str, Any], fields: dict[str, str], kept: Any, **extra: Any) -> Any:
    with pytest.raises(UpstreamError) as caught:
        finish(options, fields, kept, **extra)
    error = caught.value
    # safe to show: neither the document nor a key in what the user or the log sees
    assert "<" not in error.description + error.detail
    assert "PRIVATE" not in error.detail
    return error


# --- the happy paths ---------------------------------------------------------------------


def test_the_post_binding_and_force_authn(saml_idp: SamlIdp) -> None:
    options = saml_idp.options(request_binding="post")
    start = started(options, force_authn=True)
    assert start.url == saml_idp.base + "/sso/post"
    assert start.form is not None and start.form["RelayState"] == "uid.secret"
    profile = finish(options, saml_idp.login(start, "bob"), start.kept)
    assert profile.user_id == "bob"
    assert saml_idp.requests[-1]["binding"].endswith("HTTP-POST")
    assert saml_idp.requests[-1]["force_authn"] is True
    assert saml_idp.requests[-1]["id"] == start.kept["request_id"]
    assert start.kept["protocol"] == "samlp"
    plain = started(saml_idp.options())
    sent = parse_qs(urlsplit(plain.url).query)["SAMLRequest"][0]
    assert b"ForceAuthn" not in zlib.decompress(base64.b64decode(sent), -15)


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_signed_requests_are_verified_by_the_idp(saml_idp: SamlIdp, binding: str) -> None:
    options = saml_idp.options(sign_requests=True, request_binding=binding)
    start = started(options)
    if binding == "redirect":
        query = parse_qs(urlsplit(start.url).query)
        assert set(query) == {"SAMLRequest", "RelayState", "SigAlg", "Signature"}
        assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    saml_idp.require_signed_requests = True
    try:
        assert finish(options, saml_idp.login(start, "carol"), start.kept).user_id == "carol"
        assert saml_idp.requests[-1]["signed"] is True
        with pytest.raises(SamlLoginError):  # the IdP refuses an unsigned one
            saml_idp.login(started(saml_idp.options(request_binding=binding)), "carol")
        # and one signed by a key its metadata for the SP does not hold
        other_key, other_cert = credentials.new_sp_credentials("other")
        forged = started({**options, "sp_private_key": other_key, "sp_certificate": other_cert})
        with pytest.raises(SamlLoginError):
            saml_idp.login(forged, "carol")
    finally:
        saml_idp.require_signed_requests = False


@pytest.mark.parametrize("knobs", [
    {"encrypt": True},
    {"encrypt": True, "sign_assertion": False, "sign_response": True},
    {"sign_assertion": False, "sign_response": True},
    {"sign_response": True},
])  # fmt: skip
def test_signed_and_encrypted_shapes(saml_idp: SamlIdp, knobs: dict[str, Any]) -> None:
    options = saml_idp.options()
    start = started(options)
    fields = saml_idp.login(start, "dave", **knobs)
    if knobs.get("encrypt"):
        assert b"EncryptedAssertion" in base64.b64decode(fields["SAMLResponse"])
        assert b"dave@saml.test" not in base64.b64decode(fields["SAMLResponse"])
    profile = finish(options, fields, start.kept)
    assert (profile.user_id, profile.email) == ("dave", "dave@saml.test")


def test_an_encrypted_assertion_needs_the_sp_key(saml_idp: SamlIdp) -> None:
    options = saml_idp.options()
    start = started(options)
    fields = saml_idp.respond(start.kept["request_id"], "erin", encrypt=True)
    other_key, other_cert = credentials.new_sp_credentials("other")
    wrong = {**options, "sp_private_key": other_key, "sp_certificate": other_cert}
    error = refused(wrong, fields, start.kept)
    assert error.reason == "decrypt_failed", error.detail


@pytest.mark.parametrize("style", ["adfs", "okta", "oid", "plain"])
def test_the_common_attribute_names_are_understood(saml_idp: SamlIdp, style: str) -> None:
    options = saml_idp.options()
    start = started(options)
    fields = saml_idp.respond(start.kept["request_id"], "frank@acme.test", attributes=style)
    profile = finish(options, fields, start.kept)
    assert profile.user_id == "frank@acme.test"
    assert profile.email == "frank@acme.test"
    assert profile.claims["given_name"] == "Frank"
    assert profile.claims["family_name"] == "Saml"
    if style != "okta":
        assert profile.claims["name"] == "Frank Saml"
    if style != "oid":
        assert profile.raw["groups"] == ["staff", "team-frank"]


def test_a_mapping_and_email_verified(saml_idp: SamlIdp) -> None:
    options = saml_idp.options(
        map={"user_id": "employeeNumber", "email": "workMail", "groups": "roles"},
        email_verified=True,
    )
    start = started(options)
    fields = saml_idp.respond(start.kept["request_id"], "gina", extra={
        "employeeNumber": ["E-42"], "workMail": ["gina@corp.test"], "roles": ["admin", "ops"],
    })  # fmt: skip
    profile = finish(options, fields, start.kept)
    assert profile.user_id == "E-42"
    assert profile.email == "gina@corp.test" and profile.email_verified is True
    assert profile.raw["groups"] == ["admin", "ops"]
    assert profile.raw["name_id"] == "gina"  # kept for single logout
    assert profile.amr == ["pwd"]  # PasswordProtectedTransport


def test_after_a_rotation_the_previous_key_still_decrypts(saml_idp: SamlIdp) -> None:
    """An IdP that has not loaded the new SP metadata yet encrypts to the old certificate:
    the previous key (kept by ``idp connections rotate-certificate``) opens it."""
    options = saml_idp.options()
    start = started(options)
    fields = saml_idp.respond(start.kept["request_id"], "fred", encrypt=True)
    new_key, new_cert = credentials.new_sp_credentials("rotated")
    rotated = {
        **options, "sp_private_key": new_key, "sp_certificate": new_cert,
        "sp_previous_private_key": options["sp_private_key"],
        "sp_previous_certificate": options["sp_certificate"],
    }  # fmt: skip
    assert finish(rotated, fields, start.kept).user_id == "fred"
    without = {k: v for k, v in rotated.items() if not k.startswith("sp_previous")}
    assert refused(without, fields, start.kept).reason == "decrypt_failed"


def test_an_email_address_name_id_is_the_email_when_no_attribute_says(
    saml_idp: SamlIdp,
) -> None:
    """SAML Core §8.3.2: an emailAddress NameID is the address (what many IdPs, samlify by
    default, send and nothing else); a persistent NameID never is."""
    from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

    options = saml_idp.options()
    start = started(options)
    fields = saml_idp.respond(
        start.kept["request_id"], "nora@corp.example", attributes="none",
        name_id_format=NAMEID_FORMAT_EMAILADDRESS,
    )  # fmt: skip
    profile = finish(options, fields, start.kept)
    assert (profile.user_id, profile.email) == ("nora@corp.example", "nora@corp.example")
    start = started(options)
    fields = saml_idp.respond(start.kept["request_id"], "opaque-id-7", attributes="none")
    assert finish(options, fields, start.kept).email is None
