"""A small GeoIP2-City database built with mmdb-writer, in MaxMind's record layout.

Documentation addresses only (RFC 5737, RFC 3849): no real network is located by the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

PARIS = "192.0.2.10"  # 192.0.2.0/24: France, Europe
BOSTON = "198.51.100.7"  # 198.51.100.0/24: United States, North America
BERLIN_V6 = "2001:db8::10"  # 2001:db8::/32: Germany (a country-level record, no city)
NOWHERE = "203.0.113.5"  # TEST-NET-3: not in the database


def _names(en: str) -> dict[str, str]:
    return {"en": en}


RECORDS: dict[str, dict[str, Any]] = {
    "192.0.2.0/24": {
        "continent": {"code": "EU", "geoname_id": 6255148, "names": _names("Europe")},
        "country": {"iso_code": "FR", "geoname_id": 3017382, "names": _names("France")},
        "subdivisions": [{"iso_code": "IDF", "names": _names("Île-de-France")}],
        "city": {"geoname_id": 2988507, "names": _names("Paris")},
        "location": {"latitude": 48.8566, "longitude": 2.3522, "time_zone": "Europe/Paris"},
    },
    "198.51.100.0/24": {
        "continent": {"code": "NA", "geoname_id": 6255149, "names": _names("North America")},
        "country": {"iso_code": "US", "geoname_id": 6252001, "names": _names("United States")},
        "subdivisions": [{"iso_code": "MA", "names": _names("Massachusetts")}],
        "city": {"geoname_id": 4930956, "names": _names("Boston")},
        "location": {
            "latitude": 42.3601,
            "longitude": -71.0589,
            "time_zone": "America/New_York",
        },
    },
    "2001:db8::/32": {
        "continent": {"code": "EU", "geoname_id": 6255148, "names": _names("Europe")},
        "country": {"iso_code": "DE", "geoname_id": 2921044, "names": _names("Germany")},
    },
}


def build(path: Path, records: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write the database (IPv6 with IPv4 mapped in, like MaxMind's own) to ``path``."""
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoIP2-City",
        languages=["en"],
        description="idp test GeoIP",
    )
    for network, record in (RECORDS if records is None else records).items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path
