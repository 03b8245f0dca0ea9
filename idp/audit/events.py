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
MFA_RENAMED = "mfa.renamed"  # a user relabelled one of their factors
CONNECTION_LOGIN_FAILURE = "connection.login_failure"  # an upstream login failed or was refused
IDENTITY_LINKED = "identity.linked"
IDENTITY_UNLINKED = "identity.unlinked"
# dynamic client registration (RFC 7591, RFC 7592): the client, never a token
CLIENT_REGISTERED = "client.registered"
CLIENT_REGISTRATION_UPDATED = "client.registration_updated"
CLIENT_REGISTRATION_DELETED = "client.registration_deleted"
CLIENT_REGISTRATION_REFUSED = "client.registration_refused"  # the error code and field
# a write through the management API: the calling client, the resource, the fields sent (names)
MANAGEMENT_WRITE = "management.write"

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
