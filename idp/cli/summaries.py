"""What ``idp --help`` and each group's ``--help`` list: one line per command, and an example
for the common ones (issue 20). Kept in one table so that the summaries read as one list; the
commands' docstrings stay their full ``--help`` text. ``tests/cli`` checks that every command
has a line here."""

from __future__ import annotations

import click

ROOT_HELP = """idp: a self-hosted OpenID Connect / OAuth 2.1 authorization server.

\b
The first run (what `make run` does; then open the demo app and press Log in):
  idp init          create the instance (secret, database, signing key)
  idp demo          seed a demo app, API and user; print where they are
  idp demo-app &    serve the demo relying party on the next port (5001)
  idp serve         serve idp on http://localhost:5000

Every command takes --json (before or after its name); --instance DIR or IDP_INSTANCE
names the instance folder, IDP_* variables override its config.toml.
"""

# command path -> (one line, example or "")
SUMMARIES: dict[str, tuple[str, str]] = {
    "init": ("Create or upgrade the instance: secret, database, first key.", "idp init"),
    "serve": ("Serve idp (granian; --dev for Flask's reloader).",
              "IDP_ISSUER=http://localhost:5000 idp serve --port 5000"),
    "demo": ("Seed the demo app, API and user; print where they are.",
             "idp demo --app-url http://localhost:5001"),
    "demo-app": ("Serve the demo relying party (a real OIDC client).",
                 "idp demo-app --port 5001"),
    "caches": ("The running servers' caches of clients, keys and actions.", ""),
    "caches flush": ("Make every server reload what it caches.", "idp caches flush"),
    "dev": ("Development tools (not for real data): seed.", ""),
    "dev seed": ("Bulk-seed users and clients sharing one password (benchmarks).",
                 "idp dev seed --users 1000000 --clients 10000"),
    "logs": ("Tenant log events, newest first (--follow tails).",
             "idp logs --type login.failure --limit 20"),
    "log-streams": ("Send every tenant log event to an HTTPS webhook.", ""),
    "log-streams create": ("Create a stream (prints its signing secret once).",
                           "idp log-streams create --name siem "
                           "--endpoint https://siem.example.com/idp"),
    "log-streams list": ("Streams with status, checkpoint and last error.", ""),
    "log-streams pause": ("Stop a stream where it is.", ""),
    "log-streams resume": ("Send again from the checkpoint.", "idp log-streams resume siem"),
    "log-streams delete": ("Delete a stream.", ""),
    "keys": ("Signing keys: list, rotate, revoke.", ""),
    "keys list": ("Signing keys and their state.", ""),
    "keys rotate": ("Stage a new signing key: published first, signing later.",
                    "idp keys rotate --alg ES256"),
    "keys revoke": ("Take a retired key out of the JWKS now.", "idp keys revoke KID"),
    "clients": ("Applications: create, update, list, delete.", ""),
    "clients create": ("Register an application (prints its secret once).",
                       "idp clients create --name Web --type regular_web "
                       "--redirect-uri https://app.example.com/callback"),
    "clients update": ("Change an application's initiate_login_uri (OIDC Core §4).",
                       "idp clients update CID --initiate-login-uri https://app.example/login"),
    "clients list": ("Applications and their redirect URIs.", ""),
    "clients backchannel-logout": ("Where an application gets Logout Tokens (OIDC BCL).",
                                   "idp clients backchannel-logout CID --uri "
                                   "https://app.example/backchannel-logout"),
    "clients subject": ("Public or pairwise sub for an application (OIDC Core §8).",
                        "idp clients subject CID --subject-type pairwise "
                        "--sector-identifier-uri https://app.example/sector.json"),
    "clients delete": ("Delete an application.", ""),
    "clients initial-token": ("Initial access tokens for dynamic registration (RFC 7591).", ""),
    "clients initial-token create": ("Make one (printed once); --expires-in, --max-uses.",
                                     "idp clients initial-token create --max-uses 1"),
    "clients initial-token list": ("Tokens with their uses, limits and expiry.", ""),
    "clients initial-token revoke": ("Revoke a token by its id.", ""),
    "apis": ("APIs (resource servers): create, list, delete.", ""),
    "apis create": ("Register an API (an audience) and its scopes.",
                    "idp apis create --identifier https://api.example.com --name API "
                    "--scope read:things"),
    "apis list": ("APIs and their scopes.", ""),
    "apis delete": ("Delete an API.", ""),
    "client-grants": ("Which m2m app may get which scopes of which API.", ""),
    "client-grants create": ("Let an m2m application get tokens for an API.",
                             "idp client-grants create --client-id ID "
                             "--audience https://api.example.com --scope read:things"),
    "client-grants list": ("Client grants.", ""),
    "client-grants delete": ("Delete a client grant.", ""),
    "admins": ("Who may use the admin console at /admin.", ""),
    "admins add": ("Give a user the admin role (the console asks MFA too).",
                   "idp admins add --email ada@example.com"),
    "admins remove": ("Take the admin role away.", ""),
    "admins list": ("Admins.", ""),
    "users": ("Users: create, show, update, passwords, identities.", ""),
    "users create": ("Create a user of the database connection.",
                     "idp users create --email ada@example.com --password '...' --email-verified"),
    "users list": ("Users.", ""),
    "users show": ("A user's claims and identities.", "idp users show --email ada@example.com"),
    "users update": ("Set or remove a user's standard claims.",
                     "idp users update --email ada@example.com --name 'Ada Lovelace'"),
    "users set-password": ("Set a password (random if none given); ends sessions.",
                           "idp users set-password --email demo@example.com"),
    "users delete": ("Delete a user.", ""),
    "users unblock": ("Lift brute-force blocks on an account.", ""),
    "users link": ("Give a user an identity at a connection.", ""),
    "users unlink": ("Remove one of a user's identities.", ""),
    "consents": ("What users allowed third-party applications.", ""),
    "consents list": ("A user's consents.", ""),
    "consents revoke": ("Forget a consent; the app's tokens stop working.", ""),
    "connections": ("How users sign in (database, OIDC, social, SAML), per app.", ""),
    "connections list": ("Connections.", ""),
    "connections show": ("A connection's options (secrets shown as set).", ""),
    "connections create": ("Create a connection (oidc, oauth2, samlp or a preset).",
                           "printf %s \"$SECRET\" | idp connections create --strategy github "
                           "--name github --client-id C --client-secret -"),
    "connections update": ("Change a connection's options (merged).", ""),
    "connections delete": ("Delete a connection (never database).", ""),
    "connections enable": ("Enable a connection for an application.", ""),
    "connections disable": ("Disable a connection for an application.", ""),
    "connections rotate-certificate": ("samlp: a new SP key pair (the previous one kept).",
                                       "idp connections rotate-certificate acme"),
    "actions": ("Sandboxed code in each flow: deploy, bind, test, runs.", ""),
    "actions create": ("Save a draft from a file (live traffic untouched).", ""),
    "actions deploy": ("Save a draft from a file and deploy it as a version.",
                       "idp actions deploy claim.py --name add-claim --trigger post-login"),
    "actions bind": ("Add an action to a trigger's chain (runs it live).",
                     "idp actions bind add-claim --trigger post-login"),
    "actions unbind": ("Remove an action from a trigger's chain.", ""),
    "actions move": ("Move an action within a trigger's chain.", ""),
    "actions list": ("Actions, and each trigger's chain in order.", ""),
    "actions versions": ("An action's deployed versions.", ""),
    "actions rollback": ("Make an earlier version live again.", ""),
    "actions test": ("Run an action against a sample event.",
                     "idp actions test add-claim"),
    "actions secrets": ("List, set or delete an action's secrets.", ""),
    "actions executions": ("Latest executions, with counts and p50/p99.", ""),
    "actions schema": ("Each trigger's event and api shape, with a sample.", ""),
    "actions delete": ("Delete an action with its versions and bindings.", ""),
    "marketplace": ("Reviewed, ready-made actions: list, install.", ""),
    "marketplace list": ("Plugins with their trigger and settings.", ""),
    "marketplace install": ("Install a plugin as an action (--bind to run it).",
                            "idp marketplace install mfa-by-geography "
                            "--config when_unknown=true --bind"),
    "mfa": ("Multi-factor authentication: policies, users' factors.", ""),
    "mfa policy": ("Set an application's MFA policy.", "idp mfa policy CLIENT_ID always"),
    "mfa list": ("A user's factors of every kind, recovery codes left.",
                 "idp mfa list grace@example.com"),
    "mfa reset": ("Remove a user's factors: all, one, or one kind.",
                  "idp mfa reset grace@example.com --kind phone"),
    "mfa mds": ("FIDO metadata (MDS3) for WebAuthn attestation.", ""),
    "mfa mds import": ("Verify and import a downloaded MDS3 blob.",
                       "idp mfa mds import blob.jwt"),
    "mfa mds status": ("The imported MDS3 blob's serial and nextUpdate.", ""),
    "mfa attestation": ("Show or set the WebAuthn attestation policy.",
                        "idp mfa attestation direct"),
    "mfa vapid": ("The Web Push (VAPID) key of push approval.", ""),
    "mfa vapid show": ("Print the VAPID public key.", "idp mfa vapid show"),
}  # fmt: skip


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every command under ``group`` with its path (``users set-password``)."""
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(commands(command, path))
    return found


def apply(main: click.Group) -> None:
    """Set the root help, each command's one line and its example."""
    main.help = ROOT_HELP
    for path, command in commands(main):
        line, example = SUMMARIES.get(path, (None, ""))
        if line:
            command.short_help = line
            command.help = command.help or line
        if example and not command.epilog:
            command.epilog = f"\b\nExample:\n  {example}"
