"""The GeoIP reader on a database the tests build: the event's shape, misses, private
addresses, no database, a broken path, a replaced file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from idp.geo import service
from idp.geo.service import GeoIP, GeoIPError
from tests.geo.mmdb import BERLIN_V6, BOSTON, NOWHERE, PARIS, RECORDS, build


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("geo") / "test.mmdb")


def test_a_city_record_has_the_auth0_shape(db_path: Path) -> None:
    geo = GeoIP(db_path)
    assert geo.lookup(PARIS) == {
        "country_code": "FR",
        "country_name": "France",
        "continent_code": "EU",
        "subdivision_code": "IDF",
        "subdivision_name": "Île-de-France",
        "city_name": "Paris",
        "latitude": 48.8566,
        "longitude": 2.3522,
        "time_zone": "Europe/Paris",
    }
    boston = geo.lookup(BOSTON)
    assert (boston["country_code"], boston["continent_code"], boston["city_name"]) == (
        "US", "NA", "Boston",
    )  # fmt: skip
    assert boston["time_zone"] == "America/New_York" and boston["longitude"] < 0


def test_missing_fields_are_left_out_and_ipv6_and_mapped_addresses_work(db_path: Path) -> None:
    geo = GeoIP(db_path)
    assert geo.lookup(BERLIN_V6) == {
        "country_code": "DE", "country_name": "Germany", "continent_code": "EU",
    }  # fmt: skip
    assert geo.lookup(f"::ffff:{PARIS}")["city_name"] == "Paris"


@pytest.mark.parametrize(
    "ip", [NOWHERE, "127.0.0.1", "10.1.2.3", "192.168.0.9", "100.64.0.1", "::1", "fe80::1",
           "fd00::1", "224.0.0.1", "unknown", "", None],
)  # fmt: skip
def test_misses_private_and_malformed_addresses_are_empty(db_path: Path, ip: str | None) -> None:
    assert GeoIP(db_path).lookup(ip) == {}


def test_a_private_range_in_the_file_is_still_not_a_location(tmp_path: Path) -> None:
    """A database that (wrongly) locates a private range is not believed for it."""
    path = build(tmp_path / "odd.mmdb", {"10.0.0.0/8": RECORDS["192.0.2.0/24"]})
    assert GeoIP(path).lookup("10.1.2.3") == {}


def test_no_database_is_empty_with_one_warning_per_process(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "_warned", service.threading.Event())
    caplog.set_level(logging.WARNING, logger="idp.geo.service")
    first, second = service.from_config({"GEOIP_DB": ""}), GeoIP(None)
    assert not first.enabled and first.lookup(PARIS) == {}
    first.warn_if_unset()
    second.warn_if_unset()  # another app in the same process: already said
    assert [r.getMessage() for r in caplog.records if "GEOIP_DB" in r.getMessage()] == [
        "GeoIP is off: IDP_GEOIP_DB is not set, so event.request.geoip is empty and "
        "location-based policies (e.g. require MFA by geography) see no location"
    ]


def test_a_configured_database_never_warns(
    db_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "_warned", service.threading.Event())
    caplog.set_level(logging.WARNING, logger="idp.geo.service")
    GeoIP(db_path).warn_if_unset()
    assert not caplog.records


@pytest.mark.parametrize("content", [None, b"not a maxmind database"])
def test_a_configured_path_that_is_not_a_database_fails_start_up(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "GeoLite2-City.mmdb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GeoIPError, match=r"GEOIP_DB=.*GeoLite2-City\.mmdb"):
        GeoIP(path)


def test_a_replaced_file_is_reloaded_and_a_broken_one_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "RELOAD_CHECK_SECONDS", 0.0)
    path = build(tmp_path / "live.mmdb")
    geo = GeoIP(path)
    assert geo.lookup(BOSTON)["country_code"] == "US"
    # geoipupdate writes the new file and renames it over the old one
    moved = {"198.51.100.0/24": RECORDS["192.0.2.0/24"]}
    build(tmp_path / "next.mmdb", moved).replace(path)
    assert geo.lookup(BOSTON)["country_code"] == "FR"
    path.write_bytes(b"half written")
    assert geo.lookup(BOSTON)["country_code"] == "FR"  # the last good database answers


def test_create_app_refuses_a_geoip_db_it_cannot_read(tmp_path: Path) -> None:
    from idp import create_app

    settings = {"SECRET_KEY": "s" * 48, "GEOIP_DB": str(tmp_path / "missing.mmdb")}
    with pytest.raises(ValueError, match="not a readable MaxMind database"):
        create_app(settings, instance_path=tmp_path)
