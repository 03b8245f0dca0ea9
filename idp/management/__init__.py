"""The management API (``/api/v2``), shaped like Auth0's Management API v2 (issue 4).

A resource server of its own: machine clients get tokens for ``<ISSUER>/api/v2/`` with the
client-credentials grant (RFC 6749 §4.4) and present them as Bearer tokens (RFC 6750 §2.1).
One module per resource: ``actions.py``, ``bindings.py``, ``logs.py``, ``connections.py`` and
``identities.py`` (a user's identities, issue 12); ``base.py`` holds the blueprint, the token
check and the error shape; ``views.py`` gathers them.
"""
