"""``idp mfa mds ...``: the FIDO Metadata Service (MDS3) blob that WebAuthn attestation is
checked against (idp.mfa.mds): import a downloaded blob, show the imported one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from idp.cli.context import Command, Ctx, Group, pass_ctx


@click.group(cls=Group)
def mds() -> None:
    """FIDO Metadata Service blob: import, status."""


@mds.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", "root_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="PEM root to check the blob against (default: WEBAUTHN_MDS_ROOT, or the "
                   "bundled FIDO root).")  # fmt: skip
@pass_ctx
def import_(ctx: Ctx, file: Path, root_path: str | None) -> None:
    """Verify FILE (the blob from https://mds3.fidoalliance.org/) and make it the trust store."""
    from idp.core import clock
    from idp.extensions import services
    from idp.mfa import mds as metadata

    if file.stat().st_size > metadata.MAX_BLOB_BYTES:
        raise click.ClickException("the file is too large for an MDS3 blob")
    blob = file.read_text(encoding="utf-8", errors="replace")
    with ctx.session() as s:
        try:
            root = metadata.load_root(root_path or str(services().config["WEBAUTHN_MDS_ROOT"]))
            found, replaced = metadata.import_blob(s, blob, root)
        except metadata.MdsError as exc:
            raise click.ClickException(f"blob refused: {exc}") from None
        warnings = metadata.warnings(found.next_update, clock.now())
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    data = {"no": found.serial, "nextUpdate": found.next_update.isoformat(),
            "entries": len(found.by_aaguid) + len(found.by_key_id), "replaced": replaced,
            "warnings": warnings}  # fmt: skip
    text = (
        f"imported MDS3 blob no {found.serial} (nextUpdate "
        f"{found.next_update.isoformat()}), {data['entries']} authenticator models"
    )
    ctx.emit(data, text)


@mds.command("status")
@pass_ctx
def status(ctx: Ctx) -> None:
    """The imported blob: serial, nextUpdate, models, and whether it is stale."""
    import datetime as dt

    from idp.core import clock
    from idp.mfa import attestation
    from idp.mfa import mds as metadata

    with ctx.session() as s:
        row = metadata.stored(s)
        policy = attestation.policy()
        data: dict[str, Any] | None = None
        warnings: list[str] = []
        if row is not None:
            warnings = metadata.warnings(dt.date.fromisoformat(row.next_update), clock.now())
            data = {"no": row.serial, "nextUpdate": row.next_update, "entries": row.entries,
                    "signer": row.signer, "imported_at": row.imported_at,
                    "stale": bool(warnings), "warnings": warnings}  # fmt: skip
    if data is None:
        message = "no MDS3 blob imported"
        if policy == "direct":
            message += ": the 'direct' attestation policy refuses every security key"
        click.echo(f"warning: {message}", err=True)
        ctx.emit({"imported": False, "policy": policy}, message)
        return
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    data = {"imported": True, "policy": policy, **data}
    ctx.emit(data, f"MDS3 blob no {data['no']}, nextUpdate {data['nextUpdate']}"
                   f"{' (STALE)' if data['stale'] else ''}, {data['entries']} entries, "
                   f"signed by {data['signer']}")  # fmt: skip


@click.command("attestation", cls=Command)
@click.argument("policy", required=False, type=click.Choice(["none", "indirect", "direct"]))
@click.option(
    "--allow", default=None, metavar="AAGUIDS",
    help="Comma-separated AAGUIDs, the only models accepted ('' clears the list).",
)  # fmt: skip
@pass_ctx
def attestation_policy(ctx: Ctx, policy: str | None, allow: str | None) -> None:
    """Show or set the WebAuthn attestation policy and AAGUID allow-list (tenant settings)."""
    import uuid

    from idp.mfa import attestation
    from idp.tenant.settings import tenant

    values: dict[str, str] = {}
    if policy is not None:
        values["WEBAUTHN_ATTESTATION"] = policy
    if allow is not None:
        try:
            aaguids = [str(uuid.UUID(a.strip())) for a in allow.split(",") if a.strip()]
        except ValueError:
            raise click.ClickException(f"not a list of AAGUIDs: {allow[:200]!r}") from None
        values["WEBAUTHN_AAGUID_ALLOWLIST"] = ",".join(aaguids)
    with ctx.session() as s:
        if values:
            tenant().write(s, values)
            s.commit()
            tenant().invalidate()  # every worker and instance reloads (idp.tenant.settings)
        data = {"policy": attestation.policy(), "allowlist": sorted(attestation.allowlist())}
    ctx.emit(data, f"attestation {data['policy']}; allowed AAGUIDs: "
                   f"{', '.join(data['allowlist']) or 'any'}")  # fmt: skip
