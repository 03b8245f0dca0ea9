"""``/api/v2/attack-protection/brute-force-protection`` and ``.../suspicious-ip-throttling``,
as Auth0 Management API v2's attack protection (``read:attack_protection``,
``update:attack_protection``), mapped onto idp's shields (``idp.protection.service``).

**Brute-force protection**: failures counted per identifier *and* IP (Auth0's
``count_per_identifier_and_ip``, the only ``mode`` idp has: ``count_per_identifier`` is refused);
at ``max_attempts`` the ``block`` shield blocks that pair for ``BRUTE_FORCE_BLOCK_SECONDS`` and
``user_notification`` mails the owner (with an unblock link when blocked). ``allowlist``: IPs
and CIDRs never counted nor blocked. ``enabled: false`` counts nothing and enforces no block.

**Suspicious IP throttling**: ``stage["pre-login"]`` is the failed logins one IP may make across
accounts, ``stage["pre-user-registration"]`` the sign-ups and password-reset mails it may ask
for, each ``max_attempts`` within a window; past it, 429 with ``Retry-After``. Auth0 states the
window as ``rate``, the milliseconds in which one attempt is granted back; idp counts in a fixed
window of ``max_attempts x rate`` (rounded up to whole seconds), so a ``rate`` reads back as
``window / max_attempts`` (the same when that divides evenly). ``shields`` is ``["block"]`` or
``[]`` (count, never block); Auth0's ``admin_notification`` has no counterpart: the tenant log's
``ip.throttled`` events (and a log stream) are how operators learn of it, so it is refused.

Stored as tenant settings over the configuration (``BRUTE_FORCE_*``, ``IP_THROTTLE_*``,
``ACCOUNT_REQUESTS_*``); every worker follows within ``TENANT_SETTINGS_CACHE_SECONDS``.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from idp.extensions import db
from idp.management.registry import Item, route
from idp.management.validation import Body, Out
from idp.tenant.settings import Snapshot, tenant

TAG = "attack-protection"
MODE = "count_per_identifier_and_ip"
STAGES = {"pre-login": ("IP_THROTTLE_MAX_FAILURES", "IP_THROTTLE_WINDOW_SECONDS"),
          "pre-user-registration": ("ACCOUNT_REQUESTS_PER_IP",
                                    "ACCOUNT_REQUESTS_WINDOW_SECONDS")}  # fmt: skip


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("an allowlist entry is an IPv4/IPv6 address or CIDR") from None
    return value


Address = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_network)]
Allowlist = Annotated[list[Address], Field(max_length=100)]


class _NotEmpty(Body):
    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            names = [f.alias or n for n, f in cls.model_fields.items()]
            raise ValueError("send at least one of: " + ", ".join(sorted(names)))
        return data


# ---------------------------------------------------------------------------------- schemas
class BruteForceOut(Out):
    enabled: bool
    shields: list[Literal["block", "user_notification"]]
    mode: Literal["count_per_identifier_and_ip"]
    allowlist: list[str]
    max_attempts: int


class BruteForceUpdate(_NotEmpty):
    """Fields sent are changed; ``shields`` and ``allowlist`` are whole lists."""

    enabled: bool | None = None
    shields: list[Literal["block", "user_notification"]] | None = Field(None, max_length=2)
    mode: Literal["count_per_identifier_and_ip"] | None = None
    allowlist: Allowlist | None = None
    max_attempts: int | None = Field(None, ge=1, le=100)


class StageOut(Out):
    max_attempts: int
    rate: int = Field(description="Milliseconds per attempt granted back (window/max).")


class StagesOut(Out):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    pre_login: StageOut = Field(alias="pre-login")
    pre_user_registration: StageOut = Field(alias="pre-user-registration")


class ThrottlingOut(Out):
    enabled: bool
    shields: list[Literal["block"]]
    allowlist: list[str]
    stage: StagesOut


class Stage(_NotEmpty):
    max_attempts: int | None = Field(None, ge=1, le=100_000)
    rate: int | None = Field(None, ge=1, le=86_400_000, description="Milliseconds.")


class Stages(_NotEmpty):
    pre_login: Stage | None = Field(None, alias="pre-login")
    pre_user_registration: Stage | None = Field(None, alias="pre-user-registration")


class ThrottlingUpdate(_NotEmpty):
    """Fields sent are changed; a stage's fields too (``rate`` alone keeps ``max_attempts``)."""

    enabled: bool | None = None
    shields: list[Literal["block"]] | None = Field(None, max_length=1)
    allowlist: Allowlist | None = None
    stage: Stages | None = None


# ---------------------------------------------------------------------------------- helpers
def brute_force_json(snap: Snapshot) -> dict[str, Any]:
    return {"enabled": snap["BRUTE_FORCE_ENABLED"], "shields": snap["BRUTE_FORCE_SHIELDS"],
            "mode": MODE, "allowlist": snap["BRUTE_FORCE_ALLOWLIST"],
            "max_attempts": snap["BRUTE_FORCE_MAX_ATTEMPTS"]}  # fmt: skip


def throttling_json(snap: Snapshot) -> dict[str, Any]:
    stage = {}
    for name, (count_key, window_key) in STAGES.items():
        count = max(int(snap[count_key]), 1)
        stage[name] = {"max_attempts": count, "rate": round(snap[window_key] * 1000 / count)}
    return {"enabled": snap["IP_THROTTLE_ENABLED"], "shields": snap["IP_THROTTLE_SHIELDS"],
            "allowlist": snap["IP_THROTTLE_ALLOWLIST"], "stage": stage}  # fmt: skip


def _current(lock: bool = False) -> Snapshot:
    return tenant().read(db.session, lock)


def _invalidate() -> None:
    tenant().invalidate()  # this worker at once; the others within the cache's seconds


BRUTE_FORCE = Item(BruteForceOut, lambda lock=False: brute_force_json(_current(lock)))
THROTTLING = Item(ThrottlingOut, lambda lock=False: throttling_json(_current(lock)))


# ---------------------------------------------------------------------------------- routes
@route("/attack-protection/brute-force-protection", scope="read:attack_protection", tag=TAG,
       summary="Get the brute-force protection", response=BruteForceOut,
       item=BRUTE_FORCE)  # fmt: skip
def get_brute_force_protection() -> dict[str, Any]:
    """Stored values, else the configuration's (``BRUTE_FORCE_MAX_ATTEMPTS``)."""
    return brute_force_json(_current())


@route("/attack-protection/brute-force-protection", "PATCH", scope="update:attack_protection",
       tag=TAG, summary="Update the brute-force protection", body=BruteForceUpdate,
       response=BruteForceOut, item=BRUTE_FORCE, after_commit=_invalidate)  # fmt: skip
def update_brute_force_protection(body: BruteForceUpdate) -> dict[str, Any]:
    """Applies to the next attempt; blocks already recorded run out on their own (or
    ``idp users unblock``)."""
    names = {
        "enabled": "BRUTE_FORCE_ENABLED",
        "shields": "BRUTE_FORCE_SHIELDS",
        "allowlist": "BRUTE_FORCE_ALLOWLIST",
        "max_attempts": "BRUTE_FORCE_MAX_ATTEMPTS",
    }
    values = {key: getattr(body, field) for field, key in names.items()
              if field in body.model_fields_set and getattr(body, field) is not None}  # fmt: skip
    if "BRUTE_FORCE_SHIELDS" in values:
        values["BRUTE_FORCE_SHIELDS"] = sorted(set(values["BRUTE_FORCE_SHIELDS"]))
    tenant().write(db.session, values)
    return brute_force_json(_current())


@route("/attack-protection/suspicious-ip-throttling", scope="read:attack_protection", tag=TAG,
       summary="Get the suspicious IP throttling", response=ThrottlingOut,
       item=THROTTLING)  # fmt: skip
def get_suspicious_ip_throttling() -> dict[str, Any]:
    """Stored values, else the configuration's (``IP_THROTTLE_*``, ``ACCOUNT_REQUESTS_*``)."""
    return throttling_json(_current())


@route("/attack-protection/suspicious-ip-throttling", "PATCH", scope="update:attack_protection",
       tag=TAG, summary="Update the suspicious IP throttling", body=ThrottlingUpdate,
       response=ThrottlingOut, item=THROTTLING, after_commit=_invalidate)  # fmt: skip
def update_suspicious_ip_throttling(body: ThrottlingUpdate) -> dict[str, Any]:
    """A stage's window is ``max_attempts x rate``, in whole seconds (at least one)."""
    snap = _current()
    values: dict[str, Any] = {}
    if body.enabled is not None:
        values["IP_THROTTLE_ENABLED"] = body.enabled
    if body.shields is not None:
        values["IP_THROTTLE_SHIELDS"] = sorted(set(body.shields))
    if body.allowlist is not None:
        values["IP_THROTTLE_ALLOWLIST"] = body.allowlist
    now = throttling_json(snap)["stage"]
    sent = {
        "pre-login": body.stage.pre_login if body.stage else None,
        "pre-user-registration": body.stage.pre_user_registration if body.stage else None,
    }
    for name, stage in sent.items():
        if stage is None:
            continue
        count = stage.max_attempts or now[name]["max_attempts"]
        rate = stage.rate or now[name]["rate"]
        count_key, window_key = STAGES[name]
        values[count_key] = count
        values[window_key] = max(1, math.ceil(count * rate / 1000))
    tenant().write(db.session, values)
    return throttling_json(_current())
