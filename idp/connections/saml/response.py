"""The second leg: the IdP's ``<samlp:Response>`` at the ACS (HTTP-POST binding, SAML 2.0
Bindings §3.5), verified, to an :class:`UpstreamProfile`.

pysaml2 (with xmlsec1) checks the XML signatures, decrypts, and checks a first set of
conditions; :func:`finish` adds what pysaml2 leaves lax or does not do (each noted where it is
checked) and reads the result only from the assertion object pysaml2 verified, never by
looking an element up by ID again (XML signature wrapping).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from saml2 import BINDING_HTTP_POST
from saml2.response import StatusError, UnsolicitedResponse
from saml2.sigver import DecryptError, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from idp.connections.saml import checks
from idp.connections.saml.config import client, forget
from idp.connections.saml.contract import (
    SKEW,
    Replay,
    Settings,
    Sp,
    UpstreamError,
    UpstreamProfile,
    refused,
)
from idp.connections.saml.metadata import idp_metadata, read, trusted
from idp.connections.saml.profile import build
from idp.connections.saml.xmlsafe import SAML, SAMLP, count, decode_post, parse, tag, unique_ids
from idp.core import clock

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _status(root: Any) -> None:
    """Core §3.2.2.2: anything but Success is the IdP's refusal (its code is shown, shortened
    to the last part: ``Responder``, ``AuthnFailed``; its StatusMessage is not)."""
    codes = [c.get("Value") or "" for c in root.iter(tag(SAMLP, "StatusCode")) if c is not None]
    if codes and codes[0] == SUCCESS:
        return
    names = [c.rsplit(":", 1)[-1] if _CODE.match(c) else "invalid" for c in codes[:2]] or ["none"]
    raise refused(
        "upstream_error", f"status {'/'.join(names)}",
        f"The sign-in provider answered: {names[-1]}.",
    )  # fmt: skip


def _before_pysaml2(root: Any, sp: Sp, issuer: str, kept: dict[str, Any] | None) -> None:
    """Checks on the root element, which no signature wrapping can move: the root is the
    Response pysaml2 parses."""
    if root.tag != tag(SAMLP, "Response"):
        raise refused("bad_response", "SAMLResponse: not a samlp:Response")
    unique_ids(root, "SAMLResponse")
    _status(root)  # an error response holds no assertion
    assertions = count(root, SAML, "Assertion") + count(root, SAML, "EncryptedAssertion")
    if assertions != 1:
        # Profiles §4.1.4.2 allows more; idp takes one (saml2int), and an assertion hidden
        # anywhere else in the document is the shape of signature wrapping
        raise refused("bad_response", f"SAMLResponse: {assertions} assertions, not exactly 1")
    destination = root.get("Destination")
    signed = root.find(tag("http://www.w3.org/2000/09/xmldsig#", "Signature")) is not None
    # Bindings §3.5.5.2: a signed message must name its Destination; pysaml2 accepts none
    if (destination is None and signed) or (destination is not None and destination != sp.acs_url):
        raise refused("wrong_destination", "Response Destination is not this connection's ACS")
    response_issuer = root.find(tag(SAML, "Issuer"))
    if response_issuer is not None and (response_issuer.text or "").strip() != issuer:
        raise refused("issuer_mismatch", "Response Issuer is not the IdP's entity ID")
    in_response_to = root.get("InResponseTo")
    if kept is None and in_response_to is not None:
        # an answer to a request this browser did not start (Profiles §4.1.5)
        raise refused("in_response_to_mismatch", "unsolicited Response names an InResponseTo")
    if kept is not None and in_response_to != kept.get("request_id"):
        raise refused("in_response_to_mismatch", "Response InResponseTo is not this request")


def _failure(exc: Exception) -> UpstreamError:
    """pysaml2's exception as idp's (never its message: pysaml2's texts quote the document)."""
    if isinstance(exc, UnsolicitedResponse):
        return refused("in_response_to_mismatch", "pysaml2: unsolicited response")
    if isinstance(exc, ResponseLifetimeExceed | ToEarly):
        reason = "expired" if isinstance(exc, ResponseLifetimeExceed) else "not_yet_valid"
        return refused(reason, f"pysaml2: {type(exc).__name__}")
    if isinstance(exc, DecryptError):
        return refused("decrypt_failed", "pysaml2: the assertion cannot be decrypted")
    if isinstance(exc, SigverError):  # MissingKey (an issuer without trusted key) included
        return refused("bad_signature", f"pysaml2: {type(exc).__name__}")
    if isinstance(exc, StatusError):
        return refused("upstream_error", f"pysaml2: {type(exc).__name__}")
    if str(exc).startswith("AudienceRestrictions conditions not satisfied"):
        return refused("wrong_audience", "Assertion Audience is not this SP's entity ID")
    return refused("bad_response", f"pysaml2: {type(exc).__name__}")


def _parse_with_pysaml2(saml: Any, data: bytes, request_id: str | None, *, encrypted: bool) -> Any:
    outstanding = {request_id: "/"} if request_id else {}
    failure = None
    try:
        answer = saml.parse_authn_request_response(
            base64.b64encode(data).decode(), BINDING_HTTP_POST, outstanding=outstanding
        )
    except Exception as exc:  # noqa: BLE001 - pysaml2 raises bare Exception too
        failure = _failure(exc)
        forget(exc)
    # raised here, not inside the except block: chained to pysaml2's exception, the error would
    # keep its frames (and the temporary files pysaml2 leaves open in them) alive until a GC
    if failure is not None:
        raise failure
    if answer is None or answer.assertion is None:
        # pysaml2 skips an EncryptedAssertion no key decrypts, and returns no assertion
        if encrypted:
            raise refused("decrypt_failed", "the assertion cannot be decrypted with the SP key")
        raise refused("bad_response", "pysaml2: no verified assertion")
    return answer


def finish(
    options: dict[str, Any],
    *,
    sp: Sp,
    saml_response: str,
    relay_state: str | None,
    kept: dict[str, Any] | None,
    settings: Settings,
    replay: Replay,
    now: int | None = None,
) -> UpstreamProfile:
    """The verified profile from the ACS's ``SAMLResponse``, or UpstreamError.

    ``kept`` is :func:`begin`'s (the login flow matched ``relay_state`` to this browser's
    interaction); ``None`` is an unsolicited response (IdP-initiated SSO, Profiles §4.1.5),
    refused unless the connection has ``idp_initiated``. Signatures are checked against the
    pinned certificates (:func:`idp.connections.saml.metadata.trusted`; the metadata's own
    when none is pinned). ``replay(assertion_id, until)`` remembers the assertion ID until it
    can no longer be accepted (its NotOnOrAfter plus the skew)."""
    moment = clock.now() if now is None else now
    if kept is None and not options.get("idp_initiated"):
        raise refused("unsolicited", "an unsolicited Response while idp_initiated is off")
    if kept is not None and kept.get("protocol") != "samlp":
        raise refused("bad_state", "kept data is not from a samlp request",
                      "The sign-in could not be completed. Please try again.")  # fmt: skip
    data = decode_post(saml_response, settings.max_body, "SAMLResponse")
    root = parse(data, "SAMLResponse")
    info = read(idp_metadata(options, settings))
    _before_pysaml2(root, sp, info.entity_id, kept)
    certs = trusted(info, options)
    request_id = kept.get("request_id") if kept else None
    with client(options, sp, info, certs, allow_unsolicited=kept is None) as saml:
        answer = _parse_with_pysaml2(
            saml, data, request_id, encrypted=count(root, SAML, "EncryptedAssertion") > 0
        )
    assertion = answer.assertion
    # the decrypted document, as pysaml2 verified it: again one assertion, unique IDs
    decrypted = parse(answer.xmlstr, "decrypted SAMLResponse")
    unique_ids(decrypted, "decrypted SAMLResponse")
    if count(decrypted, SAML, "Assertion") != 1 or len(answer.assertions) != 1:
        raise refused("bad_response", "decrypted SAMLResponse: not exactly 1 assertion")
    checks.signatures(answer.response, assertion, allow_sha1=bool(options.get("allow_sha1")))
    checks.issuer(assertion, info.entity_id)
    until = checks.conditions(assertion, sp, moment)
    until = min(until, checks.bearer(assertion, sp, request_id, moment))
    authn = checks.authn_statement(assertion, moment)
    if not isinstance(assertion.id, str) or not assertion.id:
        raise refused("bad_response", "assertion: no ID")
    if not replay(assertion.id, until + SKEW):
        raise refused("replayed", "assertion ID seen before")
    return build(options, assertion, answer.name_id, authn)
