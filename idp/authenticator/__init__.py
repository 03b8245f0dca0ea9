"""``idp-authenticator``: the reference push authenticator (a device of the push factor)."""
