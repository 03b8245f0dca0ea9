"""Add user claims to tokens (marketplace plugin user-claims).

Custom claims are namespaced under a URL the operator controls, so that they cannot collide
with registered or OIDC claims (RFC 7519 §4.2 collision-resistant names; OIDC Core §5.1.2).
"""


def on_execute_post_login(event, api):
    config = event.configuration
    namespace = config.namespace.rstrip("/")
    user = event.user
    for name in config.access_token_fields:
        api.access_token.set_custom_claim(f"{namespace}/{name}", user.get(name))
    if config.static_claim_name:
        api.id_token.set_custom_claim(
            f"{namespace}/{config.static_claim_name}", config.static_claim_value
        )
    if config.include_identities:
        identities = [identity.to_dict() for identity in (user.identities or ())]
        api.id_token.set_custom_claim(f"{namespace}/identities", identities)
