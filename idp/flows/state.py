"""What an interaction has settled so far: one typed, versioned record stored as JSON.

Every page of a login (the login form, consent, the MFA step, ``/continue``) reads it with
:func:`load` and writes it back with :func:`save`; nothing else is kept about a login in
progress. A record of another version is not guessed at: the interaction counts as expired.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from idp.extensions import db
from idp.flows.models import Interaction
from idp.oauth.authorize import AuthorizationRequest
from idp.stores import STORES

VERSION = 1
# The prompt of an interaction whose code was issued. It is kept until it expires, so that a
# form posted twice (a double click) can be sent on to a new authorization request with the
# same parameters (idp.flows.pipeline.resend), rather than to an "expired" page in place of
# the application. It never answers a second time itself.
DONE = "done"


@dataclass
class MfaStep:
    """The MFA decision, taken once per interaction, and the step's progress."""

    reasons: list[str]  # the policy checks that fired (empty: no second factor needed)
    allow_remember_browser: bool = True
    enrolled: bool = False  # a factor was enrolled in this login ("continue" finishes it)
    kind: str | None = None  # the kind enrolled, for amr


@dataclass
class PostLogin:
    """The post-login chain's result for this login: run once, then reused."""

    effects: dict[str, Any] | None = None  # done: what the code carries
    paused_action: str | None = None  # paused by api.redirect.send_user_to at this action
    paused_effects: dict[str, Any] | None = None


@dataclass
class LoginState:
    request: AuthorizationRequest
    prompt: str  # the prompt whose page the browser was sent to
    user_id: str | None = None
    sid: str | None = None  # the login session this interaction belongs to
    logged_in: bool = False  # the user authenticated in this interaction
    consented: bool = False
    mfa: MfaStep | None = None
    mfa_passed: bool = False
    device_approved: bool = False  # RFC 8628 §3.3: the person approved the device
    post_login: PostLogin | None = None
    # A login sent to an upstream (idp.flows.connection): the connection, the digest of the
    # state's secret, and what the upstream leg keeps (PKCE verifier, nonce). Single use.
    upstream: dict[str, Any] | None = None
    # An upstream login waiting to be linked to an existing user who must prove the account:
    # the connection, that user's id, and the upstream profile sealed (it may hold tokens).
    link: dict[str, Any] | None = None
    # The factors' ceremony data (a WebAuthn challenge, a push ticket, "a code was sent"),
    # owned by the factor modules (idp.mfa); never trusted from the browser.
    ceremony: dict[str, Any] = field(default_factory=dict)
    # The WebAuthn credential a passkey login without user verification used (one factor): the
    # MFA step must take another credential or another kind, never this one again.
    first_credential: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["request"] = self.request.as_json()
        data["v"] = VERSION
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoginState | None:
        if not isinstance(data, dict) or data.get("v") != VERSION:
            return None
        # a copy: the row's loaded value must stay as it was, or the ORM would see no change
        fields = {k: v for k, v in copy.deepcopy(data).items() if k != "v"}
        try:
            fields["request"] = AuthorizationRequest.from_json(fields["request"])
            if fields.get("mfa") is not None:
                fields["mfa"] = MfaStep(**fields["mfa"])
            if fields.get("post_login") is not None:
                fields["post_login"] = PostLogin(**fields["post_login"])
            state = cls(**fields)
        except (AttributeError, KeyError, TypeError, ValueError):
            return None  # not a record this code wrote: the interaction counts as expired
        return state if isinstance(state.ceremony, dict) else None


def load(row: Interaction) -> LoginState | None:
    return LoginState.from_json(row.state)


def save(row: Interaction, state: LoginState) -> None:
    """Write ``state`` in the open transaction now: one plain UPDATE (``idp.stores``), not an
    ORM flush of the row at the next query or commit."""
    STORES.interactions.save(db.session, row, state.as_json())
