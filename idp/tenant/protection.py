"""The shields' policy in force (``idp.protection.service.Policy``) from the tenant settings:
what ``/api/v2/attack-protection/*`` stored, else the configuration's values."""

from __future__ import annotations

import ipaddress

from flask import current_app

from idp.core.net import Network
from idp.protection.service import Policy
from idp.tenant.settings import Snapshot, tenant


def networks(values: list[str]) -> tuple[Network, ...]:
    """An allowlist's addresses and CIDRs (validated by the API: a bad one never gets here)."""
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _build(snap: Snapshot) -> Policy:
    shields = snap["BRUTE_FORCE_SHIELDS"]
    return Policy(
        max_attempts=int(snap["BRUTE_FORCE_MAX_ATTEMPTS"]),
        block_seconds=int(current_app.config["BRUTE_FORCE_BLOCK_SECONDS"]),
        ip_max_failures=int(snap["IP_THROTTLE_MAX_FAILURES"]),
        ip_window=int(snap["IP_THROTTLE_WINDOW_SECONDS"]),
        brute_force=bool(snap["BRUTE_FORCE_ENABLED"]),
        block="block" in shields,
        notify="user_notification" in shields,
        allowlist=networks(snap["BRUTE_FORCE_ALLOWLIST"]),
        # without the block shield nothing is refused: counting alone has no effect
        ip_throttling=bool(snap["IP_THROTTLE_ENABLED"]) and "block" in snap["IP_THROTTLE_SHIELDS"],
        ip_allowlist=networks(snap["IP_THROTTLE_ALLOWLIST"]),
        requests_per_ip=int(snap["ACCOUNT_REQUESTS_PER_IP"]),
        requests_window=int(snap["ACCOUNT_REQUESTS_WINDOW_SECONDS"]),
    )


def policy() -> Policy:
    """Built once per settings snapshot (the allowlists are parsed then, not per login)."""
    return tenant().snapshot().derive("shields", _build)
