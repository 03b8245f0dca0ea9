"""Send logins to a workflow webhook (marketplace plugin login-webhook).

Only the configured fields leave: the payload is built from an allow-list of dotted paths
(the manifest's choices, checked at install), and the secrets and the configuration are never
sent whatever the list says. The token travels as a bearer token (RFC 6750 §2.1).
"""

NEVER_SENT = ("secrets", "configuration")


def pick(event, path):
    value = event
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def payload(event, fields):
    body = {"type": "post-login"}
    for path in fields:
        if path.split(".")[0] in NEVER_SENT:
            continue
        parts = path.split(".")
        target = body
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = pick(event, path)
    return body


def on_execute_post_login(event, api):
    config = event.configuration
    body = payload(event.to_dict(), config.fields)
    headers = {"Authorization": f"Bearer {event.secrets.token}"}
    try:
        answer = api.http.post(config.url, json=body, headers=headers, timeout=3)
        if not 200 <= answer.status < 300:
            raise RuntimeError(f"the webhook answered {answer.status}")
    except Exception as exc:
        if config.block_login_on_failure:
            raise
        print(f"webhook not delivered: {exc}")
