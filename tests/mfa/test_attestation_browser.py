"""WebAuthn attestation in Chromium (issue 19): under ``direct``, a CDP virtual authenticator's
``packed`` attestation (WebAuthn §8.2, signed with the certificate Chromium's virtual device
carries) is accepted from the account page only when the tests' MDS3 blob lists that
certificate's root for the authenticator's AAGUID; with a blob that does not, the page names
the refusal; a tampered blob is refused at import and leaves the trust store as it was.

The AAGUID and chain are read from the first (refused) registration's request, as an operator
would read them from the authenticator's documentation, rather than copied from Chromium's
source: they follow Chromium, the test does not.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from webauthn.helpers.aaguid_to_string import aaguid_to_string

from idp.extensions import db
from idp.mfa import mds
from idp.tenant.settings import tenant
from tests.mfa.mds_blob import MdsPki, entry, issue
from tests.mfa.test_account_factors_browser import _signed_in
from tests.mfa.test_attestation import _tampered
from tests.mfa.test_webauthn import Device, chromium, device, local, rp

__all__ = ["chromium", "device", "local", "rp"]  # the fixtures, shared with test_webauthn
pytestmark = pytest.mark.browser
OTHER = "11111111-2222-4333-8444-555555555555"  # a model of the blob that is not Chromium's


@pytest.fixture
def pki(local: Any) -> Iterator[MdsPki]:
    """The tests' MDS PKI, and the tenant under ``direct`` (back to ``none`` afterwards)."""
    with local.app.app_context():
        tenant().write(db.session, {"WEBAUTHN_ATTESTATION": "direct"})
        db.session.commit()
        tenant().invalidate()
    yield MdsPki()
    with local.app.app_context():
        tenant().write(db.session, {"WEBAUTHN_ATTESTATION": "none"})
        db.session.commit()
        tenant().invalidate()


def load_blob(op: Any, pki: MdsPki, blob: str) -> None:
    with op.app.app_context():
        mds.import_blob(db.session, blob, pki.root.cert)
        db.session.commit()


def add_security_key(dev: Device, sent: list[str]) -> str:
    """From the account page, as a person would; the text of the page it ends on."""
    dev.page.goto(f"{dev.op.url}/account/mfa")
    dev.page.get_by_role("button", name="Add a security key").click()
    dev.page.get_by_role("heading", name="Add a security key").wait_for()
    before = len(sent)
    with dev.page.expect_navigation():
        dev.page.get_by_role("button", name="Continue").click()  # webauthn.js runs create()
    assert len(sent) == before + 1
    return str(dev.page.content())


def attestation_of(credential: str) -> tuple[str, str, list[x509.Certificate]]:
    """(fmt, AAGUID, x5c) of a registration response as the browser sent it."""
    raw = json.loads(credential)["response"]["attestationObject"]
    att = cbor2.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    aaguid = aaguid_to_string(att["authData"][37:53])
    chain = [x509.load_der_x509_certificate(c) for c in att["attStmt"].get("x5c", [])]
    return att["fmt"], aaguid, chain


def entry_with_root(aaguid: str, root: x509.Certificate, description: str) -> dict[str, Any]:
    """A metadata entry listing a certificate we hold no key for (Chromium's) as the root."""
    found = entry(aaguid, [], description)
    der = root.public_bytes(serialization.Encoding.DER)
    found["metadataStatement"]["attestationRootCertificates"] = [base64.b64encode(der).decode()]
    return found


def test_packed_attestation_accepted_only_with_its_root_in_the_blob(
    device: Device, pki: MdsPki
) -> None:
    op = device.op
    sent: list[str] = []

    def capture(request: Any) -> None:
        if request.method == "POST" and "/account/mfa/webauthn/" in request.url:
            sent.extend(parse_qs(request.post_data or "").get("credential", []))

    device.page.on("request", capture)
    client, user = op.factory.gen_client(redirect_uris=[device.rp]), op.factory.gen_user()
    _signed_in(device, client, user)

    # a blob that knows another model only: Chromium's key is refused, the reason on the page
    load_blob(op, pki, pki.blob([entry(OTHER, [issue("Maker")], "Other Key")], 1))
    page = add_security_key(device, sent)
    assert "its model is not certified by the FIDO Alliance" in page
    fmt, aaguid, chain = attestation_of(sent[-1])
    assert fmt == "packed" and chain, (fmt, len(chain))  # a full attestation was asked for
    assert aaguid != "00000000-0000-0000-0000-000000000000"
    root = chain[-1]  # Chromium's virtual device signs with one self-signed certificate

    # the blob lists Chromium's AAGUID under another maker's root: still refused
    load_blob(op, pki, pki.blob([entry(aaguid, [issue("Maker")], "Chromium Virtual")], 2))
    page = add_security_key(device, sent)
    assert "its model is not certified by the FIDO Alliance" in page

    # a tampered blob (a status changed after signing) is refused at import, nothing changes
    good = pki.blob([entry_with_root(aaguid, root, "Chromium Virtual Authenticator")], 3)
    with op.app.app_context():
        with pytest.raises(mds.MdsError, match="signature"):
            mds.import_blob(db.session, _tampered(good), pki.root.cert)
        db.session.rollback()
        stored = mds.stored(db.session)
        assert stored is not None and stored.serial == 2
    page = add_security_key(device, sent)
    assert "its model is not certified by the FIDO Alliance" in page

    # the blob that lists the chain's root for that AAGUID: accepted and named by the blob
    load_blob(op, pki, good)
    page = add_security_key(device, sent)
    assert "Save your recovery codes" in page, page[:2000]
    device.page.get_by_role("button", name="I saved them, continue").click()
    listed = device.page.locator("li[data-kind=key]")
    listed.wait_for()
    assert "Chromium Virtual Authenticator" in listed.inner_text()
