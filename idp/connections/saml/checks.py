"""The checks of a verified assertion that pysaml2 does not make, or makes too loosely; each
names the SAML 2.0 rule and what pysaml2 does about it.

Times are compared with the caller's ``now`` (``idp.core.clock``, so tests move time), with
:data:`SKEW` either way.
"""

from __future__ import annotations

import calendar
from typing import Any

from saml2.time_util import str_to_time

from idp.connections.saml.contract import SKEW, Sp, refused

BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
XMLDSIG_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
XMLENC = "http://www.w3.org/2001/04/xmlenc#"
STRONG_SIGNATURES = {
    XMLDSIG_MORE + "rsa-sha256", XMLDSIG_MORE + "rsa-sha384", XMLDSIG_MORE + "rsa-sha512",
    XMLDSIG_MORE + "ecdsa-sha256", XMLDSIG_MORE + "ecdsa-sha384", XMLDSIG_MORE + "ecdsa-sha512",
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
}  # fmt: skip
STRONG_DIGESTS = {XMLENC + "sha256", XMLDSIG_MORE + "sha384", XMLENC + "sha512"}
SHA1_SIGNATURES = {"http://www.w3.org/2000/09/xmldsig#rsa-sha1"}
SHA1_DIGESTS = {"http://www.w3.org/2000/09/xmldsig#sha1"}


def epoch(value: Any, what: str) -> int | None:
    """An xs:dateTime (Core §1.3.3, UTC) as Unix time; ``bad_response`` when unreadable."""
    if value is None:
        return None
    try:
        return calendar.timegm(str_to_time(str(value)))
    except (ValueError, TypeError, OverflowError):
        raise refused("bad_response", f"{what}: not an xs:dateTime") from None


def _algorithms(signature: Any, allow_sha1: bool, what: str) -> None:
    signed_info = signature.signed_info
    method = getattr(signed_info.signature_method, "algorithm", None)
    digests = [getattr(r.digest_method, "algorithm", None) for r in signed_info.reference or []]
    signatures_ok = STRONG_SIGNATURES | (SHA1_SIGNATURES if allow_sha1 else set())
    digests_ok = STRONG_DIGESTS | (SHA1_DIGESTS if allow_sha1 else set())
    if method not in signatures_ok or not digests or any(d not in digests_ok for d in digests):
        weak = method in SHA1_SIGNATURES or any(d in SHA1_DIGESTS for d in digests)
        raise refused(
            "weak_signature" if weak else "bad_signature",
            f"{what} signature: {'SHA-1 (allow_sha1 is off)' if weak else 'algorithm refused'}",
        )  # fmt: skip


def signatures(response: Any, assertion: Any, *, allow_sha1: bool) -> None:
    """The response or the assertion is signed (pysaml2 verified every signature present, with
    the trusted certificates; its ``want_assertions_or_response_signed`` asks for one), each
    with SHA-256 or better: xmlsec1 accepts RSA-SHA1 and SHA-1 digests, pysaml2 does not
    restrict them (SHA-1 only with ``allow_sha1``). When only the response is signed, its
    enveloped signature covers the one assertion it holds (Core §5.4.1)."""
    if response.signature is None and assertion.signature is None:
        raise refused("bad_signature", "neither the Response nor the Assertion is signed")
    if response.signature is not None:
        _algorithms(response.signature, allow_sha1, "Response")
    if assertion.signature is not None:
        _algorithms(assertion.signature, allow_sha1, "Assertion")
        # the signature pysaml2 verified is this assertion's own (Core §5.4.2: the reference
        # is the enveloping element's ID; pysaml2 checks it too)
        references = assertion.signature.signed_info.reference or []
        if len(references) != 1 or references[0].uri != f"#{assertion.id}":
            raise refused("bad_signature", "Assertion signature does not reference it")


def issuer(assertion: Any, entity_id: str) -> None:
    """Core §2.3.3: the assertion's Issuer is the IdP's entity ID (pysaml2 uses it only to
    look up certificates, in metadata that here holds the IdP alone)."""
    text = (getattr(assertion.issuer, "text", None) or "").strip()
    if text != entity_id:
        raise refused("issuer_mismatch", "Assertion Issuer is not the IdP's entity ID")


def conditions(assertion: Any, sp: Sp, now: int) -> int:
    """Core §2.5: NotBefore / NotOnOrAfter with :data:`SKEW`, and an AudienceRestriction
    naming this SP (Profiles §4.1.4.2 requires one; pysaml2 accepts an assertion without).
    Returns NotOnOrAfter (or a far bound when absent: the bearer's decides)."""
    cond = assertion.conditions
    if cond is None:
        raise refused("wrong_audience", "Assertion has no Conditions (no AudienceRestriction)")
    before = epoch(cond.not_before, "Conditions NotBefore")
    after = epoch(cond.not_on_or_after, "Conditions NotOnOrAfter")
    if before is not None and now + SKEW < before:
        raise refused("not_yet_valid", "Conditions NotBefore is in the future")
    if after is not None and now - SKEW >= after:
        raise refused("expired", "Conditions NotOnOrAfter has passed")
    restrictions = cond.audience_restriction or []
    # each AudienceRestriction must name this SP (Core §2.5.1.4: they all must hold)
    if not restrictions or any(
        sp.entity_id not in [(a.text or "").strip() for a in r.audience or []] for r in restrictions
    ):
        raise refused("wrong_audience", "Assertion Audience is not this SP's entity ID")
    return after if after is not None else now + 24 * 3600


def bearer(assertion: Any, sp: Sp, request_id: str | None, now: int) -> int:
    """Profiles §4.1.4.2: a bearer SubjectConfirmation whose data names this ACS as its
    Recipient, a NotOnOrAfter not passed, and InResponseTo equal to the request's (absent
    for an unsolicited response). pysaml2 accepts any Recipient when it has no conversation
    info and skips a confirmation that fails its checks. Returns its NotOnOrAfter."""
    subject = assertion.subject
    for confirmation in getattr(subject, "subject_confirmation", None) or []:
        data = confirmation.subject_confirmation_data
        if confirmation.method != BEARER or data is None:
            continue
        if data.recipient != sp.acs_url:
            raise refused("wrong_recipient", "SubjectConfirmationData Recipient is not the ACS")
        if data.in_response_to != request_id:
            raise refused("in_response_to_mismatch",
                          "SubjectConfirmationData InResponseTo is not this request")  # fmt: skip
        after = epoch(data.not_on_or_after, "SubjectConfirmationData NotOnOrAfter")
        before = epoch(data.not_before, "SubjectConfirmationData NotBefore")
        if after is None:
            raise refused("bad_response", "SubjectConfirmationData has no NotOnOrAfter")
        if now - SKEW >= after:
            raise refused("expired", "SubjectConfirmationData NotOnOrAfter has passed")
        if before is not None and now + SKEW < before:
            raise refused("not_yet_valid", "SubjectConfirmationData NotBefore is in the future")
        return after
    raise refused("bad_response", "Assertion has no bearer SubjectConfirmation")


def authn_statement(assertion: Any, now: int) -> dict[str, Any]:
    """Profiles §4.1.4.2: an AuthnStatement (pysaml2 requires exactly one); its
    SessionNotOnOrAfter not passed; its SessionIndex and context class kept for single logout
    and amr."""
    statements = assertion.authn_statement or []
    if len(statements) != 1:
        raise refused("bad_response", f"Assertion has {len(statements)} AuthnStatements, not 1")
    statement = statements[0]
    session_end = epoch(statement.session_not_on_or_after, "SessionNotOnOrAfter")
    if session_end is not None and now - SKEW >= session_end:
        raise refused("expired", "AuthnStatement SessionNotOnOrAfter has passed")
    context = statement.authn_context
    class_ref = getattr(getattr(context, "authn_context_class_ref", None), "text", None)
    return {
        "session_index": statement.session_index,
        "class_ref": class_ref.strip() if isinstance(class_ref, str) else None,
    }
