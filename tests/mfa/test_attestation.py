"""WebAuthn attestation policy and the FIDO Metadata Service blob (issue 19).

The blob is the tests' own (tests/mfa/mds_blob.py): signed by a signer under an intermediate
under a test root, which stands in for the FIDO root. Import refuses a blob whose signature or
chain does not hold; ``direct`` accepts a ``packed`` full attestation only when its AAGUID's
roots in the blob issued its certificate and no status report refuses the model; the AAGUID
allow-list applies under every policy; ``none`` accepts self attestation. Service level with a
software authenticator, then the login's enrolment route over HTTP (the refusal is named).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from idp.core import clock
from idp.extensions import db
from idp.identity.models import User
from idp.mfa import attestation, mds
from idp.mfa import webauthn as wa
from idp.tenant.settings import tenant
from tests.helpers import Browser, auth_params, pkce
from tests.mfa.mds_blob import (
    AttestedAuthenticator,
    Issued,
    MdsPki,
    attestation_cert,
    entry,
    issue,
)
from tests.mfa.soft_authenticator import SoftAuthenticator
from tests.mfa.test_webauthn import _options, _post, _uid

RP_ID, ORIGIN = "localhost", "http://localhost:5000"
CERTIFIED = "11111111-2222-4333-8444-555555555555"
REVOKED = "22222222-3333-4444-8555-666666666666"
BYPASS = "33333333-4444-4555-8666-777777777777"
UNKNOWN = "44444444-5555-4666-8777-888888888888"
PKI = MdsPki()
MAKER = issue("Test Maker Attestation Root")  # the authenticators' maker, listed in the blob
STRANGER = issue("Another Maker Attestation Root")  # not in the blob
SERIALS = itertools.count(1)
# a model whose units sign with one key under one name, re-issuing a self-signed certificate
# each time (as Chromium's virtual authenticator does); the blob lists one such certificate
REISSUING = "55555555-6666-4777-8888-999999999999"
SELF_SIGNED = issue("Test Batch Certificate", ca=False, ou="Authenticator Attestation")


def _entries() -> list[dict[str, Any]]:
    return [
        entry(CERTIFIED, [MAKER], "Test Key Certified"),
        entry(REVOKED, [MAKER], "Test Key Revoked", ("FIDO_CERTIFIED_L1", "REVOKED")),
        entry(BYPASS, [MAKER], "Test Key Bypass", ("USER_VERIFICATION_BYPASS",)),
        entry(REISSUING, [SELF_SIGNED], "Test Key Re-issuing"),
    ]


def _import(blob: str, root: Any = None) -> tuple[mds.Metadata, bool]:
    found = mds.import_blob(db.session, blob, root or PKI.root.cert)
    db.session.commit()
    return found


def _policy(policy: str, allow: str = "") -> None:
    tenant().write(db.session, {"WEBAUTHN_ATTESTATION": policy, "WEBAUTHN_AAGUID_ALLOWLIST": allow})
    db.session.commit()
    tenant().invalidate()


def _user(op: Any) -> User:
    db.session.commit()
    user = db.session.get(User, op.factory.gen_user().user_id)
    assert user is not None
    return user


def _register(op: Any, key: SoftAuthenticator) -> dict[str, Any]:
    user = _user(op)
    options, challenge = wa.registration_options(RP_ID, "idp", user, [], "preferred")
    return wa.verify_registration(key.create(options, ORIGIN), challenge, RP_ID, ORIGIN,
                                  "preferred")  # fmt: skip


def _key(aaguid: str, ca: Any = MAKER, cert_aaguid: str | None = None) -> AttestedAuthenticator:
    return AttestedAuthenticator(aaguid, attestation_cert(ca, cert_aaguid or aaguid))


@pytest.fixture
def app(op: Any) -> Any:
    with op.app.app_context():
        _import(PKI.blob(_entries(), next(SERIALS)))
        yield op
        _policy("none")


# ------------------------------------------------------------------------ the blob itself
def _tampered(blob: str) -> str:
    header, payload, sig = blob.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["entries"][0]["statusReports"] = [{"status": "FIDO_CERTIFIED_L3"}]
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{sig}"


def test_a_blob_with_a_bad_signature_is_refused_at_import(app: Any) -> None:
    before = mds.stored(db.session)
    assert before is not None
    serial = next(SERIALS)
    with pytest.raises(mds.MdsError, match="signature"):
        _import(_tampered(PKI.blob(_entries(), serial)))
    # signed by a key that is not the x5c leaf's
    with pytest.raises(mds.MdsError, match="signature"):
        _import(PKI.blob(_entries(), serial, signer=issue("intruder")))
    with pytest.raises(mds.MdsError, match="JWT"):
        _import("not a blob")
    db.session.rollback()
    after = mds.stored(db.session)
    assert after is not None and after.serial == before.serial  # the trust store is unchanged


def test_a_blob_chained_to_another_root_is_refused(app: Any) -> None:
    other = MdsPki()  # a look-alike chain under a root that is not the configured one
    with pytest.raises(mds.MdsError, match="does not lead to the configured MDS root"):
        _import(other.blob(_entries(), next(SERIALS)))
    # the right signer, but its intermediate left out: the chain cannot be built
    with pytest.raises(mds.MdsError, match="does not lead"):
        _import(PKI.blob(_entries(), next(SERIALS), x5c=[PKI.signer.der]))
    # a leaf is no CA: a chain that has it sign the next one is refused
    fake = issue("mds.test", PKI.signer, ca=False)
    with pytest.raises(mds.MdsError, match="not a CA"):
        _import(PKI.blob(_entries(), next(SERIALS), signer=fake,
                         x5c=[fake.der, PKI.signer.der, PKI.intermediate.der]))  # fmt: skip
    # with the bundled FIDO root (GlobalSign Root CA - R3), the tests' blob is refused too
    with pytest.raises(mds.MdsError, match="does not lead"):
        _import(PKI.blob(_entries(), next(SERIALS)), root=mds.load_root(""))
    db.session.rollback()


def test_an_older_serial_is_refused_and_the_same_again_is_accepted(app: Any) -> None:
    current = mds.stored(db.session)
    assert current is not None
    with pytest.raises(mds.MdsError, match="older"):
        _import(PKI.blob(_entries(), current.serial - 1))
    db.session.rollback()
    _found, replaced = _import(PKI.blob(_entries(), current.serial))
    assert replaced is False


def test_an_expired_next_update_warns(app: Any) -> None:
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    found, _ = _import(PKI.blob(_entries(), next(SERIALS), next_update=yesterday))
    assert found.stale(clock.now())
    warned = mds.warnings(found.next_update, clock.now())
    assert len(warned) == 1 and yesterday in warned[0] and "mds3.fidoalliance.org" in warned[0]
    fresh, _ = _import(PKI.blob(_entries(), next(SERIALS)))
    assert not fresh.stale(clock.now()) and mds.warnings(fresh.next_update, clock.now()) == []


# ---------------------------------------------------------------------------- the policies
def test_direct_accepts_a_certified_authenticator(app: Any) -> None:
    _policy("direct")
    user = _user(app)
    options, _ = wa.registration_options(RP_ID, "idp", user, [], "preferred")
    assert options["attestation"] == "direct"
    data = _register(app, _key(CERTIFIED))
    assert data["aaguid"] == CERTIFIED and data["attested"] is True
    assert data["model"] == "Test Key Certified"
    assert attestation.authenticator_name(CERTIFIED.upper()) == "Test Key Certified"
    assert attestation.authenticator_name(UNKNOWN) is None


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (lambda: _key(UNKNOWN), "unknown"),  # a model the blob does not list
        (lambda: _key(REVOKED), "REVOKED"),
        (lambda: _key(BYPASS), "USER_VERIFICATION_BYPASS"),
        (lambda: AttestedAuthenticator(CERTIFIED), "unattested"),  # self attestation
        (lambda: SoftAuthenticator(), "unattested"),  # fmt "none"
        # the maker's certificate says it is another model than authData claims
        (lambda: _key(CERTIFIED, cert_aaguid=UNKNOWN), "unknown"),
    ],
)
def test_direct_refuses_with_the_reason(app: Any, key: Any, reason: str) -> None:
    _policy("direct")
    with pytest.raises(wa.RegistrationRefused) as refused:
        _register(app, key())
    assert refused.value.reason == reason
    assert refused.value.message == attestation.MESSAGES[reason]


def test_direct_refuses_a_certificate_from_another_maker(app: Any) -> None:
    """Claiming a certified model's AAGUID with a certificate its roots did not issue fails
    the chain check (py_webauthn, with only that model's roots)."""
    _policy("direct")
    with pytest.raises(wa.RegistrationRefused, match=r"[Cc]ertificate chain") as refused:
        _register(app, _key(CERTIFIED, ca=STRANGER))
    assert refused.value.reason == "unknown"  # named to the person, not "not accepted"


def test_indirect_checks_known_models_and_accepts_unknown_ones(app: Any) -> None:
    _policy("indirect")
    assert _register(app, _key(CERTIFIED))["attested"] is True
    unknown = _register(app, _key(UNKNOWN, ca=STRANGER))
    assert unknown["attested"] is False and unknown["model"] is None
    assert _register(app, SoftAuthenticator())["attested"] is False
    with pytest.raises(wa.RegistrationRefused) as refused:
        _register(app, _key(REVOKED))
    assert refused.value.reason == "REVOKED"
    with pytest.raises(wa.WebAuthnError):
        _register(app, _key(CERTIFIED, ca=STRANGER))


def test_none_accepts_self_attestation(app: Any) -> None:
    _policy("none")
    user = _user(app)
    options, _ = wa.registration_options(RP_ID, "idp", user, [], "preferred")
    assert options["attestation"] == "none"
    data = _register(app, AttestedAuthenticator(UNKNOWN))
    assert data["aaguid"] == UNKNOWN and data["attested"] is False
    assert _register(app, SoftAuthenticator())["attested"] is False
    # a known model is named even unattested (for the account page)
    assert _register(app, AttestedAuthenticator(CERTIFIED))["model"] == "Test Key Certified"


@pytest.mark.parametrize("policy", ["none", "direct"])
def test_the_aaguid_allowlist_accepts_and_refuses(app: Any, policy: str) -> None:
    _policy(policy, allow=f" {CERTIFIED.upper()} , {UNKNOWN}")
    make = _key if policy == "direct" else AttestedAuthenticator
    assert _register(app, make(CERTIFIED))["aaguid"] == CERTIFIED
    with pytest.raises(wa.RegistrationRefused) as refused:
        _register(app, make(REVOKED))
    assert refused.value.reason == "allowlist"


def test_direct_without_an_imported_blob_refuses_everything(app: Any) -> None:
    _policy("direct")
    row = mds.stored(db.session)
    assert row is not None
    db.session.delete(row)
    db.session.commit()
    try:
        with pytest.raises(wa.RegistrationRefused) as refused:
            _register(app, _key(CERTIFIED))
        assert refused.value.reason == "no_metadata"
    finally:
        _import(PKI.blob(_entries(), next(SERIALS)))


# ------------------------------------------------------------ the login's enrolment, HTTP
def test_a_refused_key_at_login_enrolment_is_named_and_a_certified_one_enrols(app: Any) -> None:
    _policy("direct")
    client, user = app.factory.gen_client(), app.factory.gen_user()
    browser = Browser(app.url)
    page = browser.authorize(auth_params(client, pkce()[1], acr_values="mfa"), user).page
    uid = _uid(page)
    options = _options(browser, f"/interaction/{uid}/mfa/webauthn/register/options", page)
    assert options.json()["attestation"] == "direct"
    revoked = _key(REVOKED).create(options.json(), app.url)
    refused = _post(browser, f"/interaction/{uid}/mfa/webauthn/register", page, revoked)
    assert refused.status_code == 403
    assert "the FIDO Alliance revoked its model" in refused.text
    with app.app.app_context():
        assert wa.credentials(db.session, user.user_id) == []
    # the page offers enrolment again; a certified key enrols
    options = _options(browser, f"/interaction/{uid}/mfa/webauthn/register/options",
                       refused.text)  # fmt: skip
    created = _key(CERTIFIED).create(options.json(), app.url)
    codes = _post(browser, f"/interaction/{uid}/mfa/webauthn/register", refused.text, created)
    assert codes.status_code == 200 and "Save your recovery codes" in codes.text
    with app.app.app_context():
        [factor] = wa.credentials(db.session, user.user_id)
        assert factor.data["model"] == "Test Key Certified" and factor.data["attested"] is True


def _reissued(listed: Issued, key: ec.EllipticCurvePrivateKey | None = None) -> Issued:
    """``listed``'s name self-signed again by ``key`` (default: its own), other dates."""
    signer = key or listed.key
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(listed.cert.subject)
        .issuer_name(listed.cert.subject).public_key(signer.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )  # fmt: skip
    return Issued(signer, cert)


def test_direct_trusts_a_self_signed_certificate_by_the_listed_name_and_key(app: Any) -> None:
    """RFC 5280 §6.1.1 (d): the anchor is a name and a key. A unit re-issuing its self-signed
    certificate is attested by the one the blob lists; another key under that name is not."""
    _policy("direct")
    data = _register(app, AttestedAuthenticator(REISSUING, _reissued(SELF_SIGNED)))
    assert data["attested"] is True and data["model"] == "Test Key Re-issuing"
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(wa.RegistrationRefused) as refused:
        _register(app, AttestedAuthenticator(REISSUING, _reissued(SELF_SIGNED, other)))
    assert refused.value.reason == "unknown"
