"""What an operator does to a user, behind the management API's ``/api/v2/users`` (Auth0
Management API v2, "Users": create, update, delete): the rules live here, the HTTP shapes in
``idp.management.users``. No ``flask.request`` here.

- **Create**: in the ``database`` connection only (the others sign users in through their
  upstream), the email checked and free (409 otherwise), the password through idp's password
  policy (``idp.identity.policy``, as sign-up and reset), standard claims through
  ``idp.identity.profile``.
- **Update**: ``email`` (free, and unverified unless the same change says otherwise, as
  Auth0), ``password`` (the user's sessions and refresh tokens end, as a reset does),
  standard claims, ``app_metadata``/``user_metadata`` merged one level deep (Auth0: a key set
  to ``null`` is removed, a nested object is replaced whole), ``blocked``.
- **Blocked** (Auth0's ``blocked``): no login by any connection, no token refresh, until lifted.
  Blocking ends the user's sessions as a logout does (so no SSO goes on and the account pages
  close); ``offline_access`` refresh tokens are kept but refused while blocked, and work again
  once the block is lifted, as at Auth0.
- **Delete**: the user and everything theirs. The open sessions end first as a logout ends
  them (their clients get back-channel logouts: the codes that name those clients are deleted
  next); sessions, identities, MFA (factors, recovery codes, codes in flight, remembered
  browsers, push devices) and consents then go by their ``ON DELETE CASCADE`` foreign keys;
  tokens and codes, which have no foreign key (the token endpoint's hot path reads them by
  hash), are deleted here. Access token records are kept, revoked and detached from the
  user, until they expire: a revoked ``jti`` must stay known. The tenant log and action
  executions are logs, and keep the user id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from idp.connections import service as connections
from idp.core import clock
from idp.core.errors import ConflictError, ValidationError
from idp.flows import service as flows
from idp.identity import profile
from idp.identity import service as identity
from idp.identity.models import EmailToken, User
from idp.identity.policy import PasswordPolicy
from idp.oauth.models import AccessTokenRecord, AuthorizationCode, RefreshToken

MAX_METADATA = 16 * 1024  # bytes of JSON, Auth0's limit for each metadata object


class InvalidProperty(ValidationError):
    """A value refused, naming the property (``address.country``) and the reason."""

    def __init__(self, prop: str, reason: str) -> None:
        super().__init__(f"{prop}: {reason}")
        self.prop = prop
        self.reason = reason


@dataclass
class Changes:
    """What an update sends: only fields present in the request are set (``None`` in
    ``claims`` removes that claim; in the metadata, removes that key)."""

    email: str | None = None
    email_verified: bool | None = None
    password: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    app_metadata: dict[str, Any] | None = None
    user_metadata: dict[str, Any] | None = None
    blocked: bool | None = None


@dataclass(frozen=True)
class Outcome:
    """What an update did, for the tenant log events of the user's own history."""

    password_set: bool = False
    blocked: bool | None = None  # True: newly blocked; False: block lifted; None: unchanged
    sessions_ended: int = 0


def check_email(email: str) -> str:
    normalised = identity.normalise_email(email)
    if not identity.EMAIL.match(normalised):
        raise InvalidProperty("email", f"Object didn't pass validation for format email: {email}")
    return normalised


def check_password(policy: PasswordPolicy, password: str, email: str) -> None:
    problems = policy.problems(password, email)
    if problems:
        raise InvalidProperty("password", "PasswordStrengthError: " + " ".join(problems))


def check_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """Each claim through ``idp.identity.profile``, so the refusal names the one at fault."""
    clean: dict[str, Any] = {}
    for claim, value in claims.items():
        try:
            clean.update(profile.validate({claim: value}))
        except ValidationError as exc:
            raise InvalidProperty(claim, str(exc)) from None
    return clean


def merge_metadata(
    name: str, current: dict[str, Any] | None, sent: dict[str, Any]
) -> dict[str, Any]:
    """Auth0's merge: top-level keys of ``sent`` replace the stored ones (a nested object
    whole), ``null`` removes a key. At most ``MAX_METADATA`` bytes of JSON once merged."""
    merged = dict(current or {})
    for key, value in sent.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(json.dumps(merged, separators=(",", ":")).encode()) > MAX_METADATA:
        raise InvalidProperty(name, f"the merged object is larger than {MAX_METADATA} bytes")
    return merged


def _email_free(session: Session, email: str, other_than: str | None = None) -> None:
    taken = session.scalar(select(User.id).where(User.email == email))
    if taken is not None and taken != other_than:
        raise ConflictError("The user already exists.")  # Auth0's words


def create_user(
    session: Session,
    passwords: identity.Passwords,
    policy: PasswordPolicy,
    *,
    connection: str,
    email: str,
    password: str,
    email_verified: bool = False,
    claims: dict[str, Any] | None = None,
    app_metadata: dict[str, Any] | None = None,
    user_metadata: dict[str, Any] | None = None,
    blocked: bool = False,
) -> User:
    if connection != connections.DATABASE:
        raise InvalidProperty(
            "connection", f"users with a password are created in the {connections.DATABASE!r} "
            f"connection; {connection!r} is not it (its users sign in through their upstream)",
        )  # fmt: skip
    normalised = check_email(email)
    check_password(policy, password, normalised)
    clean = check_claims(claims or {})
    app = merge_metadata("app_metadata", {}, app_metadata or {})
    mine = merge_metadata("user_metadata", {}, user_metadata or {})
    _email_free(session, normalised)
    user = identity.create_user(
        session, passwords, email=normalised, password=password, email_verified=email_verified
    )
    _apply_claims(user, clean)
    user.app_metadata, user.user_metadata, user.blocked = app, mine, blocked
    session.flush()
    return user


def _apply_claims(user: User, clean: dict[str, Any]) -> None:
    try:
        profile.update_profile(user, clean)
    except ValidationError as exc:  # the one rule across claims: a phone's verification
        raise InvalidProperty("phone_number_verified", str(exc)) from None


def has_password_identity(session: Session, user: User) -> bool:
    return any(
        c.name == connections.DATABASE for _, c in connections.identities_of(session, user.id)
    )


def update_user(
    session: Session,
    passwords: identity.Passwords,
    policy: PasswordPolicy,
    user: User,
    changes: Changes,
) -> Outcome:
    """Apply ``changes`` after checking all of them (a refusal changes nothing)."""
    email = user.email if changes.email is None else check_email(changes.email)
    if changes.password is not None:
        if not has_password_identity(session, user):
            raise InvalidProperty(
                "password", "the user has no identity in the database connection (it signs in "
                "through another connection): there is no password to set",
            )  # fmt: skip
        check_password(policy, changes.password, email)
    clean = check_claims(changes.claims)
    app = user_md = None
    if changes.app_metadata is not None:
        app = merge_metadata("app_metadata", user.app_metadata, changes.app_metadata)
    if changes.user_metadata is not None:
        user_md = merge_metadata("user_metadata", user.user_metadata, changes.user_metadata)
    if email != user.email:
        _email_free(session, email, other_than=user.id)
        user.email = email
        user.email_verified = False  # a new address is unproven, unless this change says so
    if changes.email_verified is not None:
        user.email_verified = changes.email_verified
    _apply_claims(user, clean)
    if app is not None:
        user.app_metadata = app
    if user_md is not None:
        user.user_metadata = user_md
    ended, password_set = 0, False
    if changes.password is not None:
        identity.set_password(session, passwords, user, changes.password)
        ended = flows.end_user_sessions(session, user.id)  # as a reset: the old one is out
        password_set = True
    blocked = None
    if changes.blocked is not None and changes.blocked != bool(user.blocked):
        user.blocked = blocked = changes.blocked
        if blocked:
            ended += flows.end_sessions(session, user.id)
    user.updated_at = clock.now()
    session.flush()
    return Outcome(password_set, blocked, ended)


def delete_user(session: Session, user: User) -> None:
    """The user and everything theirs (see the module docstring)."""
    uid = user.id
    flows.end_sessions(session, uid)  # OIDC BCL §2.5: before the codes naming its clients go
    session.execute(
        update(AccessTokenRecord)
        .where(AccessTokenRecord.user_id == uid)
        .values(revoked=True, user_id=None)
    )
    for table in (RefreshToken, AuthorizationCode, EmailToken):
        session.execute(delete(table).where(table.user_id == uid))
    session.delete(user)
    session.flush()
