"""``idp-authenticator enrol TICKET_URL | list | approve ID --number N | deny ID | totp``.

The state file (the device key, the TOTP seed) is ``--state``, else $IDP_AUTHENTICATOR_STATE,
else ~/.config/idp-authenticator/state.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from idp.authenticator import client


def _state_path(value: str | None) -> Path:
    default = Path.home() / ".config" / "idp-authenticator" / "state.json"
    return Path(value or os.environ.get("IDP_AUTHENTICATOR_STATE") or default)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idp-authenticator", description=__doc__)
    parser.add_argument("--state", help="state file (holds the private key)")
    commands = parser.add_subparsers(dest="command", required=True)
    enrol = commands.add_parser("enrol", aliases=["enroll"], help="enrol from a ticket link")
    enrol.add_argument("ticket", help="idp-push://enroll?issuer=...&ticket=...")
    enrol.add_argument("--webhook", help="URL the server posts to when a login waits")
    enrol.add_argument(
        "--name",
        default=f"idp-authenticator ({platform.system() or 'unknown system'})",
        help="how the account page names this device (default: the program and the system)",
    )
    enrol.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="let the ticket's server be on this private network (development)",
    )
    listing = commands.add_parser("list", help="pending sign-ins (JSON lines)")
    listing.add_argument("--wait", type=int, default=0, help="long-poll up to N seconds (<= 20)")
    approve = commands.add_parser("approve", help="approve a sign-in")
    approve.add_argument("id")
    approve.add_argument("--number", type=int, required=True, help="the number the page shows")
    deny = commands.add_parser("deny", help="deny a sign-in")
    deny.add_argument("id")
    commands.add_parser("totp", help="print the fallback code")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    path = _state_path(args.state)
    try:
        if args.command in {"enrol", "enroll"}:
            device = client.enrol(args.ticket, path, args.webhook, args.allow_network, args.name)
            print(json.dumps({"device_id": device.device_id, "issuer": device.issuer}))
        elif args.command == "list":
            for item in client.pending(client.load(path), min(max(args.wait, 0), 20)):
                print(json.dumps(item))
        elif args.command == "approve":
            print(client.answer(client.load(path), args.id, "approve", args.number))
        elif args.command == "deny":
            print(client.answer(client.load(path), args.id, "deny"))
        else:
            print(client.totp(client.load(path)))
    except client.AuthenticatorError as exc:
        print(f"idp-authenticator: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
