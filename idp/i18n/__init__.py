"""The hosted pages' language: a small translation layer, a dictionary of messages per locale.

Why a dictionary, not Flask-Babel: the pages have a few hundred short messages, and a Python
module per locale needs no compile step (``.mo`` files) in the build, the image or the tests.
The English text is the key (gettext's convention), so an untranslated message shows in
English, and :func:`gettext` is the templates' ``_``. Placeholders are ``str.format`` names.

Which language (OIDC Core §3.1.2.1 ``ui_locales``): on the pages of a login, the
authorization request's ``ui_locales`` (space-separated BCP 47 tags, the first supported wins,
``fr-CA`` counting as ``fr``), kept with the login's interaction so that every page of it
follows, else the browser's ``Accept-Language``. The pages outside a login (account, password
reset, logout, email links, the device form) have no interaction: they follow the language the
last login of this browser chose by ``ui_locales``, remembered in the browser's cookie session
(:data:`REMEMBERED`), else ``Accept-Language``. A page reached by a link idp mailed, and the
RP-initiated logout request (§2 of that spec), may name it in their own ``ui_locales``
parameter: a mail's links carry the language the mail was written in (:func:`link_params`).
English when nothing names a language we have. ``<html lang>`` says which (base.html).

Adding a locale: a package here with ``MESSAGES`` and its code in :data:`CATALOGUES`. A
message a view hands a page to translate later is marked with :func:`N_`, so that
tests/unit/test_i18n_coverage.py finds it and checks the catalogues have it.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request, session
from flask.sessions import NullSession
from markupsafe import Markup, escape

from idp.extensions import Services
from idp.i18n import fr
from idp.oauth.discovery import contributes

DEFAULT = "en"
CATALOGUES: dict[str, dict[str, str]] = {"en": {}, "fr": fr.MESSAGES}
SUPPORTED: tuple[str, ...] = tuple(CATALOGUES)
REMEMBERED = "ui_locale"  # the key in Flask's cookie session


def N_(message: str) -> str:
    """Mark ``message`` as one a page translates later (``{{ _(error) }}``); returns it."""
    return message


def _primary(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-", 1)[0].lower()


def from_ui_locales(value: str | None) -> str | None:
    """The first supported language of ``ui_locales`` (None: none is)."""
    for tag in (value or "").split()[:16]:
        if _primary(tag) in CATALOGUES:
            return _primary(tag)
    return None


def use_ui_locales(value: str | None, login: bool = True) -> None:
    """This request's pages follow ``ui_locales`` when it names a language we have.

    ``login``: the value is a login's (called wherever a login's request is at hand:
    idp.flows.pipeline); its pages never follow a remembered language, and the browser
    remembers this login's choice, or forgets the last one when this login names none. Else
    the parameter of a page outside a login (a mailed link, RP-initiated logout): a language it
    names is used and remembered, and nothing changes when it names none."""
    chosen = from_ui_locales(value)
    if not has_request_context():
        return
    if chosen is not None:
        g.idp_locale = chosen
    if login:
        g.idp_login = True
    if chosen is not None or login:
        _remember(chosen)


def _remember(chosen: str | None) -> None:
    if isinstance(session, NullSession):  # a machine endpoint has no cookie session
        return
    if chosen is None:
        session.pop(REMEMBERED, None)  # marks the session changed only when it had one
    elif session.get(REMEMBERED) != chosen:
        session[REMEMBERED] = chosen


def current() -> str:
    if not has_request_context():
        return DEFAULT
    chosen = g.get("idp_locale")
    if chosen:
        return str(chosen)
    if not g.get("idp_login"):
        remembered = session.get(REMEMBERED)
        if remembered in CATALOGUES:
            return str(remembered)
    # RFC 9110 §12.5.4, by q-value (werkzeug keeps them sorted); "fr-CH" counts as "fr",
    # which werkzeug's best_match would not do
    for tag, quality in request.accept_languages:
        if quality > 0 and _primary(tag) in CATALOGUES:
            return _primary(tag)
    return DEFAULT


def gettext(message: str, **values: Any) -> str:
    """``message`` in the current language (English when it has no translation). A message
    formatted before it got here ("Use at least 8 characters.") is matched against the
    catalogue's patterned keys ("Use at least {n} characters.") and its values kept."""
    catalogue = CATALOGUES.get(current(), {})
    if not message or not catalogue:
        return message.format(**values) if values else message
    text = catalogue.get(message)
    if text is None and not values:
        for pattern, key in _patterns(current()):
            found = pattern.fullmatch(message)
            if found:
                return catalogue[key].format(**found.groupdict())
    text = text or message
    return text.format(**values) if values else text


def link_params() -> dict[str, Any]:
    """The query a mailed link carries so that its page speaks the mail's language (none for
    English: the page then follows the reader's browser)."""
    locale = current()
    return {} if locale == DEFAULT else {"ui_locales": locale}


_PATTERN_TEXT = 12  # characters of its own a patterned key needs


@functools.cache
def _patterns(locale: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """The catalogue's keys with placeholders, as patterns capturing the values; a key with
    little text of its own ("for {app}", "{scope} on {audience}") would match unrelated
    messages, so it is only looked up by its values."""
    out = []
    for key in CATALOGUES[locale]:
        parts = re.split(r"\{(\w+)\}", key)
        if len(parts) > 1 and len("".join(parts[::2]).strip()) >= _PATTERN_TEXT:
            regex = "".join(
                re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
                for i, part in enumerate(parts)
            )
            out.append((re.compile(regex, re.S), key))
    return tuple(out)


def markup_gettext(message: str, **values: Any) -> str | Markup:
    """The templates' ``_``: :func:`gettext`, and a value that is markup (``{% set %}`` block,
    ``<strong>{{ app_name }}</strong>``) goes into the translated sentence as markup while the
    sentence itself is escaped, so a whole sentence is one message whatever its emphasis."""
    marked = {k: v for k, v in values.items() if isinstance(v, Markup)}
    if not marked:
        return gettext(message, **values)
    sentinels = {k: f"\x00{i}\x00" for i, k in enumerate(marked)}
    text = escape(gettext(message, **{**values, **sentinels}))
    for key, sentinel in sentinels.items():
        text = text.replace(sentinel, marked[key])
    return text


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when_utc_local(epoch: int) -> str:
    """``when_utc`` (idp/__init__.py) in the page's language: "6 déc. 2026, 11:20 UTC"."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return f"{moment.day} {gettext(_MONTHS[moment.month - 1])} {moment:%Y, %H:%M} UTC"


def init_app(app: Flask) -> None:
    """``_``, ``locale`` and ``when_utc_local`` in every template; responses vary with
    Accept-Language (and with the cookie session, which Flask says when it was read)."""
    app.jinja_env.globals["_"] = markup_gettext
    app.add_template_filter(when_utc_local)

    @app.context_processor
    def _locale() -> dict[str, Any]:
        return {"locale": current()}

    @app.after_request
    def _vary(resp: Any) -> Any:
        if resp.mimetype == "text/html":
            resp.vary.add("Accept-Language")
        return resp


@contributes
def _discovery(document: dict[str, Any], svc: Services) -> None:
    """OIDC Discovery §3 ``ui_locales_supported``."""
    document["ui_locales_supported"] = list(SUPPORTED)
