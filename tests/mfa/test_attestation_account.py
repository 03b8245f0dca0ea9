"""The attestation policy on ``/account/mfa`` (issue 19): under ``direct`` a key whose model the
FIDO metadata reports revoked is refused with the reason on the page, a certified one is added
and named by the metadata's description. Over HTTP, with the tests' own MDS blob
(tests/mfa/mds_blob.py) and the account page's ceremony as webauthn.js runs it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from idp.extensions import db
from idp.mfa import attestation, mds
from idp.tenant.settings import tenant
from tests.mfa.mds_blob import AttestedAuthenticator, MdsPki, attestation_cert, entry, issue
from tests.mfa.test_account_factors import add_key, kinds
from tests.mfa.test_account_mfa import signed_in_with_totp

CERTIFIED = "11111111-2222-4333-8444-555555555555"
REVOKED = "22222222-3333-4444-8555-666666666666"


@pytest.fixture
def direct(op: Any) -> Iterator[None]:
    pki, maker = MdsPki(), issue("Test Maker Attestation Root")
    op.maker = maker
    with op.app.app_context():
        entries = [entry(CERTIFIED, [maker], "Test Key Certified"),
                   entry(REVOKED, [maker], "Test Key Revoked", ("REVOKED",))]  # fmt: skip
        mds.import_blob(db.session, pki.blob(entries, 1), pki.root.cert)
        tenant().write(db.session, {"WEBAUTHN_ATTESTATION": "direct"})
        db.session.commit()
        tenant().invalidate()
    yield
    with op.app.app_context():
        tenant().write(db.session, {"WEBAUTHN_ATTESTATION": "none"})
        db.session.commit()
        tenant().invalidate()


def test_the_account_page_names_the_refusal_and_the_certified_model(op: Any, direct: None) -> None:
    _user, browser, _, _ = signed_in_with_totp(op)
    revoked = AttestedAuthenticator(REVOKED, attestation_cert(op.maker, REVOKED))
    refused = add_key(browser, revoked, "key")
    assert refused.status_code == 403
    assert "the FIDO Alliance revoked its model" in refused.text
    assert kinds(refused.text) == ["totp"]
    unattested = add_key(browser, AttestedAuthenticator(CERTIFIED), "key")  # self attestation
    assert unattested.status_code == 403 and "did not prove which model" in unattested.text
    certified = AttestedAuthenticator(CERTIFIED, attestation_cert(op.maker, CERTIFIED))
    added = add_key(browser, certified, "key")
    assert added.status_code == 200 and kinds(added.text) == ["totp", "key"]
    assert "Test Key Certified" in added.text
    with op.app.app_context():
        assert attestation.authenticator_name(CERTIFIED) == "Test Key Certified"
