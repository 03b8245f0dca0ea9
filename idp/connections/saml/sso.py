"""SP-initiated single sign-on, the first leg: the AuthnRequest (SAML 2.0 Core §3.4.1) sent
by the HTTP-Redirect binding (Bindings §3.4, the default; signed in the query string,
§3.4.4.1) or the HTTP-POST binding (§3.5; signed as XML, Core §5).

What must be kept until the answer (the request's ID, for ``InResponseTo``; Profiles
§4.1.4.3) is returned in :attr:`Started.kept`, which the login flow stores server side.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from idp.connections.saml.config import client
from idp.connections.saml.contract import Settings, Sp, Started, refused
from idp.connections.saml.metadata import POST, REDIRECT, idp_metadata, read
from idp.core import clock


def new_id() -> str:
    """A message ID: 160 random bits (Core §1.3.4 asks for at least 128), starting with a
    letter or underscore as xs:ID must."""
    return "_" + secrets.token_hex(20)


def begin(
    options: dict[str, Any], *, sp: Sp, relay_state: str, force_authn: bool, settings: Settings
) -> Started:
    """Where to send the browser with an AuthnRequest, and what to keep until the answer.

    Redirect binding: :attr:`Started.url` carries ``SAMLRequest`` and ``RelayState`` (and,
    with ``sign_requests``, ``SigAlg`` and ``Signature``). POST binding
    (``request_binding: post``): :attr:`Started.url` is the IdP's SSO URL and
    :attr:`Started.form` the fields to post there. ``force_authn`` sets ``ForceAuthn``
    (Core §3.4.1: the IdP must authenticate the user again: ``prompt=login``, ``max_age``).
    """
    info = read(idp_metadata(options, settings))
    binding = POST if options.get("request_binding") == "post" else REDIRECT
    url = info.sso.get(binding)
    if url is None:
        name = "HTTP-POST" if binding == POST else "HTTP-Redirect"
        raise refused("bad_metadata", f"saml metadata: no SingleSignOnService for {name}",
                      "The sign-in provider's configuration could not be used.")  # fmt: skip
    sign = bool(options.get("sign_requests"))
    request_id = new_id()
    with client(options, sp, info, (), sign=sign) as saml:
        _, request = saml.create_authn_request(
            url, binding=POST,  # the binding asked for the *response*: the ACS's
            message_id=request_id, force_authn="true" if force_authn else None,
            # the POST binding carries the signature in the XML; the redirect binding in
            # the query string (Bindings §3.4.4.1: an XML signature there is to be dropped)
            sign=sign and binding == POST, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256,
        )  # fmt: skip
        kept = {"protocol": "samlp", "request_id": request_id, "issued_at": clock.now()}
        if binding == POST:
            form = {"SAMLRequest": base64.b64encode(str(request).encode()).decode(),
                    "RelayState": relay_state}  # fmt: skip
            return Started(url=url, kept=kept, form=form)
        http = saml.apply_binding(
            REDIRECT, str(request), url, relay_state, sign=sign, sigalg=SIG_RSA_SHA256
        )
    location = dict(http["headers"]).get("Location")
    if not location:
        raise refused("bad_configuration", "saml: pysaml2 built no redirect")
    return Started(url=location, kept=kept)
