"""Typed settings: defaults, then ``instance/config.toml``, then ``IDP_*`` environment variables,
then the mapping passed to :func:`idp.create_app` (tests)."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Setting:
    """One configuration key: its default and what it means."""

    default: Any
    doc: str


SETTINGS: dict[str, Setting] = {
    "ISSUER": Setting("http://localhost:5000", "Issuer URL; every endpoint hangs off it."),
    "DATABASE_URL": Setting("", "SQLAlchemy URL; empty means SQLite at instance/idp.sqlite3."),
    "SECRET_KEY": Setting("", "Instance secret (cookies, key encryption, secret digests)."),
    "AUTH_CODE_TTL": Setting(60, "Authorization code lifetime, seconds (FAPI2 uses 60)."),
    "ACCESS_TOKEN_TTL": Setting(3600, "Access token lifetime, seconds."),
    "ID_TOKEN_TTL": Setting(3600, "ID token lifetime, seconds."),
    "REFRESH_TOKEN_IDLE_TTL": Setting(14 * 86400, "Refresh token idle lifetime, seconds."),
    "REFRESH_TOKEN_ABSOLUTE_TTL": Setting(90 * 86400, "Refresh family absolute lifetime."),
    "REFRESH_GRACE_SECONDS": Setting(
        10, "Reuse of the immediately previous refresh token is served, not punished, this long."
    ),
    "SESSION_TTL": Setting(7 * 86400, "Login session lifetime, seconds."),
    "INTERACTION_TTL": Setting(900, "How long a pending login interaction stays valid."),
    "CONSOLE_IDLE_SECONDS": Setting(900, "The admin console's session ends after this idle time."),
    "CONSOLE_MAX_SECONDS": Setting(8 * 3600, "...and this long after its login in any case."),
    "CONSOLE_REAUTH_SECONDS": Setting(
        600, "The console's sign-in asks the password and second factor again when older."
    ),
    "CLIENT_CACHE_SECONDS": Setting(5.0, "Client cache life if versions are unreadable; 0: none."),
    "CLIENT_CACHE_MAX_SECONDS": Setting(3600.0, "Client cache life while versions are read."),
    "CC_TOKEN_REUSE_SECONDS": Setting(
        0, "Opt-in: a client-credentials token is handed out again for this long (0: off)."
    ),
    "DYNAMIC_REGISTRATION_ENABLED": Setting(
        False, "Dynamic client registration (RFC 7591, RFC 7592) at /oauth/register."
    ),
    "DYNAMIC_REGISTRATION_REQUESTS_PER_IP": Setting(
        60, "Requests to /oauth/register (and its client URIs) per IP per window, then 429."
    ),
    "DYNAMIC_REGISTRATION_WINDOW_SECONDS": Setting(
        600, "Window of DYNAMIC_REGISTRATION_REQUESTS_PER_IP, seconds."
    ),
    "TENANT_SETTINGS_CACHE_SECONDS": Setting(
        5.0, "Per-worker cache of the tenant settings the API changes (this worker: at once)."
    ),
    "KEY_CACHE_SECONDS": Setting(30.0, "Per-worker cache of signing keys (survives a DB blip)."),
    "KEY_PUBLISH_BEFORE_SIGNING_SECONDS": Setting(
        900, "A rotated-in signing key is in the JWKS this long before it signs (0: at once)."
    ),
    "JWKS_MAX_AGE_SECONDS": Setting(
        300, "Cache-Control max-age of the JWKS, at most (less if the overlap is shorter)."
    ),
    "SIGNING_ALG": Setting("RS256", "Algorithm of newly created signing keys: RS256 or ES256."),
    "ARGON2_TIME_COST": Setting(2, "argon2id iterations (OWASP: 2)."),
    "ARGON2_MEMORY_KIB": Setting(19456, "argon2id memory in KiB (OWASP: 19 MiB)."),
    "ARGON2_PARALLELISM": Setting(1, "argon2id lanes."),
    "BRUTE_FORCE_MAX_ATTEMPTS": Setting(10, "Failures per identifier and IP before a block."),
    "BRUTE_FORCE_BLOCK_SECONDS": Setting(900, "How long an identifier+IP pair stays blocked."),
    "IP_THROTTLE_MAX_FAILURES": Setting(100, "Failures from one IP (any account) before 429."),
    "IP_THROTTLE_WINDOW_SECONDS": Setting(900, "Window of the IP failure count and the 429."),
    "ACCOUNT_REQUESTS_PER_IP": Setting(
        50, "Sign-ups and password-reset requests allowed from one IP per window."
    ),
    "ACCOUNT_REQUESTS_WINDOW_SECONDS": Setting(1800, "Window of ACCOUNT_REQUESTS_PER_IP."),
    "TRUSTED_PROXIES": Setting(
        "", "Comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed."
    ),
    "REDIS_URL": Setting(
        "", "Redis shared by the instances: attack-protection counters, cache invalidation."
    ),
    "CLUSTER": Setting(
        False, "Several instances share the database: refused at start-up without REDIS_URL."
    ),
    "INVALIDATION_CHECK_SECONDS": Setting(
        0.5, "With REDIS_URL: a change reaches every instance's caches within this delay."
    ),
    "GEOIP_DB": Setting(
        "", "MaxMind-format database (.mmdb) for event.request.geoip; empty: no GeoIP."
    ),
    "SIGNUP_ENABLED": Setting(True, "Allow sign-up on the database connection."),
    "PASSWORD_MIN_LENGTH": Setting(10, "Shortest password accepted at sign-up, reset, change."),
    "PASSWORD_MIN_SCORE": Setting(3, "Minimum zxcvbn score (0-4); 0 turns the estimate off."),
    "VERIFY_LINK_TTL": Setting(86400, "Lifetime of an email-verification link, seconds."),
    "RESET_LINK_TTL": Setting(3600, "Lifetime of a password-reset link, seconds."),
    "SMTP_HOST": Setting("", "SMTP server; empty writes mail to instance/outbox/ (development)."),
    "SMTP_PORT": Setting(25, "SMTP port."),
    "SMTP_FROM": Setting("idp <no-reply@localhost>", "From address of idp's mail."),
    "SMTP_USERNAME": Setting("", "SMTP login, if the server wants one."),
    "SMTP_PASSWORD": Setting("", "SMTP password."),
    "SMTP_STARTTLS": Setting(False, "Upgrade the SMTP connection with STARTTLS."),
    "BRAND_NAME": Setting("idp", "Name shown on the hosted pages."),
    "BRAND_LOGO_URL": Setting("", "Logo on the hosted pages: an https URL or a /static/ path."),
    "BRAND_PRIMARY_COLOR": Setting(
        "#2457c5",
        "Accent colour of the hosted pages (#rrggbb); button text turns black on light ones.",
    ),
    "WEBAUTHN_ATTESTATION": Setting(
        "none", "WebAuthn attestation policy: none | indirect | direct (a tenant setting)."
    ),
    "WEBAUTHN_AAGUID_ALLOWLIST": Setting(
        "", "Comma-separated AAGUIDs, the only authenticator models accepted; empty: any."
    ),
    "WEBAUTHN_MDS_ROOT": Setting(
        "", "PEM file of the FIDO MDS3 blob's root; empty: the bundled GlobalSign Root CA - R3."
    ),
    "MFA_POLICY": Setting(
        "adaptive", "never | always | adaptive (MFA for users who enrolled a factor)."
    ),
    "MFA_REMEMBER_BROWSER_DAYS": Setting(
        30, "'Remember this browser' skips MFA this long; 0: off."
    ),
    "MFA_WEBAUTHN_USER_VERIFICATION": Setting(
        "preferred", "WebAuthn user verification: preferred | required | discouraged."
    ),
    "MFA_MAX_FACTORS_PER_KIND": Setting(
        5, "Factors of one kind (phones, keys, passkeys, apps, push devices) a user may have."
    ),
    "MFA_PUSH_WEBHOOK_HOSTS": Setting(
        "", "Hosts push devices may name as webhooks (host, host:port, *.domain); empty: none."
    ),
    "MFA_PUSH_WEBHOOK_ALLOW_NETWORKS": Setting(
        "", "CIDRs push webhooks may reach although private or loopback (a test receiver)."
    ),
    "MFA_PUSH_LONG_POLL_SECONDS": Setting(
        0, "How long a device's poll may wait for a challenge (it holds a server thread)."
    ),
    "MFA_WEBPUSH_HOSTS": Setting(
        "fcm.googleapis.com,*.push.services.mozilla.com,web.push.apple.com,*.notify.windows.com",
        "Push services Web Push subscriptions may name (host, host:port, *.domain); empty: none.",
    ),
    "MFA_WEBPUSH_ALLOW_NETWORKS": Setting(
        "", "CIDRs a push service may be on although private or loopback (a test receiver)."
    ),
    "MFA_WEBPUSH_SUBJECT": Setting(
        "", "VAPID contact (mailto: or https:); empty: the issuer's https origin."
    ),
    "ACTIONS_INSECURE_DEV": Setting(
        False, "Run actions WITHOUT isolation where bubblewrap is missing (development only)."
    ),
    "ACTIONS_CONCURRENCY": Setting(0, "Sandboxed executions at once per worker (0: 2 x cores)."),
    "ACTIONS_TRIGGER_BUDGET_MS": Setting(20000, "Wall-clock budget of a whole chain, ms."),
    "ACTIONS_MEMORY_MB": Setting(128, "Memory cap of one execution, MiB."),
    "ACTIONS_MAX_PER_TRIGGER": Setting(20, "Actions bound to one trigger, at most."),
    "ACTIONS_MAX_CODE_BYTES": Setting(100_000, "Size of an action's code, at most."),
    "ACTIONS_MAX_SECRETS": Setting(30, "Secrets per action, at most."),
    "ACTIONS_MAX_SECRET_BYTES": Setting(4096, "Size of one secret value, at most."),
    "ACTIONS_MAX_VERSIONS": Setting(50, "Versions kept per action (older ones are pruned)."),
    "ACTIONS_CHAIN_CACHE_SECONDS": Setting(
        5.0, "Per-worker cache of bound chains (changes on this machine apply at once)."
    ),
    "ACTIONS_ALLOW_PRIVATE_NETWORKS": Setting(
        "", "CIDRs api.http may reach although private or loopback (e.g. a test receiver)."
    ),
    "CONNECTIONS_ALLOW_NETWORKS": Setting(
        "", "CIDRs upstream identity providers may be reached at although private (tests, dev)."
    ),
    "CONNECTIONS_HTTP_TIMEOUT": Setting(5.0, "Timeout of one call to an upstream provider, s."),
    "CONNECTIONS_MAX_RESPONSE_BYTES": Setting(
        256 * 1024, "Largest answer accepted from an upstream provider, bytes."
    ),
    "LOG_STREAM_HOSTS": Setting(
        "", "Hosts log streams may send to (host, host:port, *.domain); empty: no log streams."
    ),
    "LOG_STREAM_ALLOW_NETWORKS": Setting(
        "", "CIDRs log streams may reach although private or loopback (a test receiver)."
    ),
    "LOG_STREAM_DELIVERY": Setting(
        True, "Deliver log streams from the server's workers (a background thread each)."
    ),
    "LOG_STREAM_BATCH_SIZE": Setting(100, "Log events per POST to a log stream, at most."),
    "LOG_STREAM_MAX_FAILURES": Setting(
        10, "Failed deliveries in a row after which a log stream is suspended."
    ),
    "LOG_STREAM_RETRY_SECONDS": Setting(
        1.0, "First wait after a failed delivery; doubled at each failure in a row."
    ),
    "LOG_STREAM_RETRY_MAX_SECONDS": Setting(300.0, "Longest wait between delivery retries."),
    "LOG_STREAM_POLL_SECONDS": Setting(1.0, "How often a worker looks for new log events."),
    "LOG_STREAM_LEASE_SECONDS": Setting(
        60.0, "A worker's hold on a stream (at least 3 x the timeout); a dead worker's expires."
    ),
    "LOG_STREAM_TIMEOUT_SECONDS": Setting(5.0, "Timeout of one POST to a log stream, s."),
    "LOG_STREAM_GAP_SECONDS": Setting(
        15, "How long a stream waits for a log id still uncommitted before stepping over it."
    ),
    "DPOP_ENABLED": Setting(
        True, "Accept DPoP proofs (RFC 9449) and bind tokens to their key; off: Bearer only."
    ),
    "DPOP_NONCE_REQUIRED": Setting(
        False, "Every DPoP proof must carry a server nonce (RFC 9449 §8, §9): use_dpop_nonce."
    ),
    "DPOP_NONCE_SECONDS": Setting(
        300, "DPoP nonces change this often; one is accepted for its window and the next."
    ),
    "DPOP_IAT_WINDOW": Setting(
        300, "A DPoP proof's iat may be this many seconds off the server's clock."
    ),
    "SECTOR_IDENTIFIER_ALLOW_NETWORKS": Setting(
        "", "CIDRs a client's sector_identifier_uri may be fetched from although private (tests)."
    ),
    "BACKCHANNEL_LOGOUT_ENABLED": Setting(
        True, "Send back-channel logouts (OIDC BCL 1.0) when a session ends; off: advertised off."
    ),
    "BACKCHANNEL_LOGOUT_DELIVERY": Setting(
        True, "Deliver back-channel logouts from the server's workers (a background thread each)."
    ),
    "BACKCHANNEL_LOGOUT_ALLOW_NETWORKS": Setting(
        "", "CIDRs backchannel_logout_uris may reach although private or loopback (tests, dev)."
    ),
    "BACKCHANNEL_LOGOUT_TIMEOUT_SECONDS": Setting(5.0, "Timeout of one logout POST, seconds."),
    "BACKCHANNEL_LOGOUT_MAX_ATTEMPTS": Setting(8, "Tries of one back-channel logout, at most."),
    "BACKCHANNEL_LOGOUT_RETRY_SECONDS": Setting(
        2.0, "First wait after a failed back-channel logout; doubled at each failure."
    ),
    "BACKCHANNEL_LOGOUT_RETRY_MAX_SECONDS": Setting(
        600.0, "Longest wait between back-channel logout retries."
    ),
    "BACKCHANNEL_LOGOUT_POLL_SECONDS": Setting(
        1.0, "How often a worker looks for back-channel logouts (a logout here wakes it)."
    ),
    "BACKCHANNEL_LOGOUT_TOKEN_TTL": Setting(120, "Lifetime of a Logout Token, seconds."),
    "DEVICE_FLOW_ENABLED": Setting(
        False, "The device authorization grant (RFC 8628): /oauth/device/code and /device."
    ),
    "DEVICE_CODE_TTL": Setting(600, "Lifetime of a device code and its user code, seconds."),
    "DEVICE_POLL_INTERVAL": Setting(5, "Seconds a device waits between polls (RFC 8628 §3.2)."),
    "DEVICE_USER_CODE_IP_FAILURES": Setting(
        10, "Wrong user codes from one IP per window before /device refuses it (429)."
    ),
    "DEVICE_USER_CODE_GLOBAL_FAILURES": Setting(
        500, "Wrong user codes from everyone per window before /device refuses all (429)."
    ),
    "DEVICE_USER_CODE_WINDOW_SECONDS": Setting(900, "Window of the two user-code counts."),
    "MAX_CONTENT_LENGTH": Setting(64 * 1024, "Largest accepted request body, bytes."),
    "CLIENT_ASSERTION_MAX_SECONDS": Setting(
        300, "A client assertion (private_key_jwt, client_secret_jwt) expires at most this soon."
    ),
    "CLIENT_JWKS_CACHE_SECONDS": Setting(
        300.0, "Per-worker cache of a client's jwks_uri (fetched again on an unknown kid)."
    ),
    "CLIENT_JWKS_REFRESH_SECONDS": Setting(
        5.0, "A client's jwks_uri is fetched again for an unknown kid at most this often."
    ),
    "CLIENT_JWKS_TIMEOUT_SECONDS": Setting(3.0, "Timeout of one fetch of a client's jwks_uri."),
    "CLIENT_JWKS_ALLOW_NETWORKS": Setting(
        "", "CIDRs a client's jwks_uri may be fetched from although private or loopback (tests)."
    ),
    "REQUIRE_PUSHED_AUTHORIZATION_REQUESTS": Setting(
        False, "Every authorization request must come through /oauth/par (RFC 9126 §6)."
    ),
    "INSECURE_HTTP_ALLOWED": Setting(
        False, "Allow an http issuer on a non-loopback host (never in production)."
    ),
    "METRICS_ENABLED": Setting(False, "Prometheus metrics at /metrics (see METRICS_PORT)."),
    "METRICS_PORT": Setting(
        0, "Serve /metrics only on this port (idp serve --metrics-port); 0: the public port."
    ),
    "METRICS_TOKEN": Setting(
        "", "Bearer token /metrics requires; needed when metrics share the public port."
    ),
    "LOG_FORMAT": Setting("text", "Server logs: text, or json (one JSON object per line)."),
    "OTEL_ENABLED": Setting(
        False, "OpenTelemetry traces (the otel extra); also on when OTEL_EXPORTER_OTLP_ENDPOINT is."
    ),
    "OTEL_EXPORTER": Setting("otlp", "Where spans go: otlp (OTLP/HTTP), console, memory (tests)."),
    "OTEL_ENDPOINT": Setting(
        "", "The collector's OTLP/HTTP base URL; empty: OTEL_EXPORTER_OTLP_ENDPOINT, else :4318."
    ),
}

_INT_KEYS = {k for k, s in SETTINGS.items() if isinstance(s.default, int | float)}


def _coerce(key: str, value: str) -> Any:
    default = SETTINGS[key].default
    if isinstance(default, bool):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def load_settings(instance_path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resolve every setting. Unknown keys in config.toml are an error, not a silent typo."""
    values = {key: setting.default for key, setting in SETTINGS.items()}
    config_file = instance_path / "config.toml"
    if config_file.exists():
        with config_file.open("rb") as fh:
            data = tomllib.load(fh)
        for raw_key, value in data.items():
            key = raw_key.upper()
            if key not in SETTINGS:
                raise ValueError(f"{config_file}: unknown setting {raw_key!r}")
            values[key] = value
    for key in SETTINGS:
        env = os.environ.get(f"IDP_{key}")
        if env is not None and env != "":
            values[key] = _coerce(key, env)
    if overrides:
        values.update(overrides)
    values["ISSUER"] = str(values["ISSUER"]).rstrip("/")
    _check_issuer(values)
    _check_branding(values)
    _check_operations(values)
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = f"sqlite:///{instance_path / 'idp.sqlite3'}"
    _check_cluster(values)
    return values


def _check_cluster(values: dict[str, Any]) -> None:
    """Several instances (``CLUSTER``) need a database and a Redis they all reach: the caches
    of one instance learn of another's changes only through Redis (``idp.core.versions``)."""
    if not values["CLUSTER"]:
        return
    if not values["REDIS_URL"]:
        raise ValueError(
            "CLUSTER is on (several instances share the database) but REDIS_URL is empty: "
            "without Redis, a client, key, action or setting changed on one instance would "
            "stay stale in the others' caches. Set REDIS_URL (IDP_REDIS_URL), or CLUSTER off "
            "for a single instance"
        )
    if str(values["DATABASE_URL"]).startswith("sqlite"):
        raise ValueError(
            "CLUSTER is on but the database is SQLite, a file on one machine: "
            "set DATABASE_URL to a PostgreSQL database every instance reaches"
        )


def _check_operations(values: dict[str, Any]) -> None:
    """Metrics never open on the public port by accident (fail closed), and logs have a
    format we know."""
    if values["LOG_FORMAT"] not in {"text", "json"}:
        raise ValueError(f"LOG_FORMAT must be text or json, not {values['LOG_FORMAT']!r}")
    if values["OTEL_EXPORTER"] not in {"otlp", "console", "memory"}:
        raise ValueError(
            f"OTEL_EXPORTER must be otlp, console or memory, not {values['OTEL_EXPORTER']!r}"
        )
    if values["OTEL_ENDPOINT"] and not str(values["OTEL_ENDPOINT"]).startswith(
        ("http://", "https://")
    ):
        raise ValueError("OTEL_ENDPOINT must be an http(s) URL (the collector's OTLP/HTTP base)")
    if not values["METRICS_ENABLED"]:
        return
    token = str(values["METRICS_TOKEN"])
    if token and len(token) < 16:
        raise ValueError("METRICS_TOKEN must be at least 16 characters long")
    if not values["METRICS_PORT"] and not token:
        raise ValueError(
            "METRICS_ENABLED on the public port needs METRICS_TOKEN (a bearer token of 16+ "
            "characters); or serve the metrics on their own port (idp serve --metrics-port)"
        )


def _check_branding(values: dict[str, Any]) -> None:
    """Branding is operator input that ends up in pages: refuse what could inject anything."""
    color = str(values["BRAND_PRIMARY_COLOR"])
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
        raise ValueError(f"BRAND_PRIMARY_COLOR must look like #1a2b3c, not {color!r}")
    logo = str(values["BRAND_LOGO_URL"])
    if logo and (
        ".." in logo
        or not (
            re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?/[^\s\"'<>]*", logo)
            or re.fullmatch(r"/static/[A-Za-z0-9._/-]+", logo)
        )
    ):
        raise ValueError("BRAND_LOGO_URL must be an https URL or a /static/ path")


def _check_issuer(values: dict[str, Any]) -> None:
    """OIDC Discovery §3: the issuer is https. Plain http is for loopback development only."""
    parts = urlsplit(str(values["ISSUER"]))
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"ISSUER must be an absolute http(s) URL without query: {parts.geturl()!r}"
        )
    loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme == "http" and not loopback and not values["INSECURE_HTTP_ALLOWED"]:
        raise ValueError(
            "ISSUER must be https (set INSECURE_HTTP_ALLOWED=1 to run plain http off loopback)"
        )
