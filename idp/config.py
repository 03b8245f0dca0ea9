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
    "CLIENT_CACHE_SECONDS": Setting(
        5.0, "Per-worker cache of clients and client grants; changes reach workers this late."
    ),
    "CC_TOKEN_REUSE_SECONDS": Setting(
        5, "A client-credentials token is handed out again for this long (0: sign every time)."
    ),
    "KEY_CACHE_SECONDS": Setting(30.0, "Per-worker cache of signing keys (survives a DB blip)."),
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
    "REDIS_URL": Setting("", "Share attack-protection counters between instances via Redis."),
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
    "MFA_POLICY": Setting(
        "adaptive", "never | always | adaptive (MFA for users who enrolled a factor)."
    ),
    "MFA_REMEMBER_BROWSER_DAYS": Setting(
        30, "'Remember this browser' skips MFA this long; 0: off."
    ),
    "MFA_WEBAUTHN_USER_VERIFICATION": Setting(
        "preferred", "WebAuthn user verification: preferred | required | discouraged."
    ),
    "MFA_PUSH_WEBHOOK_HOSTS": Setting(
        "", "Hosts push devices may name as webhooks (host, host:port, *.domain); empty: none."
    ),
    "MFA_PUSH_WEBHOOK_ALLOW_NETWORKS": Setting(
        "", "CIDRs push webhooks may reach although private or loopback (a test receiver)."
    ),
    "MFA_PUSH_LONG_POLL_SECONDS": Setting(
        0, "How long a device's poll may wait for a challenge (needs `serve --threads`)."
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
    "MAX_CONTENT_LENGTH": Setting(64 * 1024, "Largest accepted request body, bytes."),
    "INSECURE_HTTP_ALLOWED": Setting(
        False, "Allow an http issuer on a non-loopback host (never in production)."
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
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = f"sqlite:///{instance_path / 'idp.sqlite3'}"
    return values


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
