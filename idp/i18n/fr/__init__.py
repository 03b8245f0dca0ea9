"""French (``fr``): the hosted pages' messages, one module per group of pages, merged here.

The English text is the key, placeholders are ``str.format`` names (see :mod:`idp.i18n`);
tests/unit/test_i18n_coverage.py checks every message of the pages has its entry.
"""

from __future__ import annotations

from idp.i18n.fr.account import MESSAGES as ACCOUNT
from idp.i18n.fr.attestation import MESSAGES as ATTESTATION
from idp.i18n.fr.errors import MESSAGES as ERRORS
from idp.i18n.fr.login import MESSAGES as LOGIN
from idp.i18n.fr.mail import MESSAGES as MAIL
from idp.i18n.fr.webpush import MESSAGES as WEBPUSH

PARTS: tuple[dict[str, str], ...] = (ATTESTATION, LOGIN, ACCOUNT, ERRORS, MAIL, WEBPUSH)
MESSAGES: dict[str, str] = {key: text for part in PARTS for key, text in part.items()}
