"""GeoIP lookups for ``event.request.geoip`` (issue 5)."""
