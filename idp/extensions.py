"""Unbound extensions and the per-app service bundle (state lives in ``app.extensions``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_wtf import CSRFProtect

from idp.actions.engine import ActionsEngine
from idp.core.crypto import SecretBox
from idp.core.db import Database
from idp.core.mail import Mailer
from idp.core.net import Network
from idp.geo.service import GeoIP
from idp.identity.policy import PasswordPolicy
from idp.identity.service import Passwords
from idp.keys.service import KeyRing
from idp.oauth.clients import ClientDirectory
from idp.oauth.token_reuse import TokenReuse
from idp.oauth.tokens import TokenIssuer
from idp.protection.service import Shields

db = Database()
csrf = CSRFProtect()


@dataclass
class Services:
    config: dict[str, Any]
    box: SecretBox
    keys: KeyRing
    clients: ClientDirectory
    issuer: TokenIssuer
    passwords: Passwords
    token_reuse: TokenReuse
    shields: Shields
    trusted_proxies: tuple[Network, ...]
    mailer: Mailer
    policy: PasswordPolicy
    actions: ActionsEngine
    geoip: GeoIP


def services() -> Services:
    svc: Services = current_app.extensions["idp.services"]
    return svc
