"""What creating, changing and rotating a ``samlp`` connection adds to the connection service
(issue 13, "Operators"); the SAML protocol itself lives in ``idp.connections.saml``.

* **The SP's key pair** is generated with the connection (``saml.credentials``): the key is the
  secret option ``sp_private_key``, sealed like every secret and never shown; the self-signed
  certificate ``sp_certificate`` is public (the IdP's operator imports it from idp's SP
  metadata). Operators never send either: ``rotate-certificate`` makes a new pair.
* **The IdP's signing certificates are pinned** by SHA-256 fingerprint in ``idp_certificates``
  when the metadata is set (created, or replaced by an update). Without ``--fingerprint`` the
  metadata's signing certificates at that moment are pinned (``show`` prints them to compare
  with the IdP's console); with it, each given fingerprint must be one of the metadata's
  signing certificates, else the change is refused (a fingerprint read from the IdP's console
  guards against a metadata URL that serves someone else's key). An IdP's later key rollover
  therefore needs the operator: ``update --fingerprint NEW`` once the metadata carries it.
* **Rotation** (:func:`rotate_certificate`) switches to a new pair at once and keeps the one
  before as ``sp_previous_private_key`` (sealed) and ``sp_previous_certificate``, one
  generation only (as Auth0 keeps one previous signing key): an IdP that has not yet read
  the new SP metadata still encrypts assertions to the old certificate, and only the old key
  opens them. Signed AuthnRequests use the new key at once, so an IdP that checks them needs
  the new metadata first (rotate when its operator is ready).

The IdP metadata is fetched through the SSRF-guarded client with the app's ``CONNECTIONS_*``
settings, and never while a transaction is open: SQLite transactions here are ``BEGIN
IMMEDIATE``, so one held across a slow IdP would stop every other write. :func:`prefetch` ends
the caller's read transaction and fetches before the create or update writes anything.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.connections import strategies
from idp.connections.models import Connection
from idp.core import clock
from idp.core.crypto import SecretBox
from idp.core.errors import NotFoundError, ValidationError
from idp.core.http import parse_networks
from idp.oauth.models import Client

SAMLP = strategies.SAMLP
SOURCES = ("metadata_url", "metadata_xml")  # where the IdP's metadata comes from: one of them
GENERATED = ("sp_private_key", "sp_certificate", "sp_previous_private_key",
             "sp_previous_certificate")  # fmt: skip


def is_samlp(connection: Connection) -> bool:
    return strategies.protocol(connection.strategy) == SAMLP


def settings() -> Any:
    """How idp reaches the IdP: the app's ``CONNECTIONS_*`` settings, as for every upstream
    (read from the app here: ``idp.flows.federation`` imports this package's service)."""
    from idp.connections.saml.contract import Settings

    config = current_app.config
    return Settings(
        allowed_networks=parse_networks(str(config["CONNECTIONS_ALLOW_NETWORKS"])),
        timeout=float(config["CONNECTIONS_HTTP_TIMEOUT"]),
        max_body=int(config["CONNECTIONS_MAX_RESPONSE_BYTES"]),
    )


def _refusal(exc: Exception) -> ValidationError:
    """An operator's one-line error from a SAML refusal: its detail names the check (an HTTP
    status, "not well-formed XML", ...), never a body or a key."""
    detail = getattr(exc, "detail", "") or getattr(exc, "description", "") or str(exc)
    return ValidationError(f"the IdP metadata cannot be used: {detail}")


def fetch(session: Session, url: str) -> str:
    """The metadata at ``url``, fetched now (an operator pins what the IdP serves today, not a
    copy cached by this process for logins)."""
    from idp.connections.saml import metadata
    from idp.connections.saml.contract import UpstreamError

    if session.in_transaction():
        raise RuntimeError("end the transaction before fetching IdP metadata (see prefetch)")
    # The login path's cache would answer with the document as it was up to an hour ago.
    with metadata._lock:
        metadata._cache.pop(url, None)
    try:
        return metadata.idp_metadata({"metadata_url": url}, settings())
    except (UpstreamError, ValueError) as exc:
        raise _refusal(exc) from None


def _url_to_fetch(stored: dict[str, Any], given: dict[str, Any]) -> str | None:
    """The metadata URL a change needs read: a new one, or the stored one when new pins must
    be checked against it; None when the XML is given or nothing about the IdP changes."""
    if given.get("metadata_xml") is not None:
        return None
    if given.get("metadata_url") is not None:
        return str(given["metadata_url"])
    if given.get("idp_certificates") is not None and not stored.get("metadata_xml"):
        url = stored.get("metadata_url")
        return str(url) if url else None
    return None


def prefetch(
    session: Session, given: dict[str, Any], *, strategy: str | None = None, name: str | None = None
) -> str | None:
    """The IdP metadata a create (``strategy``) or an update (``name``) needs from the
    network, or None. Call it before writing anything: it commits the session's read-only
    transaction, then fetches with none open. Pass the answer as ``metadata=`` to
    ``create_connection`` / ``update_connection``."""
    stored: dict[str, Any] = {}
    if name is not None:
        connection = _find(session, name)
        strategy, stored = connection.strategy, dict(connection.options)
    if strategy is None or strategy not in strategies.STRATEGIES:
        return None  # the create refuses it with the strategies' message
    if strategies.protocol(strategy) != SAMLP:
        return None
    url = _url_to_fetch(stored, given)
    if url is None:
        return None
    strategies.validate_options(SAMLP, {"metadata_url": url})  # its shape, before the network
    session.commit()
    return fetch(session, url)


def _find(session: Session, name: str) -> Connection:
    connection = session.scalar(select(Connection).where(Connection.name == name))
    if connection is None:
        raise NotFoundError(f"no connection {name!r}")
    return connection


def _pins(metadata_xml: str, given: list[str] | None) -> list[str]:
    """The fingerprints to pin: the metadata's signing certificates, or the operator's, each
    of which must be one of them."""
    from idp.connections.saml import credentials, metadata
    from idp.connections.saml.contract import UpstreamError

    try:
        found = metadata.metadata_certificates(metadata_xml)
    except (UpstreamError, ValueError) as exc:
        raise _refusal(exc) from None
    if not found:
        raise ValidationError("the IdP metadata has no signing certificate")
    if given is None:
        return list(dict.fromkeys(found))
    wanted = list(dict.fromkeys(credentials.normalize(f) for f in given))
    missing = [f for f in wanted if f not in found]
    if missing:
        raise ValidationError(
            f"fingerprint {missing[0]} is not a signing certificate of the IdP metadata "
            f"(it has {', '.join(found)})"
        )
    return wanted


def _check_client(session: Session, options: dict[str, Any]) -> None:
    """IdP-initiated SSO starts a fresh authorization request for ``default_client_id``: it
    must be an application that exists."""
    client_id = options.get("default_client_id")
    if client_id is not None and session.get(Client, client_id) is None:
        raise ValidationError(f"default_client_id: no client {client_id!r}")


def _metadata(session: Session, options: dict[str, Any], fetched: str | None) -> str:
    if options.get("metadata_xml"):
        return str(options["metadata_xml"])
    return fetched if fetched is not None else fetch(session, str(options["metadata_url"]))


def provision(
    session: Session, name: str, checked: dict[str, Any], metadata: str | None = None
) -> dict[str, Any]:
    """A new connection's options (validated, secrets in clear) completed: the SP key pair
    generated and the IdP's certificates pinned. ``metadata``: what :func:`prefetch` read
    (else the URL is fetched here, which needs no transaction open). A key pair given whole
    is kept (the SAML tests bring one an IdP already trusts); operators cannot send one
    (:func:`refuse_generated`)."""
    from idp.connections.saml import credentials

    if any(k in checked for k in GENERATED[2:]):
        raise ValidationError("a new connection has no previous SP key pair")
    if all(k in checked for k in SOURCES):
        raise ValidationError("give metadata_url or metadata_xml, not both")
    options = dict(checked)
    pins = _pins(_metadata(session, options, metadata), checked.get("idp_certificates"))
    _check_client(session, options)
    if "sp_private_key" in options or "sp_certificate" in options:
        _check_pair(options.get("sp_private_key"), options.get("sp_certificate"))
    else:
        options["sp_private_key"], options["sp_certificate"] = credentials.new_sp_credentials(name)
    return {**options, "idp_certificates": pins}


def _check_pair(key: Any, certificate: Any) -> None:
    """A given SP key pair: both halves, and the certificate is the key's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        public = serialization.load_pem_private_key(str(key).encode(), None).public_key()
        certified = x509.load_pem_x509_certificate(str(certificate).encode()).public_key()
    except (TypeError, ValueError):
        raise ValidationError(
            "sp_private_key and sp_certificate must be PEM, given together"
        ) from None
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if public.public_bytes(*der) != certified.public_bytes(*der):
        raise ValidationError("sp_certificate is not sp_private_key's certificate")


def refuse_generated(options: dict[str, Any] | None) -> None:
    """Operators (the management API) never send the SP's key pair: idp makes it."""
    sent = sorted(k for k in GENERATED if k in (options or {}))
    if sent:
        raise ValidationError(f"{sent[0]} is generated by idp (rotate the keys to renew it)")


def revise(
    session: Session, connection: Connection, given: dict[str, Any], metadata: str | None = None
) -> dict[str, Any]:
    """The options an update of a samlp connection sends, completed before they are merged:
    a new metadata source replaces the other one and is pinned again; new pins are checked
    against the metadata. ``metadata``: what :func:`prefetch` read."""
    refuse_generated(given)
    if "idp_certificates" in given and given["idp_certificates"] is None:
        raise ValidationError("idp_certificates cannot be removed: pin others or new metadata")
    given = dict(given)
    new_source = [k for k in SOURCES if given.get(k) is not None]
    if len(new_source) == 2:
        raise ValidationError("give metadata_url or metadata_xml, not both")
    for source in new_source:  # the other source is replaced, not kept beside it
        given.setdefault(next(k for k in SOURCES if k != source), None)
    merged = {k: v for k, v in {**connection.options, **given}.items() if v is not None}
    if new_source or given.get("idp_certificates") is not None:
        if not any(k in merged for k in SOURCES):
            raise ValidationError("a samlp connection needs metadata_url or metadata_xml")
        strategies.validate_options(SAMLP, {k: merged[k] for k in SOURCES if k in merged})
        given["idp_certificates"] = _pins(
            _metadata(session, merged, metadata), given.get("idp_certificates")
        )
    if "default_client_id" in given:
        _check_client(session, merged)
    return given


def rotate_certificate(session: Session, name: str, box: SecretBox) -> Connection:
    """A new SP key pair for connection ``name``; the previous pair is kept (sealed key and
    certificate, one generation) so that assertions still encrypted to it can be opened."""
    from idp.connections.saml import credentials

    connection = _find(session, name)
    if not is_samlp(connection):
        raise ValidationError(f"{name!r} is not a samlp connection (it has no SP certificate)")
    key, certificate = credentials.new_sp_credentials(name)
    options = dict(connection.options)
    options["sp_previous_private_key"] = options.get("sp_private_key")  # still sealed
    options["sp_previous_certificate"] = options.get("sp_certificate")
    options.update(strategies.seal(box, {"sp_private_key": key}), sp_certificate=certificate)
    connection.options = {k: v for k, v in options.items() if v is not None}
    connection.updated_at = clock.now()
    return connection


def sp(name: str, issuer: str) -> Any:
    """Where idp's SP for connection ``name`` lives (``saml.contract.Sp``): its entity ID is
    its metadata's URL (SAML 2.0 Metadata §4.1, well-known location), the ACS is the same
    per-connection callback as the OIDC upstreams' (mix-up), SLO beside the metadata."""
    from idp.connections.saml.contract import Sp

    base = issuer.rstrip("/")
    return Sp(
        entity_id=f"{base}/samlp/metadata/{name}",
        acs_url=f"{base}/login/callback/{name}",
        slo_url=f"{base}/samlp/logout/{name}",
    )


def sp_info(connection: Connection, issuer: str) -> dict[str, Any]:
    """What the IdP's operator needs to register idp: the SP's entity ID (= its metadata URL),
    ACS and SLO URLs and the SHA-256 fingerprint of its current certificate."""
    from idp.connections.saml import credentials

    where = sp(connection.name, issuer)
    current = connection.options.get("sp_certificate")
    previous = connection.options.get("sp_previous_certificate")
    info = {
        "entity_id": where.entity_id,
        "metadata_url": where.entity_id,
        "acs_url": where.acs_url,
        "slo_url": where.slo_url,
        "certificate_fingerprint": credentials.fingerprint(current) if current else None,
    }
    if previous:
        info["previous_certificate_fingerprint"] = credentials.fingerprint(previous)
    return info
