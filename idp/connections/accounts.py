"""Who an upstream login is: the user of the identity, a new user, or an existing user the
login may be linked to once that user proves the account.

An identity is found by (connection, upstream user id) and by nothing else. An email is only
ever a reason to *offer* a link (safe by default): it links by itself only when the
connection trusts its upstream's verification (``trust_email_verified``) and both sides say
the address is verified. An upstream address that is not verified never links and never
takes an existing user's address: that is the nOAuth attack (an upstream that lets anyone set
any email).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.connections import service as connections
from idp.connections import strategies
from idp.connections.models import Connection, Identity
from idp.connections.upstream import UpstreamProfile
from idp.core import clock
from idp.core.crypto import SecretBox, random_token
from idp.core.errors import ValidationError
from idp.identity import profile as standard
from idp.identity import service as identity
from idp.identity.models import User
from idp.stores import STORES

LOGIN, LINK, CREATE, REFUSE = "login", "link", "create", "refuse"


@dataclass(frozen=True)
class Match:
    """What to do with an upstream login: ``login`` as ``user``; ``link`` (offer to add the
    identity to ``user``, who must prove the account first); ``create`` a user; ``refuse``
    (``reason`` says why, safe to show)."""

    kind: str
    user: User | None = None
    identity: Identity | None = None
    reason: str = ""


EMAIL_TAKEN = (
    "An account with this email address already exists, and the provider did not verify the "
    "address, so it cannot be linked. Sign in with that account instead."
)
NON_ASCII = "This provider's email address cannot be used here."
NO_EMAIL = "The provider did not share an email address, which this service needs."


def match(session: Session, connection: Connection, upstream: UpstreamProfile) -> Match:
    """Decide who this upstream login is (reads only)."""
    found = connections.find_identity(session, connection, upstream.user_id)
    if found is not None:
        user = STORES.users.get(session, found.user_id)
        if user is not None:
            return Match(LOGIN, user=user, identity=found)
    email = identity.normalise_email(upstream.email or "")
    if not email or not identity.EMAIL.match(email):
        return Match(REFUSE, reason=NO_EMAIL)
    if not (upstream.email or "").isascii():
        # Unicode case folding maps other letters onto ASCII ones (the Kelvin sign lowers to
        # "k"): such an address could match, link to or take another user's
        return Match(REFUSE, reason=NON_ASCII)
    existing = session.scalar(select(User).where(User.email == email))
    if existing is None:
        return Match(CREATE)
    if not upstream.email_verified:
        return Match(REFUSE, user=existing, reason=EMAIL_TAKEN)
    trusted = bool(connection.options.get("trust_email_verified"))
    if trusted and existing.email_verified:
        return Match(LOGIN, user=existing)  # auto-link: the caller adds the identity
    return Match(LINK, user=existing)


def _sealed_tokens(box: SecretBox, connection: Connection, upstream: UpstreamProfile) -> str | None:
    if not connection.options.get("keep_tokens") or not upstream.tokens:
        return None
    return box.encrypt(json.dumps(upstream.tokens).encode()).decode()


def remember(
    session: Session, box: SecretBox, user: User, connection: Connection,
    upstream: UpstreamProfile, found: Identity | None,
) -> Identity:  # fmt: skip
    """Record this login on the identity (a new one when linking or creating): the upstream
    profile as received and, only when the connection keeps them, its tokens sealed."""
    if found is None:
        found = connections.add_identity(session, user, connection, upstream.user_id)
    found.profile = dict(upstream.raw)
    groups = upstream.raw.get("groups")
    if connection.strategy == strategies.SAMLP and isinstance(groups, list):
        # the enterprise IdP's groups, as of this login, where actions and apps read them
        user.app_metadata = {**(user.app_metadata or {}), "groups": [str(g) for g in groups]}
    found.email_verified = bool(upstream.email_verified)
    found.tokens = _sealed_tokens(box, connection, upstream)
    found.updated_at = clock.now()
    return found


def create_user(session: Session, connection: Connection, upstream: UpstreamProfile) -> User:
    """A user for a first login through ``connection``: no password (it never gets the
    database identity), the upstream's email and its verification as the upstream says, the
    standard claims that pass idp's checks (one bad claim from an upstream drops that claim,
    not the login)."""
    email = identity.normalise_email(upstream.email or "")
    if not identity.EMAIL.match(email):
        raise ValidationError(NO_EMAIL)
    now = clock.now()
    user = User(
        id="usr_" + random_token(12), email=email, email_verified=upstream.email_verified,
        password_hash=None, created_at=now, updated_at=now, app_metadata={},
        user_metadata={}, profile={}, logins_count=0,
    )  # fmt: skip
    claims: dict[str, Any] = {}
    for claim, value in upstream.claims.items():
        if claim not in standard.EDITABLE:
            continue
        try:
            claims.update(standard.validate({claim: value}))
        except ValidationError:
            continue
    if claims:
        standard.update_profile(user, claims)
    session.add(user)
    return user


def unlinkable(session: Session, user_id: str, identity_id: str) -> str | None:
    """Why a user may not remove this identity themselves (None: they may): it is not theirs,
    it is the database connection's (their password), or it is their last way to sign in."""
    owned = connections.identities_of(session, user_id)
    mine = next((c for i, c in owned if i.id == identity_id), None)
    if mine is None:
        return "This sign-in method is not linked to your account."
    if mine.name == connections.DATABASE:  # the password stays with the account
        return "Your password is managed from the password page."
    if len(owned) <= 1:
        return "This is your only way to sign in; it cannot be removed."
    return None


def address_proved(session: Session, user: User) -> list[str]:
    """The address's owner proved it (a password reset link): the identities that came with
    the address unverified by their upstream are removed, so that whoever set someone's
    address at a lax upstream before its owner arrived cannot sign in to the account the
    owner now uses (account pre-hijacking). The password is the database connection's: its
    identity is added if the user had none. Returns the removed identities' connections."""
    removed = []
    for found, connection in connections.identities_of(session, user.id):
        if connection.name != connections.DATABASE and not found.email_verified:
            session.delete(found)
            removed.append(connection.name)
    if not any(
        c.name == connections.DATABASE for _, c in connections.identities_of(session, user.id)
    ):
        connections.add_database_identity(session, user)
    return removed
