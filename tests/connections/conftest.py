"""Fixtures of the connection tests: a real upstream OpenID provider (``oidc_upstream``, see
``tests/connections/upstream.py``)."""

from tests.connections.saml_idp import saml_idp  # noqa: F401  (a loopback SAML IdP, pysaml2)
from tests.connections.social import social_op  # noqa: F401  (idp reaching loopback upstreams)
from tests.connections.upstream import oidc_upstream  # noqa: F401  (a fixture, re-exported)
