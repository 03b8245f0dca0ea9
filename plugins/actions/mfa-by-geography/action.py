"""Require MFA by geography (marketplace plugin mfa-by-geography).

The location is the request's GeoIP data (``event.request.geoip``: continent and ISO 3166-1
alpha-2 country codes). An unknown location requires nothing unless ``when_unknown`` is set.
"""


def on_execute_post_login(event, api):
    config = event.configuration
    geoip = (event.request.geoip if event.request else None) or {}
    continent = str(geoip.get("continent_code") or "").upper()
    country = str(geoip.get("country_code") or "").upper()
    continents = {code.upper() for code in config.continents or ()}
    countries = {code.strip().upper() for code in config.countries or ()}
    matches = (continent and continent in continents) or (country and country in countries)
    unknown = not continent and not country
    if matches or (unknown and config.when_unknown):
        api.multifactor.enable(
            "any", {"allow_remember_browser": bool(config.allow_remember_browser)}
        )
