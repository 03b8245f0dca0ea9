"""WebAuthn (Level 3) security keys and passkeys, as a second factor and as a passwordless
first factor, on py_webauthn.

The relying party is the issuer: RP ID = its host (WebAuthn §5.1.3 "RP ID" is a registrable
domain, never a port or an IP address), origin = its scheme://host[:port] (§7.1 step 9).
Challenges are 32 random bytes (§13.4.3), kept server-side in the interaction's ``data`` so
they expire with it, and taken out before verification so each is used once. A stored sign
count that does not grow is refused (§6.1.1, §7.2 step 22) unless the authenticator reports
no counter at all (both zero, as synced passkeys do). Credentials live in ``mfa_factors``:
``kind="webauthn"``, public material in ``data``.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.core import clock
from idp.core.crypto import random_token
from idp.flows.models import Interaction
from idp.flows.state import LoginState, load, save
from idp.i18n import N_
from idp.identity.models import User
from idp.mfa import attestation
from idp.mfa.models import Factor

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

KIND = "webauthn"
CHALLENGE_TTL = 180  # seconds; the ceremony timeout below plus time to post the result
TIMEOUT_MS = 120_000
MAX_CREDENTIAL_JSON = 16_384  # an attestation with a certificate chain stays well under this
_KEY = "webauthn"  # the interaction ``data`` key holding the pending challenge


class WebAuthnError(ValueError):
    """A ceremony that must be refused; the message is for logs, never for the user."""


class RegistrationRefused(WebAuthnError):
    """The tenant's attestation policy refused the authenticator (idp.mfa.attestation);
    ``message`` names why, for the person registering it."""

    def __init__(self, refused: attestation.AttestationRefused) -> None:
        super().__init__(str(refused))
        self.reason, self.message = refused.reason, refused.message


def relying_party(issuer: str) -> tuple[str, str]:
    """(RP ID, origin) of this issuer."""
    parts = urlsplit(issuer)
    return parts.hostname or "", f"{parts.scheme}://{parts.netloc}"


def uv_requirement(setting: str) -> UserVerificationRequirement:
    from webauthn.helpers.structs import UserVerificationRequirement

    try:
        return UserVerificationRequirement(setting)
    except ValueError as exc:
        raise WebAuthnError(f"MFA_WEBAUTHN_USER_VERIFICATION: unknown value {setting!r}") from exc


def credentials(session: Session, user_id: str) -> list[Factor]:
    return [
        f
        for f in session.scalars(
            select(Factor).where(
                Factor.user_id == user_id, Factor.kind == KIND, Factor.confirmed.is_(True)
            )
        )
    ]


def _descriptor(factor: Factor) -> PublicKeyCredentialDescriptor:
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    transports = []
    for value in factor.data.get("transports") or []:
        try:
            transports.append(AuthenticatorTransport(value))
        except ValueError:
            continue  # a transport newer than this library: the browser does without hints
    return PublicKeyCredentialDescriptor(
        id=unb64(factor.data["credential_id"]), transports=transports or None
    )


# --------------------------------------------------------------------------- challenges
def put_challenge(row: Interaction, state: LoginState, purpose: str, challenge: bytes) -> None:
    """Remember the one pending challenge of this interaction (a new one replaces it)."""
    state.ceremony[_KEY] = {
        "challenge": b64(challenge),
        "purpose": purpose,
        "expires_at": min(clock.now() + CHALLENGE_TTL, row.expires_at),
    }
    save(row, state)


def take_challenge(
    session: Session, row: Interaction, purpose: str
) -> tuple[bytes | None, LoginState | None]:
    """Remove and return the pending challenge for ``purpose``, with the state re-read. The
    row is re-read under a row lock, so of two posts racing with one challenge only the
    first finds it."""
    session.refresh(row, with_for_update=True)
    state = load(row)
    pending = state.ceremony.pop(_KEY, None) if state is not None else None
    if state is None or pending is None:
        return None, state
    save(row, state)
    if pending.get("purpose") != purpose or pending.get("expires_at", 0) <= clock.now():
        return None, state
    return unb64(pending["challenge"]), state


# -------------------------------------------------------------------------- registration
def registration_options(
    rp_id: str, rp_name: str, user: User, existing: list[Factor], uv: str,
    resident: bool | None = None,
) -> tuple[dict[str, Any], bytes]:  # fmt: skip
    """Options for navigator.credentials.create(). A discoverable credential is preferred,
    so the same key can later sign in without a password (§5.4.6 residentKey); the account
    page asks for one (a passkey: required) or not (a security key: discouraged)."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
    )

    resident_key = {None: ResidentKeyRequirement.PREFERRED, True: ResidentKeyRequirement.REQUIRED,
                    False: ResidentKeyRequirement.DISCOURAGED}[resident]  # fmt: skip
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_name=user.email,
        user_id=user.id.encode(),  # opaque, not personal data (§14.6.1 user handle)
        user_display_name=user.email,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=resident_key,
            user_verification=uv_requirement(uv),
        ),
        exclude_credentials=[_descriptor(f) for f in existing],
        attestation=AttestationConveyancePreference(attestation.conveyance()),
    )
    return json.loads(options_to_json(options)), options.challenge


def verify_registration(
    credential: str, challenge: bytes, rp_id: str, origin: str, uv: str
) -> dict[str, Any]:
    """Check an attestation and the tenant's attestation policy (idp.mfa.attestation: the
    certificate chain to the claimed model's roots, then the policy's decision) and return the
    ``Factor.data`` of the new credential. :class:`RegistrationRefused` when the policy
    refuses the authenticator."""
    from webauthn import verify_registration_response
    from webauthn.helpers.exceptions import InvalidCertificateChain, WebAuthnException
    from webauthn.helpers.structs import CredentialDeviceType, UserVerificationRequirement

    if len(credential) > MAX_CREDENTIAL_JSON:
        raise WebAuthnError("credential too large")
    errors = (WebAuthnException, ValueError, TypeError, KeyError, AttributeError)
    try:
        claim = attestation.claim(credential)
    except errors as exc:
        raise WebAuthnError(str(exc)) from exc
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=uv_requirement(uv) == UserVerificationRequirement.REQUIRED,
            pem_root_certs_bytes_by_fmt=claim.roots(),
        )
        transports = json.loads(credential).get("response", {}).get("transports") or []
    except errors as exc:
        # py_webauthn wraps the chain's failure (InvalidCertificateChain) in its generic error:
        # a certificate the claimed model's roots did not issue is the policy's refusal, named
        if isinstance(exc.__context__, InvalidCertificateChain) and claim.roots() is not None:
            raise RegistrationRefused(attestation.AttestationRefused("unknown", str(exc))) from exc
        raise WebAuthnError(str(exc)) from exc
    try:
        trust = claim.decide()
    except attestation.AttestationRefused as exc:
        raise RegistrationRefused(exc) from exc
    return {
        **trust,
        "credential_id": b64(verified.credential_id),
        "public_key": b64(verified.credential_public_key),
        "sign_count": verified.sign_count,
        "transports": [str(t)[:32] for t in transports if isinstance(t, str)][:8],
        "aaguid": verified.aaguid,
        "synced": verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        "user_verified": verified.user_verified,
    }


def b64(data: bytes) -> str:
    """base64url without padding (py_webauthn's ``bytes_to_base64url``, which would import
    the library for a one-liner)."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    """The reverse, padding restored (py_webauthn's ``base64url_to_bytes``)."""
    return base64.urlsafe_b64decode(f"{text}{'=' * (-len(text) % 4)}")


def take_pending(session: Session, factor_id: str) -> bool:
    """Spend a pending registration (the account page's, its challenge inside) by deleting
    it: a conditional DELETE, so of two posts with one challenge exactly one goes on."""
    result = session.execute(
        delete(Factor).where(Factor.id == factor_id, Factor.kind == KIND,
                             Factor.confirmed.is_(False)),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    return bool(getattr(result, "rowcount", 0) == 1)


def add_credential(session: Session, user_id: str, data: dict[str, Any]) -> Factor:
    taken = any(f.data.get("credential_id") == data["credential_id"]
                for f in credentials(session, user_id))  # fmt: skip
    if taken:
        raise WebAuthnError("credential already registered")
    factor = Factor(
        id="fac_" + random_token(12),
        user_id=user_id,
        kind=KIND,
        name=N_("Passkey") if data.get("synced") else N_("Security key"),
        data=data,
        confirmed=True,
        created_at=clock.now(),
    )
    session.add(factor)
    return factor


# ------------------------------------------------------------------------ authentication
def authentication_options(
    rp_id: str, allowed: list[Factor] | None, uv: str
) -> tuple[dict[str, Any], bytes]:
    """Options for navigator.credentials.get(): the user's credentials for a second factor,
    none (any discoverable credential for this RP) for a passwordless sign-in."""
    from webauthn import generate_authentication_options, options_to_json

    options = generate_authentication_options(
        rp_id=rp_id,
        timeout=TIMEOUT_MS,
        allow_credentials=[_descriptor(f) for f in allowed] if allowed is not None else [],
        user_verification=uv_requirement(uv),
    )
    return json.loads(options_to_json(options)), options.challenge


def _parse(credential: str) -> dict[str, Any]:
    if len(credential) > MAX_CREDENTIAL_JSON:
        raise WebAuthnError("credential too large")
    try:
        parsed = json.loads(credential)
    except ValueError as exc:
        raise WebAuthnError("credential is not JSON") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("response"), dict):
        raise WebAuthnError("credential is not a PublicKeyCredential")
    return parsed


def user_handle(credential: str) -> str | None:
    """The user id a discoverable credential names (§5.2.2 userHandle), unverified."""
    handle = _parse(credential)["response"].get("userHandle")
    if not isinstance(handle, str) or not handle or len(handle) > 128:
        return None
    try:
        return unb64(handle).decode()
    except ValueError:
        return None


def verify_assertion(
    credential: str,
    challenge: bytes,
    rp_id: str,
    origin: str,
    uv: str,
    candidates: list[Factor],
) -> tuple[Factor, bool]:
    """Check an assertion by one of ``candidates``; move its sign count forward. Returns
    the factor and whether the user was verified."""
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import WebAuthnException
    from webauthn.helpers.structs import CredentialDeviceType, UserVerificationRequirement

    parsed = _parse(credential)
    factor = next(
        (f for f in candidates if f.data.get("credential_id") == parsed.get("rawId")), None
    )
    if factor is None or parsed.get("id") != parsed.get("rawId"):
        raise WebAuthnError("unknown credential")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=unb64(factor.data["public_key"]),
            credential_current_sign_count=int(factor.data.get("sign_count") or 0),
            require_user_verification=uv_requirement(uv) == UserVerificationRequirement.REQUIRED,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise WebAuthnError(str(exc)) from exc
    # A new dict: SQLAlchemy notices the assignment, not an in-place change of the JSON.
    factor.data = {
        **factor.data,
        "sign_count": verified.new_sign_count,
        "synced": verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
    }
    factor.last_used_at = clock.now()
    return factor, verified.user_verified


def verify_form(*_args: Any) -> bool:
    """The MFA page's own POST (action=webauthn) cannot carry an assertion: the challenge
    form posts to its own route (webauthn_views.challenge). Anything posted here fails."""
    return False


def amr(factor: Factor) -> str:
    """RFC 8176 §2: "hwk" for a key held by hardware (security key, device-bound platform
    key); a synced passkey leaves the device, so it is a software-secured key, "swk"."""
    return "swk" if factor.data.get("synced") else "hwk"
