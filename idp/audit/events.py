"""Event names (stable, ``noun.verb``; STYLE.md rule 14)."""

LOGIN_SUCCESS = "login.success"
LOGIN_FAILURE = "login.failure"
LOGIN_BLOCKED = "login.blocked"
ACCOUNT_BLOCKED = "account.blocked"
ACCOUNT_UNBLOCKED = "account.unblocked"
IP_THROTTLED = "ip.throttled"
LOGOUT = "logout.success"
CONSENT_GIVEN = "consent.given"
CONSENT_DENIED = "consent.denied"
CONSENT_REVOKED = "consent.revoked"
SIGNUP_SUCCESS = "signup.success"
SIGNUP_FAILURE = "signup.failure"
EMAIL_VERIFIED = "email.verified"
PASSWORD_RESET_REQUESTED = "password.reset_requested"  # noqa: S105 - an event name
PASSWORD_RESET = "password.reset"  # noqa: S105 - an event name
PASSWORD_CHANGED = "password.changed"  # noqa: S105 - an event name
SESSION_ENDED = "session.ended"
MFA_SUCCESS = "mfa.success"
MFA_FAILURE = "mfa.failure"
MFA_ENROLLED = "mfa.enrolled"
MFA_REMOVED = "mfa.removed"

ALL = (
    LOGIN_SUCCESS,
    LOGIN_FAILURE,
    LOGIN_BLOCKED,
    ACCOUNT_BLOCKED,
    ACCOUNT_UNBLOCKED,
    IP_THROTTLED,
    LOGOUT,
    CONSENT_GIVEN,
    CONSENT_DENIED,
)
