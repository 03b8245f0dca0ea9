"""What idp's SAML service provider refuses (idp.connections.saml.finish), and its IdP
metadata handling, against the loopback pysaml2 IdP (tests/connections/saml_idp.py). Each
refusal is an UpstreamError with its stable reason; none is an unhandled exception."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from saml2.client import Saml2Client

from idp.connections import saml
from idp.connections.saml import UpstreamError, credentials, metadata
from tests.connections.saml_idp import SETTINGS, SHA1, SP, SamlIdp
from tests.connections.test_saml_sp import Seen, finish, refused, started


def _request(idp: SamlIdp, options: dict[str, Any]) -> tuple[dict[str, Any], str]:
    start = started(options)
    return start.kept, start.kept["request_id"]


# --- metadata --------------------------------------------------------------------------------


def test_the_idp_metadata_is_fetched_through_the_guard_and_cached(
    saml_idp: SamlIdp, clock: Any
) -> None:
    metadata.clear()
    options = saml_idp.options()
    with pytest.raises(UpstreamError) as caught:  # loopback is refused by default
        saml.idp_metadata(options, saml.Settings())
    assert caught.value.reason == "unreachable"
    before = saml_idp.metadata_fetches
    assert saml.idp_metadata(options, SETTINGS) == saml_idp.metadata_xml
    saml.idp_metadata(options, SETTINGS)
    started(options)
    assert saml_idp.metadata_fetches == before + 1  # cached
    clock.advance(metadata.TTL + 1)
    saml.idp_metadata(options, SETTINGS)
    assert saml_idp.metadata_fetches == before + 2  # stale after the TTL
    inline = {**options, "metadata_xml": saml_idp.metadata_xml}
    del inline["metadata_url"]
    assert saml.idp_metadata(inline, saml.Settings()) == saml_idp.metadata_xml


def test_metadata_certificates_and_sp_metadata(saml_idp: SamlIdp) -> None:
    assert saml.metadata_certificates(saml_idp.metadata_xml) == [saml_idp.fingerprint]
    options = saml_idp.options(sign_requests=True)
    xml = saml.sp_metadata(options, SP)
    from saml2.md import entity_descriptor_from_string

    described = entity_descriptor_from_string(xml)
    assert described.entity_id == SP.entity_id
    sp = described.spsso_descriptor[0]
    assert sp.authn_requests_signed == "true" and sp.want_assertions_signed == "true"
    acs = sp.assertion_consumer_service[0]
    assert (acs.location, acs.binding) == (SP.acs_url, metadata.POST)
    slo = sp.single_logout_service[0]
    assert (slo.location, slo.binding) == (SP.slo_url, metadata.REDIRECT)
    uses = {k.use: k.key_info.x509_data[0].x509_certificate.text for k in sp.key_descriptor}
    bare = credentials.bare(options["sp_certificate"])
    assert uses == {"signing": bare, "encryption": bare}
    assert credentials.fingerprint(bare) == credentials.fingerprint(options["sp_certificate"])


def test_metadata_with_a_doctype_is_refused() -> None:
    xml = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    with pytest.raises(UpstreamError) as caught:
        saml.metadata_certificates(xml)
    assert caught.value.reason == "bad_xml"


# --- trust -----------------------------------------------------------------------------------


def test_a_certificate_not_pinned_is_refused(saml_idp: SamlIdp) -> None:
    other = credentials.fingerprint(credentials.new_sp_credentials("other")[1])
    options = saml_idp.options(idp_certificates=[other])
    kept, request_id = _request(saml_idp, options)
    error = refused(options, saml_idp.respond(request_id, "alice"), kept)
    assert error.reason == "certificate_not_pinned"
    # with colons and capitals, as openssl prints it, the IdP's own is accepted
    printed = ":".join(saml_idp.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    options = saml_idp.options(idp_certificates=[printed])
    kept, request_id = _request(saml_idp, options)
    assert finish(options, saml_idp.respond(request_id, "alice"), kept).user_id == "alice"


def test_a_signature_by_another_key_or_none_is_refused(saml_idp: SamlIdp) -> None:
    options = saml_idp.options()
    kept, request_id = _request(saml_idp, options)
    other = credentials.new_sp_credentials("other")
    forged = saml_idp.respond(request_id, "alice", signing_key=other)
    assert refused(options, forged, kept).reason == "bad_signature"
    unsigned = saml_idp.respond(request_id, "alice", sign_assertion=False)
    assert refused(options, unsigned, kept).reason == "bad_signature"


def test_sha1_is_refused_unless_allowed(saml_idp: SamlIdp) -> None:
    options = saml_idp.options()
    kept, request_id = _request(saml_idp, options)
    for knobs in ({"sign_assertion": True}, {"sign_assertion": False, "sign_response": True}):
        fields = saml_idp.respond(request_id, "alice", **SHA1, **knobs)
        assert refused(options, fields, kept).reason == "weak_signature"
    allowed = {**options, "allow_sha1": True}
    fields = saml_idp.respond(request_id, "alice", **SHA1)
    assert finish(allowed, fields, kept).user_id == "alice"


# --- the response's own checks ---------------------------------------------------------------


@pytest.mark.parametrize(("knobs", "reason"), [
    ({"audience": "https://other.test/sp"}, "wrong_audience"),
    ({"recipient": "https://other.test/acs"}, "wrong_recipient"),
    ({"destination": "https://other.test/acs"}, "wrong_destination"),
    ({"destination": None, "sign_response": True}, "wrong_destination"),
    ({"issuer": "https://other.test/idp"}, "issuer_mismatch"),
    ({"skew": -3600}, "expired"),
    ({"skew": 3600}, "not_yet_valid"),
    ({"in_response_to": "_another_request"}, "in_response_to_mismatch"),
    ({"status": "urn:oasis:names:tc:SAML:2.0:status:Responder"}, "upstream_error"),
])  # fmt: skip
def test_a_response_that_is_not_for_this_login_is_refused(
    saml_idp: SamlIdp, knobs: dict[str, Any], reason: str
) -> None:
    options = saml_idp.options()
    kept, request_id = _request(saml_idp, options)
    error = refused(options, saml_idp.respond(request_id, "alice", **knobs), kept)
    assert error.reason == reason, error.detail
    if reason == "upstream_error":
        assert "Responder" in error.description


def test_the_time_checks_use_idp_s_clock(saml_idp: SamlIdp) -> None:
    options = saml_idp.options()
    kept, request_id = _request(saml_idp, options)
    fields = saml_idp.respond(request_id, "alice", lifetime=120)
    later = refused(options, fields, kept, now=int(time.time()) + 600)
    assert later.reason == "expired"
    earlier = refused(options, fields, kept, now=int(time.time()) - 600)
    assert earlier.reason == "not_yet_valid"


def test_a_replayed_assertion_is_refused(saml_idp: SamlIdp) -> None:
    options = saml_idp.options()
    kept, request_id = _request(saml_idp, options)
    fields = saml_idp.respond(request_id, "alice")
    seen = Seen()
    assert finish(options, fields, kept, replay=seen).user_id == "alice"
    ((_, until),) = seen.ids.items()
    assert until > int(time.time()) + 200  # NotOnOrAfter (300 s) + skew
    assert refused(options, fields, kept, replay=seen).reason == "replayed"


def test_unsolicited_responses_need_idp_initiated(saml_idp: SamlIdp) -> None:
    options = saml_idp.options()
    unsolicited = saml_idp.respond(None, "alice")
    assert refused(options, unsolicited, None).reason == "unsolicited"
    allowed = saml_idp.options(idp_initiated=True, default_client_id="app")
    assert finish(allowed, unsolicited, None).user_id == "alice"
    # a response to some browser's request is not an unsolicited one
    answer = saml_idp.respond("_somebody_elses_request", "alice")
    assert refused(allowed, answer, None).reason == "in_response_to_mismatch"
    # and with a request pending, an unsolicited response does not answer it
    kept, _ = _request(saml_idp, allowed)
    assert refused(allowed, saml_idp.respond(None, "alice"), kept).reason == (
        "in_response_to_mismatch"
    )


# --- hostile payloads ------------------------------------------------------------------------

LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    + ']><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol9;'
    "</samlp:Response>"
).replace("&lol0;", "&lol;")
XXE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>'
)


def _b64(text: str | bytes) -> dict[str, str]:
    data = text.encode() if isinstance(text, str) else text
    return {"SAMLResponse": base64.b64encode(data).decode()}


def test_doctype_xxe_and_billion_laughs_never_reach_pysaml2(
    saml_idp: SamlIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = saml_idp.options()
    kept, request_id = _request(saml_idp, options)
    genuine = base64.b64decode(saml_idp.respond(request_id, "alice")["SAMLResponse"]).decode()
    body = genuine.split("?>", 1)[-1] if genuine.startswith("<?xml") else genuine
    doctyped = '<!DOCTYPE Response SYSTEM "http://127.0.0.1:9/dtd">' + body

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pysaml2 saw the payload")

    monkeypatch.setattr(Saml2Client, "parse_authn_request_response", never)
    for payload in (LAUGHS, XXE, doctyped):
        assert refused(options, _b64(payload), kept).reason == "bad_xml"


@pytest.mark.parametrize(("fields", "reason"), [
    ({"SAMLResponse": base64.b64encode(b"<" * (5 * 1024 * 1024)).decode()}, "response_too_large"),
    ({"SAMLResponse": "not base64 at all!"}, "bad_response"),
    ({"SAMLResponse": ""}, "bad_response"),
    (_b64("<unclosed"), "bad_xml"),
    (_b64("<x/>"), "bad_response"),
    (_b64(b"\xff\xfe<\x00x\x00"), "bad_xml"),
])  # fmt: skip
def test_malformed_responses_are_refused(
    saml_idp: SamlIdp, fields: dict[str, str], reason: str
) -> None:
    options = saml_idp.options()
    kept, _ = _request(saml_idp, options)
    assert refused(options, fields, kept).reason == reason
