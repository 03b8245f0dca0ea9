"""Single logout (SAML 2.0 Profiles §4.4), HTTP-Redirect binding (Bindings §3.4), signed
(§3.4.4.1) both ways.

- SP-initiated: when a session that came through a SAML connection logs out at idp, idp
  sends the IdP a ``LogoutRequest`` for that NameID and session index
  (:func:`logout_request`); the IdP's ``LogoutResponse`` comes back to the SP's SLO URL.
- IdP-initiated: the IdP's signed ``LogoutRequest`` (:func:`parse_logout_request`) ends the
  user's idp sessions that came from it; idp answers with a signed ``LogoutResponse``
  (:func:`logout_response`).

A LogoutRequest without a signature, or signed by a certificate that is not trusted (the
pinned ones), or with SHA-1 where the connection does not allow it, is refused: anyone could
otherwise end anyone's sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from saml2 import samlp
from saml2.saml import NAMEID_FORMAT_ENTITY, Issuer, NameID
from saml2.time_util import instant
from saml2.xmldsig import SIG_RSA_SHA1, SIG_RSA_SHA256

from idp.connections.saml.config import client, forget
from idp.connections.saml.contract import Settings, Sp, Started, refused
from idp.connections.saml.metadata import REDIRECT, idp_metadata, read, trusted
from idp.connections.saml.sso import new_id

_SHA1_SIGS = (SIG_RSA_SHA1, "http://www.w3.org/2000/09/xmldsig#dsa-sha1")


@dataclass(frozen=True)
class LogoutAsked:
    """What an IdP's LogoutRequest asks: whose sessions to end."""

    request_id: str
    name_id: str
    session_indexes: tuple[str, ...]


def _location(http: dict[str, Any]) -> str:
    location = dict(http["headers"]).get("Location")
    if not location:
        raise refused("bad_configuration", "saml: pysaml2 built no redirect")
    return str(location)


def logout_request(
    options: dict[str, Any], *, sp: Sp, name_id: str, name_id_format: str | None,
    session_index: str | None, relay_state: str, settings: Settings,
) -> Started | None:  # fmt: skip
    """Where to send the browser with a signed LogoutRequest (Core §3.7.1); None when the
    IdP has no HTTP-Redirect SingleLogoutService (then the logout is idp's alone)."""
    info = read(idp_metadata(options, settings))
    url = info.slo.get(REDIRECT)
    if url is None:
        return None
    request_id = new_id()
    try:
        with client(options, sp, info, (), sign=True) as saml:
            _, request = saml.create_logout_request(
                url, info.entity_id, name_id=NameID(text=name_id, format=name_id_format),
                message_id=request_id, sign=False,  # the redirect binding signs the query
                session_indexes=[session_index] if session_index else None,
            )  # fmt: skip
            http = saml.apply_binding(
                REDIRECT, str(request), url, relay_state, sign=True, sigalg=SIG_RSA_SHA256
            )
    except Exception as exc:  # noqa: BLE001 - pysaml2 raises bare Exception too
        forget(exc)
        raise refused("bad_configuration", f"saml logout: {type(exc).__name__}") from None
    return Started(url=_location(http), kept={"protocol": "samlp", "request_id": request_id})


def parse_logout_request(
    options: dict[str, Any], *, sp: Sp, query: dict[str, str], settings: Settings
) -> LogoutAsked:
    """An IdP-initiated LogoutRequest from the query string, its signature checked against
    the trusted certificates (or ``UpstreamError``)."""
    sigalg, signature = query.get("SigAlg"), query.get("Signature")
    if not query.get("SAMLRequest") or not sigalg or not signature:
        raise refused("unsigned", "saml logout: a LogoutRequest without a signature")
    if sigalg in _SHA1_SIGS and not options.get("allow_sha1"):
        raise refused("weak_signature", "saml logout: SHA-1 signature")
    info = read(idp_metadata(options, settings))
    with client(options, sp, info, trusted(info, options)) as saml:
        try:
            parsed = saml.parse_logout_request(
                query["SAMLRequest"], REDIRECT, relay_state=query.get("RelayState"),
                sigalg=sigalg, signature=signature,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - pysaml2 raises bare Exception too
            forget(exc)
            raise refused("bad_signature", f"saml logout: {type(exc).__name__}") from None
    message = getattr(parsed, "message", None)
    if parsed is None or message is None or not getattr(parsed, "signature_check", True):
        raise refused("bad_signature", "saml logout: the request did not verify")
    issuer = (message.issuer.text or "").strip() if message.issuer is not None else ""
    if issuer != info.entity_id:
        raise refused("issuer_mismatch", "saml logout: another issuer")
    if message.destination not in (None, sp.slo_url):
        raise refused("wrong_destination", "saml logout: another destination")
    if message.name_id is None or not (message.name_id.text or "").strip():
        raise refused("bad_response", "saml logout: no NameID")
    indexes = tuple((i.text or "").strip() for i in message.session_index or [])
    return LogoutAsked(str(message.id), message.name_id.text.strip(), indexes)


def logout_response(
    options: dict[str, Any], *, sp: Sp, asked: LogoutAsked, relay_state: str | None,
    settings: Settings,
) -> Started | None:  # fmt: skip
    """The signed LogoutResponse (Core §3.7.2) back to the IdP's SingleLogoutService."""
    info = read(idp_metadata(options, settings))
    url = info.slo.get(REDIRECT)
    if url is None:
        return None
    response = samlp.LogoutResponse(
        id=new_id(),
        version="2.0",
        issue_instant=instant(),
        destination=url,
        in_response_to=asked.request_id,
        issuer=Issuer(text=sp.entity_id, format=NAMEID_FORMAT_ENTITY),
        status=samlp.Status(status_code=samlp.StatusCode(value=samlp.STATUS_SUCCESS)),
    )  # fmt: skip (Core §3.7.2; signed by the redirect binding, Bindings §3.4.4.1)
    try:
        with client(options, sp, info, (), sign=True) as saml:
            http = saml.apply_binding(
                REDIRECT, str(response), url, relay_state or "", response=True, sign=True,
                sigalg=SIG_RSA_SHA256,
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - pysaml2 raises bare Exception too
        forget(exc)
        raise refused("bad_configuration", f"saml logout: {type(exc).__name__}") from None
    return Started(url=_location(http), kept={})
