"""The demo relying party that ``make run`` starts beside idp (``idp demo-app``).

:mod:`idp.demo.seed` registers it (``idp demo``) and writes its credentials to the instance's
``demo.json``; :mod:`idp.demo.app` is the relying party itself, a separate program on its own
origin that talks to idp only through its public endpoints with Authlib's Flask client;
:mod:`idp.demo.resource` is the small protected API it calls with the access token.
"""
