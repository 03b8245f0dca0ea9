"""pysaml2 clients are built once per connection configuration and process, bounded, and keep
no per-user state (idp.connections.saml.config.client)."""

from __future__ import annotations

from typing import Any

from idp.connections.saml import config, credentials, metadata
from tests.connections.saml_idp import SETTINGS, SP, SamlIdp


def _info(idp: SamlIdp, options: dict[str, Any]) -> Any:
    return metadata.read(metadata.idp_metadata(options, SETTINGS))


def test_one_client_per_configuration_bounded_and_cleaned(
    saml_idp: SamlIdp, monkeypatch: Any
) -> None:
    config.clear()
    options = saml_idp.options()
    info = _info(saml_idp, options)
    with config.client(options, SP, info, ()) as first:
        pass
    with config.client(options, SP, info, ()) as again:
        assert again is first  # the same configuration: built once
    rotated_key, rotated_cert = credentials.new_sp_credentials("rotated")
    rotated = {**options, "sp_private_key": rotated_key, "sp_certificate": rotated_cert}
    with config.client(rotated, SP, info, ()) as other:
        assert other is not first  # a rotated key is another configuration
    monkeypatch.setattr(config, "CACHE_SIZE", 1)
    directories = [entry.directory for entry in config._CACHE.values()]
    with config.client({**options, "map": {"email": "x"}}, SP, info, ()):
        pass
    assert len(config._CACHE) == 1
    assert all(not d.exists() for d in directories)  # evicted clients' key files are gone
    first.users.add_information_about_person({"name_id": "x"})  # a no-op: no growth
    config.clear()
    assert not config._CACHE
