"""OpenID Connect Back-Channel Logout 1.0: when a login session ends, every client that was
given an ID token in it and registered a ``backchannel_logout_uri`` gets a signed Logout Token,
POSTed by a lease-based delivery worker with retries (``idp.backchannel.delivery``)."""
